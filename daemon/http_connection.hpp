// One HTTP connection: the coroutine that owns the socket, reads requests under a deadline,
// admits each through the route table (routes.hpp) and serves /rpc, /ws, /mcp, /metrics,
// /healthz and /ui. Included by server.cpp only.
#pragma once

#include "daemon/mcp_sessions.hpp"
#include "daemon/rpc.hpp"
#include "daemon/server.hpp"
#include "daemon/task_group.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>

#include <functional>
#include <list>
#include <memory>

namespace agentd::daemon {

// TCP and unix-socket connections share one stream type (both kinds of socket convert to a
// generic stream socket), so the sessions are compiled once rather than once per protocol.
using http_socket = boost::asio::generic::stream_protocol::socket;
using http_stream = boost::beast::basic_stream<boost::asio::generic::stream_protocol>;

struct http_context {
    server_options opts;
    rpc_service& rpc;
    // The open connections' coroutines: their count is the connection cap, and shutdown stops,
    // joins and cancels them.
    task_group connections;
    mcp_sessions mcp;  // the sessions of /mcp
    // Closers of the connections that have not sent a whole request head yet, oldest first. At
    // the cap the accept loop closes the oldest to make room: silent sockets cannot lock clients
    // out, since a real client sends its request as soon as it connects. A closer returns false,
    // closing nothing, when the client's bytes are already waiting to be read.
    std::list<std::function<bool()>> silent;
};

// Closes the oldest connection of `ctx.silent` that really is silent; false when none is.
bool evict_silent(http_context& ctx);

// `reserve_slot`: the connection was accepted past max_connections, into the few slots kept for
// /healthz and /metrics; anything else gets 503, and the connection closes after one answer.
boost::asio::awaitable<void> serve_http(http_socket socket, std::shared_ptr<http_context> ctx,
                                        bool reserve_slot);

}  // namespace agentd::daemon
