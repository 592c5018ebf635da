// opencode's prompt_async end to end (DESIGN §5): with the event stream connected a prompt goes
// with prompt_async, a running job holds no upstream connection, and the stream's session.idle
// or session.error ends its turn; a turn whose end the stream lost is read from the session.
#include "agentd_fixture.hpp"

#include <boost/json.hpp>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::int64_t calls_of(fake_upstream const& fake, std::string const& method,
                      std::string const& suffix) {
    auto calls = json::parse(http_request(fake.port(), "GET", "/_fake/calls").body).as_array();
    std::int64_t n = 0;
    for (auto const& c : calls)
        if (str(c, "method") == method && str(c, "path").ends_with(suffix)) ++n;
    return n;
}

json::object wait_for(agentd_process& a, json::value ids, std::int64_t timeout_ms) {
    return a.call(
        "agents_wait",
        json::object{{"jobs", std::move(ids)}, {"mode", "all"}, {"timeout_ms", timeout_ms}});
}

TEST_F(agentd_test, RunningJobsHoldNoUpstreamConnection) {
    restart_agentd({"--max-running", "64", "--max-tasks-per-call", "64"});
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, 5s));
    constexpr int n = 40;
    json::array tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(task("held [[fake latency_ms=60000]]"));
    auto started = agentd_->call("agents_start", json::object{{"tasks", tasks}});
    auto ids = ids_of(jobs_of(started));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", n, 10s));
    // The pool closes its idle connections within 2 s; a running job keeps none. Left: agentd's
    // event stream and the wait's own connection (the synchronous prompt kept 40 more).
    EXPECT_TRUE(fake_->wait_counter_at_most("connections_open", 2, 6s))
        << fake_->stats().at("connections_open") << " connections open";
    auto status = agentd_->call("agents_status", json::object{{"jobs", ids}});
    for (auto const& j : jobs_of(status))
        EXPECT_EQ(str(j, "state"), "running") << json::serialize(j);
    EXPECT_EQ(calls_of(*fake_, "POST", "/prompt_async"), n);
    EXPECT_EQ(calls_of(*fake_, "POST", "/message"), 0);

    agentd_->call("agents_cancel", json::object{{"jobs", ids}});
    EXPECT_TRUE(fake_->wait_counter("aborts_total", n, 10s));
    EXPECT_TRUE(fake_->wait_counter_at_most("prompts_in_flight", 0, 10s));
}

// The answer comes from the stream: the turn's last assistant message, its text parts and usage
// as the stream showed them, once it has finished and the session is idle. Nothing is read.
TEST_F(agentd_test, TheAnswerIsTakenFromTheStreamWithoutARead) {
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, 5s));
    auto started = agentd_->call(
        "agents_start",
        json::object{{"tasks", json::array{task("streamed [[fake latency_ms=200 chunks=4]]")}}});
    auto done = wait_for(*agentd_, ids_of(jobs_of(started)), 10000);
    auto const& j = jobs_of(done).at(0);
    EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(str(j, "output"), "echo: streamed");
    EXPECT_GT(j.at("usage").at("output_tokens").as_int64(), 0) << json::serialize(j);
    EXPECT_EQ(calls_of(*fake_, "GET", "/message"), 0);
}

TEST_F(agentd_test, AnAnswerFromTheStreamIsCappedLikeASynchronousReply) {
    restart_agentd({"--max-output-bytes", "1000"});
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, 5s));
    fake_->reset();
    auto started =
        agentd_->call("agents_start",
                      json::object{{"tasks", json::array{task("big [[fake output_bytes=5000]]")}}});
    auto done = wait_for(*agentd_, ids_of(jobs_of(started)), 10000);
    auto const& j = jobs_of(done).at(0);
    EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(str(j, "output").size(), 1000u);
    EXPECT_TRUE(j.at("truncated").as_bool());
    EXPECT_EQ(calls_of(*fake_, "POST", "/prompt_async"), 1);
    EXPECT_EQ(calls_of(*fake_, "GET", "/message"), 0);
}

// The event stream breaks mid-turn: the turn's session.idle goes out while agentd reconnects,
// so the job's end is read from the session (its last message, by the turn's user message).
TEST_F(agentd_test, ATurnWhoseEndTheStreamLostIsReadFromTheSession) {
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, 5s));
    auto t = task("later [[fake latency_ms=1500 chunks=3]]");
    t["timeout_ms"] = 20000;
    auto started = agentd_->call("agents_start", json::object{{"tasks", json::array{t}}});
    auto ids = ids_of(jobs_of(started));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    auto dropped = json::parse(http_request(fake_->port(), "POST", "/_fake/drop_events").body);
    ASSERT_GE(dropped.at("dropped").as_int64(), 1);

    auto done = wait_for(*agentd_, ids, 15000);
    auto const& j = jobs_of(done).at(0);
    EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(str(j, "output"), "echo: later");
    EXPECT_LT(j.at("elapsed_ms").as_int64(), 10000) << "not held to the next check";
    EXPECT_GE(calls_of(*fake_, "GET", "/message"), 1) << "the turn read from the session";
}

// A prompt refused after its 204 (the agent is unknown to the server, and the lists were not
// checked): opencode sends session.error and nothing else, no user message and no idle.
TEST(prompt_async_refused, FailsAtOnceWithTheServersReason) {
    fake_upstream fake(FAKE_OPENCODE_PATH, {"--lists-fault", "500"});
    agentd_process agentd(fake.url());
    ASSERT_TRUE(fake.wait_counter("event_subscribers", 1, 5s));
    auto t = task("who [[fake latency_ms=0]]");
    t["agent"] = "ghost";
    t["timeout_ms"] = 30000;
    auto started = agentd.call("agents_start", json::object{{"tasks", json::array{t}}});
    auto done = wait_for(agentd, ids_of(jobs_of(started)), 10000);
    auto const& j = jobs_of(done).at(0);
    EXPECT_EQ(str(j, "state"), "failed") << json::serialize(j);
    EXPECT_EQ(str(j.at("error"), "kind"), "upstream");
    EXPECT_NE(str(j.at("error"), "message").find("Agent not found"), std::string::npos);
    EXPECT_LT(j.at("elapsed_ms").as_int64(), 5000) << "not held to its deadline";
}

}  // namespace
}  // namespace agentd::test
