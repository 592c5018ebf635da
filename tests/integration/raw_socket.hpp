// A plain TCP client the test drives byte by byte: half a request and a wait, a body apart from
// its header, pipelined requests; and a reader of the raw responses (head text and body), so a
// test sees exactly the bytes agentd wrote.
#pragma once

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace agentd::test {

struct raw_response {
    std::string head;  // status line and header lines, up to and including the blank line
    std::string body;  // Content-Length bytes
};

class raw_socket {
  public:
    explicit raw_socket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("connect failed");
    }
    ~raw_socket() { ::close(fd_); }
    raw_socket(raw_socket const&) = delete;
    raw_socket& operator=(raw_socket const&) = delete;

    void send(std::string_view bytes) {
        ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(bytes.size()));
    }
    // Sends what the socket takes without blocking; false once the server closed or reset it.
    // For floods: the caller stops at the server's answer, not at a fixed size.
    bool send_some(std::string_view bytes, std::size_t& sent) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, 50) <= 0) return !(p.revents & (POLLERR | POLLHUP));
        auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
        sent += static_cast<std::size_t>(n);
        return true;
    }
    // The status code of the next response head (one without Content-Length too, e.g. 101), or
    // nullopt when none arrives within `timeout`.
    std::optional<int> read_status(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (pending_.find("\r\n\r\n") == std::string::npos) {
            pollfd p{fd_, POLLIN, 0};
            if (!wait(p, deadline)) return std::nullopt;
            char buf[4096];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return std::nullopt;
            pending_.append(buf, static_cast<std::size_t>(n));
        }
        if (pending_.size() < 12 || !pending_.starts_with("HTTP/1.")) return std::nullopt;
        return std::stoi(pending_.substr(9, 3));
    }
    // The next response head alone (status line to blank line), consumed; for HEAD answers.
    std::optional<std::string> read_head(std::chrono::milliseconds timeout) {
        if (!read_status(timeout)) return std::nullopt;
        auto end = pending_.find("\r\n\r\n") + 4;
        auto head = pending_.substr(0, end);
        pending_.erase(0, end);
        return head;
    }
    int fd() const { return fd_; }
    // True once the server closed (EOF or reset) within `timeout`; bytes it sent are skipped.
    bool closed_within(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            pollfd p{fd_, POLLIN, 0};
            if (!wait(p, deadline)) return false;
            char buf[4096];
            if (::recv(fd_, buf, sizeof buf, 0) <= 0) return true;
        }
    }
    // True when a byte (or the close) arrives within `timeout`; nothing is consumed.
    bool readable_within(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        return !pending_.empty() || wait(p, std::chrono::steady_clock::now() + timeout);
    }
    // The next whole response (it must carry Content-Length), or nullopt when none is complete
    // within `timeout` or the server closed first.
    std::optional<raw_response> read_response(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto r = take_response()) return r;
            pollfd p{fd_, POLLIN, 0};
            if (!wait(p, deadline)) return std::nullopt;
            char buf[4096];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return std::nullopt;
            pending_.append(buf, static_cast<std::size_t>(n));
        }
    }

  private:
    static bool wait(pollfd& p, std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            if (::poll(&p, 1, static_cast<int>(left.count())) > 0) return true;
        }
    }
    std::optional<raw_response> take_response() {
        auto end = pending_.find("\r\n\r\n");
        if (end == std::string::npos) return std::nullopt;
        std::string head = pending_.substr(0, end + 4);
        auto at = head.find("\r\nContent-Length: ");
        if (at == std::string::npos) throw std::runtime_error("no Content-Length in " + head);
        auto length = std::stoul(head.substr(at + 18));
        if (pending_.size() < head.size() + length) return std::nullopt;
        raw_response r{head, pending_.substr(head.size(), length)};
        pending_.erase(0, head.size() + length);
        return r;
    }

    int fd_;
    std::string pending_;
};

}  // namespace agentd::test
