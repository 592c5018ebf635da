// Beast side of the test HTTP clients. Each object owns a private io_context and drives it to
// completion per call, which gives real deadlines (tcp_stream::expires_after) behind a plain
// synchronous API.
#include "http_client.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <exception>

namespace agentd::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using request_t = http::request<http::string_body>;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

tcp::endpoint loopback(unsigned short port) {
    return {asio::ip::address_v4::loopback(), port};
}

http_error::kind classify(beast::error_code const& ec) {
    if (ec == beast::error::timeout) return http_error::kind::timeout;
    if (ec == http::error::end_of_stream || ec == asio::error::eof) return http_error::kind::closed;
    if (ec == http::error::partial_message) return http_error::kind::partial;
    if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
        return http_error::kind::reset;
    }
    return http_error::kind::other;
}

[[noreturn]] void fail(beast::error_code const& ec, std::string_view step) {
    auto k = classify(ec);
    throw http_error(k, fmt::format("http {} failed ({}): {}", step, to_string(k), ec.message()));
}

// Runs one coroutine on the object's private io_context until it is done.
template <typename T>
T run_sync(asio::io_context& ioc, asio::awaitable<T> op) {
    std::exception_ptr error;
    std::optional<T> result;
    ioc.restart();
    asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) result = std::move(value);
    });
    ioc.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

request_t build_request(unsigned short port, std::string const& method, std::string target,
                        std::string body, http_headers const& headers) {
    request_t req;
    if (auto verb = http::string_to_verb(method); verb != http::verb::unknown) {
        req.method(verb);
    } else {
        req.method_string(method);
    }
    req.target(target);
    req.version(11);
    req.set(http::field::host, fmt::format("127.0.0.1:{}", port));
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    // After prepare_payload, so an explicit Content-Length or Transfer-Encoding from a test
    // (say, a deliberately wrong one) is sent as given.
    for (auto const& [name, value] : headers) {
        if (value.empty()) {
            req.erase(name);
        } else {
            req.set(name, value);
        }
    }
    return req;
}

http_response convert(http::response<http::string_body>&& res) {
    http_response out;
    out.status = static_cast<int>(res.result_int());
    for (auto const& field : res) {
        auto name = lower(field.name_string());
        auto [it, fresh] = out.headers.emplace(name, std::string(field.value()));
        if (!fresh) it->second += ", " + std::string(field.value());
    }
    out.body = std::move(res.body());
    return out;
}

}  // namespace

std::string_view to_string(http_error::kind k) {
    switch (k) {
        case http_error::kind::timeout:
            return "timeout";
        case http_error::kind::connect:
            return "connect";
        case http_error::kind::closed:
            return "closed";
        case http_error::kind::reset:
            return "reset";
        case http_error::kind::partial:
            return "partial";
        case http_error::kind::other:
            break;
    }
    return "other";
}

std::string http_response::header(std::string_view name) const {
    auto it = headers.find(lower(name));
    return it == headers.end() ? std::string() : it->second;
}

// ---------------------------------------------------------------------------------------------
// http_connection

struct http_connection::impl {
    explicit impl(unsigned short p) : port(p), stream(ioc) {}

    void close() {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        buffer.clear();
        open = false;
    }

    asio::awaitable<http_response> exchange(request_t req, std::chrono::milliseconds timeout) {
        stream.expires_after(timeout);
        if (!open) {
            auto [ec] = co_await stream.async_connect(loopback(port), use_tuple);
            if (ec) {
                close();
                auto k = ec == beast::error::timeout ? http_error::kind::timeout
                                                     : http_error::kind::connect;
                throw http_error(
                    k, fmt::format("http connect to 127.0.0.1:{} failed: {}", port, ec.message()));
            }
            open = true;
        }
        if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
            close();
            fail(ec, "write");
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(std::uint64_t{1} << 32);
        if (req.method() == http::verb::head) parser.skip(true);
        if (auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple); ec) {
            close();
            fail(ec, "read");
        }
        stream.expires_never();
        auto res = parser.release();
        if (!res.keep_alive()) close();
        co_return convert(std::move(res));
    }

    unsigned short port;
    asio::io_context ioc;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bool open = false;
};

http_connection::http_connection(unsigned short port) : impl_(std::make_unique<impl>(port)) {}
http_connection::http_connection(http_connection&&) noexcept = default;
http_connection& http_connection::operator=(http_connection&&) noexcept = default;
http_connection::~http_connection() = default;

http_response http_connection::request(std::string method, std::string target, std::string body,
                                       http_headers headers, std::chrono::milliseconds timeout) {
    auto req = build_request(impl_->port, method, std::move(target), std::move(body), headers);
    return run_sync(impl_->ioc, impl_->exchange(std::move(req), timeout));
}

bool http_connection::is_open() const {
    return impl_->open && impl_->stream.socket().is_open();
}

void http_connection::close() {
    impl_->close();
}

http_response http_request(unsigned short port, std::string method, std::string target,
                           std::string body, http_headers headers,
                           std::chrono::milliseconds timeout) {
    http_connection c(port);
    return c.request(std::move(method), std::move(target), std::move(body), std::move(headers),
                     timeout);
}

// ---------------------------------------------------------------------------------------------
// raw_exchange

std::string raw_exchange(unsigned short port, std::string bytes,
                         std::chrono::milliseconds timeout) {
    asio::io_context ioc;
    auto op = [&]() -> asio::awaitable<std::string> {
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        if (auto [ec] = co_await stream.async_connect(loopback(port), use_tuple); ec) {
            throw http_error(
                http_error::kind::connect,
                fmt::format("raw connect to 127.0.0.1:{} failed: {}", port, ec.message()));
        }
        // A server may close before reading everything; what it answered is still of interest.
        [[maybe_unused]] auto [wec, wn] =
            co_await asio::async_write(stream, asio::buffer(bytes), use_tuple);
        std::string received;
        char chunk[4096];
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), use_tuple);
            received.append(chunk, n);
            if (ec) break;
        }
        co_return received;
    };
    return run_sync(ioc, op());
}

// ---------------------------------------------------------------------------------------------
// sse_connection

struct sse_connection::impl {
    asio::awaitable<void> open(unsigned short port, request_t req,
                               std::chrono::milliseconds timeout) {
        stream.expires_after(timeout);
        if (auto [ec] = co_await stream.async_connect(loopback(port), use_tuple); ec) {
            auto k =
                ec == beast::error::timeout ? http_error::kind::timeout : http_error::kind::connect;
            throw http_error(
                k, fmt::format("sse connect to 127.0.0.1:{} failed: {}", port, ec.message()));
        }
        if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
            fail(ec, "sse write");
        }
        if (auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
            ec) {
            fail(ec, "sse read header");
        }
        stream.expires_never();
    }

    // One read with its own deadline: a timer cancels the read instead of tcp_stream's expiry,
    // which would close the stream, so a quiet period does not end the subscription.
    beast::error_code read_some(std::chrono::steady_clock::duration limit, bool& timed_out) {
        timed_out = false;
        beast::error_code result;
        asio::steady_timer timer(ioc, limit);
        timer.async_wait([&](beast::error_code ec) {
            if (ec) return;
            timed_out = true;
            stream.socket().cancel();
        });
        http::async_read_some(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
            result = ec;
            timer.cancel();
        });
        ioc.restart();
        ioc.run();
        // The body reader appends at the body's current end, so taking the text out between
        // reads is safe and keeps memory flat on long streams.
        auto& body = parser.get().body();
        std::erase(body, '\r');
        pending += body;
        body.clear();
        return result;
    }

    std::optional<std::string> pop_event() {
        for (;;) {
            auto end = pending.find("\n\n", scan_from);
            if (end == std::string::npos) {
                // Resume where this search stopped: a multi-megabyte event arrives in many
                // reads, and rescanning from the start each time would be quadratic.
                scan_from = pending.empty() ? 0 : pending.size() - 1;
                return std::nullopt;
            }
            scan_from = 0;
            std::string_view frame(pending.data(), end);
            std::optional<std::string> data;
            std::size_t pos = 0;
            while (pos <= frame.size()) {
                auto eol = frame.find('\n', pos);
                if (eol == std::string_view::npos) eol = frame.size();
                auto line = frame.substr(pos, eol - pos);
                if (line.starts_with("data:")) {
                    line.remove_prefix(5);
                    if (line.starts_with(' ')) line.remove_prefix(1);
                    if (data) {
                        *data += '\n';
                    } else {
                        data.emplace();
                    }
                    data->append(line);
                }
                pos = eol + 1;
            }
            pending.erase(0, end + 2);
            if (data) return data;
        }
    }

    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    std::string pending;
    std::size_t scan_from = 0;
    std::map<std::string, std::string> headers;
    int status = 0;
    bool ended = false;
};

sse_connection::sse_connection(unsigned short port, std::string target, http_headers headers,
                               std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
    impl_->parser.body_limit(boost::none);
    headers.insert(headers.begin(), {"Accept", "text/event-stream"});
    auto req = build_request(port, "GET", std::move(target), {}, headers);
    run_sync(impl_->ioc, [&]() -> asio::awaitable<int> {
        co_await impl_->open(port, std::move(req), timeout);
        co_return 0;
    }());
    auto const& res = impl_->parser.get();
    impl_->status = static_cast<int>(res.result_int());
    for (auto const& field : res) {
        impl_->headers[lower(field.name_string())] = std::string(field.value());
    }
}

sse_connection::sse_connection(sse_connection&&) noexcept = default;
sse_connection& sse_connection::operator=(sse_connection&&) noexcept = default;
sse_connection::~sse_connection() = default;

int sse_connection::status() const {
    return impl_->status;
}

std::map<std::string, std::string> const& sse_connection::headers() const {
    return impl_->headers;
}

std::optional<std::string> sse_connection::next_data(std::chrono::milliseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto data = impl_->pop_event()) return data;
        if (impl_->ended) throw http_error(http_error::kind::closed, "event stream ended");
        auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::steady_clock::duration::zero()) return std::nullopt;
        bool timed_out = false;
        auto ec = impl_->read_some(left, timed_out);
        if (!ec && impl_->parser.is_done()) impl_->ended = true;
        if (ec && !(timed_out && ec == asio::error::operation_aborted)) impl_->ended = true;
    }
}

void sse_connection::close() {
    beast::error_code ignored;
    impl_->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    impl_->stream.close();
    impl_->ended = true;
}

}  // namespace agentd::test
