// The network front: TCP listeners and the connection registry (cap, shutdown). Each accepted
// connection runs in its own coroutine (http_session.cpp). Asio and Beast stay out of here.
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
};

class server {
  public:
    server(boost::asio::any_io_executor ex, server_options opts, rpc_service& rpc);
    ~server();
    server(server const&) = delete;
    server& operator=(server const&) = delete;

    // Binds every listener and prints `agentd listening on http://HOST:PORT` for each. Throws
    // std::runtime_error naming the address when one cannot be used.
    void open();
    void start();
    // Stops accepting and closes open connections.
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

}  // namespace agentd::daemon
