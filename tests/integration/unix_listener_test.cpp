// `--listen unix:PATH`: the real agentd serves HTTP, JSON-RPC and agentctl on a 0600 socket file,
// replaces a stale file, refuses one a live process listens on or that is no socket, and removes
// its file on exit.
#include "ops_support.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char const* status_call = R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})";

class unix_listener_test : public ::testing::Test {
  protected:
    std::unique_ptr<child_process> start(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{AGENTD_PATH,   "--listen", "unix:" + socket_,
                                      "--state-dir", state_,     "--upstream-url",
                                      idle_upstream};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return std::make_unique<child_process>(argv);
    }

    // Waits for agentd's listening line; true when it names our socket.
    bool listening(child_process& agentd) {
        auto path = agentd.wait_for_line(std::regex("agentd listening on unix:(.*)$"), 10s);
        EXPECT_EQ(path, socket_) << agentd.stderr_text();
        return path == socket_;
    }

    std::string token() const {
        std::string t;
        std::getline(std::ifstream(state_ + "/token"), t);
        return t;
    }

    // Binds a unix socket at our path, listening or not; the caller closes it.
    int bind_socket(bool listen) const {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_.c_str());
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        if (listen) {
            EXPECT_EQ(::listen(fd, 4), 0);
        }
        return fd;
    }

    temp_dir dir_;
    std::string socket_ = dir_ / "agentd.sock";
    std::string state_ = dir_ / "state";
};

TEST_F(unix_listener_test, serves_rpc_and_agentctl_on_a_private_socket_removed_on_exit) {
    auto agentd = start();
    ASSERT_TRUE(listening(*agentd));
    struct stat st {};
    ASSERT_EQ(::lstat(socket_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    EXPECT_EQ(status_of(unix_http(socket_, get_request("/healthz"))), 200);
    auto rpc = unix_http(socket_, post_request("/rpc", status_call, token()));
    EXPECT_EQ(status_of(rpc), 200) << rpc;
    EXPECT_NE(rpc.find(R"("result")"), std::string::npos) << rpc;
    EXPECT_EQ(status_of(unix_http(socket_, post_request("/rpc", status_call, "wrong"))), 401);

    // The WebSocket upgrade works on the same stream type.
    auto upgrade =
        unix_http(socket_,
                  "GET /ws HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token() +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                  "\r\n\r\n");
    EXPECT_EQ(status_of(upgrade), 101) << upgrade;

    child_process ctl({AGENTCTL_PATH, "--url", "unix:" + socket_, "--state-dir", state_, "status"});
    EXPECT_EQ(ctl.wait_exit(10s), 0) << ctl.stderr_text();

    agentd->signal(SIGTERM);
    EXPECT_EQ(agentd->wait_exit(10s), 0) << agentd->stderr_text();
    EXPECT_FALSE(fs::exists(fs::symlink_status(socket_)));
}

TEST_F(unix_listener_test, auth_none_is_allowed_on_a_unix_socket) {
    auto agentd = start({"--auth", "none"});
    ASSERT_TRUE(listening(*agentd));
    EXPECT_EQ(status_of(unix_http(socket_, post_request("/rpc", status_call, ""))), 200);
}

TEST_F(unix_listener_test, a_stale_socket_file_is_replaced) {
    ::close(bind_socket(false));  // the file stays, nobody listens: a crashed daemon's leftover
    ASSERT_TRUE(fs::is_socket(socket_));
    auto agentd = start();
    ASSERT_TRUE(listening(*agentd));
    EXPECT_EQ(status_of(unix_http(socket_, get_request("/healthz"))), 200);
}

TEST_F(unix_listener_test, a_socket_a_live_process_listens_on_is_an_error) {
    int live = bind_socket(true);
    auto agentd = start();
    EXPECT_EQ(agentd->wait_exit(10s), 1);
    EXPECT_TRUE(agentd->wait_for_line(std::regex("another process is listening on it"), 5s))
        << agentd->stderr_text();
    EXPECT_TRUE(fs::is_socket(socket_));  // still the live process's
    ::close(live);
}

TEST_F(unix_listener_test, a_file_that_is_no_socket_is_left_alone) {
    std::ofstream(socket_) << "precious";
    auto agentd = start();
    EXPECT_EQ(agentd->wait_exit(10s), 1);
    EXPECT_TRUE(agentd->wait_for_line(std::regex("the file is not a socket"), 5s))
        << agentd->stderr_text();
    std::string content;
    std::getline(std::ifstream(socket_), content);
    EXPECT_EQ(content, "precious");
}

}  // namespace
}  // namespace agentd::test
