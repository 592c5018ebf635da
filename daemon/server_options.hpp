// What the network front is configured with (listeners, auth, Host/Origin allow-lists, limits,
// deadlines): plain data, so the route table and the fuzz target need neither Asio nor the
// JSON-RPC service to see it.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace agentd::daemon {

class principals;

struct server_options {
    std::vector<std::string> listen;
    // Who each token is (reloaded on SIGHUP); null: auth = none, every caller is "local".
    std::shared_ptr<daemon::principals> principals;
    std::vector<std::string> allowed_hosts;
    std::vector<std::string> allowed_origins;
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_connections = 1024;
    std::chrono::milliseconds read_timeout{30'000};
    std::size_t ws_max_outbox_bytes = 8 << 20;  // unsent WebSocket bytes before disconnecting
    std::chrono::milliseconds ws_idle_timeout{300'000};  // a ping at half, closed at the end
    std::vector<int> inherited_fds;       // systemd socket activation: used instead of `listen`
    std::size_t max_mcp_sessions = 1024;  // per principal
    // A new connection's first request head must come sooner: idle sockets cannot hold slots.
    std::chrono::milliseconds first_request_timeout{5'000};
    // Several instances on one store: MCP session ids start with "INSTANCE." so that a load
    // balancer can route a session to the instance that holds it.
    std::string mcp_session_prefix;
};

}  // namespace agentd::daemon
