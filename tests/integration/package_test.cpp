// The .deb from CPack (built by the package_build test): its files and conffiles, the packaged
// agentd started from the extracted tree with the packaged example config, lintian without
// errors, and the unit files through `systemd-analyze verify` against the extracted tree.
#include "ops_support.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `program` found in $PATH, or empty.
std::string in_path(std::string const& program) {
    char const* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0)
            return dir + "/" + program;
    return {};
}

// Runs `argv` with its stdout joined to its stderr; the exit status and all it printed.
std::pair<std::optional<int>, std::string> run(std::vector<std::string> argv,
                                               std::chrono::milliseconds timeout = 120s) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", R"(exec "$0" "$@" 1>&2)"});
    child_process p(argv);
    auto status = p.wait_exit(timeout);
    p.wait_for_line(std::regex("(?!x)x"), 5s);  // matches nothing: reads to the end of the pipe
    return {status, p.stderr_text()};
}

class package_test : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ASSERT_TRUE(fs::exists(AGENTD_DEB)) << AGENTD_DEB << " (built by ctest -R package_build)";
    }

    // The package's files under root_, its control files under control_.
    void extract() {
        auto [x, xout] = run({"dpkg-deb", "-x", AGENTD_DEB, root_.string()});
        ASSERT_EQ(x, 0) << xout;
        auto [e, eout] = run({"dpkg-deb", "-e", AGENTD_DEB, control_.string()});
        ASSERT_EQ(e, 0) << eout;
    }

    temp_dir dir_;
    fs::path root_ = dir_.path() / "root";
    fs::path control_ = dir_.path() / "control";
};

TEST_F(package_test, holds_the_binaries_units_config_and_docs) {
    ASSERT_NO_FATAL_FAILURE(extract());
    for (auto const* file :
         {"usr/bin/agentd", "usr/bin/agentctl", "lib/systemd/system/agentd.service",
          "lib/systemd/system/agentd.socket", "usr/lib/sysusers.d/agentd.conf",
          "usr/lib/tmpfiles.d/agentd.conf", "etc/agentd/agentd.toml",
          "usr/share/doc/agentd/copyright", "usr/share/doc/agentd/changelog.gz",
          "usr/share/doc/agentd/README.md"})
        EXPECT_TRUE(fs::is_regular_file(root_ / file)) << file;
    std::ifstream conffiles(control_ / "conffiles");
    std::string line;
    std::getline(conffiles, line);
    EXPECT_EQ(line, "/etc/agentd/agentd.toml");
    for (auto const* script : {"postinst", "postrm"})
        EXPECT_TRUE(fs::status(control_ / script).permissions() == fs::perms(0755)) << script;
}

TEST_F(package_test, packaged_agentd_runs_with_the_packaged_config) {
    ASSERT_NO_FATAL_FAILURE(extract());
    auto agentd = (root_ / "usr/bin/agentd").string();
    auto config = (root_ / "etc/agentd/agentd.toml").string();
    auto [printed, toml] = run({agentd, "--config", config, "--print-config"});
    EXPECT_EQ(printed, 0) << toml;
    EXPECT_NE(toml.find("max_running = 16"), std::string::npos) << toml;

    // Flags win over the packaged config's listen = ["127.0.0.1:7077"].
    child_process p(
        {agentd, "--config", config, "--listen", "127.0.0.1:0", "--state-dir", dir_ / "state"});
    auto port =
        p.wait_for_line(std::regex(R"(agentd listening on http://127\.0\.0\.1:(\d+))"), 10s);
    ASSERT_TRUE(port) << p.stderr_text();
    auto health = http_request(static_cast<unsigned short>(std::stoi(*port)), "GET", "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0) << p.stderr_text();
}

TEST_F(package_test, lintian_finds_no_errors) {
    if (in_path("lintian").empty()) GTEST_SKIP() << "lintian is not installed";
    auto [status, report] = run({"lintian", "--tag-display-limit", "0", AGENTD_DEB}, 170s);
    ASSERT_TRUE(status) << "lintian did not finish";
    EXPECT_FALSE(std::regex_search(report, std::regex("(^|\n)E: "))) << report;
    std::cout << "lintian:\n" << report;  // warnings stay visible in the test log
}

TEST_F(package_test, units_pass_systemd_analyze_verify) {
    fs::path const system_units = "/lib/systemd/system";
    if (in_path("systemd-analyze").empty() || !fs::is_directory(system_units))
        GTEST_SKIP() << "systemd is not installed";
    ASSERT_NO_FATAL_FAILURE(extract());
    // --root checks ExecStart= in the extracted tree; the targets and slices the units refer to
    // come from the host.
    auto units = root_ / "lib/systemd/system";
    for (auto const& entry : fs::directory_iterator(system_units)) {
        auto ext = entry.path().extension();
        if (ext == ".target" || ext == ".slice")
            fs::copy(entry.path(), units / entry.path().filename(),
                     fs::copy_options::copy_symlinks);
    }
    auto [status, report] =
        run({"systemd-analyze", "verify", "--root=" + root_.string(),
             (units / "agentd.service").string(), (units / "agentd.socket").string()});
    EXPECT_EQ(status, 0) << report;
    EXPECT_EQ(report, "") << "warnings, e.g. unknown keys";
}

}  // namespace
}  // namespace agentd::test
