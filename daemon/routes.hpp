// The route table of the HTTP front (DESIGN §2, §6): every path agentd answers, its methods,
// whether it needs the token and whether it may become a WebSocket; the one function that
// decides from a request head alone what happens to it; and the helpers every response uses.
// Included by the HTTP session code only (Beast stays out of widely included headers).
#pragma once

#include "daemon/principals.hpp"
#include "daemon/request_reader.hpp"
#include "daemon/server_options.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace agentd::daemon {

using string_response = boost::beast::http::response<boost::beast::http::string_body>;

enum class endpoint { healthz, metrics, rpc, ws, mcp, ui };
// open: no token; token: any principal's; admin: an admin principal's (others get 403).
enum class access { open, token, admin };

struct route {
    std::string_view path;
    bool subtree;  // also every path under `path/`
    std::span<boost::beast::http::verb const> methods;
    access auth;
    bool upgrade;  // a WebSocket endpoint: it requires the upgrade, and no other path allows one
    bool check_host_origin;  // DNS-rebinding guard; only /healthz (no data) goes without it
    endpoint handler;
};

std::span<route const> route_table();
// The route serving `path` (no query), or nullptr.
route const* find_route(std::string_view path);

struct admission {
    route const* match = nullptr;            // the route to run when there is no refusal
    std::optional<string_response> refusal;  // 400/401/403/404/405/413/415/426/501
    bool upgrade = false;                    // hand the connection to the WebSocket session
    principal who;  // the token's principal ("local" with auth = none and on open routes)
};

// The token that last authenticated on a connection and its principal: a keep-alive client sends
// the same Authorization header with every request, and hashing it again (SHA-256, principals'
// find) was a tenth of an agents_status request's instructions. Only a success is remembered,
// and a reload of the tokens file (principals::generation) makes it stale.
struct auth_memo {
    std::string authorization;  // the whole header as sent; empty: nothing remembered
    principal who;
    std::uint64_t generation = 0;
};

// Decides from the head alone: framing errors, Host/Origin, token and principal, method, upgrade,
// and for /rpc the media type and declared length. /mcp's own header rules follow in screen_mcp.
// `memo`: the connection's (nullptr: none, every token is hashed).
admission admit(request_parser const& parser, server_options const& opts,
                auth_memo* memo = nullptr);

// The headers every response carries (Server, Cache-Control, and Content-Type when given); also
// for the heads that are not a string_response (the MCP event stream, the WebSocket 101).
void set_common_headers(boost::beast::http::fields& headers, std::string_view content_type = {});
// Every response starts here: status, version, and the headers all responses carry.
string_response make_response(boost::beast::http::status status, unsigned version,
                              std::string_view content_type, std::string body);
string_response plain(boost::beast::http::status status, std::string body, unsigned version);

// The head of a response as HTTP/1.x text. Beast's serializer is built for every kind of body
// (chunked, buffered, written in parts) and took a fifth of the instructions of a small request;
// a string body is complete, so head and body leave in one gathered write.
std::string encode_head(string_response const& res);
// The head encode_head() gives a 200 application/json response of make_response() after
// keep_alive(keep_alive) and prepare_payload(), byte for byte, without building its fields (their
// allocations were a tenth of an agents_status request's).
std::string json_ok_head(unsigned version, bool keep_alive, std::size_t content_length);

// "application/json; charset=utf-8" -> "application/json" (blanks trimmed, case kept).
std::string_view media_type(std::string_view content_type);

}  // namespace agentd::daemon
