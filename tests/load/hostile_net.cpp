// Raw loopback sockets for the hostile-client run; see hostile_net.hpp.
#include "hostile_net.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace agentd::test::hostile {
using namespace std::chrono_literals;

socket_fd& socket_fd::operator=(socket_fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = o.release();
    }
    return *this;
}

int socket_fd::release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
}

void socket_fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

socket_fd connect_loopback(int port) {
    socket_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.valid()) return s;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return s;
    if (errno != EINPROGRESS) return {};
    // Bounded: with a full accept queue the kernel would retry the SYN for minutes.
    pollfd p{s.get(), POLLOUT, 0};
    int error = 0;
    socklen_t len = sizeof error;
    if (::poll(&p, 1, 2000) != 1 || ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &error, &len) ||
        error != 0)
        return {};
    return s;
}

bool wait_stop(std::atomic<bool> const& stop, std::chrono::milliseconds d) {
    auto until = clock_type::now() + d;
    while (!stop.load()) {
        auto left = until - clock_type::now();
        if (left <= 0s) return false;
        std::this_thread::sleep_for(std::min<clock_type::duration>(left, 20ms));
    }
    return true;
}

bool send_all(int fd, std::string_view bytes, std::atomic<bool> const& stop) {
    while (!bytes.empty()) {
        if (stop.load()) return false;
        auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        if (p.revents & (POLLERR | POLLHUP)) return false;
    }
    return true;
}

flood_outcome pump(int fd, std::string_view unit, long count, std::atomic<bool> const& stop) {
    flood_outcome out;
    std::string_view pending = unit;
    bool closed = false;
    while (!closed && !stop.load()) {
        if (pending.empty()) {
            if (count > 0 && --count == 0) break;
            pending = unit;
        }
        pollfd p{fd, POLLIN | POLLOUT, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        if (p.revents & POLLIN) {
            char buf[4096];
            auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0 && out.reply.size() < 256)
                out.reply.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), 256));
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) closed = true;
        }
        if (p.revents & (POLLERR | POLLHUP)) closed = true;
        if (closed || !(p.revents & POLLOUT)) continue;
        auto n = ::send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out.bytes += static_cast<std::size_t>(n);
            pending.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            closed = true;
        }
    }
    out.closed_by_daemon = closed;
    return out;
}

flood_outcome flood_once(int port, std::string_view head, std::string_view unit,
                         std::atomic<bool> const& stop) {
    auto s = connect_loopback(port);
    if (!s.valid()) return {0, true, "(connect refused)"};
    auto out = pump(s.get(), head, 1, stop);
    if (out.closed_by_daemon || stop.load()) return out;
    auto rest = pump(s.get(), unit, -1, stop);
    rest.bytes += out.bytes;
    if (rest.reply.empty()) rest.reply = std::move(out.reply);
    return rest;
}

void lower_thread_priority() {
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
}

long rss_kib(int pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

double cpu_seconds(int pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) return 0;
    // After "pid (comm)": state is field 3, utime 14 and stime 15 (proc(5)).
    std::istringstream fields(stat.substr(paren + 2));
    std::string skip;
    for (int i = 3; i < 14; ++i) fields >> skip;
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace agentd::test::hostile
