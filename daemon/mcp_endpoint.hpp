// The MCP endpoint `/mcp` (Streamable HTTP): header guards before the body is read, then one
// POST or DELETE answered as JSON or, for agents_wait with a progress token or from a client
// that takes elicitations, as an SSE stream.
// Included by http_connection.cpp only, after its Host/Origin and token guards.
#pragma once

#include "daemon/http_connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace agentd::daemon {

// The refusal of a /mcp request before its body is read (405, 400 for an unsupported
// MCP-Protocol-Version or a bad Agentd-Session, 406, 415, 413); nullopt when it may proceed.
std::optional<boost::beast::http::response<boost::beast::http::string_body>> screen_mcp(
    boost::beast::http::request_parser<boost::beast::http::string_body> const& parser,
    http_context const& ctx);

// Answers one /mcp request of `principal` (the token's) whose body has been read, writing the
// response itself. A session belongs to the principal that opened it. False when the connection
// must close.
boost::asio::awaitable<bool> serve_mcp(
    http_stream& stream, boost::beast::http::request<boost::beast::http::string_body> const& req,
    std::string principal, http_context& ctx);

}  // namespace agentd::daemon
