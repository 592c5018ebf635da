// The network front: TCP and unix-socket listeners (or those systemd passed) and the connection
// registry (cap, shutdown). Each accepted connection runs in its own coroutine
// (http_connection.cpp). Asio and Beast stay out of here.
#pragma once

#include "daemon/rpc.hpp"
#include "daemon/server_options.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::daemon {

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
    // Stops accepting, asks the open connections to stop (idle ones close, busy ones answer
    // first) and removes the unix socket files it created.
    void stop();
    // After stop(): until every connection has ended, at most `bound`; the rest are cancelled.
    boost::asio::awaitable<void> join(std::chrono::milliseconds bound);

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
// Why a --listen value (HOST:PORT with an IP address, or unix:PATH) is unusable; nullopt if fine.
std::optional<std::string> listen_spec_error(std::string_view spec);

}  // namespace agentd::daemon
