// End-to-end job behaviour of the real agentd binary against the fake OpenCode upstream over
// loopback: fan-out concurrency, every upstream fault mode, cancel → abort, waits, peek,
// ids across sessions and per-session listings, the launch gate, nesting depth, cancel
// cascades and retention.
#include "agentd_fixture.hpp"

#include <chrono>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

json::object start(agentd_process& a, json::array tasks, std::string session = {}) {
    json::object params{{"tasks", std::move(tasks)}};
    if (!session.empty()) params["session"] = session;
    return a.call("agents_start", std::move(params));
}

json::object wait_all(agentd_process& a, json::value ids, std::int64_t timeout_ms = 10000,
                      std::string session = {}) {
    json::object params{{"jobs", std::move(ids)}, {"timeout_ms", timeout_ms}};
    if (!session.empty()) params["session"] = session;
    return a.call("agents_wait", std::move(params));
}

// Runs one task to its end and returns its final JobView.
json::object run_one(agentd_process& a, json::object t) {
    auto started = start(a, json::array{std::move(t)});
    auto done = wait_all(a, ids_of(jobs_of(started)));
    EXPECT_TRUE(done.at("done").as_bool());
    return jobs_of(done).at(0).as_object();
}

// The upstream session of job `id` once it is created (polled: no call returns on it), or "".
std::string upstream_session_of(agentd_process& a, std::string const& id) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
        auto s = a.call("agents_status", json::object{{"jobs", json::array{json::value(id)}}});
        auto const& j = jobs_of(s)[0].as_object();
        if (j.contains("upstream")) return str(j.at("upstream"), "session");
        std::this_thread::sleep_for(20ms);
    }
    return {};
}

void expect_failed(json::object const& job, std::string_view kind, std::string_view phase) {
    EXPECT_EQ(str(job, "state"), "failed") << json::serialize(job);
    ASSERT_TRUE(job.contains("error")) << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "kind"), kind) << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "phase"), phase) << json::serialize(job);
    EXPECT_FALSE(str(job.at("error"), "message").empty());
    EXPECT_TRUE(job.contains("finished_at"));
}

TEST_F(agentd_test, FanOutOfEightRunsConcurrentlyUpstream) {
    json::array tasks;
    for (int i = 0; i < 8; ++i)
        tasks.push_back(
            task(fmt::format("task {} [[fake latency_ms=400]]", i), fmt::format("t{}", i)));
    auto started = start(*agentd_, tasks);
    ASSERT_EQ(jobs_of(started).size(), 8u);
    for (auto const& j : jobs_of(started)) {
        EXPECT_EQ(str(j, "id").substr(0, 4), "job_");
        EXPECT_EQ(str(j, "id").size(), 4u + 32u);
        EXPECT_TRUE(str(j, "state") == "queued" || str(j, "state") == "running");
    }
    EXPECT_TRUE(fake_->wait_counter("prompts_in_flight", 8, 5s)) << json::serialize(fake_->stats());
    auto done = wait_all(*agentd_, ids_of(jobs_of(started)));
    EXPECT_TRUE(done.at("done").as_bool());
    EXPECT_FALSE(done.at("timed_out").as_bool());
    auto const& jobs = jobs_of(done);
    ASSERT_EQ(jobs.size(), 8u);
    for (int i = 0; i < 8; ++i) {
        auto const& j = jobs[i].as_object();
        EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
        EXPECT_EQ(str(j, "description"), fmt::format("t{}", i));
        EXPECT_EQ(str(j, "output"), fmt::format("echo: task {}", i));
        EXPECT_FALSE(j.at("truncated").as_bool());
        EXPECT_EQ(str(j.at("upstream"), "backend"), "opencode");
        EXPECT_EQ(str(j.at("upstream"), "session").substr(0, 3), "ses");
        EXPECT_GT(j.at("usage").at("input_tokens").as_int64(), 0);
        EXPECT_GE(j.at("elapsed_ms").as_int64(), 350);
        EXPECT_EQ(j.at("depth").as_int64(), 1);
    }
    EXPECT_EQ(fake_->stats().at("max_prompts_in_flight").as_int64(), 8);
}

TEST_F(agentd_test, StatusSumsTheUsageOfTheListedJobsAndPrintsCostAsAPlainDecimal) {
    auto started = start(*agentd_, json::array{task("one two three"), task("four five")});
    auto done = wait_all(*agentd_, ids_of(jobs_of(started)));
    ASSERT_TRUE(done.at("done").as_bool());
    auto status = agentd_->post(R"({"jsonrpc":"2.0","id":1,"method":"agents_status","params":{}})");
    ASSERT_EQ(status.status, 200);
    // Boost.JSON alone would write 0.0024 as 2.4E-3.
    EXPECT_EQ(status.body.find("E-"), std::string::npos) << status.body;
    EXPECT_NE(status.body.find(R"("cost":0.0012)"), std::string::npos) << status.body;
    auto result = json::parse(status.body).at("result").as_object();
    std::int64_t input = 0, output = 0;
    for (auto const& j : jobs_of(result)) {
        input += j.at("usage").at("input_tokens").as_int64();
        output += j.at("usage").at("output_tokens").as_int64();
    }
    auto const& usage = result.at("usage");
    EXPECT_GT(input, 0);
    EXPECT_EQ(usage.at("input_tokens").as_int64(), input);
    EXPECT_EQ(usage.at("output_tokens").as_int64(), output);
    EXPECT_DOUBLE_EQ(usage.at("cost").to_number<double>(), 0.0024);
    // Only the named jobs count; an unknown id adds nothing.
    auto one =
        agentd_->call("agents_status", {{"jobs", {jobs_of(started)[0].at("id"), "job_unknown"}}});
    EXPECT_DOUBLE_EQ(one.at("usage").at("cost").to_number<double>(), 0.0012);
    auto none = agentd_->call("agents_status", {{"session", "empty"}});
    EXPECT_EQ(none.at("usage"), json::parse(R"({"input_tokens":0,"output_tokens":0,"cost":0})"));
}

TEST_F(agentd_test, TaskFieldsReachTheUpstream) {
    json::object t = task("look around", "scout");
    t["agent"] = "explore";
    t["model"] = "anthropic/claude-x";
    t["system"] = "be brief";
    t["directory"] = "/tmp/some dir";
    auto job = run_one(*agentd_, t);
    EXPECT_EQ(str(job, "state"), "completed");
    auto stats = fake_->stats();
    auto const& prompt = stats.at("last_prompt_body").as_object();
    EXPECT_EQ(str(prompt, "agent"), "explore");
    EXPECT_EQ(str(prompt, "system"), "be brief");
    EXPECT_EQ(str(prompt.at("model"), "providerID"), "anthropic");
    EXPECT_EQ(str(prompt.at("model"), "modelID"), "claude-x");
    EXPECT_EQ(str(prompt.at("parts").at(0), "text"), "look around");
    EXPECT_EQ(str(stats.at("last_create_body"), "title"), "scout");
    bool saw_directory = false;
    for (auto const& d : stats.at("directories").as_array())
        saw_directory = saw_directory || d.as_string() == "/tmp/some dir";
    EXPECT_TRUE(saw_directory) << json::serialize(stats);
}

struct fault_case {
    std::string directive;
    std::string kind;
    std::string phase;
    std::optional<int> http_status;
    std::string message_part;
};

void PrintTo(fault_case const& c, std::ostream* os) {
    *os << c.directive;
}

class upstream_fault : public agentd_test, public ::testing::WithParamInterface<fault_case> {};

std::string fault_name(::testing::TestParamInfo<fault_case> const& info) {
    auto name = info.param.directive.substr(info.param.directive.find('=') + 1);
    return "fault_" + name;
}

TEST_P(upstream_fault, BecomesAFailedJob) {
    auto const& c = GetParam();
    bool create = c.phase == "create";
    auto t = create ? task("hello", fmt::format("[[fake {}]]", c.directive))
                    : task(fmt::format("hello [[fake {}]]", c.directive));
    t["timeout_ms"] = 1500;  // bounds the hang cases
    auto job = run_one(*agentd_, t);
    expect_failed(job, c.kind, c.phase);
    if (c.http_status) {
        EXPECT_EQ(job.at("error").at("http_status").as_int64(), *c.http_status);
    } else {
        EXPECT_FALSE(job.at("error").as_object().contains("http_status"));
    }
    if (!c.message_part.empty()) {
        EXPECT_NE(str(job.at("error"), "message").find(c.message_part), std::string::npos)
            << json::serialize(job);
    }
    EXPECT_FALSE(job.contains("output"));
}

INSTANTIATE_TEST_SUITE_P(
    Prompt, upstream_fault,
    ::testing::Values(fault_case{"fault=close", "transport", "prompt", {}, ""},
                      fault_case{"fault=reset", "transport", "prompt", {}, ""},
                      fault_case{"fault=hang", "timeout", "prompt", {}, "timeout"},
                      fault_case{"fault=500", "upstream", "prompt", 500, "HTTP 500"},
                      fault_case{"fault=404", "upstream", "prompt", 404, "HTTP 404"},
                      fault_case{"fault=503", "upstream", "prompt", 503, "HTTP 503"},
                      // prompt_async's reply is spoiled: a 200 with a body, not its 204.
                      fault_case{"fault=garbage", "protocol", "prompt", {}, "expected 204"},
                      fault_case{"fault=wrong_shape", "protocol", "prompt", {}, "expected 204"},
                      fault_case{"fault=error", "upstream", "prompt", 503, "fake provider error"}),
    fault_name);

INSTANTIATE_TEST_SUITE_P(
    Create, upstream_fault,
    ::testing::Values(fault_case{"create_fault=close", "transport", "create", {}, ""},
                      fault_case{"create_fault=reset", "transport", "create", {}, ""},
                      fault_case{"create_fault=hang", "timeout", "create", {}, "timeout"},
                      fault_case{"create_fault=500", "upstream", "create", 500, "HTTP 500"},
                      fault_case{"create_fault=400", "upstream", "create", 400, "HTTP 400"},
                      fault_case{"create_fault=garbage", "protocol", "create", {}, "not JSON"},
                      fault_case{
                          "create_fault=wrong_shape", "protocol", "create", {}, "no session id"}),
    fault_name);

TEST_F(agentd_test, HungPromptIsAbortedUpstreamAtTheDeadline) {
    auto t = task("stuck [[fake fault=hang]]");
    t["timeout_ms"] = 300;
    auto job = run_one(*agentd_, t);
    expect_failed(job, "timeout", "prompt");
    EXPECT_TRUE(fake_->wait_counter("aborts_total", 1, 5s));
    auto aborted = fake_->stats().at("aborted_sessions").as_array();
    ASSERT_EQ(aborted.size(), 1u);
    EXPECT_EQ(aborted[0].as_string(), str(job.at("upstream"), "session"));
}

TEST_F(agentd_test, FailedCreateFailsOnlyItsOwnJob) {
    json::array tasks{task("first"), task("second", "[[fake create_fault=500]]"), task("third")};
    auto started = start(*agentd_, tasks);
    ASSERT_EQ(jobs_of(started).size(), 3u);
    auto done = wait_all(*agentd_, ids_of(jobs_of(started)));
    auto const& jobs = jobs_of(done);
    EXPECT_EQ(str(jobs[0], "state"), "completed");
    expect_failed(jobs[1].as_object(), "upstream", "create");
    EXPECT_EQ(str(jobs[2], "state"), "completed");
    EXPECT_EQ(str(jobs[2], "output"), "echo: third");
}

TEST_F(agentd_test, RefusedUpstreamFailsEveryJobWithTransport) {
    agentd_process a(fmt::format("http://127.0.0.1:{}", unused_port()));
    auto started = start(a, json::array{task("a"), task("b")});
    auto done = wait_all(a, ids_of(jobs_of(started)));
    for (auto const& j : jobs_of(done)) {
        expect_failed(j.as_object(), "transport", "create");
        EXPECT_NE(str(j.at("error"), "message").find("refused"), std::string::npos)
            << json::serialize(j);
    }
}

TEST_F(agentd_test, CancelRunningJobAbortsUpstream) {
    auto started = start(*agentd_, json::array{task("long one [[fake latency_ms=20000]]")});
    auto id = str(jobs_of(started)[0], "id");
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    auto cancelled = agentd_->call("agents_cancel", json::object{{"jobs", json::array{id}}});
    auto const& job = jobs_of(cancelled).at(0).as_object();
    EXPECT_EQ(str(job, "state"), "cancelled");
    EXPECT_EQ(str(job.at("error"), "kind"), "cancelled");
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 1);
    EXPECT_EQ(fake_->stats().at("aborted_sessions").at(0).as_string(),
              str(job.at("upstream"), "session"));
    // Terminal states are final: a second cancel and a wait leave it cancelled.
    auto again = agentd_->call("agents_cancel", json::object{{"jobs", json::array{id}}});
    EXPECT_EQ(str(jobs_of(again).at(0), "state"), "cancelled");
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 1);
    auto status = agentd_->call("agents_status", json::object{{"jobs", json::array{id}}});
    EXPECT_EQ(str(jobs_of(status).at(0), "state"), "cancelled");
}

TEST_F(agentd_test, WaitAnyReturnsAtTheFirstFinishedJob) {
    auto started = start(*agentd_, json::array{task("quick [[fake latency_ms=50]]"),
                                               task("slow [[fake latency_ms=5000]]")});
    auto r = agentd_->call(
        "agents_wait",
        json::object{{"jobs", ids_of(jobs_of(started))}, {"mode", "any"}, {"timeout_ms", 4000}});
    EXPECT_TRUE(r.at("done").as_bool());
    EXPECT_FALSE(r.at("timed_out").as_bool());
    EXPECT_EQ(str(jobs_of(r)[0], "state"), "completed");
    EXPECT_EQ(str(jobs_of(r)[1], "state"), "running");
}

TEST_F(agentd_test, WaitTimesOutAndZeroChecksNow) {
    auto started = start(*agentd_, json::array{task("slow [[fake latency_ms=3000]]")});
    auto ids = ids_of(jobs_of(started));
    auto t0 = std::chrono::steady_clock::now();
    auto r = wait_all(*agentd_, ids, 200);
    auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_FALSE(r.at("done").as_bool());
    EXPECT_TRUE(r.at("timed_out").as_bool());
    EXPECT_GE(waited, 190ms);
    auto now = wait_all(*agentd_, ids, 0);
    EXPECT_FALSE(now.at("done").as_bool());
    EXPECT_TRUE(now.at("timed_out").as_bool());
}

TEST_F(agentd_test, WaitWithoutIdsCoversJobsRunningAtArrival) {
    auto finished = run_one(*agentd_, task("done already"));
    auto started = start(*agentd_, json::array{task("pending [[fake latency_ms=200]]")});
    auto r = agentd_->call("agents_wait", json::object{{"timeout_ms", 5000}});
    EXPECT_TRUE(r.at("done").as_bool());
    ASSERT_EQ(jobs_of(r).size(), 1u);
    EXPECT_EQ(str(jobs_of(r)[0], "id"), str(jobs_of(started)[0], "id"));
    EXPECT_EQ(str(jobs_of(r)[0], "state"), "completed");
}

TEST_F(agentd_test, PeekShowsStreamedTextMidTurn) {
    auto started =
        start(*agentd_, json::array{task("stream me please [[fake latency_ms=3000 chunks=6]]")});
    auto id = str(jobs_of(started)[0], "id");
    std::string partial;
    auto deadline = std::chrono::steady_clock::now() + 2500ms;
    while (partial.empty() && std::chrono::steady_clock::now() < deadline) {
        auto p = agentd_->call("agents_peek", json::object{{"job", id}});
        EXPECT_EQ(str(p.at("job"), "state"), "running");
        partial = str(p, "partial_output");
        if (partial.empty()) std::this_thread::sleep_for(50ms);
    }
    std::string final_text = "echo: stream me please";
    ASSERT_FALSE(partial.empty());
    EXPECT_LT(partial.size(), final_text.size());
    EXPECT_EQ(final_text.substr(0, partial.size()), partial);
    auto done = wait_all(*agentd_, json::array{id});
    auto p = agentd_->call("agents_peek", json::object{{"job", id}});
    EXPECT_EQ(str(p, "partial_output"), final_text);
    EXPECT_EQ(str(p.at("job"), "output"), final_text);
}

TEST_F(agentd_test, PeekStreamsJobsOfEveryDirectory) {
    // The real server's /event only carries one directory's sessions: agentd must follow
    // /global/event to see a job that runs in another directory.
    auto t = task("elsewhere please [[fake latency_ms=3000 chunks=6]]");
    t["directory"] = "/srv/other";
    auto started = start(*agentd_, json::array{t});
    auto id = str(jobs_of(started)[0], "id");
    std::string partial;
    auto deadline = std::chrono::steady_clock::now() + 2500ms;
    while (partial.empty() && std::chrono::steady_clock::now() < deadline) {
        partial = str(agentd_->call("agents_peek", json::object{{"job", id}}), "partial_output");
        if (partial.empty()) std::this_thread::sleep_for(50ms);
    }
    EXPECT_FALSE(partial.empty());
    EXPECT_EQ(std::string("echo: elsewhere please").substr(0, partial.size()), partial);
}

TEST_F(agentd_test, IdsWorkFromEverySessionListingsStayPerSession) {
    // Sessions "alice" and "bob" of one principal (a reconnected client is "bob").
    auto mine = start(
        *agentd_,
        json::array{task("mine [[fake latency_ms=20000]]"), task("clean [[fake permission=bash]]")},
        "alice");
    auto id = str(jobs_of(mine)[0], "id");
    auto asking = str(jobs_of(mine)[1], "id");
    json::array ids{id};

    // Without ids: bob's own session only.
    auto list = agentd_->call("agents_status", json::object{{"session", "bob"}});
    EXPECT_TRUE(jobs_of(list).empty());
    auto t0 = std::chrono::steady_clock::now();
    auto bobs_wait = agentd_->call("agents_wait", json::object{{"session", "bob"}});
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_TRUE(bobs_wait.at("done").as_bool());
    EXPECT_TRUE(jobs_of(bobs_wait).empty());

    // With ids: every session of the principal, and the view names the job's own session.
    auto status = agentd_->call("agents_status", json::object{{"session", "bob"}, {"jobs", ids}});
    EXPECT_EQ(str(jobs_of(status)[0], "state"), "running");
    EXPECT_EQ(str(jobs_of(status)[0], "session"), "alice");
    auto dflt = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(dflt)[0], "session"), "alice");
    auto unknown = agentd_->call(
        "agents_status", json::object{{"session", "bob"}, {"jobs", json::array{"job_nope"}}});
    EXPECT_EQ(json::serialize(jobs_of(unknown)[0]),
              json::serialize(json::object{{"id", "job_nope"}, {"state", "not_found"}}));

    auto peek = agentd_->call("agents_peek", json::object{{"session", "bob"}, {"job", id}});
    EXPECT_EQ(str(peek.at("job"), "id"), id);
    EXPECT_EQ(str(peek.at("job"), "state"), "running");
    auto timed = wait_all(*agentd_, ids, 0, "bob");
    EXPECT_FALSE(timed.at("done").as_bool());
    EXPECT_EQ(str(jobs_of(timed)[0], "state"), "running");

    // bob answers alice's job's permission request.
    auto asked = agentd_->call(
        "agents_wait",
        json::object{{"session", "bob"}, {"jobs", json::array{asking}}, {"timeout_ms", 10000}});
    ASSERT_EQ(asked.at("needs_input").as_array().size(), 1u) << json::serialize(asked);
    auto request = str(jobs_of(asked)[0].at("requests").at(0), "id");
    agentd_->call(
        "agents_respond",
        json::object{
            {"session", "bob"}, {"job", asking}, {"request", request}, {"decision", "allow"}});
    auto answered = wait_all(*agentd_, json::array{asking}, 10000, "bob");
    EXPECT_EQ(str(jobs_of(answered)[0], "state"), "completed");

    auto cancel = agentd_->call("agents_cancel", json::object{{"session", "bob"}, {"jobs", ids}});
    EXPECT_EQ(str(jobs_of(cancel)[0], "state"), "cancelled");
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 1);

    auto alice_list = agentd_->call("agents_status", json::object{{"session", "alice"}});
    EXPECT_EQ(jobs_of(alice_list).size(), 2u);
    EXPECT_TRUE(jobs_of(agentd_->call("agents_status", json::object{{"session", "bob"}})).empty());
    // agentd has one principal per daemon today (the token's); another principal's ids answer
    // like unknown ones, which the manager's unit tests cover.
}

TEST_F(agentd_test, StatusListsNewestFirstAndNeverMutates) {
    auto a = run_one(*agentd_, task("first"));
    auto b = run_one(*agentd_, task("second"));
    auto s1 = agentd_->call("agents_status", json::object{});
    auto s2 = agentd_->call("agents_status", json::object{});
    ASSERT_EQ(jobs_of(s1).size(), 2u);
    EXPECT_EQ(str(jobs_of(s1)[0], "id"), str(b, "id"));
    EXPECT_EQ(str(jobs_of(s1)[1], "id"), str(a, "id"));
    EXPECT_EQ(json::serialize(s1), json::serialize(s2));
}

TEST_F(agentd_test, LaunchGateQueuesBeyondMaxRunning) {
    restart_agentd({"--max-running", "2"});
    json::array tasks;
    for (int i = 0; i < 5; ++i)
        tasks.push_back(task(fmt::format("q{} [[fake latency_ms=200]]", i)));
    auto started = start(*agentd_, tasks);
    auto const& jobs = jobs_of(started);
    ASSERT_EQ(jobs.size(), 5u);
    EXPECT_EQ(str(jobs[0], "state"), "running");
    EXPECT_EQ(str(jobs[1], "state"), "running");
    for (int i = 2; i < 5; ++i) {
        EXPECT_EQ(str(jobs[i], "state"), "queued");
        EXPECT_FALSE(jobs[i].as_object().contains("started_at"));
    }
    auto done = wait_all(*agentd_, ids_of(jobs));
    for (auto const& j : jobs_of(done)) EXPECT_EQ(str(j, "state"), "completed");
    EXPECT_EQ(fake_->stats().at("max_prompts_in_flight").as_int64(), 2);
}

TEST_F(agentd_test, QueueLimitRejectsTheWholeCall) {
    restart_agentd({"--max-running", "1", "--max-queued", "2"});
    auto first =
        start(*agentd_, json::array{task("a [[fake latency_ms=2000]]"), task("b"), task("c")});
    ASSERT_EQ(jobs_of(first).size(), 3u);
    auto err = agentd_->error("agents_start", json::object{{"tasks", json::array{task("d")}}});
    EXPECT_EQ(err.at("code").as_int64(), -32001);
    EXPECT_EQ(str(err, "message"), "Limit exceeded: admission queue full (max_queued 2)");
    EXPECT_EQ(str(err.at("data"), "limit"), "max_queued");
    EXPECT_EQ(err.at("data").at("max").as_int64(), 2);
    EXPECT_EQ(err.at("data").at("value").as_int64(), 3);
    auto all = agentd_->call("agents_status", json::object{});
    EXPECT_EQ(jobs_of(all).size(), 3u);  // nothing of the rejected call exists
}

TEST_F(agentd_test, QueuedJobCancelsWithoutReachingUpstream) {
    restart_agentd({"--max-running", "1"});
    auto started =
        start(*agentd_, json::array{task("blocker [[fake latency_ms=1000]]"), task("queued")});
    auto queued_id = str(jobs_of(started)[1], "id");
    EXPECT_EQ(str(jobs_of(started)[1], "state"), "queued");
    auto c = agentd_->call("agents_cancel", json::object{{"jobs", json::array{queued_id}}});
    EXPECT_EQ(str(jobs_of(c)[0], "state"), "cancelled");
    wait_all(*agentd_, ids_of(jobs_of(started)));
    EXPECT_EQ(fake_->stats().at("sessions_created").as_int64(), 1);
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 0);
}

TEST_F(agentd_test, NestedCallsGetDepthAndAreLimited) {
    restart_agentd({"--max-depth", "2"});
    auto parent = start(*agentd_, json::array{task("parent [[fake latency_ms=3000]]")});
    auto parent_id = str(jobs_of(parent)[0], "id");
    auto upstream_session = upstream_session_of(*agentd_, parent_id);
    ASSERT_FALSE(upstream_session.empty());
    auto child =
        start(*agentd_, json::array{task("child [[fake latency_ms=2000]]")}, upstream_session);
    EXPECT_EQ(jobs_of(child)[0].at("depth").as_int64(), 2);
    auto child_session = upstream_session_of(*agentd_, str(jobs_of(child)[0], "id"));
    ASSERT_FALSE(child_session.empty());
    auto err = agentd_->error(
        "agents_start",
        json::object{{"session", child_session}, {"tasks", json::array{task("grandchild")}}});
    EXPECT_EQ(err.at("code").as_int64(), -32001);
    EXPECT_EQ(str(err, "message"), "Limit exceeded: depth 3 > max_depth 2");
    EXPECT_EQ(str(err.at("data"), "limit"), "max_depth");
    EXPECT_EQ(err.at("data").at("max").as_int64(), 2);
    EXPECT_EQ(err.at("data").at("value").as_int64(), 3);
}

TEST_F(agentd_test, CancelStopsTheJobsWholeTreeAndNothingElse) {
    restart_agentd({"--max-depth", "3"});
    auto tops = start(*agentd_, json::array{task("orchestrator [[fake latency_ms=20000]]"),
                                            task("other [[fake latency_ms=20000]]")});
    auto top = str(jobs_of(tops)[0], "id");
    auto other = str(jobs_of(tops)[1], "id");
    auto top_session = upstream_session_of(*agentd_, top);
    auto other_session = upstream_session_of(*agentd_, other);
    ASSERT_FALSE(top_session.empty());
    ASSERT_FALSE(other_session.empty());

    // The orchestrator's sub-agent starts two jobs, one of which starts its own; the other
    // job's sub-agent starts one.
    auto children = start(*agentd_,
                          json::array{task("child1 [[fake latency_ms=20000]]"),
                                      task("child2 [[fake latency_ms=20000]]")},
                          top_session);
    auto niece =
        start(*agentd_, json::array{task("niece [[fake latency_ms=20000]]")}, other_session);
    auto child1 = str(jobs_of(children)[0], "id");
    auto child1_session = upstream_session_of(*agentd_, child1);
    ASSERT_FALSE(child1_session.empty());
    auto grandchild =
        start(*agentd_, json::array{task("grandchild [[fake latency_ms=20000]]")}, child1_session);
    EXPECT_EQ(jobs_of(grandchild)[0].at("depth").as_int64(), 3);
    json::array tree{top, child1, str(jobs_of(children)[1], "id"),
                     str(jobs_of(grandchild)[0], "id")};
    // Every job's prompt is in flight, so each has its upstream session to abort.
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 6, 5s));

    auto cancelled = agentd_->call("agents_cancel", json::object{{"jobs", json::array{top}}});
    ASSERT_EQ(jobs_of(cancelled).size(), 1u);  // the named job; the tree is cancelled with it
    EXPECT_EQ(str(jobs_of(cancelled)[0], "state"), "cancelled");
    auto seen = agentd_->call("agents_status", json::object{{"jobs", tree}});
    for (auto const& j : jobs_of(seen)) {
        EXPECT_EQ(str(j, "state"), "cancelled") << json::serialize(j);
        EXPECT_EQ(str(j.at("error"), "kind"), "cancelled");
    }
    EXPECT_EQ(str(jobs_of(seen)[3].at("error"), "message"), "cancelled with its ancestor " + top);
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 4);
    json::array untouched{other, str(jobs_of(niece)[0], "id")};
    auto rest = agentd_->call("agents_status", json::object{{"jobs", untouched}});
    for (auto const& j : jobs_of(rest)) EXPECT_EQ(str(j, "state"), "running") << json::serialize(j);
}

TEST_F(agentd_test, UpstreamParentBecomesParentID) {
    auto parent = run_one(*agentd_, task("parent"));
    auto parent_session = str(parent.at("upstream"), "session");
    auto started = agentd_->call("agents_start", json::object{{"tasks", json::array{task("child")}},
                                                              {"upstream_parent", parent_session}});
    wait_all(*agentd_, ids_of(jobs_of(started)));
    EXPECT_EQ(str(fake_->stats().at("last_create_body"), "parentID"), parent_session);
}

TEST_F(agentd_test, OutputIsCappedAndMarkedTruncated) {
    restart_agentd({"--max-output-bytes", "1000"});
    auto job = run_one(*agentd_, task("big [[fake output_bytes=5000]]"));
    EXPECT_EQ(str(job, "state"), "completed");
    EXPECT_EQ(str(job, "output").size(), 1000u);
    EXPECT_TRUE(job.at("truncated").as_bool());
}

TEST_F(agentd_test, DefaultJobTimeoutFlagApplies) {
    restart_agentd({"--job-timeout-ms", "300"});
    auto job = run_one(*agentd_, task("forever [[fake fault=hang]]"));
    expect_failed(job, "timeout", "prompt");
    EXPECT_NE(str(job.at("error"), "message").find("300 ms"), std::string::npos);
}

TEST_F(agentd_test, FinishedJobsAreReapedAfterRetention) {
    restart_agentd({"--retention-ms", "300"});
    auto job = run_one(*agentd_, task("short-lived"));
    auto id = str(job, "id");
    auto s = agentd_->call("agents_status", json::object{{"jobs", json::array{id}}});
    EXPECT_EQ(str(jobs_of(s)[0], "state"), "completed");
    std::string state = "completed";
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (state != "not_found" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
        auto r = agentd_->call("agents_status", json::object{{"jobs", json::array{id}}});
        state = str(jobs_of(r)[0], "state");
    }
    EXPECT_EQ(state, "not_found");
}

TEST_F(agentd_test, SigtermExitsCleanly) {
    agentd_->process().signal(SIGTERM);
    auto status = agentd_->process().wait_exit(5s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
}

}  // namespace
}  // namespace agentd::test
