// The hostile OpenCode server; see evil_upstream.hpp.
#include "evil_upstream.hpp"

#include "hostile_net.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

namespace agentd::test::hostile {
namespace {

struct request {
    std::string method;
    std::string target;
};

// Next request on `fd` (its body read and dropped); nullopt when the peer closed or on stop.
std::optional<request> read_request(int fd, std::string& buf, std::atomic<bool> const& stop) {
    std::size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (stop.load() || buf.size() > 64 * 1024) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char chunk[4096];
        auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return std::nullopt;
        if (n > 0) buf.append(chunk, static_cast<std::size_t>(n));
    }
    std::string head = buf.substr(0, end + 2);
    buf.erase(0, end + 4);
    request r;
    auto sp1 = head.find(' ');
    auto sp2 = head.find(' ', sp1 + 1);
    r.method = head.substr(0, sp1);
    r.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t length = 0;
    for (std::size_t at = head.find("\r\n"); at != std::string::npos;
         at = head.find("\r\n", at + 2)) {
        if (::strncasecmp(head.c_str() + at + 2, "content-length:", 15) == 0)
            length = std::strtoul(head.c_str() + at + 17, nullptr, 10);
    }
    while (buf.size() < length) {
        if (stop.load()) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char chunk[4096];
        auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return std::nullopt;
        if (n > 0) buf.append(chunk, static_cast<std::size_t>(n));
    }
    buf.erase(0, length);
    return r;
}

std::string json_reply(int status, std::string const& body) {
    return fmt::format(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", status,
        body.size(), body);
}

bool starts_with(std::string const& s, std::string_view prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

evil_upstream::evil_upstream() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) ||
        ::listen(listen_fd_, 64) ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len))
        throw std::runtime_error("evil upstream: cannot listen");
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

evil_upstream::~evil_upstream() {
    stop();
}

void evil_upstream::stop() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mutex_);
        workers.swap(workers_);
    }
    for (auto& w : workers) w.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
}

evil_stats evil_upstream::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void evil_upstream::accept_loop() {
    while (!stop_.load()) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::lock_guard lock(mutex_);
        workers_.emplace_back([this, fd] {
            socket_fd owned(fd);
            lower_thread_priority();
            serve(fd);
        });
    }
}

// Keep-alive request loop; the endless answers end the connection when agentd hangs up.
void evil_upstream::serve(int fd) {
    std::string buf;
    while (auto r = read_request(fd, buf, stop_)) {
        std::string reply;
        if (r->method == "POST" &&
            (r->target == "/session" || starts_with(r->target, "/session?"))) {
            long n;
            {
                std::lock_guard lock(mutex_);
                n = ++stats_.sessions;
            }
            reply = json_reply(200, fmt::format(R"({{"id":"ses_evil{:06}","title":"evil"}})", n));
        } else if (r->method == "POST" && r->target.find("/message") != std::string::npos) {
            return endless_trailer(fd);
        } else if (r->method == "GET" && starts_with(r->target, "/global/event")) {
            long n;
            {
                std::lock_guard lock(mutex_);
                n = stats_.event_streams++;
            }
            return n % 2 == 0 ? endless_sse_line(fd) : part_flood(fd);
        } else if (r->target.find("/abort") != std::string::npos) {
            reply = json_reply(200, "true");
        } else if (r->method == "GET" && r->target.find("/message") != std::string::npos) {
            reply = json_reply(200, "[]");
        } else if (starts_with(r->target, "/session/status")) {
            reply = json_reply(200, "{}");
        } else {
            reply = json_reply(404, R"({"name":"NotFound"})");
        }
        if (!send_all(fd, reply, stop_)) return;
    }
}

void evil_upstream::endless_trailer(int fd) {
    {
        std::lock_guard lock(mutex_);
        ++stats_.prompts;
    }
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n{}\r\n0\r\n";
    std::string unit;
    while (unit.size() < 64 * 1024) unit += "X-Evil: " + std::string(100, 't') + "\r\n";
    auto first = pump(fd, head, 1, stop_);
    auto out = first.closed_by_daemon ? first : pump(fd, unit, -1, stop_);
    std::lock_guard lock(mutex_);
    stats_.trailer_max_bytes = std::max(stats_.trailer_max_bytes, out.bytes + first.bytes);
    stats_.trailers_closed += out.closed_by_daemon;
}

void evil_upstream::endless_sse_line(int fd) {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        "data: ";
    auto first = pump(fd, head, 1, stop_);
    auto out = first.closed_by_daemon ? first : pump(fd, std::string(64 * 1024, 'l'), -1, stop_);
    std::lock_guard lock(mutex_);
    stats_.sse_line_max_bytes = std::max(stats_.sse_line_max_bytes, out.bytes + first.bytes);
    stats_.sse_lines_closed += out.closed_by_daemon;
}

// Non-text part events, each for a new session and part: state kept per unknown session grows
// with every one of them.
void evil_upstream::part_flood(int fd) {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
    if (pump(fd, head, 1, stop_).closed_by_daemon) return;
    static std::atomic<long> next{0};
    while (!stop_.load()) {
        std::string batch;
        long events = 0;
        for (; batch.size() < 64 * 1024; ++events) {
            long n = next++;
            batch += fmt::format(
                "data: {{\"directory\":\"/tmp\",\"payload\":{{\"type\":\"message.part.updated\","
                "\"properties\":{{\"part\":{{\"id\":\"prt_flood{:09}\",\"sessionID\":"
                "\"ses_unknown{:09}\",\"messageID\":\"msg_flood{:09}\",\"type\":\"tool\"}}}}}}}}"
                "\n\n",
                n, n, n);
        }
        auto out = pump(fd, batch, 1, stop_);
        std::lock_guard lock(mutex_);
        stats_.part_bytes += out.bytes;
        if (out.bytes == batch.size()) stats_.part_events += events;
        if (out.closed_by_daemon) return;
    }
}

}  // namespace agentd::test::hostile
