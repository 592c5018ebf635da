// Listeners and connection bookkeeping: binds each --listen address, accepts in one coroutine
// per acceptor, enforces max_connections, and spawns each connection with a handler that logs
// and swallows, so a bug kills one connection and never the daemon.
#include "daemon/server.hpp"

#include "daemon/http_session.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <iostream>
#include <list>
#include <stdexcept>

namespace agentd::daemon {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::optional<listen_address> parse_listen_address(std::string_view s) {
    std::string_view host;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find("]:");
        if (close == std::string_view::npos) return std::nullopt;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (host.empty() || ec != std::errc{} || ptr != port.data() + port.size() || value > 65535)
        return std::nullopt;
    return listen_address{std::string(host), static_cast<unsigned short>(value)};
}

bool is_loopback_address(std::string_view host) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(std::string(host), ec);
    return !ec && addr.is_loopback();
}

struct server::impl : std::enable_shared_from_this<server::impl> {
    asio::any_io_executor ex;
    server_options opts;
    std::shared_ptr<http_context> ctx;
    std::list<tcp::acceptor> acceptors;
    bool stopping = false;

    impl(asio::any_io_executor e, server_options o, rpc_service& rpc)
        : ex(std::move(e)),
          opts(std::move(o)),
          ctx(std::make_shared<http_context>(
              http_context{opts, rpc, {}, mcp_registry(mcp_registry::options{})})) {}

    void open_one(std::string const& spec) {
        auto addr = parse_listen_address(spec);
        if (!addr) throw std::runtime_error("bad listen address '" + spec + "' (want HOST:PORT)");
        boost::system::error_code ec;
        auto ip = asio::ip::make_address(addr->host, ec);
        if (ec) throw std::runtime_error("bad listen address '" + spec + "': not an IP address");
        if (!opts.token && !ip.is_loopback())
            throw std::runtime_error("refusing to listen on non-loopback " + spec +
                                     " with --auth none");
        tcp::endpoint ep(ip, addr->port);
        auto& acc = acceptors.emplace_back(ex);
        acc.open(ep.protocol(), ec);
        if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && ip.is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
        if (!ec) acc.bind(ep, ec);
        if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on " + spec + ": " + ec.message());
        auto local = acc.local_endpoint();
        auto host = local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                            : local.address().to_string();
        std::cerr << fmt::format("agentd listening on http://{}:{}\n", host, local.port())
                  << std::flush;
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self, tcp::acceptor& acc) {
        while (!self->stopping) {
            auto [ec, socket] = co_await acc.async_accept(use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || self->stopping) co_return;
                continue;  // e.g. EMFILE: keep serving the connections we have
            }
            if (self->ctx->connections.size() >= self->opts.max_connections) {
                boost::system::error_code ignored;
                socket.close(ignored);  // over the cap: refuse rather than queue unbounded
                continue;
            }
            asio::co_spawn(self->ex, serve_http(std::move(socket), self->ctx),
                           [](std::exception_ptr e) {
                               if (!e) return;
                               try {
                                   std::rethrow_exception(e);
                               } catch (std::exception const& x) {
                                   std::cerr << "agentd: connection error: " << x.what() << "\n";
                               }
                           });
        }
    }
};

server::server(asio::any_io_executor ex, server_options opts, rpc_service& rpc)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), rpc)) {}

server::~server() = default;

void server::open() {
    for (auto const& spec : impl_->opts.listen) impl_->open_one(spec);
}

void server::start() {
    for (auto& acc : impl_->acceptors)
        asio::co_spawn(impl_->ex, impl::accept_loop(impl_, acc), asio::detached);
}

void server::stop() {
    impl_->stopping = true;
    boost::system::error_code ignored;
    for (auto& acc : impl_->acceptors) acc.close(ignored);
    for (auto const& close : impl_->ctx->connections) close();
}

}  // namespace agentd::daemon
