// agentctl against the real agentd and the fake upstream: it finds the token in the state dir,
// starts, waits, shows status, peeks and cancels, prints JSON with --json, answers permissions
// and questions with `respond`, and exits with the codes scripts rely on (0 completed, 1 failed,
// 2 usage, 3 timeout, 4 unreachable, 5 input needed).
#include "agentd_fixture.hpp"

#include <sys/wait.h>

#include <cstdio>

namespace agentd::test {
namespace {

struct run_result {
    int exit_code = -1;
    std::string out;
};

// Runs agentctl through the shell with stdout (and with `merge_stderr` stderr too) captured;
// arguments are single-quoted.
run_result agentctl(agentd_process& a, std::vector<std::string> args, bool with_url = true,
                    bool merge_stderr = false) {
    std::string cmd = AGENTCTL_PATH;
    if (with_url) cmd += fmt::format(" --url http://127.0.0.1:{}", a.port());
    cmd += " --state-dir '" + a.state_dir().string() + "'";
    for (auto const& arg : args) cmd += " '" + arg + "'";
    run_result r;
    FILE* pipe = ::popen((cmd + (merge_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
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

// Waits (agents_wait, event-driven) until job `id` is waiting; its first pending request.
json::object first_request(agentd_process& a, std::string const& id) {
    auto waited =
        a.call("agents_wait", {{"jobs", json::array{json::string(id)}}, {"timeout_ms", 10'000}});
    EXPECT_EQ(waited.at("needs_input"), (json::array{json::string(id)})) << waited;
    auto const& job = jobs_of(waited).at(0).as_object();
    auto const* requests = job.if_contains("requests");
    if (requests == nullptr || !requests->is_array() || requests->as_array().empty()) return {};
    return requests->as_array().at(0).as_object();
}

// The job's output once it has finished.
std::string output_after(agentd_process& a, std::string const& id) {
    auto waited = a.call(
        "agents_wait",
        {{"jobs", json::array{json::string(id)}}, {"on_input", "ignore"}, {"timeout_ms", 10'000}});
    auto const& job = jobs_of(waited).at(0);
    EXPECT_EQ(str(job, "state"), "completed") << job;
    return str(job, "output");
}

TEST_F(agentd_test, AgentctlRespondAnswersPermissionsAndQuestions) {
    auto started =
        agentd_->call("agents_start",
                      {{"tasks", json::array{task("[[fake permission=bash patterns=rm_-rf_build]]"),
                                             task("[[fake permission=bash patterns=make_all]]"),
                                             task("[[fake permission=bash patterns=git_push]]"),
                                             task("[[fake question=red|green|blue]]")}}});
    std::vector<std::string> ids;
    for (auto const& job : jobs_of(started)) ids.push_back(str(job, "id"));
    ASSERT_EQ(ids.size(), 4u);

    // allow: the job's new state, then the tool runs once.
    auto request = first_request(*agentd_, ids[0]);
    EXPECT_EQ(str(request, "kind"), "permission");
    auto allowed = agentctl(*agentd_, {"respond", ids[0], str(request, "id"), "allow"});
    EXPECT_EQ(allowed.exit_code, 0) << allowed.out;
    EXPECT_EQ(allowed.out.rfind(ids[0] + "  ", 0), 0u) << allowed.out;
    EXPECT_NE(output_after(*agentd_, ids[0]).find("permission once: ok"), std::string::npos);

    // always (allow_always on the wire), recorded as the caller's answer.
    request = first_request(*agentd_, ids[1]);
    auto always = agentctl(*agentd_, {"respond", ids[1], str(request, "id"), "always"});
    EXPECT_EQ(always.exit_code, 0) << always.out;
    EXPECT_NE(output_after(*agentd_, ids[1]).find("permission always: ok"), std::string::npos);
    auto status = agentd_->call("agents_status", {{"jobs", json::array{json::string(ids[1])}}});
    auto const& answered = jobs_of(status).at(0).at("answered").as_array();
    ASSERT_EQ(answered.size(), 1u);
    EXPECT_EQ(str(answered[0], "decision"), "allow_always");
    EXPECT_EQ(str(answered[0], "by"), "caller");

    // deny with a message the sub-agent gets.
    request = first_request(*agentd_, ids[2]);
    auto denied = agentctl(
        *agentd_, {"respond", ids[2], str(request, "id"), "deny", "--message", "not_on_friday"});
    EXPECT_EQ(denied.exit_code, 0) << denied.out;
    EXPECT_NE(output_after(*agentd_, ids[2]).find("permission rejected: not_on_friday"),
              std::string::npos);

    // a question answered by its label.
    request = first_request(*agentd_, ids[3]);
    EXPECT_EQ(str(request, "kind"), "question");
    auto answered_q =
        agentctl(*agentd_, {"respond", ids[3], str(request, "id"), "--answer", "green"});
    EXPECT_EQ(answered_q.exit_code, 0) << answered_q.out;
    EXPECT_NE(output_after(*agentd_, ids[3]).find("answered: green"), std::string::npos);
}

TEST_F(agentd_test, AgentctlRespondErrorsAreClear) {
    auto started = agentd_->call(
        "agents_start", {{"tasks", json::array{task("[[fake permission=bash patterns=ls]]")}}});
    auto id = str(jobs_of(started).at(0), "id");
    auto request = first_request(*agentd_, id);

    // A request that is not pending: the daemon's -32602 on `request`, exit 1.
    auto stale =
        agentctl(*agentd_, {"respond", id, "per_000000000000000000000000", "allow"}, true, true);
    EXPECT_EQ(stale.exit_code, 1) << stale.out;
    EXPECT_NE(stale.out.find("error -32602"), std::string::npos) << stale.out;
    EXPECT_NE(stale.out.find("field request"), std::string::npos) << stale.out;
    // Answers that do not fit a permission: -32602 too, and the request stays pending.
    auto misfit =
        agentctl(*agentd_, {"respond", id, str(request, "id"), "--answer", "red"}, true, true);
    EXPECT_EQ(misfit.exit_code, 1) << misfit.out;
    EXPECT_NE(misfit.out.find("error -32602"), std::string::npos) << misfit.out;

    // Usage errors never reach the daemon: exit 2.
    EXPECT_EQ(agentctl(*agentd_, {"respond", id, str(request, "id")}).exit_code, 2);
    EXPECT_EQ(agentctl(*agentd_, {"respond", id, str(request, "id"), "maybe"}).exit_code, 2);
    EXPECT_EQ(agentctl(*agentd_, {"respond", id, str(request, "id"), "allow", "--message", "x"})
                  .exit_code,
              2);
    EXPECT_EQ(agentctl(*agentd_, {"respond", id, str(request, "id"), "--answer", "0=x"}).exit_code,
              2);

    // A plain wait on a pipe comes back for the request: its line, then exit 5.
    auto waited = agentctl(*agentd_, {"wait", "--timeout", "10s", id});
    EXPECT_EQ(waited.exit_code, 5) << waited.out;
    EXPECT_NE(waited.out.find(id + "  " + str(request, "id") + "  permission  bash  ls"),
              std::string::npos)
        << waited.out;
    auto listed = agentctl(*agentd_, {"status", id});
    EXPECT_NE(listed.out.find("waiting"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("1 request"), std::string::npos) << listed.out;

    EXPECT_EQ(agentctl(*agentd_, {"respond", id, str(request, "id"), "allow"}).exit_code, 0);
    EXPECT_NE(output_after(*agentd_, id).find("permission once"), std::string::npos);
}

}  // namespace
}  // namespace agentd::test
