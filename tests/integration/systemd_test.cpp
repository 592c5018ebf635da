// systemd integration of the real agentd: Type=notify messages (READY=1 once listening, WATCHDOG=1
// at half of $WATCHDOG_USEC, STOPPING=1 on SIGTERM) on a notify socket the test owns, and socket
// activation with TCP and unix sockets passed by the socket_activate helper as systemd would.
#include "ops_support.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <optional>
#include <regex>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A unix datagram socket standing in for systemd's $NOTIFY_SOCKET.
class notify_socket {
  public:
    explicit notify_socket(std::string path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    ~notify_socket() { ::close(fd_); }
    notify_socket(notify_socket const&) = delete;
    notify_socket& operator=(notify_socket const&) = delete;

    std::string const& path() const { return path_; }

    // The next message, or nullopt when none arrives within `timeout`.
    std::optional<std::string> next(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
        char buf[4096];
        auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<std::size_t>(n));
    }

  private:
    std::string path_;
    int fd_ = -1;
};

TEST(systemd_test, notifies_ready_once_listening_pings_the_watchdog_and_says_stopping) {
    temp_dir dir;
    notify_socket notify(dir / "notify");
    auto socket = dir / "agentd.sock";
    // sd_watchdog_enabled() honours $WATCHDOG_PID when set: the shell sets it to its own pid,
    // which exec hands on to agentd.
    child_process agentd(
        {"/bin/sh", "-c", R"(WATCHDOG_PID=$$ exec "$0" "$@")", AGENTD_PATH, "--listen",
         "unix:" + socket, "--state-dir", dir / "state", "--upstream-url", idle_upstream},
        {{"NOTIFY_SOCKET", notify.path()}, {"WATCHDOG_USEC", "200000"}});

    ASSERT_EQ(notify.next(10s), "READY=1") << agentd.stderr_text();
    // Ready means listening: the socket answers as soon as READY=1 has arrived.
    EXPECT_EQ(status_of(unix_http(socket, get_request("/healthz"))), 200);

    // Every 100 ms (half of 200 ms): two pings well within two seconds.
    EXPECT_EQ(notify.next(2s), "WATCHDOG=1");
    EXPECT_EQ(notify.next(2s), "WATCHDOG=1");

    agentd.signal(SIGTERM);
    std::optional<std::string> message;
    do {
        message = notify.next(10s);
    } while (message == "WATCHDOG=1");  // pings go on while draining
    EXPECT_EQ(message, "STOPPING=1");
    EXPECT_EQ(agentd.wait_exit(10s), 0) << agentd.stderr_text();
}

TEST(systemd_test, socket_activation_serves_the_passed_tcp_and_unix_sockets) {
    temp_dir dir;
    auto socket = dir / "activated.sock";
    child_process agentd({SOCKET_ACTIVATE_PATH, "tcp", "unix:" + socket, "--", AGENTD_PATH,
                          "--state-dir", dir / "state", "--upstream-url", idle_upstream});
    auto port =
        agentd.wait_for_line(std::regex(R"(socket_activate: fd 3 127\.0\.0\.1:(\d+))"), 10s);
    ASSERT_TRUE(port) << agentd.stderr_text();
    // agentd announces the sockets it was given, and opens none of its own (no 127.0.0.1:7077).
    EXPECT_TRUE(agentd.wait_for_line(
        std::regex(R"(agentd listening on http://127\.0\.0\.1:)" + *port + "$"), 10s))
        << agentd.stderr_text();
    EXPECT_TRUE(agentd.wait_for_line(std::regex("agentd listening on unix:.*activated.sock$"), 10s))
        << agentd.stderr_text();

    EXPECT_EQ(http_request(static_cast<unsigned short>(std::stoi(*port)), "GET", "/healthz").status,
              200);
    EXPECT_EQ(status_of(unix_http(socket, get_request("/healthz"))), 200);

    agentd.signal(SIGTERM);
    EXPECT_EQ(agentd.wait_exit(10s), 0) << agentd.stderr_text();
    EXPECT_EQ(agentd.stderr_text().find(":7077"), std::string::npos) << agentd.stderr_text();
    // The socket unit owns an activated socket's file: agentd leaves it in place.
    EXPECT_TRUE(fs::is_socket(socket));
}

TEST(systemd_test, socket_activation_refuses_a_non_loopback_socket_with_auth_none) {
    temp_dir dir;
    child_process agentd({SOCKET_ACTIVATE_PATH, "tcp-any", "--", AGENTD_PATH, "--auth", "none",
                          "--state-dir", dir / "state", "--upstream-url", idle_upstream});
    EXPECT_EQ(agentd.wait_exit(10s), 1);
    EXPECT_TRUE(agentd.wait_for_line(std::regex("refusing the non-loopback socket"), 5s))
        << agentd.stderr_text();
}

}  // namespace
}  // namespace agentd::test
