// Checks before launch (DESIGN §5) end to end: the real agentd against the fake OpenCode server.
// A task naming an unknown agent or model fails at create with what exists instead of the
// server's bare 500; known ones run; the lists are read once for a fan-out and per directory;
// when they cannot be read the task launches unchecked.
#include "agentd_fixture.hpp"

#include <chrono>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

json::array run_all(agentd_process& a, json::array tasks) {
    auto started = a.call("agents_start", json::object{{"tasks", std::move(tasks)}});
    auto done = a.call("agents_wait",
                       json::object{{"jobs", ids_of(jobs_of(started))}, {"timeout_ms", 15000}});
    EXPECT_TRUE(done.at("done").as_bool()) << json::serialize(done);
    return jobs_of(done);
}

json::object task_with(std::string prompt, std::optional<std::string> agent,
                       std::optional<std::string> model) {
    auto t = task(std::move(prompt));
    if (agent) t["agent"] = *agent;
    if (model) t["model"] = *model;
    return t;
}

// The job failed before any session existed, with a message holding every part of `wanted`.
void expect_refused(json::value const& job, std::vector<std::string> const& wanted) {
    SCOPED_TRACE(json::serialize(job));
    EXPECT_EQ(str(job, "state"), "failed");
    ASSERT_TRUE(job.as_object().contains("error"));
    auto const& e = job.at("error");
    EXPECT_EQ(str(e, "kind"), "upstream");
    EXPECT_EQ(str(e, "phase"), "create");
    for (auto const& w : wanted) EXPECT_NE(str(e, "message").find(w), std::string::npos) << w;
    EXPECT_FALSE(job.as_object().contains("upstream"));
}

// How many of the fake's recorded OpenCode calls were `GET path` (with ?directory= `dir`).
int gets_of(fake_upstream const& fake, std::string_view path,
            std::optional<std::string> dir = std::nullopt) {
    auto calls = json::parse(http_request(fake.port(), "GET", "/_fake/calls").body).as_array();
    int n = 0;
    for (auto const& c : calls) {
        if (str(c, "method") != "GET" || str(c, "path") != path) continue;
        if (dir && (!c.at("directory").is_string() || str(c, "directory") != *dir)) continue;
        ++n;
    }
    return n;
}

TEST_F(agentd_test, UnknownAgentFailsAtCreateListingTheKnownOnes) {
    auto jobs = run_all(*agentd_, json::array{task_with("hi", "no-such-agent", std::nullopt)});
    expect_refused(jobs.at(0), {R"(unknown agent "no-such-agent")",
                                "the upstream has build, explore, general, plan"});
    // Hidden agents are not offered.
    EXPECT_EQ(str(jobs.at(0).at("error"), "message").find("compaction"), std::string::npos);
    auto stats = fake_->stats();
    EXPECT_EQ(stats.at("sessions_created").as_int64(), 0) << json::serialize(stats);
    EXPECT_EQ(stats.at("prompts_started").as_int64(), 0);
}

TEST_F(agentd_test, UnknownModelFailsAtCreateListingTheKnownOnes) {
    auto jobs = run_all(*agentd_, json::array{task_with("a", std::nullopt, "fake/nope"),
                                              task_with("b", std::nullopt, "nobody/x"),
                                              task_with("c", "ghost", "fake/nope")});
    expect_refused(jobs.at(0), {R"(unknown model "fake/nope")",
                                R"(provider "fake" has fake/fake-model, fake/fake-small)"});
    expect_refused(jobs.at(1),
                   {R"(unknown model "nobody/x": no provider "nobody")",
                    "the upstream has anthropic/claude-x, fake/fake-model, fake/fake-small"});
    expect_refused(jobs.at(2), {R"(unknown agent "ghost")", R"(unknown model "fake/nope")"});
    EXPECT_EQ(fake_->stats().at("prompts_started").as_int64(), 0);
}

TEST_F(agentd_test, KnownAgentsAndModelsRun) {
    auto jobs =
        run_all(*agentd_, json::array{task_with("one", "plan", "fake/fake-small"),
                                      task_with("two", "title", std::nullopt),
                                      task_with("three", std::nullopt, "anthropic/claude-x")});
    for (auto const& j : jobs) EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(fake_->stats().at("unknown_prompts").as_int64(), 0);
}

TEST_F(agentd_test, TasksNamingNeitherReadNoLists) {
    auto jobs = run_all(*agentd_, json::array{task("plain")});
    EXPECT_EQ(str(jobs.at(0), "state"), "completed");
    EXPECT_EQ(gets_of(*fake_, "/agent"), 0);
    EXPECT_EQ(gets_of(*fake_, "/config/providers"), 0);
}

// The fake answers the lists slowly, so all eight launches wait on the same fetch.
TEST_F(agentd_test, AFanOutReadsTheListsOnce) {
    agentd_.reset();
    fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH,
                                            std::vector<std::string>{"--lists-latency-ms", "300"});
    agentd_ = std::make_unique<agentd_process>(fake_->url());
    json::array tasks;
    for (int i = 0; i < 8; ++i)
        tasks.push_back(
            task_with(fmt::format("t{}", i), i % 2 ? "build" : "ghost",
                      i % 3 ? std::optional<std::string>("fake/fake-model") : std::nullopt));
    auto jobs = run_all(*agentd_, tasks);
    for (int i = 0; i < 8; ++i) {
        if (i % 2)
            EXPECT_EQ(str(jobs.at(i), "state"), "completed") << json::serialize(jobs.at(i));
        else
            expect_refused(jobs.at(i), {R"(unknown agent "ghost")"});
    }
    EXPECT_EQ(gets_of(*fake_, "/agent"), 1);
    EXPECT_EQ(gets_of(*fake_, "/config/providers"), 1);
    // A later call within the cache's lifetime reads nothing.
    auto again = run_all(*agentd_, json::array{task_with("later", "explore", std::nullopt)});
    EXPECT_EQ(str(again.at(0), "state"), "completed");
    EXPECT_EQ(gets_of(*fake_, "/agent"), 1);
}

TEST_F(agentd_test, ListsAreReadPerDirectory) {
    auto in = [](std::string dir, std::string agent) {
        auto t = task_with("x", std::move(agent), std::nullopt);
        t["directory"] = std::move(dir);
        return t;
    };
    auto jobs = run_all(*agentd_, json::array{in("/src/a", "build"), in("/src/b", "ghost")});
    EXPECT_EQ(str(jobs.at(0), "state"), "completed") << json::serialize(jobs.at(0));
    expect_refused(jobs.at(1), {R"(unknown agent "ghost")"});
    EXPECT_EQ(gets_of(*fake_, "/agent", "/src/a"), 1);
    EXPECT_EQ(gets_of(*fake_, "/agent", "/src/b"), 1);
    EXPECT_EQ(gets_of(*fake_, "/config/providers", "/src/b"), 1);
}

// When the lists cannot be read, the check steps aside: the known task runs, the unknown one
// gets the server's own answer at the prompt: prompt_async's 204, then a session.error with the
// real reason (the synchronous prompt's bare 500 says nothing).
class lists_unreadable : public ::testing::TestWithParam<std::string> {};

TEST_P(lists_unreadable, TasksLaunchUnchecked) {
    fake_upstream fake(FAKE_OPENCODE_PATH, {"--lists-fault", GetParam()});
    agentd_process agentd(fake.url(), {"--upstream-timeout-ms", "1000"});
    auto jobs = run_all(agentd, json::array{task_with("known", "build", "fake/fake-model"),
                                            task_with("unknown", "ghost", std::nullopt)});
    EXPECT_EQ(str(jobs.at(0), "state"), "completed") << json::serialize(jobs.at(0));
    SCOPED_TRACE(json::serialize(jobs.at(1)));
    EXPECT_EQ(str(jobs.at(1), "state"), "failed");
    EXPECT_EQ(str(jobs.at(1).at("error"), "phase"), "prompt");
    EXPECT_EQ(str(jobs.at(1).at("error"), "kind"), "upstream");
    EXPECT_EQ(str(jobs.at(1).at("error"), "message"),
              "UnknownError: Agent not found: \"ghost\". Available agents: build, explore, "
              "general, plan");
    EXPECT_FALSE(jobs.at(1).at("error").as_object().contains("http_status"));
    EXPECT_GE(fake.stats().at("agent_lists").as_int64(), 1);
    EXPECT_EQ(fake.stats().at("unknown_prompts").as_int64(), 1);
}

INSTANTIATE_TEST_SUITE_P(Faults, lists_unreadable,
                         ::testing::Values("500", "404", "garbage", "wrong_shape", "close", "reset",
                                           "hang", "too_big"));

}  // namespace
}  // namespace agentd::test
