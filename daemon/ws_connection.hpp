// One WebSocket connection on /ws: JSON-RPC both ways over the upgraded stream. Included only by
// http_connection.cpp, which hands the stream over after the upgrade request passed its guards.
#pragma once

#include "daemon/http_connection.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>
#include <string>

namespace agentd::daemon {

// `principal`: the token's (the route table authenticated the upgrade request). The connection
// closes when a reload revokes that principal's token.
boost::asio::awaitable<void> serve_ws(
    http_stream stream, boost::beast::http::request<boost::beast::http::string_body> req,
    std::string principal, std::shared_ptr<http_context> ctx, std::function<void()>& stop,
    std::function<void()>& abort);

}  // namespace agentd::daemon
