// Several upstream servers (issue #19) end to end: the real agentd against three fake OpenCode
// servers, one killed by PID and started again on its port. Jobs spread by running count, a dead
// server is skipped at once and its running jobs fail (never re-run), it gets jobs again once
// its health check passes, a follow-up returns to its server, all servers down fails at create,
// the per-server cap queues jobs; per-server metrics; two fake OpenAI servers; keep-alive
// connections kept for as many jobs as may run, and closed once too old to reuse.
#include "agentd_fixture.hpp"

#include <csignal>
#include <map>
#include <regex>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<fake_upstream> fake_on(unsigned short port = 0) {
    return std::make_unique<fake_upstream>(
        FAKE_OPENCODE_PATH,
        std::vector<std::string>{"--listen", fmt::format("127.0.0.1:{}", port)});
}

// SIGKILL, by its PID: the server dies without closing anything politely.
void kill_fake(std::unique_ptr<fake_upstream>& f) {
    f->process().signal(SIGKILL);
    f->process().wait_exit(5s);
    f.reset();
}

std::int64_t counter(fake_upstream const& f, std::string const& name) {
    return f.stats().at(name).as_int64();
}

json::array start(agentd_process& a, json::array tasks) {
    return jobs_of(a.call("agents_start", json::object{{"tasks", std::move(tasks)}}));
}

json::array tasks(int n, std::string const& prompt) {
    json::array out;
    for (int i = 0; i < n; ++i) out.push_back(task(prompt));
    return out;
}

json::array wait_all(agentd_process& a, json::array const& jobs) {
    auto done = a.call("agents_wait", json::object{{"jobs", ids_of(jobs)}, {"timeout_ms", 15000}});
    EXPECT_TRUE(done.at("done").as_bool()) << json::serialize(done);
    return jobs_of(done);
}

json::array status(agentd_process& a, json::array const& jobs) {
    return jobs_of(a.call("agents_status", json::object{{"jobs", ids_of(jobs)}}));
}

std::string server_of(json::value const& job) {
    auto const& o = job.as_object();
    if (!o.contains("upstream") || !o.at("upstream").as_object().contains("server")) return "";
    return str(o.at("upstream"), "server");
}

// How many of `jobs` name each server.
std::map<std::string, int> by_server(json::array const& jobs) {
    std::map<std::string, int> out;
    for (auto const& j : jobs) ++out[server_of(j)];
    return out;
}

std::string scrape(agentd_process& a) {
    return http_request(a.port(), "GET", "/metrics", "", {{"Authorization", "Bearer " + a.token()}})
        .body;
}

std::optional<std::string> metric(std::string const& text, std::string const& name,
                                  std::string const& server) {
    std::regex line(name + R"(\{server=")" +
                    std::regex_replace(server, std::regex(R"([.])"), R"(\.)") + R"("\} (\S+))");
    std::smatch m;
    if (!std::regex_search(text, m, line)) return std::nullopt;
    return m[1].str();
}

// Until /metrics shows `server` up (1) or down (0); false after `timeout`. The health check
// runs every 100 ms here: this waits for a state change agentd reports, not for time.
bool wait_up(agentd_process& a, std::string const& server, bool up,
             std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (metric(scrape(a), "agentd_upstream_server_up", server) == std::string(up ? "1" : "0"))
            return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

std::vector<std::string> pool_flags(std::vector<std::unique_ptr<fake_upstream>> const& fakes,
                                    std::vector<std::string> extra = {}) {
    std::vector<std::string> flags{"--upstream-health-interval-ms", "100", "--max-tasks-per-call",
                                   "16"};
    for (std::size_t i = 1; i < fakes.size(); ++i) {
        flags.push_back("--upstream-url");
        flags.push_back(fakes[i]->url());
    }
    flags.insert(flags.end(), extra.begin(), extra.end());
    return flags;
}

class pool_test : public ::testing::Test {
  protected:
    void start_pool(std::size_t n, std::vector<std::string> extra = {}) {
        for (std::size_t i = 0; i < n; ++i) fakes_.push_back(fake_on());
        agentd_ = std::make_unique<agentd_process>(fakes_[0]->url(),
                                                   pool_flags(fakes_, std::move(extra)));
    }
    std::string url(std::size_t i) const { return urls_.empty() ? fakes_[i]->url() : urls_[i]; }

    std::vector<std::unique_ptr<fake_upstream>> fakes_;
    std::vector<std::string> urls_;  // kept while a fake is down
    std::unique_ptr<agentd_process> agentd_;
};

TEST_F(pool_test, JobsSpreadADeadServerIsSkippedAndGetsJobsAgainWhenBack) {
    start_pool(3);
    for (auto const& f : fakes_) urls_.push_back(f->url());
    auto const port1 = fakes_[1]->port();

    // Six slow jobs: two on each server (fewest running, ties to the first).
    auto first = start(*agentd_, tasks(6, "spread [[fake latency_ms=1500]]"));
    for (auto const& f : fakes_) ASSERT_TRUE(f->wait_counter("prompts_in_flight", 2, 5s));
    auto running = status(*agentd_, first);
    EXPECT_EQ(by_server(running),
              (std::map<std::string, int>{{url(0), 2}, {url(1), 2}, {url(2), 2}}))
        << json::serialize(running);
    auto text = scrape(*agentd_);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(metric(text, "agentd_upstream_server_running", url(i)), "2") << text;
        EXPECT_EQ(metric(text, "agentd_upstream_server_jobs_total", url(i)), "2") << text;
        EXPECT_EQ(metric(text, "agentd_upstream_server_up", url(i)), "1") << text;
    }

    // Server 1 dies: its two running jobs fail (transport), nothing runs them again.
    kill_fake(fakes_[1]);
    auto ended = wait_all(*agentd_, first);
    int failed = 0;
    for (auto const& j : ended) {
        if (server_of(j) == url(1)) {
            ++failed;
            EXPECT_EQ(str(j, "state"), "failed") << json::serialize(j);
            EXPECT_EQ(str(j.at("error"), "kind"), "transport") << json::serialize(j);
        } else {
            EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
        }
    }
    EXPECT_EQ(failed, 2);

    // Marked down by the failures themselves: new jobs go to the two others only.
    auto second = wait_all(*agentd_, start(*agentd_, tasks(4, "after [[fake latency_ms=300]]")));
    for (auto const& j : second) {
        EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
        EXPECT_NE(server_of(j), url(1));
    }
    EXPECT_EQ(metric(scrape(*agentd_), "agentd_upstream_server_up", url(1)), "0");
    // Every prompt ran once: the fakes' counts are the jobs placed on them.
    for (std::size_t i : {0u, 2u}) {
        int on = 0;
        for (auto const& j : ended) on += server_of(j) == url(i);
        for (auto const& j : second) on += server_of(j) == url(i);
        EXPECT_EQ(counter(*fakes_[i], "prompts_started"), on) << "server " << i;
    }

    // It comes back on its port: once its health check passes it gets jobs again.
    fakes_[1] = fake_on(port1);
    ASSERT_TRUE(wait_up(*agentd_, url(1), true));
    auto third = start(*agentd_, tasks(3, "back [[fake latency_ms=1000]]"));
    for (auto const& f : fakes_) ASSERT_TRUE(f->wait_counter("prompts_in_flight", 1, 5s));
    auto back = wait_all(*agentd_, third);
    EXPECT_EQ(by_server(back), (std::map<std::string, int>{{url(0), 1}, {url(1), 1}, {url(2), 1}}))
        << json::serialize(back);
    EXPECT_EQ(counter(*fakes_[1], "prompts_started"), 1);
    EXPECT_EQ(metric(scrape(*agentd_), "agentd_upstream_server_jobs_total", url(1)), "3");
}

TEST_F(pool_test, AFollowUpReturnsToItsServerAndFailsWhenItIsDown) {
    start_pool(3);
    for (auto const& f : fakes_) urls_.push_back(f->url());
    auto a = wait_all(*agentd_, start(*agentd_, tasks(1, "first"))).at(0);
    ASSERT_EQ(str(a, "state"), "completed");
    ASSERT_EQ(server_of(a), url(0));
    // Server 0 is now the busiest; the follow-up still goes there.
    auto busy = start(*agentd_, tasks(1, "busy [[fake latency_ms=3000]]"));
    ASSERT_TRUE(fakes_[0]->wait_counter("prompts_in_flight", 1, 5s));
    auto f = task("second");
    f["continue"] = str(a, "id");
    auto b = wait_all(*agentd_, start(*agentd_, json::array{f})).at(0);
    EXPECT_EQ(str(b, "state"), "completed") << json::serialize(b);
    EXPECT_EQ(server_of(b), url(0));
    EXPECT_EQ(counter(*fakes_[0], "prompts_started"), 3);
    EXPECT_EQ(counter(*fakes_[1], "prompts_started"), 0);
    EXPECT_EQ(counter(*fakes_[2], "prompts_started"), 0);

    // Its server dies: a follow-up fails at create, naming it; it is not sent elsewhere.
    kill_fake(fakes_[0]);
    EXPECT_EQ(str(wait_all(*agentd_, busy).at(0), "state"), "failed");
    auto g = task("third");
    g["continue"] = str(b, "id");
    auto c = wait_all(*agentd_, start(*agentd_, json::array{g})).at(0);
    SCOPED_TRACE(json::serialize(c));
    EXPECT_EQ(str(c, "state"), "failed");
    EXPECT_EQ(str(c.at("error"), "kind"), "transport");
    EXPECT_EQ(str(c.at("error"), "phase"), "create");
    EXPECT_NE(str(c.at("error"), "message").find("upstream server " + url(0) + " is down"),
              std::string::npos);
    EXPECT_EQ(counter(*fakes_[1], "prompts_started") + counter(*fakes_[2], "prompts_started"), 0);
}

// A kill -9 and restart with several servers: each running job is re-attached on its own server
// (the one its row names), followed live there and completes; nothing is prompted again.
TEST_F(pool_test, ARestartReattachesEachJobOnItsOwnServer) {
    start_pool(3);
    for (auto const& f : fakes_) urls_.push_back(f->url());
    auto jobs = start(*agentd_, tasks(6, "long [[fake latency_ms=2500]]"));
    for (auto const& f : fakes_) ASSERT_TRUE(f->wait_counter("prompts_in_flight", 2, 5s));
    auto before = status(*agentd_, jobs);
    agentd_->kill_and_restart();
    auto after = status(*agentd_, jobs);
    for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_EQ(str(after[i], "state"), "running") << json::serialize(after[i]);
        EXPECT_EQ(server_of(after[i]), server_of(before[i]));
    }
    auto done = wait_all(*agentd_, jobs);
    for (auto const& j : done) EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(by_server(done), (std::map<std::string, int>{{url(0), 2}, {url(1), 2}, {url(2), 2}}));
    for (auto const& f : fakes_) EXPECT_EQ(counter(*f, "prompts_started"), 2);
}

TEST_F(pool_test, EveryServerDownFailsAtCreateNamingThem) {
    start_pool(2);
    for (auto const& f : fakes_) urls_.push_back(f->url());
    kill_fake(fakes_[0]);
    kill_fake(fakes_[1]);
    ASSERT_TRUE(wait_up(*agentd_, url(0), false));
    ASSERT_TRUE(wait_up(*agentd_, url(1), false));
    auto j = wait_all(*agentd_, start(*agentd_, tasks(1, "nowhere"))).at(0);
    SCOPED_TRACE(json::serialize(j));
    EXPECT_EQ(str(j, "state"), "failed");
    EXPECT_EQ(str(j.at("error"), "kind"), "transport");
    EXPECT_EQ(str(j.at("error"), "phase"), "create");
    auto const message = str(j.at("error"), "message");
    EXPECT_EQ(message.rfind("no healthy upstream server: " + url(0) + ": health check failed (", 0),
              0u);
    EXPECT_NE(message.find("; " + url(1) + ": health check failed ("), std::string::npos);
    EXPECT_FALSE(j.as_object().contains("upstream")) << "no server took it";
}

TEST_F(pool_test, MaxRunningPerServerQueuesJobsUntilASlotFrees) {
    start_pool(2, {"--upstream-max-running-per-server", "1"});
    for (auto const& f : fakes_) urls_.push_back(f->url());
    auto jobs = start(*agentd_, tasks(4, "capped [[fake latency_ms=700]]"));
    for (auto const& f : fakes_) ASSERT_TRUE(f->wait_counter("prompts_in_flight", 1, 5s));
    int queued = 0;
    for (auto const& j : status(*agentd_, jobs)) queued += str(j, "state") == "queued";
    EXPECT_EQ(queued, 2);
    auto done = wait_all(*agentd_, jobs);
    for (auto const& j : done) EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(by_server(done), (std::map<std::string, int>{{url(0), 2}, {url(1), 2}}));
    for (auto const& f : fakes_) {
        EXPECT_EQ(counter(*f, "prompts_started"), 2);
        EXPECT_EQ(f->stats().at("max_prompts_in_flight").as_int64(), 1)
            << json::serialize(f->stats());
    }
}

TEST_F(pool_test, OneServerShowsItsUrlAndRunsNoHealthChecks) {
    start_pool(1);
    auto j = wait_all(*agentd_, start(*agentd_, tasks(1, "alone"))).at(0);
    EXPECT_EQ(str(j, "state"), "completed");
    EXPECT_EQ(server_of(j), url(0));
    auto calls =
        json::parse(http_request(fakes_[0]->port(), "GET", "/_fake/calls").body).as_array();
    for (auto const& c : calls) EXPECT_NE(str(c, "path"), "/global/health");
}

// The fake OpenAI server on a free loopback port; its base URL as agentd takes it.
struct openai_server {
    std::unique_ptr<child_process> process;
    unsigned short port = 0;

    openai_server() {
        process = std::make_unique<child_process>(
            std::vector<std::string>{FAKE_OPENAI_PATH, "--listen", "127.0.0.1:0"});
        auto p = process->wait_for_line(
            std::regex(R"(fake_openai listening on http://127\.0\.0\.1:(\d+))"), 5s);
        if (!p) throw std::runtime_error("fake_openai did not start: " + process->stderr_text());
        port = static_cast<unsigned short>(std::stoi(*p));
    }
    std::string url() const { return fmt::format("http://127.0.0.1:{}/v1", port); }
    std::int64_t counter(std::string const& name) const {
        auto stats = json::parse(http_request(port, "GET", "/_fake/stats").body);
        return stats.at(name).as_int64();
    }
};

TEST(pool_openai, TwoServersShareTheJobsAndAFollowUpReplaysOnItsOwn) {
    openai_server a, b;
    agentd_process agentd(
        a.url(), {"--upstream-url", b.url(), "--upstream-backend", "openai", "--upstream-model",
                  "fake-model", "--upstream-health-interval-ms", "100"});
    auto done = wait_all(agentd, start(agentd, tasks(2, "pair [[fake latency_ms=500]]")));
    EXPECT_EQ(by_server(done), (std::map<std::string, int>{{a.url(), 1}, {b.url(), 1}}))
        << json::serialize(done);
    EXPECT_EQ(a.counter("streams_completed"), 1);
    EXPECT_EQ(b.counter("streams_completed"), 1);

    auto on_b = done.at(0);
    for (auto const& j : done)
        if (server_of(j) == b.url()) on_b = j;
    auto f = task("again");
    f["continue"] = str(on_b, "id");
    auto next = wait_all(agentd, start(agentd, json::array{f})).at(0);
    EXPECT_EQ(str(next, "state"), "completed") << json::serialize(next);
    EXPECT_EQ(server_of(next), b.url());
    EXPECT_EQ(b.counter("streams_completed"), 2);
    EXPECT_EQ(a.counter("streams_completed"), 1);
    auto text = scrape(agentd);
    EXPECT_EQ(metric(text, "agentd_upstream_server_up", a.url()), "1") << text;
    EXPECT_EQ(metric(text, "agentd_upstream_server_jobs_total", b.url()), "2") << text;
}

// The upstream connection pool keeps as many idle keep-alive connections as jobs may run at
// once: a second wave of 100 jobs reuses the first wave's connections (64 kept before: 36+
// reconnected). Stale ones, too old to reuse, are closed by the pool within its 2 s age, not
// left half-closed until the next request.
TEST(pool_connections, AWaveOfJobsReusesThePreviousWavesConnectionsAndIdleOnesClose) {
    auto fake = fake_on();
    agentd_process a(fake->url(), {"--max-running", "100", "--max-tasks-per-call", "100"});
    auto first = start(a, tasks(100, "w [[fake latency_ms=300]]"));
    for (auto const& j : wait_all(a, first))
        EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    auto const after_first = counter(*fake, "connections_total");
    EXPECT_GE(after_first, 100);
    auto second = start(a, tasks(100, "w [[fake latency_ms=300]]"));
    for (auto const& j : wait_all(a, second)) EXPECT_EQ(str(j, "state"), "completed");
    // The stats requests themselves come on new connections: a few, not dozens.
    EXPECT_LE(counter(*fake, "connections_total") - after_first, 5);
    // Left: agentd's event stream and the wait's own connection.
    EXPECT_TRUE(fake->wait_counter_at_most("connections_open", 2, 6s))
        << counter(*fake, "connections_open") << " connections still open";
}

}  // namespace
}  // namespace agentd::test
