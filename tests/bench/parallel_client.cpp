// post_all() on Asio coroutines and Beast: one coroutine per connection on a private
// io_context, so the caller's thread is the only one involved and a reply is stamped as soon as
// it is parsed.
#include "parallel_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace agentd::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

struct shared_run {
    tcp::endpoint endpoint;
    test::http_headers const& headers;
    std::chrono::milliseconds timeout;
    std::function<void()> const& on_sent;
    std::size_t unsent;
    parallel_outcome& outcome;
};

void mark_sent(shared_run& run) {
    if (--run.unsent > 0) return;
    run.outcome.all_sent = clock_type::now();
    if (run.on_sent) run.on_sent();
}

asio::awaitable<void> exchange(shared_run& run, std::string body, timed_reply& out) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(run.timeout);
    http::request<http::string_body> req{http::verb::post, "/rpc", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    for (auto const& [name, value] : run.headers) req.set(name, value);
    req.body() = std::move(body);
    req.prepare_payload();
    bool sent = false;
    if (auto [ec] = co_await stream.async_connect(run.endpoint, use_tuple); !ec) {
        auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
        sent = !wec;
    }
    mark_sent(run);  // a failed one counts too, so on_sent still comes
    if (!sent) co_return;
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(stream, buffer, res, use_tuple);
    if (rec) co_return;
    out.at = clock_type::now();
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
}

}  // namespace

parallel_outcome post_all(unsigned short port, test::http_headers const& headers,
                          std::vector<std::string> const& bodies, std::chrono::milliseconds timeout,
                          std::function<void()> const& on_sent) {
    parallel_outcome outcome;
    outcome.replies.resize(bodies.size());
    asio::io_context ioc(1);
    shared_run run{{asio::ip::make_address("127.0.0.1"), port},
                   headers,
                   timeout,
                   on_sent,
                   bodies.size(),
                   outcome};
    for (std::size_t i = 0; i < bodies.size(); ++i)
        asio::co_spawn(ioc, exchange(run, bodies[i], outcome.replies[i]), asio::detached);
    ioc.run();
    return outcome;
}

}  // namespace agentd::bench
