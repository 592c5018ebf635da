// ws_client implementation: one io thread owns the stream and keeps a read pending; received
// messages queue up for receive(), and send() is posted to the io thread, so a receive that
// times out leaves the connection usable.
#include "ws_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace agentd::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct ws_client::impl {
    asio::io_context ioc;
    // Keeps the io thread alive while no read is pending (a paused client).
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    websocket::stream<beast::tcp_stream> ws{ioc};
    beast::flat_buffer buffer;
    std::thread io;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> inbox;
    bool closed = false;
    int pings = 0;
    std::size_t flooded = 0;  // frames flood() has written
    bool flood_failed = false;

    // One frame after the other from the io thread, so the loop outlives a flood() that gave up.
    void flood_next(std::shared_ptr<std::string const> text, std::size_t left) {
        if (left == 0) return;
        ws.text(true);
        ws.async_write(asio::buffer(*text), [this, text, left](beast::error_code ec, std::size_t) {
            std::lock_guard lock(mu);
            if (ec) {
                flood_failed = true;
            } else {
                ++flooded;
            }
            cv.notify_all();
            if (!ec) flood_next(text, left - 1);
        });
    }

    void read_next() {
        ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
            std::lock_guard lock(mu);
            if (ec) {
                closed = true;
            } else {
                inbox.push_back(beast::buffers_to_string(buffer.data()));
                buffer.consume(buffer.size());
            }
            cv.notify_all();
            if (!ec) read_next();
        });
    }
};

ws_client::ws_client(unsigned short port, std::vector<std::pair<std::string, std::string>> headers,
                     std::string target, read_mode mode)
    : impl_(std::make_unique<impl>()) {
    auto& ws = impl_->ws;
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(5));
    beast::get_lowest_layer(ws).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
        for (auto const& [k, v] : headers) req.set(k, v);
    }));
    websocket::response_type res;
    beast::error_code ec;
    ws.handshake(res, "127.0.0.1:" + std::to_string(port), target, ec);
    if (ec) throw std::runtime_error("upgrade refused: " + std::to_string(res.result_int()));
    beast::get_lowest_layer(ws).expires_never();
    ws.control_callback([this](websocket::frame_type kind, beast::string_view) {
        std::lock_guard lock(impl_->mu);
        if (kind == websocket::frame_type::ping) ++impl_->pings;
    });
    if (mode == read_mode::eager) impl_->read_next();
    impl_->io = std::thread([this] { impl_->ioc.run(); });
}

ws_client::~ws_client() {
    asio::post(impl_->ioc, [this] {
        beast::get_lowest_layer(impl_->ws).close();
        impl_->work.reset();
    });
    impl_->io.join();
}

void ws_client::send(std::string const& text) {
    std::promise<beast::error_code> sent;
    asio::post(impl_->ioc, [&] {
        impl_->ws.text(true);
        impl_->ws.async_write(asio::buffer(text),
                              [&](beast::error_code ec, std::size_t) { sent.set_value(ec); });
    });
    auto future = sent.get_future();
    if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
        throw std::runtime_error("websocket write timed out");
    if (auto ec = future.get()) throw std::runtime_error("websocket write failed: " + ec.message());
}

std::size_t ws_client::flood(std::string text, std::size_t count, std::chrono::milliseconds stall) {
    auto shared = std::make_shared<std::string const>(std::move(text));
    std::size_t before = 0;
    {
        std::lock_guard lock(impl_->mu);
        before = impl_->flooded;
    }
    asio::post(impl_->ioc, [this, shared, count] { impl_->flood_next(shared, count); });
    std::unique_lock lock(impl_->mu);
    for (;;) {
        auto seen = impl_->flooded;
        bool moved = impl_->cv.wait_for(lock, stall, [&] {
            return impl_->flooded != seen || impl_->flood_failed ||
                   impl_->flooded - before == count;
        });
        if (!moved || impl_->flood_failed || impl_->flooded - before == count)
            return impl_->flooded - before;
    }
}

std::optional<std::string> ws_client::receive(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait_for(lock, timeout, [&] { return !impl_->inbox.empty() || impl_->closed; });
    if (impl_->inbox.empty()) return std::nullopt;
    auto text = std::move(impl_->inbox.front());
    impl_->inbox.pop_front();
    return text;
}

void ws_client::resume_reading() {
    asio::post(impl_->ioc, [this] { impl_->read_next(); });
}

std::optional<std::size_t> ws_client::drain_until_closed(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t n = 0;
    std::unique_lock lock(impl_->mu);
    for (;;) {
        impl_->cv.wait_until(lock, deadline,
                             [&] { return !impl_->inbox.empty() || impl_->closed; });
        n += impl_->inbox.size();
        impl_->inbox.clear();
        if (impl_->closed) return n;
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
}

int ws_client::pings() const {
    std::lock_guard lock(impl_->mu);
    return impl_->pings;
}

int ws_upgrade_status(unsigned short port,
                      std::vector<std::pair<std::string, std::string>> headers) {
    try {
        ws_client c(port, std::move(headers));
        return 101;
    } catch (std::runtime_error const& e) {
        std::string what = e.what();
        return std::stoi(what.substr(what.rfind(' ') + 1));
    }
}

}  // namespace agentd::test
