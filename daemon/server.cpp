// Listeners and connection bookkeeping: binds each --listen address (TCP or a unix socket file)
// or adopts the sockets systemd passed, accepts in one coroutine per listener, enforces
// max_connections, and spawns each connection with a handler that logs and swallows, so a bug
// kills one connection and never the daemon.
#include "daemon/server.hpp"

#include "common/log.hpp"
#include "daemon/http_connection.hpp"
#include "daemon/principals.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <list>
#include <stdexcept>

namespace agentd::daemon {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
// One acceptor type for TCP and unix sockets: both convert to it, and it accepts http_sockets.
using any_acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view unix_prefix = "unix:";

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

std::optional<std::string> listen_spec_error(std::string_view spec) {
    auto quoted = fmt::format("'{}'", spec);
    if (spec.starts_with(unix_prefix)) {
        auto path = spec.substr(unix_prefix.size());
        if (path.empty()) return quoted + ": no socket path after unix:";
        if (path.size() >= sizeof(sockaddr_un::sun_path))
            return fmt::format("{}: a socket path has at most {} bytes", quoted,
                               sizeof(sockaddr_un::sun_path) - 1);
        return std::nullopt;
    }
    auto addr = parse_listen_address(spec);
    if (!addr) return quoted + " is not HOST:PORT or unix:PATH";
    boost::system::error_code ec;
    asio::ip::make_address(addr->host, ec);
    if (ec) return quoted + ": " + addr->host + " is not an IP address";
    return std::nullopt;
}

namespace {

// Warnings a peer can trigger at will: a line a second each (log::throttle).
log::throttle refused_log;

void announce(std::string const& where) {
    log::raw("agentd listening on " + where);
}

std::string http_url(tcp::endpoint const& local) {
    auto host = local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                        : local.address().to_string();
    return fmt::format("http://{}:{}", host, local.port());
}

// Makes room for a new socket file at `path`: removes one whose process is gone (connecting is
// refused), and throws when a live process listens there or the file is not a socket.
void clear_stale_socket(asio::any_io_executor const& ex, std::string const& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw std::runtime_error("cannot listen on unix:" + path + ": " + std::strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error("cannot listen on unix:" + path + ": the file is not a socket");
    local::socket probe(ex);
    boost::system::error_code ec;
    probe.open(local(), ec);
    if (!ec) probe.non_blocking(true, ec);  // a live server with a full backlog: no hang
    if (!ec) probe.connect(local::endpoint(path), ec);
    if (!ec)
        throw std::runtime_error("cannot listen on unix:" + path +
                                 ": another process is listening on it");
    if (ec != asio::error::connection_refused)
        throw std::runtime_error("cannot listen on unix:" + path + ": " + ec.message());
    ::unlink(path.c_str());
}

// Descriptors kept free of client connections: listeners, the database, upstream connections
// and event streams, logs.
constexpr rlim_t reserved_fds = 128;

// Raises the soft open-file limit to the hard one, and keeps max_connections below it: past
// the limit accept() fails with EMFILE and new clients hang in the backlog.
std::size_t clamp_to_fd_limit(std::size_t max_connections) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return max_connections;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised{rl.rlim_max, rl.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    if (rl.rlim_cur == RLIM_INFINITY) return max_connections;
    auto room = static_cast<std::size_t>(rl.rlim_cur > 2 * reserved_fds ? rl.rlim_cur - reserved_fds
                                                                        : rl.rlim_cur / 2);
    if (max_connections <= room) return max_connections;
    log::warn("limit", {{"limit", "max_connections"},
                        {"configured", max_connections},
                        {"clamped_to", room},
                        {"open_file_limit", rl.rlim_cur},
                        {"hint", "raise LimitNOFILE / ulimit -n"}});
    return room;
}

server_options clamped(server_options opts) {
    opts.max_connections = clamp_to_fd_limit(opts.max_connections);
    return opts;
}

// Connections past max_connections that only /healthz and /metrics may use, so a full server
// can still be probed and scraped.
std::size_t reserve_slots(std::size_t max_connections) {
    return std::clamp<std::size_t>(max_connections / 16, 1, 16);
}

// accept() failures that free descriptors or memory would cure; retrying at once would spin.
bool out_of_resources(boost::system::error_code ec) {
    return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
           ec == asio::error::no_memory || ec == boost::system::errc::too_many_files_open_in_system;
}

int socket_option(int fd, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, name, &value, &len) != 0) return -1;
    return value;
}

}  // namespace

struct server::impl : std::enable_shared_from_this<server::impl> {
    asio::any_io_executor ex;
    server_options opts;
    std::shared_ptr<http_context> ctx;
    std::list<any_acceptor> acceptors;
    std::vector<std::string> socket_files;  // created here, removed on stop
    std::shared_ptr<void> revocation;       // a revoked principal's MCP sessions end

    impl(asio::any_io_executor e, server_options o, rpc_service& rpc)
        : ex(std::move(e)),
          opts(clamped(std::move(o))),
          ctx(std::make_shared<http_context>(
              http_context{opts,
                           rpc,
                           task_group(ex, "connection"),
                           mcp_sessions({.max_sessions = opts.max_mcp_sessions,
                                         .id_prefix = opts.mcp_session_prefix}),
                           {}})) {
        if (!opts.principals) return;
        std::weak_ptr<http_context> weak = ctx;
        revocation = opts.principals->on_revoked([weak](std::string const& name) {
            if (auto c = weak.lock()) c->mcp.end_all(name);
        });
    }

    void open_one(std::string const& spec) {
        if (auto why = listen_spec_error(spec))
            throw std::runtime_error("bad listen address " + *why);
        if (spec.starts_with(unix_prefix))
            open_unix(spec.substr(unix_prefix.size()));
        else
            open_tcp(spec);
    }

    void open_tcp(std::string const& spec) {
        auto addr = parse_listen_address(spec);
        auto ip = asio::ip::make_address(addr->host);
        if (!opts.principals && !ip.is_loopback())
            throw std::runtime_error("refusing to listen on non-loopback " + spec +
                                     " with --auth none");
        tcp::endpoint ep(ip, addr->port);
        tcp::acceptor acc(ex);
        boost::system::error_code ec;
        acc.open(ep.protocol(), ec);
        if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && ip.is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
        if (!ec) acc.bind(ep, ec);
        if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on " + spec + ": " + ec.message());
        announce(http_url(acc.local_endpoint()));
        acceptors.emplace_back(std::move(acc));
    }

    // The file gets mode 0600 before listen(), so no other user can ever connect.
    void open_unix(std::string const& path) {
        clear_stale_socket(ex, path);
        local::acceptor acc(ex);
        boost::system::error_code ec;
        acc.open(local(), ec);
        if (!ec) acc.bind(local::endpoint(path), ec);
        if (!ec) socket_files.push_back(path);
        if (!ec && ::chmod(path.c_str(), 0600) != 0)
            ec.assign(errno, boost::system::generic_category());
        if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on unix:" + path + ": " + ec.message());
        announce("unix:" + path);
        acceptors.emplace_back(std::move(acc));
    }

    // A listening socket systemd passed (socket activation): TCP or unix, set up by its unit.
    void adopt(int fd) {
        if (socket_option(fd, SO_TYPE) != SOCK_STREAM || socket_option(fd, SO_ACCEPTCONN) != 1)
            throw std::runtime_error(
                fmt::format("socket activation: fd {} is not a listening stream socket", fd));
        int family = socket_option(fd, SO_DOMAIN);
        if (family == AF_UNIX) {
            local::acceptor acc(ex, local(), fd);
            announce("unix:" + acc.local_endpoint().path());
            acceptors.emplace_back(std::move(acc));
            return;
        }
        if (family != AF_INET && family != AF_INET6)
            throw std::runtime_error(
                fmt::format("socket activation: fd {} is not TCP or unix", fd));
        tcp::acceptor acc(ex, family == AF_INET ? tcp::v4() : tcp::v6(), fd);
        auto local_ep = acc.local_endpoint();
        if (!opts.principals && !local_ep.address().is_loopback())
            throw std::runtime_error("refusing the non-loopback socket " + http_url(local_ep) +
                                     " with --auth none");
        announce(http_url(local_ep));
        acceptors.emplace_back(std::move(acc));
    }

    void remove_socket_files() {
        for (auto const& path : socket_files) ::unlink(path.c_str());
        socket_files.clear();
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self, any_acceptor& acc) {
        auto const& connections = self->ctx->connections;
        while (!connections.stop_requested()) {
            auto [ec, socket] = co_await acc.async_accept(use_tuple);
            if (ec) {
                if (ec == asio::error::operation_aborted || connections.stop_requested()) co_return;
                if (out_of_resources(ec)) {
                    // The client stays in the backlog; closed connections will make room.
                    asio::steady_timer pause(self->ex, std::chrono::milliseconds(100));
                    [[maybe_unused]] auto [waited] = co_await pause.async_wait(use_tuple);
                }
                continue;  // keep serving the connections we have
            }
            // Replies and pushes are small writes: Nagle would hold one back behind the peer's
            // delayed ACK (~40 ms). Not TCP (a unix socket): nothing to set.
            boost::system::error_code not_tcp;
            socket.set_option(asio::ip::tcp::no_delay(true), not_tcp);
            auto open = self->ctx->connections.size();
            // At the cap a connection that never spoke makes room (see http_context::silent); it
            // leaves once its coroutine sees the closed socket.
            if (open >= self->opts.max_connections && evict_silent(*self->ctx)) --open;
            if (open >= self->opts.max_connections + reserve_slots(self->opts.max_connections)) {
                refused_log.warn("limit", {{"limit", "max_connections"}, {"action", "closed"}});
                boost::system::error_code ignored;
                socket.close(ignored);  // over the cap: refuse rather than queue unbounded
                continue;
            }
            bool reserve = open >= self->opts.max_connections;
            self->ctx->connections.spawn(serve_http(std::move(socket), self->ctx, reserve));
        }
    }
};

server::server(asio::any_io_executor ex, server_options opts, rpc_service& rpc)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opts), rpc)) {}

server::~server() {
    impl_->remove_socket_files();
}

void server::open() {
    if (!impl_->opts.inherited_fds.empty()) {
        for (int fd : impl_->opts.inherited_fds) impl_->adopt(fd);
        return;
    }
    for (auto const& spec : impl_->opts.listen) impl_->open_one(spec);
}

void server::start() {
    for (auto& acc : impl_->acceptors)
        asio::co_spawn(impl_->ex, impl::accept_loop(impl_, acc), asio::detached);
}

void server::stop() {
    boost::system::error_code ignored;
    for (auto& acc : impl_->acceptors) acc.close(ignored);
    impl_->remove_socket_files();
    impl_->ctx->connections.request_stop();
}

asio::awaitable<void> server::join(std::chrono::milliseconds bound) {
    auto self = impl_;
    co_await self->ctx->connections.join(bound);
}

}  // namespace agentd::daemon
