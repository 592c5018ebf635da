// The network front: TCP and unix-socket listeners (or those systemd passed) and the connection
// registry (cap, shutdown). Each accepted connection runs in its own coroutine
// (http_session.cpp). Asio and Beast stay out of here.
#pragma once

#include "daemon/rpc.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agentd::daemon {

struct server_options {
    std::vector<std::string> listen;
    std::optional<std::string> token;  // nullopt: auth = none
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
};

class server {
  public:
    server(boost::asio::any_io_executor ex, server_options opts, rpc_service& rpc);
    ~server();
    server(server const&) = delete;
    server& operator=(server const&) = delete;

    // Binds every listener and prints `agentd listening on http://HOST:PORT` (or `unix:PATH`)
    // for each. A unix socket file left by a dead process is replaced; one a live process listens
    // on is an error. Throws std::runtime_error naming the address when one cannot be used.
    void open();
    void start();
    // Stops accepting, closes open connections and removes the unix socket files it created.
    void stop();

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// "127.0.0.1:7077", "[::1]:0" -> host and port; nullopt when malformed.
struct listen_address {
    std::string host;
    unsigned short port = 0;
};
std::optional<listen_address> parse_listen_address(std::string_view s);
bool is_loopback_address(std::string_view host);
// Why a --listen value (HOST:PORT with an IP address, or unix:PATH) is unusable; nullopt if fine.
std::optional<std::string> listen_spec_error(std::string_view spec);

}  // namespace agentd::daemon
