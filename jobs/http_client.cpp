// Implementation of the upstream HTTP pool: idle keep-alive streams are reused after a check
// (idle age, and a peek that finds no EOF or stray bytes); a request is re-sent on a fresh
// connection only when it is a GET: a POST (session, prompt) may have reached the upstream even
// when the connection failed at once, and re-sending it would run the prompt twice. Replies are
// read through a bounded buffer (jobs/bounded_read.hpp).
#include "jobs/http_client.hpp"

#include "jobs/bounded_read.hpp"
#include "jobs/endpoints.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/throw_exception.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <vector>

namespace agentd::jobs {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// For an operation that may stay pending for a job's whole run (the reply to a prompt): awaited
// as a deferred operation it needs no coroutine frame of its own, which use_awaitable's
// initiation allocates (~300 B per running job).
constexpr auto deferred_tuple = asio::as_tuple(asio::deferred);

void throw_exception_from_error(http_failure const& e, boost::source_location const& loc) {
    boost::throw_exception(std::runtime_error("http failure: " + e.message), loc);
}

std::string url_encode(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/')
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

// A keep-alive stream waiting for its next request, and since when.
struct pooled {
    std::unique_ptr<beast::tcp_stream> stream;
    std::chrono::steady_clock::time_point since;
};

// Upstreams close idle keep-alive connections after a few seconds (Node 5 s); one older than
// this may be closed by the server just as a request goes out on it, so it is not reused.
constexpr auto max_idle_age = std::chrono::seconds(2);

struct http_pool::impl {
    asio::any_io_executor ex;
    common::url target;
    std::optional<std::string> auth;
    std::size_t max_idle;
    std::vector<pooled> idle;  // oldest first
    // Closes idle streams once too old to reuse, so a burst's connections do not stay open
    // (half-closed by the server) until the next request; armed while any is idle.
    asio::steady_timer sweeper{ex};
    bool sweeping = false;
    // Expires with the pool: a sweep whose wait completed just as the pool went checks it.
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);

    // The newest idle stream that is still usable; stale ones are closed on the way.
    std::unique_ptr<beast::tcp_stream> take_idle();
    void park(std::unique_ptr<beast::tcp_stream> stream);
    void close_stale(std::chrono::steady_clock::time_point now);
    void sweep_later();
};

http_pool::http_pool(asio::any_io_executor ex, common::url o, std::optional<std::string> basic_auth,
                     std::size_t max_idle)
    : impl_(std::make_unique<impl>(std::move(ex), std::move(o), std::move(basic_auth), max_idle)) {}

http_pool::~http_pool() = default;

common::url const& http_pool::target() const {
    return impl_->target;
}
void http_pool::close_idle() {
    impl_->idle.clear();
    impl_->sweeper.cancel();
}

namespace {

// A pooled stream is usable when the server has neither closed it (EOF, reset) nor sent bytes
// nobody asked for: a non-blocking peek finds nothing to read.
bool still_open(beast::tcp_stream& s) {
    char byte;
    auto n = ::recv(s.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<beast::tcp_stream> http_pool::impl::take_idle() {
    close_stale(std::chrono::steady_clock::now());
    while (!idle.empty()) {
        auto p = std::move(idle.back());
        idle.pop_back();
        if (still_open(*p.stream)) return std::move(p.stream);
    }
    return nullptr;
}

void http_pool::impl::park(std::unique_ptr<beast::tcp_stream> stream) {
    auto const now = std::chrono::steady_clock::now();
    close_stale(now);
    if (idle.size() >= max_idle) return;
    stream->expires_never();
    idle.push_back({std::move(stream), now});
    sweep_later();
}

void http_pool::impl::close_stale(std::chrono::steady_clock::time_point now) {
    auto fresh = std::find_if(idle.begin(), idle.end(),
                              [&](pooled const& p) { return now - p.since < max_idle_age; });
    idle.erase(idle.begin(), fresh);
}

void http_pool::impl::sweep_later() {
    if (sweeping || idle.empty()) return;
    sweeping = true;
    sweeper.expires_at(idle.front().since + max_idle_age);
    sweeper.async_wait([this, alive = std::weak_ptr<bool>(alive)](beast::error_code) {
        if (alive.expired()) return;
        sweeping = false;
        close_stale(std::chrono::steady_clock::now());
        sweep_later();
    });
}

namespace {

http_failure classify(beast::error_code ec, upstream::call_control* ctl, bool connecting) {
    if (ctl && ctl->stopped() != upstream::stop_reason::none)
        return {http_failure::kind::stopped, "stopped"};
    if (ec == beast::error::timeout) return {http_failure::kind::timeout, "deadline exceeded"};
    if (reply_too_large(ec)) return {http_failure::kind::too_large, "response too large"};
    if (connecting) return {http_failure::kind::connect, "connect: " + ec.message()};
    return {http_failure::kind::transport, ec.message()};
}

// Reads one whole reply through a buffer of at most read_buffer_bytes, counting its framing
// (bounded_read.hpp); returns the error and whether any byte of the reply arrived.
asio::awaitable<std::pair<beast::error_code, bool>> read_reply(
    beast::tcp_stream& stream, http::response_parser<http::string_body>& parser) {
    beast::flat_buffer buf(read_buffer_bytes);
    framing_meter meter;
    while (!parser.is_done()) {
        auto const body_before = parser.is_header_done() ? parser.get().body().size() : 0;
        auto [ec, n] = co_await http::async_read_some(stream, buf, parser, deferred_tuple);
        if (ec) co_return std::pair{ec, parser.got_some() || n > 0};
        auto const body_after = parser.is_header_done() ? parser.get().body().size() : 0;
        if (!meter.add(n, body_after - body_before))
            co_return std::pair{beast::error_code(http::error::buffer_overflow), true};
    }
    co_return std::pair{beast::error_code{}, true};
}

// Resolves and connects a new stream. A coroutine of its own so that the resolver and its results
// are not kept in request()'s frame while a running job waits for its reply.
asio::awaitable<beast::error_code> open_stream(beast::tcp_stream& stream, asio::any_io_executor ex,
                                               std::string const& host, std::string const& port) {
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await endpoints_of(resolver, host, port);
    if (rec) co_return rec;
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    if (cec) co_return cec;
    beast::error_code ignored;  // a request's head and body may go out as two writes
    stream.socket().set_option(tcp::no_delay(true), ignored);
    co_return beast::error_code{};
}

}  // namespace

asio::awaitable<http_result> http_pool::request(http_request req) {
    auto& p = *impl_;
    http::request<http::string_body> msg{http::string_to_verb(req.method),
                                         p.target.base_path + req.target, 11};
    msg.set(http::field::host, p.target.host_header());
    msg.set(http::field::accept, "application/json");
    if (p.auth) msg.set(http::field::authorization, *p.auth);
    if (!req.body.empty() || msg.method() == http::verb::post) {
        msg.set(http::field::content_type, "application/json");
        msg.body() = std::move(req.body);
    }
    msg.keep_alive(true);
    msg.prepare_payload();

    // Only a GET may be sent twice: see the comment at the top.
    bool const may_resend = msg.method() == http::verb::get;
    for (int round = 0;; ++round) {
        if (req.control && req.control->stopped() != upstream::stop_reason::none)
            co_return http_failure{http_failure::kind::stopped, "stopped"};
        auto stream = round == 0 ? p.take_idle() : nullptr;
        bool const reused = stream != nullptr;
        if (!stream) stream = std::make_unique<beast::tcp_stream>(p.ex);
        // Closes the stream when the call is stopped (cancel, job deadline) while I/O is pending.
        std::stop_callback guard(req.control ? req.control->stop_token() : std::stop_token{},
                                 [&s = *stream] { s.close(); });
        stream->expires_at(req.deadline);
        if (!reused) {
            auto cec = co_await open_stream(*stream, p.ex, p.target.host, p.target.port);
            if (cec) co_return classify(cec, req.control, true);
        }
        auto [wec, wn] = co_await http::async_write(*stream, msg, use_tuple);
        if (wec) {
            if (reused && may_resend) continue;
            co_return classify(wec, req.control, false);
        }
        // A request that is never sent again needs neither its head nor its body while the
        // reply is awaited, which for a prompt is the job's whole run: free them.
        if (!may_resend) msg = {};
        http::response_parser<http::string_body> parser;
        parser.body_limit(req.max_body);
        auto [rec, got_some] = co_await read_reply(*stream, parser);
        if (rec) {
            // A server that closed the idle connection as the GET went out answers nothing.
            if (reused && may_resend && !got_some &&
                (rec == http::error::end_of_stream || rec == asio::error::connection_reset ||
                 rec == asio::error::eof))
                continue;
            co_return classify(rec, req.control, false);
        }
        auto& res = parser.get();
        http_reply reply{res.result_int(), std::string(res[http::field::content_type]),
                         std::move(res.body())};
        if (res.keep_alive()) p.park(std::move(stream));
        co_return reply;
    }
}

}  // namespace agentd::jobs
