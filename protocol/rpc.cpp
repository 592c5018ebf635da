// JSON-RPC 2.0 message parsing and response building, following the spec's rules for ids,
// notifications, batches and malformed elements.
#include "protocol/rpc.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>

namespace agentd::protocol {
namespace json = boost::json;

namespace {

bool valid_id(json::value const& id) {
    return id.is_string() || id.is_number() || id.is_null();
}

// Shared by the copying overload (MCP, whose frame outlives the call) and parse_message, which
// owns its document and moves id and params out of it.
template <class Value>
request_or_error parse_request_from(Value& v) {
    if (!v.is_object()) return {invalid_request("request must be an object"), nullptr};
    auto& obj = v.as_object();
    json::value error_id = nullptr;
    auto* id = obj.if_contains("id");
    if (id && valid_id(*id)) error_id = *id;

    auto const* version = obj.if_contains("jsonrpc");
    if (!version || !version->is_string() || version->get_string() != "2.0")
        return {invalid_request("jsonrpc must be \"2.0\""), error_id};
    if (id && !valid_id(*id))
        return {invalid_request("id must be a string, number or null"), nullptr};
    auto const* method = obj.if_contains("method");
    if (!method || !method->is_string())
        return {invalid_request("method must be a string"), error_id};
    auto* params = obj.if_contains("params");
    if (params && !params->is_object() && !params->is_array())
        return {invalid_request("params must be an object or array"), error_id};

    // Constructed in place: assigning would copy a value into the default resource.
    return {request{id ? std::optional<json::value>(std::move(*id)) : std::nullopt,
                    std::string(method->get_string()),
                    params ? json::value(std::move(*params)) : json::value(nullptr)},
            error_id};
}

}  // namespace

request_or_error parse_request(json::value const& v) {
    return parse_request_from(v);
}

std::span<json::value> frame::elements() {
    if (!is_batch) return {&doc, 1};
    auto& arr = doc.get_array();
    return {arr.data(), arr.size()};
}

std::span<json::value const> frame::elements() const {
    return const_cast<frame&>(*this).elements();
}

result<frame> parse_frame(std::string_view body, codec_limits const& limits, json::storage_ptr sp) {
    json::parse_options opts;
    opts.max_depth = limits.max_depth;
    boost::system::error_code ec;
    frame out{json::parse(body, ec, std::move(sp), opts)};
    if (ec) return parse_error(ec.message());
    auto const* arr = out.doc.if_array();
    if (!arr) return out;
    if (arr->empty()) return invalid_request("empty batch");
    if (arr->size() > limits.max_batch) return invalid_request("batch too long");
    out.is_batch = true;
    return out;
}

result<message> parse_message(std::string_view body, codec_limits const& limits,
                              json::storage_ptr sp) {
    auto f = parse_frame(body, limits, std::move(sp));
    if (!f) return f.error();
    return parse_message(std::move(*f));
}

message parse_message(frame f) {
    message msg{f.is_batch, {}};
    msg.elements.reserve(f.elements().size());
    for (auto& v : f.elements()) msg.elements.push_back(parse_request_from(v));
    return msg;
}

json::value make_result(json::value const& id, json::value result) {
    auto sp = result.storage();
    return json::object({{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}, sp);
}

json::value make_error(json::value const& id, rpc_error const& error, json::storage_ptr sp) {
    json::object err({{"code", static_cast<int>(error.code)}, {"message", error.message}}, sp);
    if (!error.data.is_null()) err["data"] = error.data;
    return json::object({{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}}, sp);
}

}  // namespace agentd::protocol
