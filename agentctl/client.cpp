// Sync-looking HTTP POST (and GET) built on Beast's async operations, because only those honour
// basic_stream's expiry: the deadline covers connect, send and receive together.
// The only translation unit of agentctl that includes Beast (~20 s to compile).
#include "client.hpp"

#include "exit_codes.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace agentctl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using request = http::request<http::string_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A status reply carries every job of a session with up to 1 MiB of output each: allow far more
// than one job's worth, but not unbounded memory.
constexpr std::uint64_t max_reply_bytes = std::uint64_t{1} << 30;

request base_request(http::verb verb, endpoint const& to, std::string const& target) {
    request req{verb, target, 11};
    req.set(http::field::host, to.host_header);
    req.set(http::field::user_agent, "agentctl");
    req.keep_alive(false);
    return req;
}

request make_request(endpoint const& to, http_post const& post) {
    auto req = base_request(http::verb::post, to, to.target);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::accept, "application/json");
    if (post.bearer) req.set(http::field::authorization, "Bearer " + *post.bearer);
    req.body() = post.body;
    req.prepare_payload();
    return req;
}

void check(beast::error_code ec, char const* step, std::chrono::milliseconds deadline) {
    if (!ec) return;
    if (ec == beast::error::timeout) {
        throw transport_error(
            fmt::format("no answer within {} ms (while trying to {})", deadline.count(), step));
    }
    throw transport_error(fmt::format("cannot {}: {}", step, ec.message()));
}

template <class Protocol, class Destination>
asio::awaitable<http_reply> exchange(Destination destination, request req,
                                     std::chrono::milliseconds deadline) {
    beast::basic_stream<Protocol> stream(co_await asio::this_coro::executor);
    stream.expires_after(deadline);
    // A unix endpoint completes with (ec), a resolved TCP range with (ec, endpoint).
    auto connected = co_await stream.async_connect(destination, use_tuple);
    check(std::get<0>(connected), "connect", deadline);
    auto [write_ec, written] = co_await http::async_write(stream, req, use_tuple);
    check(write_ec, "send the request", deadline);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_reply_bytes);
    auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, use_tuple);
    check(read_ec, "read the reply", deadline);
    auto& res = parser.get();
    co_return http_reply{res.result_int(), std::string(res.reason()), std::move(res.body())};
}

template <class Protocol, class Destination>
http_reply run(asio::io_context& io, Destination destination, request req,
               std::chrono::milliseconds deadline) {
    auto reply = asio::co_spawn(
        io, exchange<Protocol>(std::move(destination), std::move(req), deadline), asio::use_future);
    io.run();
    return reply.get();
}

// The path length limit of sockaddr_un makes a long path a usage error, not a failed connection.
asio::local::stream_protocol::endpoint socket_endpoint(std::string const& path) {
    try {
        return asio::local::stream_protocol::endpoint(path);
    } catch (boost::system::system_error const& e) {
        throw usage_error(fmt::format("bad socket path {}: {}", path, e.code().message()));
    }
}

http_reply send(endpoint const& to, request req, std::chrono::milliseconds deadline) {
    asio::io_context io(1);
    if (to.is_unix()) {
        return run<asio::local::stream_protocol>(io, socket_endpoint(to.socket_path),
                                                 std::move(req), deadline);
    }
    // getaddrinfo cannot be cancelled, so it runs before the deadline starts; loopback names and
    // /etc/hosts entries answer at once.
    beast::error_code ec;
    auto addresses = asio::ip::tcp::resolver(io).resolve(to.host, to.port, ec);
    if (ec) throw transport_error(fmt::format("cannot resolve {}: {}", to.host, ec.message()));
    return run<asio::ip::tcp>(io, std::move(addresses), std::move(req), deadline);
}

}  // namespace

http_reply post_json(endpoint const& to, http_post const& post,
                     std::chrono::milliseconds deadline) {
    return send(to, make_request(to, post), deadline);
}

http_reply get_path(endpoint const& to, std::string const& path,
                    std::chrono::milliseconds deadline) {
    auto rpc = std::string_view(to.target);
    auto prefix = rpc.substr(0, rpc.size() - std::string_view("/rpc").size());
    auto req = base_request(http::verb::get, to, std::string(prefix) + path);
    req.prepare_payload();
    return send(to, std::move(req), deadline);
}

}  // namespace agentctl
