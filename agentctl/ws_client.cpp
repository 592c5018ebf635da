// The /ws session behind `agentctl watch` and the live wait display: a reader coroutine (connect,
// handshake, opening requests, then every message) and a ticker coroutine on one io_context. The
// session ends by closing the socket, which completes the pending read at once.
#include "ws_client.hpp"

#include "exit_codes.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace agentctl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// "/rpc" -> "/ws", keeping a reverse proxy's prefix.
std::string ws_target(endpoint const& to) {
    auto base = to.target.substr(0, to.target.rfind('/'));
    return base + "/ws";
}

template <class Protocol>
struct session {
    session(asio::io_context& io, ws_handler& h, std::chrono::milliseconds t)
        : ws(io), timer(io), handler(h), tick(t) {}

    websocket::stream<beast::basic_stream<Protocol>> ws;
    asio::steady_timer timer;
    ws_handler& handler;
    std::chrono::milliseconds tick;
    bool done = false;
    std::exception_ptr error;

    void finish() {
        if (done) return;
        done = true;
        timer.cancel();
        beast::get_lowest_layer(ws).close();
    }

    // Records the first failure of either coroutine and ends the session.
    void fail(std::exception_ptr e) {
        if (e && !error) error = e;
        finish();
    }

    asio::awaitable<void> send_all(std::vector<std::string> const& messages) {
        for (auto const& m : messages) {
            auto [ec, n] = co_await ws.async_write(asio::buffer(m), use_tuple);
            if (ec && !done) throw transport_error("cannot send: " + ec.message());
        }
    }

    asio::awaitable<void> ticker() {
        while (!done) {
            timer.expires_after(tick);
            [[maybe_unused]] auto [ec] = co_await timer.async_wait(use_tuple);
            if (!done && !handler.on_tick()) finish();
        }
    }
};

template <class Protocol, class Destination>
asio::awaitable<void> connect(session<Protocol>& s, Destination destination, endpoint const& to,
                              std::optional<std::string> bearer,
                              std::chrono::milliseconds deadline) {
    auto& lowest = beast::get_lowest_layer(s.ws);
    lowest.expires_after(deadline);
    auto connected = co_await lowest.async_connect(destination, use_tuple);
    if (auto ec = std::get<0>(connected))
        throw transport_error(ec == beast::error::timeout ? "no answer within the deadline"
                                                          : "cannot connect: " + ec.message());
    s.ws.set_option(websocket::stream_base::decorator([bearer](websocket::request_type& req) {
        req.set(beast::http::field::user_agent, "agentctl");
        if (bearer) req.set(beast::http::field::authorization, "Bearer " + *bearer);
    }));
    websocket::response_type res;
    auto [hec] = co_await s.ws.async_handshake(res, to.host_header, ws_target(to), use_tuple);
    if (hec && res.result_int() != 0 && res.result_int() != 101)
        throw transport_error(fmt::format("HTTP {} {}", res.result_int(), res.reason()));
    if (hec) throw transport_error("WebSocket handshake failed: " + hec.message());
    lowest.expires_never();
    s.ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
}

template <class Protocol, class Destination>
asio::awaitable<void> reader(session<Protocol>& s, Destination destination, endpoint const& to,
                             std::optional<std::string> bearer,
                             std::chrono::milliseconds deadline) {
    co_await connect(s, std::move(destination), to, std::move(bearer), deadline);
    auto opening = s.handler.opening();  // named: no temporaries around co_await (GCC 12)
    co_await s.send_all(opening);
    asio::co_spawn(s.ws.get_executor(), s.ticker(), [&s](std::exception_ptr e) { s.fail(e); });
    beast::flat_buffer buffer;
    while (!s.done) {
        auto [ec, n] = co_await s.ws.async_read(buffer, use_tuple);
        if (s.done) break;
        if (ec) throw transport_error("agentd closed the WebSocket: " + ec.message());
        auto text = beast::buffers_to_string(buffer.data());
        buffer.consume(n);
        if (!s.handler.on_message(text)) s.finish();
    }
}

template <class Protocol, class Destination>
void run(Destination destination, endpoint const& to, std::optional<std::string> const& bearer,
         std::chrono::milliseconds deadline, std::chrono::milliseconds tick, ws_handler& handler,
         asio::io_context& io) {
    session<Protocol> s(io, handler, tick);
    asio::co_spawn(io, reader(s, std::move(destination), to, bearer, deadline),
                   [&s](std::exception_ptr e) { s.fail(e); });
    io.run();
    if (s.error) std::rethrow_exception(s.error);
}

}  // namespace

void run_ws(endpoint const& to, std::optional<std::string> const& bearer,
            std::chrono::milliseconds connect_deadline, std::chrono::milliseconds tick,
            ws_handler& handler) {
    asio::io_context io(1);
    if (to.is_unix()) {
        run<asio::local::stream_protocol>(asio::local::stream_protocol::endpoint(to.socket_path),
                                          to, bearer, connect_deadline, tick, handler, io);
        return;
    }
    beast::error_code ec;
    auto addresses = asio::ip::tcp::resolver(io).resolve(to.host, to.port, ec);
    if (ec) throw transport_error(fmt::format("cannot resolve {}: {}", to.host, ec.message()));
    run<asio::ip::tcp>(std::move(addresses), to, bearer, connect_deadline, tick, handler, io);
}

}  // namespace agentctl
