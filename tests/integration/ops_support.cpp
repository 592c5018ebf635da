// Operations test helpers; see ops_support.hpp.
#include "ops_support.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace agentd::test {
namespace fs = std::filesystem;

temp_dir::temp_dir() {
    static int counter = 0;
    path_ = fs::path("/tmp") / fmt::format("agentd-ops-{}-{}", ::getpid(), counter++);
    fs::remove_all(path_);
    fs::create_directories(path_);
}

temp_dir::~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
}

namespace {

// Closes the descriptor on every way out.
struct fd_guard {
    int fd;
    ~fd_guard() { ::close(fd); }
};

}  // namespace

std::string unix_http(std::string const& socket_path, std::string const& request,
                      std::string const& until, std::chrono::milliseconds timeout) {
    fd_guard sock{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
    if (::connect(sock.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        throw std::runtime_error("connect unix:" + socket_path + ": " + std::strerror(errno));
    if (::send(sock.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size()))
        throw std::runtime_error("send: " + std::string(std::strerror(errno)));
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    std::string response;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{sock.fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0)
            throw std::runtime_error("no complete response within the deadline: " + response);
        auto n = ::read(sock.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return response;
        response.append(buf, static_cast<std::size_t>(n));
        if (!until.empty() && response.find(until) != std::string::npos) return response;
    }
}

int status_of(std::string const& response) {
    int status = 0;
    return std::sscanf(response.c_str(), "HTTP/1.1 %d", &status) == 1 ? status : 0;
}

std::string get_request(std::string const& target, std::string const& token) {
    auto auth = token.empty() ? std::string() : "Authorization: Bearer " + token + "\r\n";
    return fmt::format("GET {} HTTP/1.1\r\nHost: localhost\r\n{}Connection: close\r\n\r\n", target,
                       auth);
}

std::string post_request(std::string const& target, std::string const& body,
                         std::string const& token) {
    auto auth = token.empty() ? std::string() : "Authorization: Bearer " + token + "\r\n";
    return fmt::format(
        "POST {} HTTP/1.1\r\nHost: localhost\r\n{}Content-Type: application/json\r\n"
        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        target, auth, body.size(), body);
}

}  // namespace agentd::test
