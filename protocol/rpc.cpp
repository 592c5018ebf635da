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

}  // namespace

request_or_error parse_request(json::value const& v) {
    if (!v.is_object()) return {invalid_request("request must be an object"), nullptr};
    auto const& obj = v.get_object();
    json::value error_id = nullptr;
    auto const* id = obj.if_contains("id");
    if (id && valid_id(*id)) error_id = *id;

    auto const* version = obj.if_contains("jsonrpc");
    if (!version || !version->is_string() || version->get_string() != "2.0")
        return {invalid_request("jsonrpc must be \"2.0\""), error_id};
    if (id && !valid_id(*id))
        return {invalid_request("id must be a string, number or null"), nullptr};
    auto const* method = obj.if_contains("method");
    if (!method || !method->is_string())
        return {invalid_request("method must be a string"), error_id};
    auto const* params = obj.if_contains("params");
    if (params && !params->is_object() && !params->is_array())
        return {invalid_request("params must be an object or array"), error_id};

    request req;
    if (id) req.id = *id;
    req.method = std::string(method->get_string());
    if (params) req.params = *params;
    return {std::move(req), error_id};
}

std::span<json::value const> frame::elements() const {
    if (!is_batch) return {&doc, 1};
    auto const& arr = doc.get_array();
    return {arr.data(), arr.size()};
}

result<frame> parse_frame(std::string_view body, codec_limits const& limits) {
    json::parse_options opts;
    opts.max_depth = limits.max_depth;
    boost::system::error_code ec;
    frame out{json::parse(body, ec, {}, opts)};
    if (ec) return parse_error(ec.message());
    auto const* arr = out.doc.if_array();
    if (!arr) return out;
    if (arr->empty()) return invalid_request("empty batch");
    if (arr->size() > limits.max_batch) return invalid_request("batch too long");
    out.is_batch = true;
    return out;
}

result<message> parse_message(std::string_view body, codec_limits const& limits) {
    auto f = parse_frame(body, limits);
    if (!f) return f.error();
    message msg{f->is_batch, {}};
    msg.elements.reserve(f->elements().size());
    for (auto const& v : f->elements()) msg.elements.push_back(parse_request(v));
    return msg;
}

json::value make_result(json::value const& id, json::value result) {
    return json::object{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json::value make_error(json::value const& id, rpc_error const& error) {
    json::object err{{"code", static_cast<int>(error.code)}, {"message", error.message}};
    if (!error.data.is_null()) err["data"] = error.data;
    return json::object{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

}  // namespace agentd::protocol
