// One HTTP connection: the coroutine that owns the socket, reads requests under a deadline,
// applies the Host/Origin/token guards and routes /rpc, /ws, /mcp and /healthz. Included by
// server.cpp only.
#pragma once

#include "daemon/mcp_registry.hpp"
#include "daemon/rpc.hpp"
#include "daemon/server.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <list>
#include <memory>

namespace agentd::daemon {

struct http_context {
    server_options opts;
    rpc_service& rpc;
    // One closer per open connection: its count is the connection cap, and stop() calls them.
    std::list<std::function<void()>> connections;
    mcp_registry mcp;  // the sessions of /mcp
};

boost::asio::awaitable<void> serve_http(boost::asio::ip::tcp::socket socket,
                                        std::shared_ptr<http_context> ctx);

}  // namespace agentd::daemon
