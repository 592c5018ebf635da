// Implementation of the upstream HTTP pool: idle keep-alive streams are reused; a request that
// fails on a reused stream before any response byte (the server closed it while idle) is
// retried once on a fresh connection, so stale keep-alive never surfaces as a job failure.
#include "jobs/http_client.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>
#include <vector>

namespace agentd::jobs {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void throw_exception_from_error(http_failure const& e, boost::source_location const& loc) {
    boost::throw_exception(std::runtime_error("http failure: " + e.message), loc);
}

std::optional<origin> origin::parse(std::string_view url) {
    constexpr std::string_view scheme = "http://";
    if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
    url.remove_prefix(scheme.size());
    auto slash = url.find('/');
    std::string_view authority = url.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? "" : url.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    origin o;
    o.base_path = std::string(path);
    if (authority.empty()) return std::nullopt;
    if (authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        o.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty() && authority.front() != ':') return std::nullopt;
    } else {
        auto colon = authority.find(':');
        o.host = std::string(authority.substr(0, colon));
        authority.remove_prefix(colon == std::string_view::npos ? authority.size() : colon);
    }
    o.port = authority.empty() ? "80" : std::string(authority.substr(1));
    if (o.host.empty() || o.port.empty() ||
        o.port.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return o;
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

struct http_pool::impl {
    asio::any_io_executor ex;
    origin target;
    std::optional<std::string> auth;
    std::size_t max_idle;
    std::vector<std::unique_ptr<beast::tcp_stream>> idle;
};

http_pool::http_pool(asio::any_io_executor ex, origin o, std::optional<std::string> basic_auth,
                     std::size_t max_idle)
    : impl_(std::make_unique<impl>(
          impl{std::move(ex), std::move(o), std::move(basic_auth), max_idle, {}})) {}

http_pool::~http_pool() = default;

origin const& http_pool::target() const {
    return impl_->target;
}
std::string const* http_pool::authorization() const {
    return impl_->auth ? &*impl_->auth : nullptr;
}
void http_pool::close_idle() {
    impl_->idle.clear();
}

namespace {

// Closes the stream when the call is stopped (cancel, job deadline) while I/O is pending.
class stop_guard {
  public:
    stop_guard(upstream::call_control* ctl, beast::tcp_stream& s) : ctl_(ctl) {
        if (ctl_) ctl_->on_stop([&s] { s.close(); });
    }
    ~stop_guard() {
        if (ctl_) ctl_->clear();
    }
    stop_guard(stop_guard const&) = delete;
    stop_guard& operator=(stop_guard const&) = delete;

  private:
    upstream::call_control* ctl_;
};

http_failure classify(beast::error_code ec, upstream::call_control* ctl, bool connecting) {
    if (ctl && ctl->stopped() != upstream::stop_reason::none)
        return {http_failure::kind::stopped, "stopped"};
    if (ec == beast::error::timeout) return {http_failure::kind::timeout, "deadline exceeded"};
    if (ec == http::error::body_limit) return {http_failure::kind::too_large, "response too large"};
    if (connecting) return {http_failure::kind::connect, "connect: " + ec.message()};
    return {http_failure::kind::transport, ec.message()};
}

}  // namespace

asio::awaitable<http_result> http_pool::request(http_request req) {
    auto& p = *impl_;
    http::request<http::string_body> msg{http::string_to_verb(req.method),
                                         p.target.base_path + req.target, 11};
    msg.set(http::field::host, p.target.host.find(':') == std::string::npos
                                   ? p.target.host + ":" + p.target.port
                                   : "[" + p.target.host + "]:" + p.target.port);
    msg.set(http::field::accept, "application/json");
    if (p.auth) msg.set(http::field::authorization, *p.auth);
    if (!req.body.empty() || msg.method() == http::verb::post) {
        msg.set(http::field::content_type, "application/json");
        msg.body() = std::move(req.body);
    }
    msg.keep_alive(true);
    msg.prepare_payload();

    for (int round = 0;; ++round) {
        if (req.control && req.control->stopped() != upstream::stop_reason::none)
            co_return http_failure{http_failure::kind::stopped, "stopped"};
        std::unique_ptr<beast::tcp_stream> stream;
        bool reused = false;
        if (round == 0 && !p.idle.empty()) {
            stream = std::move(p.idle.back());
            p.idle.pop_back();
            reused = true;
        } else {
            stream = std::make_unique<beast::tcp_stream>(p.ex);
        }
        stop_guard guard(req.control, *stream);
        stream->expires_at(req.deadline);
        if (!reused) {
            tcp::resolver resolver(p.ex);
            auto [rec, endpoints] =
                co_await resolver.async_resolve(p.target.host, p.target.port, use_tuple);
            if (rec) co_return classify(rec, req.control, true);
            auto [cec, ep] = co_await stream->async_connect(endpoints, use_tuple);
            if (cec) co_return classify(cec, req.control, true);
        }
        auto [wec, wn] = co_await http::async_write(*stream, msg, use_tuple);
        if (wec) {
            if (reused) continue;
            co_return classify(wec, req.control, false);
        }
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(req.max_body);
        auto [rec, rn] = co_await http::async_read(*stream, buf, parser, use_tuple);
        if (rec) {
            bool nothing_read = rn == 0 && !parser.got_some();
            if (reused && nothing_read &&
                (rec == http::error::end_of_stream || rec == asio::error::connection_reset ||
                 rec == asio::error::eof))
                continue;
            co_return classify(rec, req.control, false);
        }
        auto& res = parser.get();
        http_reply reply{res.result_int(), std::string(res[http::field::content_type]),
                         std::move(res.body())};
        if (res.keep_alive() && p.idle.size() < p.max_idle) {
            stream->expires_never();
            p.idle.push_back(std::move(stream));
        }
        co_return reply;
    }
}

}  // namespace agentd::jobs
