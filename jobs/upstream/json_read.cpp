// Upstream JSON readers; see json_read.hpp.
#include "jobs/upstream/json_read.hpp"

#include "protocol/utf8.hpp"

#include <boost/json/parse.hpp>

namespace agentd::jobs::upstream {
namespace json = boost::json;

std::optional<json::value> parse_json(std::string_view body, json::storage_ptr sp) {
    boost::system::error_code ec;
    json::parse_options opts;
    opts.max_depth = 64;
    auto v = json::parse(body, ec, std::move(sp), opts);
    if (ec) return std::nullopt;
    return v;
}

std::string_view string_at(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

json::object const* object_at(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v && v->is_object() ? &v->get_object() : nullptr;
}

std::int64_t int_at(json::object const* o, std::string_view key) {
    auto const* v = o ? o->if_contains(key) : nullptr;
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
    return 0;
}

std::string excerpt(std::string_view s) {
    std::string out = protocol::utf8_clean(s.substr(0, protocol::utf8_prefix(s, 200)));
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return out;
}

}  // namespace agentd::jobs::upstream
