// The serving loop of a fake upstream: the "listening on URL" line tests wait for, then its
// accept loop on the io_context until SIGTERM/SIGINT, a failing accept loop logged and ending
// the run. Header-only: it is a template over the server, and both fakes' server files include
// Asio anyway.
#pragma once

#include <fmt/core.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace fake_common {

// http://127.0.0.1:4096, http://[::1]:4096
inline std::string endpoint_url(std::string_view scheme, boost::asio::ip::tcp::endpoint at) {
    auto address = at.address().to_string();
    if (at.address().is_v6()) address = "[" + address + "]";
    return fmt::format("{}://{}:{}", scheme, address, at.port());
}

// Server: `void stop()` (closes the acceptor and every connection) and
// `boost::asio::awaitable<void> accept_loop()`. Returns the exit status.
template <class Server>
int serve_until_signal(boost::asio::io_context& ioc, Server& srv, std::string_view name,
                       std::string_view url) {
    fmt::print(stderr, "{} listening on {}\n", name, url);
    std::fflush(stderr);
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) srv.stop();
    });
    boost::asio::co_spawn(ioc, srv.accept_loop(), [&](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (std::exception const& x) {
            fmt::print(stderr, "{}: accept loop failed: {}\n", name, x.what());
        }
        signals.cancel();
        srv.stop();
    });
    ioc.run();
    return 0;
}

}  // namespace fake_common
