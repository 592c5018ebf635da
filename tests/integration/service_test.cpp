// `agentctl service install|uninstall|status` with HOME and XDG_CONFIG_HOME in a temp dir and a
// stub systemctl that records its arguments; the units through `systemd-analyze verify`; agentd
// run as the user unit runs it (socket activation, $STATE_DIRECTORY) and found by agentctl; and
// the token's mode (--token-mode) on a real start.
#include "ops_support.hpp"
#include "support/fake_upstream.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using environment = std::vector<std::pair<std::string, std::string>>;

struct run_result {
    std::optional<int> status;
    std::string output;  // stdout and stderr
};

// Runs `argv` with stdout joined to stderr, under `env` (added to this process's environment).
run_result run(std::vector<std::string> argv, environment env = {}) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", R"(exec "$0" "$@" 1>&2)"});
    child_process p(argv, std::move(env));
    auto status = p.wait_exit(60s);
    p.wait_for_line(std::regex("(?!x)x"), 5s);  // matches nothing: reads to the end of the pipe
    return {status, p.stderr_text()};
}

std::string read(fs::path const& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_executable(fs::path const& path, std::string const& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    fs::permissions(path, fs::perms::owner_all);
}

unsigned mode_of(fs::path const& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
}

std::string in_path(std::string const& program) {
    auto [status, found] = run({"/bin/sh", "-c", "command -v " + program});
    return status == 0 ? found : std::string{};
}

fs::path const packaged = fs::path(AGENTD_SOURCE_DIR) / "packaging/user";

// The packaged unit with ExecStart replaced, as install writes it after its header line.
std::string packaged_with(std::string const& unit, std::string const& exec_start) {
    auto text = read(packaged / unit);
    auto at = text.find("ExecStart=/usr/bin/agentd\n");
    EXPECT_NE(at, std::string::npos);
    return text.replace(at, std::string("ExecStart=/usr/bin/agentd").size(), exec_start);
}

class service_test : public ::testing::Test {
  protected:
    void SetUp() override { stub_systemctl(false); }

    // A systemctl that appends its arguments to log_; `fail`: no user manager, as here.
    void stub_systemctl(bool fail) {
        write_executable(systemctl_,
                         "#!/bin/sh\necho \"$*\" >> '" + log_.string() + "'\n" +
                             (fail ? "echo 'Failed to connect to bus: No medium "
                                     "found' >&2\nexit 1\n"
                                   : "[ \"$2\" = is-active ] && echo active\nexit 0\n"));
    }

    // agentctl with only this test's HOME, XDG_CONFIG_HOME and stub systemctl.
    run_result agentctl(std::vector<std::string> args, environment extra = {},
                        std::string program = AGENTCTL_PATH) {
        args.insert(args.begin(), program);
        environment env{{"HOME", dir_ / "home"},  {"XDG_CONFIG_HOME", dir_ / "config"},
                        {"XDG_STATE_HOME", ""},   {"STATE_DIRECTORY", ""},
                        {"AGENTD_STATE_DIR", ""}, {"AGENTD_TOKEN", ""},
                        {"AGENTD_URL", ""},       {"AGENTCTL_SYSTEMCTL", systemctl_.string()}};
        env.insert(env.end(), extra.begin(), extra.end());
        return run(args, env);
    }

    std::string calls() const { return read(log_); }

    temp_dir dir_;
    fs::path systemctl_ = dir_.path() / "bin/systemctl";
    fs::path log_ = dir_.path() / "systemctl.log";
    fs::path units_ = dir_.path() / "config/systemd/user";
};

TEST_F(service_test, install_writes_the_packaged_units_and_enables_the_socket_twice_alike) {
    auto installed = agentctl(
        {"service", "install", "--agentd", AGENTD_PATH, "--upstream-url", "http://127.0.0.1:4096"});
    ASSERT_EQ(installed.status, 0) << installed.output;
    auto service = read(units_ / "agentd.service");
    auto socket = read(units_ / "agentd.socket");
    auto exec_start = "ExecStart=" + fs::path(AGENTD_PATH).lexically_normal().string() +
                      " --upstream-url http://127.0.0.1:4096";
    EXPECT_TRUE(service.starts_with("# Written by `agentctl service install`")) << service;
    EXPECT_TRUE(service.ends_with(packaged_with("agentd.service", exec_start))) << service;
    EXPECT_TRUE(socket.ends_with(read(packaged / "agentd.socket"))) << socket;
    EXPECT_EQ(calls(), "--user daemon-reload\n--user enable --now agentd.socket\n");

    auto again = agentctl(
        {"service", "install", "--agentd", AGENTD_PATH, "--upstream-url", "http://127.0.0.1:4096"});
    ASSERT_EQ(again.status, 0) << again.output;
    EXPECT_EQ(read(units_ / "agentd.service"), service);
    EXPECT_EQ(read(units_ / "agentd.socket"), socket);
    EXPECT_EQ(calls(),
              "--user daemon-reload\n--user enable --now agentd.socket\n"
              "--user daemon-reload\n--user enable --now agentd.socket\n");
}

TEST_F(service_test, install_finds_agentd_in_the_build_tree_or_beside_a_copied_agentctl) {
    auto built = agentctl({"service", "install", "--no-start"});
    ASSERT_EQ(built.status, 0) << built.output;
    EXPECT_NE(read(units_ / "agentd.service")
                  .find("\nExecStart=" + fs::canonical(AGENTD_PATH).string() + "\n"),
              std::string::npos)
        << read(units_ / "agentd.service");
    EXPECT_EQ(calls(), "--user daemon-reload\n");  // --no-start: no enable

    auto bin = dir_.path() / "installed/bin";
    fs::create_directories(bin);
    fs::copy_file(AGENTCTL_PATH, bin / "agentctl");
    write_executable(bin / "agentd", "#!/bin/sh\n");
    auto copied = agentctl({"service", "install"}, {}, (bin / "agentctl").string());
    ASSERT_EQ(copied.status, 0) << copied.output;
    EXPECT_NE(
        read(units_ / "agentd.service").find("\nExecStart=" + (bin / "agentd").string() + "\n"),
        std::string::npos);
}

TEST_F(service_test, install_without_any_agentd_refuses_and_writes_nothing) {
    auto lonely = dir_.path() / "lonely/agentctl";
    fs::create_directories(lonely.parent_path());
    fs::copy_file(AGENTCTL_PATH, lonely);
    auto refused = agentctl({"service", "install"}, {{"PATH", dir_ / "empty"}}, lonely.string());
    EXPECT_EQ(refused.status, 1) << refused.output;
    EXPECT_NE(refused.output.find("no agentd found beside agentctl nor in $PATH; name it with "
                                  "--agentd PATH"),
              std::string::npos)
        << refused.output;
    auto named = agentctl({"service", "install", "--agentd", dir_ / "nowhere/agentd"});
    EXPECT_EQ(named.status, 1) << named.output;
    EXPECT_NE(named.output.find("nowhere/agentd: not an executable file"), std::string::npos)
        << named.output;
    EXPECT_FALSE(fs::exists(units_ / "agentd.service"));
    EXPECT_FALSE(fs::exists(log_));
}

TEST_F(service_test, without_a_user_manager_install_says_so_and_keeps_the_files) {
    stub_systemctl(true);
    auto failed = agentctl({"service", "install", "--agentd", AGENTD_PATH});
    EXPECT_EQ(failed.status, 1) << failed.output;
    for (auto const* said :
         {"--user daemon-reload` failed (exit 1): Failed to connect to bus: No medium found",
          "the unit files stay in", "start agentd by hand:"})
        EXPECT_NE(failed.output.find(said), std::string::npos) << said << "\n" << failed.output;
    EXPECT_TRUE(fs::exists(units_ / "agentd.service"));
    EXPECT_TRUE(fs::exists(units_ / "agentd.socket"));
    EXPECT_EQ(calls(), "--user daemon-reload\n");  // nothing more after the failure

    auto status = agentctl({"service", "status", "--url", "http://127.0.0.1:9"});
    EXPECT_EQ(status.status, 3) << status.output;
    EXPECT_NE(status.output.find("agentd.socket: Failed to connect to bus"), std::string::npos)
        << status.output;
}

TEST_F(service_test, uninstall_disables_and_removes_the_units_and_a_second_one_is_no_error) {
    ASSERT_EQ(agentctl({"service", "install", "--agentd", AGENTD_PATH}).status, 0);
    fs::remove(log_);
    auto removed = agentctl({"service", "uninstall"});
    EXPECT_EQ(removed.status, 0) << removed.output;
    EXPECT_EQ(calls(), "--user disable --now agentd.socket agentd.service\n--user daemon-reload\n");
    EXPECT_FALSE(fs::exists(units_ / "agentd.service"));
    EXPECT_FALSE(fs::exists(units_ / "agentd.socket"));
    auto again = agentctl({"service", "uninstall"});
    EXPECT_EQ(again.status, 0) << again.output;
    EXPECT_NE(again.output.find("not installed"), std::string::npos) << again.output;
}

TEST_F(service_test, installed_and_packaged_user_units_pass_systemd_analyze_verify) {
    if (in_path("systemd-analyze").empty()) GTEST_SKIP() << "systemd is not installed";
    ASSERT_EQ(agentctl({"service", "install", "--agentd", AGENTD_PATH, "--upstream-url",
                        "http://127.0.0.1:4096", "--listen", "127.0.0.1:7177"})
                  .status,
              0);
    // The packaged files name /usr/bin/agentd, which verify wants to exist: the built one stands
    // in for it (the only change; `service install` makes the same one).
    auto packaged_dir = dir_.path() / "packaged";
    fs::create_directories(packaged_dir);
    std::ofstream(packaged_dir / "agentd.service")
        << packaged_with("agentd.service", "ExecStart=" + std::string(AGENTD_PATH));
    fs::copy_file(packaged / "agentd.socket", packaged_dir / "agentd.socket");
    // A user manager's paths without one running: a runtime dir of our own.
    auto runtime = dir_.path() / "runtime";
    fs::create_directories(runtime);
    fs::permissions(runtime, fs::perms::owner_all);
    for (auto const& dir : {units_, packaged_dir}) {
        auto [status, report] =
            run({"systemd-analyze", "--user", "verify", (dir / "agentd.service").string(),
                 (dir / "agentd.socket").string()},
                {{"XDG_RUNTIME_DIR", runtime.string()}, {"HOME", dir_ / "home"}});
        EXPECT_EQ(status, 0) << dir << "\n" << report;
        EXPECT_EQ(report, "") << dir << ": warnings, e.g. unknown keys";
    }
    EXPECT_NE(read(units_ / "agentd.socket").find("\nListenStream=127.0.0.1:7177\n"),
              std::string::npos);
}

// What the user unit does, without systemd: the socket passed in, $STATE_DIRECTORY set; agentctl
// with nothing but $XDG_STATE_HOME finds the token there, runs a job, and `service status` is 0.
TEST_F(service_test, agentd_run_as_the_user_unit_is_found_by_agentctl_through_xdg_state_home) {
    fake_upstream upstream(FAKE_OPENCODE_PATH);
    auto state = dir_.path() / "state";
    fs::create_directories(state / "agentd");
    fs::permissions(state / "agentd", fs::perms::owner_all);
    child_process agentd(
        {SOCKET_ACTIVATE_PATH, "tcp", "--", AGENTD_PATH, "--upstream-url", upstream.url()},
        {{"STATE_DIRECTORY", (state / "agentd").string()}});
    auto port =
        agentd.wait_for_line(std::regex(R"(socket_activate: fd 3 127\.0\.0\.1:(\d+))"), 10s);
    ASSERT_TRUE(port) << agentd.stderr_text();
    ASSERT_TRUE(agentd.wait_for_line(std::regex("agentd listening on"), 10s))
        << agentd.stderr_text();
    auto url = "http://127.0.0.1:" + *port;
    environment xdg{{"XDG_STATE_HOME", state.string()}};

    auto job = agentctl({"--url", url, "start", "--wait", "hello from the user unit"}, xdg);
    EXPECT_EQ(job.status, 0) << job.output;
    EXPECT_NE(job.output.find("echo: hello from the user unit"), std::string::npos) << job.output;
    EXPECT_EQ(mode_of(state / "agentd/token"), 0600u);

    auto status = agentctl({"--url", url, "service", "status"}, xdg);
    EXPECT_EQ(status.status, 0) << status.output;
    for (auto const* said :
         {"agentd.socket: active\n", "agentd.service: active\n", " answers 200 OK\n"})
        EXPECT_NE(status.output.find(said), std::string::npos) << said << "\n" << status.output;
    EXPECT_NE(status.output.find("token: " + (state / "agentd/token").string() + "\n"),
              std::string::npos)
        << status.output;

    // Elsewhere there is no token: the daemon says no, and status names the missing file.
    environment other{{"XDG_STATE_HOME", (dir_.path() / "other").string()}};
    auto refused = agentctl({"--url", url, "status"}, other);
    EXPECT_EQ(refused.status, 4) << refused.output;
    EXPECT_NE(refused.output.find("unauthorized (no token: "), std::string::npos) << refused.output;
    agentd.signal(SIGTERM);
    EXPECT_EQ(agentd.wait_exit(10s), 0) << agentd.stderr_text();
}

// --token-mode 0640 (the packaged system config's) on a token agentd made 0600 before: the
// upgrade of a system service; a bad value stops agentd naming the flag.
TEST_F(service_test, token_mode_is_applied_at_every_start) {
    auto state = dir_.path() / "state";
    auto start = [&](std::vector<std::string> extra) {
        std::vector<std::string> argv{AGENTD_PATH,   "--listen",     "127.0.0.1:0",
                                      "--state-dir", state.string(), "--upstream-url",
                                      idle_upstream};
        argv.insert(argv.end(), extra.begin(), extra.end());
        child_process agentd(argv);
        ASSERT_TRUE(agentd.wait_for_line(std::regex("agentd listening on"), 10s))
            << agentd.stderr_text();
        agentd.signal(SIGTERM);
        EXPECT_EQ(agentd.wait_exit(10s), 0) << agentd.stderr_text();
    };
    ASSERT_NO_FATAL_FAILURE(start({}));
    EXPECT_EQ(mode_of(state / "token"), 0600u);
    auto token = read(state / "token");
    ASSERT_NO_FATAL_FAILURE(start({"--token-mode", "0640"}));
    EXPECT_EQ(mode_of(state / "token"), 0640u);
    EXPECT_EQ(read(state / "token"), token);

    auto [status, said] = run({AGENTD_PATH, "--token-mode", "644", "--state-dir", state.string()});
    EXPECT_EQ(status, 2);
    EXPECT_NE(said.find("--token-mode: '644' is not one of 0600, 0640"), std::string::npos) << said;
}

}  // namespace
}  // namespace agentd::test
