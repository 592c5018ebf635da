// The route table and admit(): the only place that decides 400/401/403/404/405/426/501 and
// whether a request may become a WebSocket, so a new endpoint cannot reopen an upgrade hole.
// See routes.hpp.
#include "daemon/routes.hpp"

#include "common/log.hpp"
#include "daemon/auth.hpp"
#include "daemon/ui_assets.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <array>

namespace agentd::daemon {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

// Warnings a peer can trigger at will: a line a second each (log::throttle).
log::throttle body_limit_log;

constexpr std::array get_head{http::verb::get, http::verb::head};
constexpr std::array get_only{http::verb::get};
constexpr std::array post_only{http::verb::post};
constexpr std::array post_delete{http::verb::post, http::verb::delete_};

// The dashboard's files need no token: it lives in the URL fragment and reaches only /ws.
constexpr std::array<route, 6> routes{{
    {"/healthz", false, get_head, access::open, false, false, endpoint::healthz},
    {"/metrics", false, get_only, access::admin, false, true, endpoint::metrics},
    {"/rpc", false, post_only, access::token, false, true, endpoint::rpc},
    {"/ws", false, get_only, access::token, true, true, endpoint::ws},
    {"/mcp", false, post_delete, access::token, false, true, endpoint::mcp},
    {"/ui", true, get_only, access::open, false, true, endpoint::ui},
}};

bool matches(route const& r, std::string_view path) {
    if (path == r.path) return true;
    return r.subtree && path.size() > r.path.size() && path.starts_with(r.path) &&
           path[r.path.size()] == '/';
}

std::string allow_list(route const& r) {
    std::string allow;
    for (auto m : r.methods) {
        if (!allow.empty()) allow += ", ";
        allow += http::to_string(m);
    }
    return allow;
}

// The caller's principal: the Authorization bearer's, else (WebSocket routes, whose browser
// clients cannot set headers) the first offered subprotocol bearer that is known; nullopt when
// no token authenticates. Open routes and auth = none: "local".
std::optional<principal> authenticate(http::request<http::string_body> const& req, route const& r,
                                      server_options const& opts, auth_memo* memo) {
    if (r.auth == access::open || !opts.principals) return principal{};
    auto const authorization = req[http::field::authorization];
    if (auto bearer = bearer_token(authorization); !bearer.empty()) {
        auto const generation = opts.principals->generation();
        if (memo && !memo->authorization.empty() && memo->generation == generation &&
            memo->authorization == authorization)
            return memo->who;
        if (auto who = opts.principals->find(bearer)) {
            if (memo) {
                memo->authorization.assign(authorization.data(), authorization.size());
                memo->who = *who;
                memo->generation = generation;
            }
            return who;
        }
    }
    if (!r.upgrade) return std::nullopt;
    for (auto offered : subprotocol_bearers(req[http::field::sec_websocket_protocol]))
        if (auto who = opts.principals->find(offered)) return who;
    return std::nullopt;
}

// Request smuggling and framing we do not speak: two Host fields, or a transfer coding other
// than a lone `chunked` (Beast would read "gzip" as "no body" and parse the rest as requests).
std::optional<string_response> framing_refusal(http::request<http::string_body> const& req) {
    auto v = req.version();
    if (req.count(http::field::host) > 1)
        return plain(http::status::bad_request, "more than one Host header\n", v);
    if (req.count(http::field::transfer_encoding) > 1)
        return plain(http::status::not_implemented, "unsupported transfer coding\n", v);
    if (auto te = req.find(http::field::transfer_encoding); te != req.end()) {
        auto coding = te->value();
        while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
            coding.remove_prefix(1);
        while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
            coding.remove_suffix(1);
        if (!beast::iequals(coding, "chunked"))
            return plain(http::status::not_implemented, "unsupported transfer coding\n", v);
    }
    return std::nullopt;
}

std::optional<string_response> guard_refusal(http::request<http::string_body> const& req,
                                             route const* r, server_options const& opts) {
    auto v = req.version();
    if (r && !r->check_host_origin) return std::nullopt;
    if (!host_allowed(req[http::field::host], opts.allowed_hosts))
        return plain(http::status::forbidden, "forbidden host\n", v);
    if (auto origin = req[http::field::origin];
        !origin.empty() && !origin_allowed(origin, opts.allowed_origins))
        return plain(http::status::forbidden, "forbidden origin\n", v);
    return std::nullopt;
}

// Method and upgrade: only a WebSocket route upgrades, and it accepts nothing else.
std::optional<string_response> method_refusal(http::request<http::string_body> const& req,
                                              route const& r) {
    auto v = req.version();
    if (std::find(r.methods.begin(), r.methods.end(), req.method()) == r.methods.end()) {
        auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
        res.set(http::field::allow, allow_list(r));
        return res;
    }
    bool wants_upgrade = websocket::is_upgrade(req);
    if (r.upgrade && !wants_upgrade) {
        auto res = plain(http::status::upgrade_required, "websocket upgrade required\n", v);
        res.set(http::field::upgrade, "websocket");
        return res;
    }
    if (!r.upgrade && wants_upgrade)
        return plain(http::status::bad_request, "only /ws accepts a websocket upgrade\n", v);
    return std::nullopt;
}

std::optional<string_response> content_refusal(request_parser const& parser, route const& r,
                                               std::string_view path, server_options const& opts) {
    auto const& req = parser.get();
    auto v = req.version();
    if (r.handler == endpoint::ui && !find_ui_asset(path))
        return plain(http::status::not_found, "not found\n", v);
    if (r.handler != endpoint::rpc) return std::nullopt;
    if (!beast::iequals(media_type(req[http::field::content_type]), "application/json"))
        return plain(http::status::unsupported_media_type,
                     "content type must be application/json\n", v);
    if (auto len = parser.content_length(); len && *len > opts.max_body_bytes) {
        body_limit_log.warn("limit", {{"limit", "max_body_bytes"}, {"status", 413}});
        return plain(http::status::payload_too_large, "body too large\n", v);
    }
    return std::nullopt;
}

admission refused(string_response res) {
    admission a;
    a.refusal = std::move(res);
    return a;
}

}  // namespace

std::span<route const> route_table() {
    return routes;
}

route const* find_route(std::string_view path) {
    for (auto const& r : routes)
        if (matches(r, path)) return &r;
    return nullptr;
}

admission admit(request_parser const& parser, server_options const& opts, auth_memo* memo) {
    auto const& req = parser.get();
    auto v = req.version();
    if (auto bad = framing_refusal(req)) return refused(std::move(*bad));
    auto target = req.target();
    auto path = target.substr(0, target.find('?'));
    auto const* r = find_route(path);
    if (auto bad = guard_refusal(req, r, opts)) return refused(std::move(*bad));
    if (!r) return refused(plain(http::status::not_found, "not found\n", v));
    auto who = authenticate(req, *r, opts, memo);
    if (!who) {
        auto res = plain(http::status::unauthorized, "missing or bad token\n", v);
        res.set(http::field::www_authenticate, "Bearer");
        return refused(std::move(res));
    }
    if (r->auth == access::admin && !who->admin)
        return refused(plain(http::status::forbidden, "an admin token is required\n", v));
    if (auto bad = method_refusal(req, *r)) return refused(std::move(*bad));
    if (auto bad = content_refusal(parser, *r, path, opts)) return refused(std::move(*bad));
    return {r, std::nullopt, r->upgrade, std::move(*who)};
}

void set_common_headers(http::fields& headers, std::string_view content_type) {
    headers.set(http::field::server, "agentd");
    if (!content_type.empty()) headers.set(http::field::content_type, content_type);
    headers.set(http::field::cache_control, "no-store");
}

string_response make_response(http::status status, unsigned version, std::string_view content_type,
                              std::string body) {
    string_response res{status, version};
    set_common_headers(res, content_type);
    res.body() = std::move(body);
    return res;
}

string_response plain(http::status status, std::string body, unsigned version) {
    return make_response(status, version, "text/plain; charset=utf-8", std::move(body));
}

std::string encode_head(string_response const& res) {
    std::string head;
    head.reserve(128);
    head += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    head += std::to_string(res.result_int());
    head += ' ';
    head += res.reason();
    head += "\r\n";
    for (auto const& field : res) {
        head += field.name_string();
        head += ": ";
        head += field.value();
        head += "\r\n";
    }
    head += "\r\n";
    return head;
}

std::string json_ok_head(unsigned version, bool keep_alive, std::size_t content_length) {
    // set_common_headers' fields in their order; then what message::keep_alive() adds (only
    // where the version's default differs) and prepare_payload()'s Content-Length.
    std::string head;
    head.reserve(160);
    head += version == 10 ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.1 200 OK\r\n";
    head += "Server: agentd\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n";
    if (version < 11 && keep_alive) head += "Connection: keep-alive\r\n";
    if (version >= 11 && !keep_alive) head += "Connection: close\r\n";
    head += "Content-Length: ";
    head += std::to_string(content_length);
    head += "\r\n\r\n";
    return head;
}

std::string_view media_type(std::string_view content_type) {
    auto media = content_type.substr(0, content_type.find(';'));
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t'))
        media.remove_prefix(1);
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
    return media;
}

}  // namespace agentd::daemon
