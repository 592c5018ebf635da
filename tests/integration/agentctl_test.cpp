// agentctl against the real agentd and the fake upstream: it finds the token in the state dir,
// starts, waits, shows status, peeks and cancels, prints JSON with --json, and exits with the
// codes scripts rely on (0 completed, 1 failed, 2 usage, 3 timeout, 4 unreachable).
#include "agentd_fixture.hpp"

#include <sys/wait.h>

#include <cstdio>

namespace agentd::test {
namespace {

struct run_result {
    int exit_code = -1;
    std::string out;
};

// Runs agentctl through the shell with stdout captured; arguments are single-quoted.
run_result agentctl(agentd_process& a, std::vector<std::string> args, bool with_url = true) {
    std::string cmd = AGENTCTL_PATH;
    if (with_url) cmd += fmt::format(" --url http://127.0.0.1:{}", a.port());
    cmd += " --state-dir '" + a.state_dir().string() + "'";
    for (auto const& arg : args) cmd += " '" + arg + "'";
    run_result r;
    FILE* pipe = ::popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!pipe) return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

TEST_F(agentd_test, AgentctlStartsWaitsAndPrintsJson) {
    // Slow enough that the wait below (which selects the jobs still running) finds them running
    // even when agentctl starts slowly, as under the sanitizers.
    auto started =
        agentctl(*agentd_, {"--json", "start", "--description", "cli",
                            "alpha [[fake latency_ms=1500]]", "beta [[fake latency_ms=1500]]"});
    ASSERT_EQ(started.exit_code, 0) << started.out;
    auto jobs = json::parse(started.out).at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 2u);
    auto id = str(jobs[0], "id");

    auto waited = agentctl(*agentd_, {"wait", "--timeout-ms", "10000"});
    EXPECT_EQ(waited.exit_code, 0) << waited.out;
    EXPECT_NE(waited.out.find("echo: alpha"), std::string::npos) << waited.out;
    EXPECT_NE(waited.out.find("echo: beta"), std::string::npos) << waited.out;

    auto status = agentctl(*agentd_, {"status", id});
    EXPECT_EQ(status.exit_code, 0);
    EXPECT_NE(status.out.find("completed"), std::string::npos) << status.out;

    auto peek = agentctl(*agentd_, {"peek", id});
    EXPECT_EQ(peek.exit_code, 0);
    EXPECT_NE(peek.out.find("echo: alpha"), std::string::npos) << peek.out;
}

TEST_F(agentd_test, AgentctlExitCodesTellScriptsWhatHappened) {
    auto failed = agentctl(*agentd_, {"--json", "start", "boom [[fake fault=500]]"});
    ASSERT_EQ(failed.exit_code, 0);
    auto failed_id = str(json::parse(failed.out).at("jobs").at(0), "id");
    EXPECT_EQ(agentctl(*agentd_, {"wait", failed_id}).exit_code, 1);

    auto slow = agentctl(*agentd_, {"--json", "start", "slow [[fake latency_ms=5000]]"});
    auto slow_id = str(json::parse(slow.out).at("jobs").at(0), "id");
    EXPECT_EQ(agentctl(*agentd_, {"wait", "--timeout-ms", "100", slow_id}).exit_code, 3);

    auto cancelled = agentctl(*agentd_, {"cancel", slow_id});
    EXPECT_EQ(cancelled.exit_code, 0);
    EXPECT_NE(cancelled.out.find("cancelled"), std::string::npos) << cancelled.out;

    EXPECT_EQ(agentctl(*agentd_, {"frobnicate"}).exit_code, 2);
    auto unreachable = agentctl(
        *agentd_, {"--url", fmt::format("http://127.0.0.1:{}", unused_port()), "status"}, false);
    EXPECT_EQ(unreachable.exit_code, 4);
}

}  // namespace
}  // namespace agentd::test
