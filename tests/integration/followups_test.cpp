// Follow-ups (DESIGN §2 `continue`, issue #17) against the real agentd and the fake OpenCode
// upstream: the next turn runs in the continued job's upstream session and outputs only that
// turn; every rejection names its field and reason; the chain rule holds after a restart.
#include "agentd_fixture.hpp"

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

json::object start(agentd_process& a, json::array tasks) {
    return a.call("agents_start", json::object{{"tasks", std::move(tasks)}});
}

json::object follow(std::string prompt, std::string const& continues) {
    auto t = task(std::move(prompt));
    t["continue"] = continues;
    return t;
}

json::object wait_one(agentd_process& a, std::string const& id) {
    auto done = a.call("agents_wait",
                       json::object{{"jobs", json::array{json::value(id)}}, {"timeout_ms", 10000}});
    return jobs_of(done).at(0).as_object();
}

// Runs `t` to its end; its final JobView.
json::object run(agentd_process& a, json::object t) {
    auto started = start(a, json::array{std::move(t)});
    return wait_one(a, str(jobs_of(started).at(0), "id"));
}

// The -32602 error's data of an agents_start expected to fail.
json::object rejected(agentd_process& a, json::array tasks) {
    auto e = a.error("agents_start", json::object{{"tasks", std::move(tasks)}});
    EXPECT_EQ(e.at("code").as_int64(), -32602) << json::serialize(e);
    return e.at("data").as_object();
}

// The fake's recorded `method path` calls, each with its ?directory= ("" when none).
std::vector<std::string> calls_to(fake_upstream const& fake, std::string const& method,
                                  std::string const& path) {
    auto calls = json::parse(http_request(fake.port(), "GET", "/_fake/calls").body).as_array();
    std::vector<std::string> out;
    for (auto const& c : calls)
        if (str(c, "method") == method && str(c, "path") == path)
            out.push_back(str(c, "directory"));
    return out;
}

TEST_F(agentd_test, FollowUpRunsInTheSameUpstreamSessionAndOutputsOnlyItsTurn) {
    auto first = task("first [[fake chunks=3]]");
    first["directory"] = "/tmp/agentd-followup-dir";
    first["agent"] = "plan";
    auto a = run(*agentd_, first);
    ASSERT_EQ(str(a, "state"), "completed") << json::serialize(a);
    auto const upstream_session = str(a.at("upstream"), "session");

    auto started = start(*agentd_, json::array{follow("second [[fake chunks=3]]", str(a, "id"))});
    auto const& f0 = jobs_of(started).at(0);
    EXPECT_EQ(str(f0, "continues"), str(a, "id"));
    EXPECT_EQ(str(f0.at("upstream"), "session"), upstream_session) << "known before it runs";
    EXPECT_EQ(str(f0.at("task"), "directory"), "/tmp/agentd-followup-dir");
    auto f = wait_one(*agentd_, str(f0, "id"));
    EXPECT_EQ(str(f, "state"), "completed") << json::serialize(f);
    EXPECT_EQ(str(f, "output"), "echo: second") << "the new turn only";
    EXPECT_EQ(f.at("depth"), a.at("depth"));
    EXPECT_EQ(str(f.at("upstream"), "session"), upstream_session);
    EXPECT_FALSE(a.contains("continues"));

    auto stats = fake_->stats();
    EXPECT_EQ(stats.at("sessions_created").as_int64(), 1) << json::serialize(stats);
    EXPECT_EQ(stats.at("prompts_started").as_int64(), 2);
    // Both turns in the first job's directory; the follow-up kept its agent.
    EXPECT_EQ(calls_to(*fake_, "POST", "/session/" + upstream_session + "/prompt_async"),
              (std::vector<std::string>{"/tmp/agentd-followup-dir", "/tmp/agentd-followup-dir"}));
    EXPECT_EQ(str(stats.at("last_prompt_body"), "agent"), "plan");
    // The continued job is unchanged: its own output, not continued twice.
    auto again = agentd_->call("agents_status", json::object{{"jobs", json::array{a.at("id")}}});
    EXPECT_EQ(str(jobs_of(again).at(0), "output"), "echo: first");
}

TEST_F(agentd_test, FollowUpOfAFollowUpExtendsTheChain) {
    auto a = run(*agentd_, task("one"));
    auto b = run(*agentd_, follow("two", str(a, "id")));
    auto c = run(*agentd_, follow("three", str(b, "id")));
    EXPECT_EQ(str(c, "output"), "echo: three");
    EXPECT_EQ(str(c, "continues"), str(b, "id"));
    EXPECT_EQ(str(c.at("upstream"), "session"), str(a.at("upstream"), "session"));
    EXPECT_EQ(fake_->stats().at("sessions_created").as_int64(), 1);
}

TEST_F(agentd_test, FollowUpRejectionsNameTheFieldAndReason) {
    auto a = run(*agentd_, task("done"));
    auto const id = str(a, "id");

    auto unknown = rejected(*agentd_, json::array{follow("x", "job_0123456789abcdef")});
    EXPECT_EQ(str(unknown, "field"), "tasks[0].continue");
    EXPECT_EQ(str(unknown, "reason"), "unknown job");

    auto with_dir = follow("x", id);
    with_dir["directory"] = "/elsewhere";
    auto dir = rejected(*agentd_, json::array{task("fine"), with_dir});
    EXPECT_EQ(str(dir, "field"), "tasks[1].directory");
    EXPECT_EQ(str(dir, "reason"), "not allowed with continue");

    auto running = start(*agentd_, json::array{task("slow [[fake latency_ms=5000]]")});
    auto const slow = str(jobs_of(running).at(0), "id");
    auto busy = rejected(*agentd_, json::array{follow("x", slow)});
    EXPECT_EQ(str(busy, "field"), "tasks[0].continue");
    EXPECT_EQ(str(busy, "reason"), fmt::format("job {} is not finished", slow));
    agentd_->call("agents_cancel", json::object{{"jobs", json::array{json::value(slow)}}});

    auto no_session = run(*agentd_, task("never", "[[fake create_fault=500]]"));
    ASSERT_EQ(str(no_session, "state"), "failed");
    auto none = rejected(*agentd_, json::array{follow("x", str(no_session, "id"))});
    EXPECT_EQ(str(none, "reason"),
              fmt::format("job {} has no upstream session to continue", str(no_session, "id")));

    auto const before = jobs_of(agentd_->call("agents_status", json::object{})).size();
    auto twice = rejected(*agentd_, json::array{follow("x", id), follow("y", id)});
    EXPECT_EQ(str(twice, "field"), "tasks[1].continue");
    EXPECT_EQ(str(twice, "reason"),
              fmt::format("job {} is already continued by tasks[0] of this call", id));
    EXPECT_EQ(jobs_of(agentd_->call("agents_status", json::object{})).size(), before)
        << "nothing of a rejected call is launched";

    // The rejected calls left it continuable; once continued, it is not the latest any more.
    auto f = start(*agentd_, json::array{follow("x [[fake latency_ms=300]]", id)});
    auto const fid = str(jobs_of(f).at(0), "id");
    auto second = rejected(*agentd_, json::array{follow("y", id)});
    EXPECT_EQ(str(second, "field"), "tasks[0].continue");
    EXPECT_EQ(str(second, "reason"), fmt::format("job {} was already continued by {}", id, fid));
    EXPECT_EQ(str(wait_one(*agentd_, fid), "state"), "completed");
}

TEST_F(agentd_test, FollowUpRefusedByAFullQueueLeavesTheJobContinuable) {
    restart_agentd({"--max-running", "1", "--max-queued", "1"});
    auto a = run(*agentd_, task("done"));
    auto busy = start(*agentd_, json::array{task("hold [[fake latency_ms=60000]]"), task("wait")});
    auto full = agentd_->error("agents_start",
                               json::object{{"tasks", json::array{follow("x", str(a, "id"))}}});
    EXPECT_EQ(full.at("code").as_int64(), -32001) << json::serialize(full);
    EXPECT_EQ(str(full.at("data"), "limit"), "max_queued");
    agentd_->call("agents_cancel", json::object{{"jobs", ids_of(jobs_of(busy))}});
    auto f = run(*agentd_, follow("after all", str(a, "id")));
    EXPECT_EQ(str(f, "output"), "echo: after all") << json::serialize(f);
}

TEST_F(agentd_test, FollowUpOfAJobOfAnotherSessionJoinsTheCallersSession) {
    auto t = task("mine");
    auto a = agentd_->call("agents_start",
                           json::object{{"session", "chat-A"}, {"tasks", json::array{t}}});
    auto const id = str(jobs_of(a).at(0), "id");
    wait_one(*agentd_, id);
    auto f = agentd_->call("agents_start", json::object{{"session", "chat-B"},
                                                        {"tasks", json::array{follow("on", id)}}});
    EXPECT_EQ(str(jobs_of(f).at(0), "session"), "chat-B");
    auto listed = agentd_->call("agents_status", json::object{{"session", "chat-B"}});
    EXPECT_EQ(jobs_of(listed).size(), 1u);
}

TEST_F(agentd_test, FollowUpWithItsOwnSystemAndAgentPassesThemUpstream) {
    auto base = task("base");
    base["agent"] = "plan";
    auto a = run(*agentd_, base);
    auto t = follow("next", str(a, "id"));
    t["system"] = "be brief";
    t["agent"] = "build";
    auto f = run(*agentd_, t);
    EXPECT_EQ(str(f, "state"), "completed") << json::serialize(f);
    auto body = fake_->stats().at("last_prompt_body");
    EXPECT_EQ(str(body, "system"), "be brief");
    EXPECT_EQ(str(body, "agent"), "build");
    EXPECT_EQ(str(f.at("task"), "agent"), "build");
}

TEST_F(agentd_test, CancelledFollowUpIsAbortedInItsUpstreamSession) {
    auto a = run(*agentd_, task("base"));
    auto started =
        start(*agentd_, json::array{follow("long [[fake latency_ms=60000]]", str(a, "id"))});
    auto const fid = str(jobs_of(started).at(0), "id");
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->call("agents_cancel", json::object{{"jobs", json::array{json::value(fid)}}});
    ASSERT_TRUE(fake_->wait_counter("aborts_total", 1, 5s));
    auto aborted = fake_->stats().at("aborted_sessions").as_array();
    ASSERT_EQ(aborted.size(), 1u);
    EXPECT_EQ(aborted[0].as_string(), str(a.at("upstream"), "session"));
    // A cancelled follow-up still has the session: the chain goes on from it.
    auto g = run(*agentd_, follow("after", fid));
    EXPECT_EQ(str(g, "output"), "echo: after");
}

TEST_F(agentd_test, ChainRuleAndFollowUpsSurviveARestart) {
    auto a = run(*agentd_, task("before"));
    auto b = run(*agentd_, follow("middle", str(a, "id")));
    agentd_->kill_and_restart();
    auto status = agentd_->call("agents_status", json::object{{"jobs", json::array{b.at("id")}}});
    EXPECT_EQ(str(jobs_of(status).at(0), "continues"), str(a, "id"));
    auto again = rejected(*agentd_, json::array{follow("x", str(a, "id"))});
    EXPECT_EQ(str(again, "reason"),
              fmt::format("job {} was already continued by {}", str(a, "id"), str(b, "id")));
    auto c = run(*agentd_, follow("after restart", str(b, "id")));
    EXPECT_EQ(str(c, "state"), "completed") << json::serialize(c);
    EXPECT_EQ(str(c, "output"), "echo: after restart");
    EXPECT_EQ(str(c.at("upstream"), "session"), str(a.at("upstream"), "session"));
    EXPECT_EQ(fake_->stats().at("sessions_created").as_int64(), 1);
}

}  // namespace
}  // namespace agentd::test
