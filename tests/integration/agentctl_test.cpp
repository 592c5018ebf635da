// agentctl against the real agentd and the fake upstream: it finds the token in the state dir,
// starts, waits, shows status, peeks and cancels, prints JSON with --json, answers permissions
// and questions with `respond`, and exits with the codes scripts rely on (0 completed, 1 failed,
// 2 usage, 3 timeout, 4 unreachable, 5 input needed, 6 unknown id). Daily use (issue #17): a
// wait without --timeout lasts until the jobs end, in slices; status --state; cancel --all.
#include "agentd_fixture.hpp"

#include <fmt/ranges.h>

#include <sys/wait.h>

#include <cstdio>

namespace agentd::test {
namespace {

struct run_result {
    int exit_code = -1;
    std::string out;
};

// Runs agentctl through the shell with stdout (and with `merge_stderr` stderr too) captured;
// arguments are single-quoted; `env` ("NAME=value …") is put before the command.
run_result agentctl(agentd_process& a, std::vector<std::string> args, bool with_url = true,
                    bool merge_stderr = false, std::string const& env = {}) {
    std::string cmd = env.empty() ? AGENTCTL_PATH : env + " " + AGENTCTL_PATH;
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

std::string started_id(run_result const& started, std::size_t i = 0) {
    return str(json::parse(started.out).at("jobs").at(i), "id");
}

// A wait without --timeout: agents_wait calls of one slice each (300 ms here) until the jobs end,
// where one call would have timed out; jobs that ended in an earlier slice are still reported.
TEST_F(agentd_test, AgentctlWaitWithoutTimeoutLastsUntilTheJobsEnd) {
    std::string const slices = "AGENTCTL_WAIT_SLICE_MS=300";
    // Without ids the wait takes the jobs unfinished when it starts: "quick" must outlast the
    // start of a second agentctl process, even under a sanitizer.
    auto started = agentctl(*agentd_, {"--json", "start", "quick [[fake latency_ms=1500]]",
                                       "slow [[fake latency_ms=3000]]"});
    ASSERT_EQ(started.exit_code, 0) << started.out;
    auto waited = agentctl(*agentd_, {"wait"}, true, false, slices);
    EXPECT_EQ(waited.exit_code, 0) << waited.out;
    EXPECT_NE(waited.out.find("echo: quick"), std::string::npos) << waited.out;
    EXPECT_NE(waited.out.find("echo: slow"), std::string::npos) << waited.out;

    // With ids, and --any: the same slices, until the first one ends.
    auto more = agentctl(*agentd_, {"--json", "start", "later [[fake latency_ms=1500]]",
                                    "much_later [[fake latency_ms=20000]]"});
    auto any = agentctl(*agentd_, {"wait", "--any", started_id(more, 0), started_id(more, 1)}, true,
                        false, slices);
    EXPECT_EQ(any.exit_code, 0) << any.out;
    EXPECT_NE(any.out.find("echo: later"), std::string::npos) << any.out;

    // --timeout still ends the wait, across slices: exit 3, the job goes on.
    auto timed =
        agentctl(*agentd_, {"wait", "--timeout", "1s", started_id(more, 1)}, true, true, slices);
    EXPECT_EQ(timed.exit_code, 3) << timed.out;
    EXPECT_NE(timed.out.find("wait timed out"), std::string::npos) << timed.out;
    auto status =
        agentd_->call("agents_status", {{"jobs", json::array{json::string(started_id(more, 1))}}});
    EXPECT_EQ(str(jobs_of(status).at(0), "state"), "running");

    // A slice the daemon would refuse is a usage error before anything is sent.
    for (auto bad : {"0", "3600001", "5s", "-1"})
        EXPECT_EQ(
            agentctl(*agentd_, {"wait"}, true, false, fmt::format("AGENTCTL_WAIT_SLICE_MS={}", bad))
                .exit_code,
            2)
            << bad;
}

// The per-call HTTP deadline is --http-timeout-ms; wait's --timeout-ms is the wait's own.
TEST_F(agentd_test, AgentctlHttpDeadlineIsItsOwnFlag) {
    auto started = agentctl(*agentd_, {"--json", "start", "slow [[fake latency_ms=20000]]"});
    auto id = started_id(started);
    // The wait (600 ms) outlasts the HTTP deadline (100 ms): the daemon's hold is added on top.
    auto waited =
        agentctl(*agentd_, {"--http-timeout-ms", "100", "wait", "--timeout-ms", "600", id});
    EXPECT_EQ(waited.exit_code, 3) << waited.out;
    auto after = agentctl(*agentd_, {"status", id, "--http-timeout-ms", "5000"});
    EXPECT_EQ(after.exit_code, 0) << after.out;
    EXPECT_EQ(agentctl(*agentd_, {"--timeout-ms", "100", "status"}).exit_code, 2);
}

TEST_F(agentd_test, AgentctlStatusFiltersByState) {
    auto started = agentd_->call(
        "agents_start", {{"tasks", json::array{task("quick"), task("boom [[fake fault=500]]"),
                                               task("hold [[fake latency_ms=20000]]")}}});
    std::vector<std::string> ids;
    for (auto const& job : jobs_of(started)) ids.push_back(str(job, "id"));
    agentd_->call("agents_wait", {{"jobs", json::array{json::string(ids[0]), json::string(ids[1])}},
                                  {"timeout_ms", 10'000}});

    auto running = agentctl(*agentd_, {"status", "--state", "running"});
    EXPECT_EQ(running.exit_code, 0) << running.out;
    EXPECT_NE(running.out.find(ids[2]), std::string::npos) << running.out;
    EXPECT_EQ(running.out.find(ids[0]), std::string::npos) << running.out;
    EXPECT_EQ(running.out.find(ids[1]), std::string::npos) << running.out;

    auto ended = agentctl(*agentd_, {"--json", "status", "--state", "completed,failed"});
    EXPECT_EQ(ended.exit_code, 0) << ended.out;
    auto ended_doc = json::parse(ended.out);
    auto const& listed = ended_doc.at("jobs").as_array();
    ASSERT_EQ(listed.size(), 2u) << ended.out;
    EXPECT_EQ(str(listed[0], "id"), ids[1]);  // newest first, as the daemon lists them
    EXPECT_EQ(str(listed[1], "id"), ids[0]);

    // With ids, the filter applies to those.
    auto some = agentctl(*agentd_, {"status", "--state", "waiting,queued", ids[0], ids[2]});
    EXPECT_EQ(some.exit_code, 0);
    // The total is the daemon's, over the jobs it listed; the line says how many are shown.
    EXPECT_EQ(some.out.rfind("ID  STATE  ELAPSED  DESCRIPTION\ntotal: 2 jobs (0 shown), ", 0), 0u)
        << some.out;

    auto bad = agentctl(*agentd_, {"status", "--state", "running,done"}, true, true);
    EXPECT_EQ(bad.exit_code, 2) << bad.out;
    EXPECT_NE(bad.out.find("unknown state \"done\""), std::string::npos) << bad.out;
}

// status ends with the session's usage total, from agents_status's `usage`, the cost as a plain
// decimal; a job without a description is listed by the start of its prompt.
TEST_F(agentd_test, AgentctlStatusPrintsTheUsageTotal) {
    auto started = agentd_->call(
        "agents_start",
        {{"session", "bill"},
         {"tasks", json::array{task("one", "first"), task("Summarise the design notes"),
                               task("three", "third")}}});
    agentd_->call("agents_wait", {{"session", "bill"}, {"timeout_ms", 10'000}});
    auto listed = agentd_->call("agents_status", {{"session", "bill"}});
    auto const& usage = listed.at("usage");
    ASSERT_GT(usage.at("input_tokens").as_int64(), 0) << usage;
    // Three jobs of 0.0012: the double sum is 0.0036000000000000003, printed as 0.0036.
    ASSERT_NEAR(usage.at("cost").as_double(), 0.0036, 1e-12) << usage;
    auto expected =
        fmt::format("total: 3 jobs, tokens {} in / {} out, cost 0.0036\n",
                    usage.at("input_tokens").as_int64(), usage.at("output_tokens").as_int64());

    auto status = agentctl(*agentd_, {"--session", "bill", "status"});
    EXPECT_EQ(status.exit_code, 0) << status.out;
    ASSERT_GE(status.out.size(), expected.size()) << status.out;
    EXPECT_EQ(status.out.substr(status.out.size() - expected.size()), expected) << status.out;
    auto id = str(jobs_of(started).at(1), "id");
    auto row = status.out.find(id);
    ASSERT_NE(row, std::string::npos) << status.out;
    EXPECT_NE(status.out.find("Summarise the design notes\n", row), std::string::npos)
        << status.out;

    // --json keeps the RPC result's shape, usage included, in plain decimals.
    auto as_json = agentctl(*agentd_, {"--json", "--session", "bill", "status"});
    EXPECT_EQ(json::parse(as_json.out).at("usage"), usage) << as_json.out;
    EXPECT_EQ(as_json.out.find("E-"), std::string::npos) << as_json.out;
    EXPECT_NE(as_json.out.find("\"cost\": 0.0036"), std::string::npos) << as_json.out;

    // An empty session has a zero total.
    auto none = agentctl(*agentd_, {"--session", "nobody", "status"});
    EXPECT_EQ(none.out,
              "ID  STATE  ELAPSED  DESCRIPTION\ntotal: 0 jobs, tokens 0 in / 0 out, cost 0\n");
}

TEST_F(agentd_test, AgentctlCancelAllStopsTheSessionsUnfinishedJobs) {
    auto mine =
        agentd_->call("agents_start",
                      {{"session", "cx"},
                       {"tasks", json::array{task("quick"), task("hold [[fake latency_ms=20000]]"),
                                             task("hold too [[fake latency_ms=20000]]")}}});
    auto other = agentd_->call(
        "agents_start",
        {{"session", "elsewhere"}, {"tasks", json::array{task("hold [[fake latency_ms=20000]]")}}});
    std::vector<std::string> ids;
    for (auto const& job : jobs_of(mine)) ids.push_back(str(job, "id"));
    agentd_->call(
        "agents_wait",
        {{"session", "cx"}, {"jobs", json::array{json::string(ids[0])}}, {"timeout_ms", 10'000}});

    auto cancelled = agentctl(*agentd_, {"--session", "cx", "cancel", "--all"});
    EXPECT_EQ(cancelled.exit_code, 0) << cancelled.out;
    EXPECT_NE(cancelled.out.find(ids[1] + "  cancelled"), std::string::npos) << cancelled.out;
    EXPECT_NE(cancelled.out.find(ids[2] + "  cancelled"), std::string::npos) << cancelled.out;
    EXPECT_EQ(cancelled.out.find(ids[0]), std::string::npos) << "a finished job is left out";

    auto status = agentd_->call("agents_status", {{"session", "cx"}});
    for (auto const& job : jobs_of(status))
        EXPECT_EQ(str(job, "state"), str(job, "id") == ids[0] ? "completed" : "cancelled") << job;
    auto untouched = agentd_->call("agents_status", {{"session", "elsewhere"}});
    EXPECT_EQ(str(jobs_of(untouched).at(0), "state"), "running") << "another session's job";

    // Nothing left: says so, exit 0; --json gives an empty list.
    auto again = agentctl(*agentd_, {"--session", "cx", "cancel", "--all"}, true, true);
    EXPECT_EQ(again.exit_code, 0) << again.out;
    EXPECT_NE(again.out.find("no unfinished jobs"), std::string::npos) << again.out;
    auto quiet = agentctl(*agentd_, {"--session", "cx", "--json", "cancel", "--all"});
    EXPECT_EQ(json::parse(quiet.out), json::parse(R"({"jobs":[]})")) << quiet.out;
    EXPECT_EQ(agentctl(*agentd_, {"cancel", "--all", ids[1]}).exit_code, 2);
    EXPECT_EQ(agentctl(*agentd_, {"cancel"}).exit_code, 2);
}

TEST_F(agentd_test, AgentctlExitsSixForAnUnknownId) {
    std::string const unknown = "job_00000000000000000000000000000000";
    auto started =
        agentd_->call("agents_start", {{"tasks", json::array{task("boom [[fake fault=500]]")}}});
    auto failed = str(jobs_of(started).at(0), "id");
    agentd_->call("agents_wait", {{"timeout_ms", 10'000}});

    for (auto const& args : std::vector<std::vector<std::string>>{
             {"status", unknown},
             {"status", failed, unknown},
             {"wait", unknown},
             {"wait", failed, unknown},  // outranks the failure (1)
             {"cancel", unknown},
             {"peek", unknown},
             {"respond", unknown, "per_000000000000000000000000", "allow"},
             {"status", "--state", "running", unknown}}) {
        auto r = agentctl(*agentd_, args, true, true);
        EXPECT_EQ(r.exit_code, 6) << fmt::format("{}", fmt::join(args, " ")) << "\n" << r.out;
        if (args[0] != "respond") {
            EXPECT_NE(r.out.find("no such job: " + unknown), std::string::npos) << r.out;
        }
    }
    // Another owner's id looks the same; a known one does not.
    EXPECT_EQ(agentctl(*agentd_, {"status", failed}).exit_code, 0);
    EXPECT_EQ(agentctl(*agentd_, {"wait", failed}).exit_code, 1);

    // Every exit code is in --help.
    auto help = agentctl(*agentd_, {"--help"});
    EXPECT_EQ(help.exit_code, 0);
    for (auto code : {"0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "130 "})
        EXPECT_NE(help.out.find(std::string("\n  ") + code), std::string::npos) << code << help.out;
}

// On a pipe the status table is wrapped to 80 columns; a failed job's error is under its row.
TEST_F(agentd_test, AgentctlStatusPutsTheErrorOnItsOwnLines) {
    auto started = agentd_->call(
        "agents_start",
        {{"tasks", json::array{task("boom [[fake fault=500]]",
                                    "a description long enough to push any last column past the "
                                    "edge of an eighty-column terminal")}}});
    auto id = str(jobs_of(started).at(0), "id");
    agentd_->call("agents_wait", {{"timeout_ms", 10'000}});
    auto error = agentd_->call("agents_status", {{"jobs", json::array{json::string(id)}}});
    auto const& e = jobs_of(error).at(0).at("error");
    auto status = agentctl(*agentd_, {"status", id});
    EXPECT_EQ(status.exit_code, 0);
    std::vector<std::string> lines;
    for (std::size_t at = 0, end; (end = status.out.find('\n', at)) != std::string::npos;
         at = end + 1)
        lines.push_back(status.out.substr(at, end - at));
    ASSERT_GE(lines.size(), 3u) << status.out;
    EXPECT_EQ(lines[1].rfind(id + "  failed", 0), 0u) << status.out;
    EXPECT_EQ(lines[2].rfind("    error: upstream/prompt: ", 0), 0u) << status.out;
    std::string joined;
    for (std::size_t i = 2; i < lines.size(); ++i) {
        EXPECT_LT(lines[i].size(), 80u) << lines[i];
        joined += (i == 2 ? "" : " ") + lines[i].substr(4);
    }
    EXPECT_NE(joined.find(str(e, "message")), std::string::npos) << joined << "\n" << e;
}

// start --continue JOB: a follow-up in the job's upstream session; a second one is refused
// (exit 1, the reason on stderr), since only the latest job of a chain can be continued.
TEST_F(agentd_test, AgentctlContinueStartsAFollowUp) {
    // The JobView once its job has ended.
    auto finished = [&](std::string const& id) {
        auto done = agentd_->call(
            "agents_wait",
            json::object{{"jobs", json::array{json::value(id)}}, {"timeout_ms", 10000}});
        return jobs_of(done).at(0).as_object();
    };
    auto first = agentctl(*agentd_, {"start", "-q", "first"});
    ASSERT_EQ(first.exit_code, 0) << first.out;
    auto const id = first.out.substr(0, first.out.find('\n'));
    auto a = finished(id);
    auto next = agentctl(*agentd_, {"start", "-q", "--continue", id, "second"});
    ASSERT_EQ(next.exit_code, 0) << next.out;
    auto f = finished(next.out.substr(0, next.out.find('\n')));
    EXPECT_EQ(str(f, "continues"), id);
    EXPECT_EQ(str(f, "output"), "echo: second");
    EXPECT_EQ(str(f.at("upstream"), "session"), str(a.at("upstream"), "session"));
    auto again = agentctl(*agentd_, {"start", "--continue", id, "third"}, true, true);
    EXPECT_EQ(again.exit_code, 1) << again.out;
    EXPECT_NE(again.out.find("tasks[0].continue"), std::string::npos) << again.out;
    EXPECT_NE(again.out.find("was already continued by " + str(f, "id")), std::string::npos)
        << again.out;
}

}  // namespace
}  // namespace agentd::test
