// Several real agentd instances on one PostgreSQL database, with nothing in front (the client
// picks an instance per call, as a load balancer would): calls on another instance's job
// (status, wait, peek, respond, cancel), listings and WebSocket events across instances, the
// wake-up latency of a completion seen from another instance, and a kill -9 of the instance
// holding 100 running jobs, which another takes over within the lease time.
#include "integration/agentd_fixture.hpp"
#include "integration/ws_client.hpp"
#include "support/pg_cluster.hpp"

#include <algorithm>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// A lease short enough for a takeover test, long enough that a loaded machine renews in time.
constexpr int lease_ttl_ms = 3000;

class cluster_test : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!pg_cluster::shared().running()) pg_cluster::shared().start();
        url_ = pg_cluster::shared().create_database();
        fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH);
    }

    agentd_process& add_instance() {
        instances_.push_back(std::make_unique<agentd_process>(
            fake_->url(), std::vector<std::string>{"--store", url_, "--store-lease-ttl-ms",
                                                   std::to_string(lease_ttl_ms), "--max-running",
                                                   "256", "--max-tasks-per-call", "128"}));
        return *instances_.back();
    }

    std::string url_;
    std::unique_ptr<fake_upstream> fake_;
    std::vector<std::unique_ptr<agentd_process>> instances_;
};

json::array ids(std::vector<std::string> const& list) {
    json::array out;
    for (auto const& id : list) out.emplace_back(id);
    return out;
}

std::string start_one(agentd_process& a, std::string const& prompt) {
    auto started = a.call("agents_start", json::object{{"tasks", json::array{task(prompt)}}});
    return str(jobs_of(started).at(0), "id");
}

json::object view_of(agentd_process& a, std::string const& id) {
    auto s = a.call("agents_status", json::object{{"jobs", ids({id})}});
    return jobs_of(s).at(0).as_object();
}

json::object wait_on(agentd_process& a, std::vector<std::string> const& list, int timeout_ms,
                     bool ignore_input = true) {
    json::object p{{"jobs", ids(list)}, {"timeout_ms", timeout_ms}};
    if (ignore_input) p["on_input"] = "ignore";
    return a.call("agents_wait", std::move(p));
}

// The same agents_wait as a raw request, for threads (agentd_process::call numbers requests).
std::string wait_body(std::string const& id) {
    return json::serialize(json::object{
        {"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "agents_wait"},
        {"params", {{"jobs", ids({id})}, {"timeout_ms", 10000}, {"on_input", "ignore"}}}});
}

TEST_F(cluster_test, AnyInstanceAnswersForAJobAnotherRuns) {
    auto& a = add_instance();
    auto& b = add_instance();

    // Started on A, seen at once on B (fetched if its change notice is not in yet).
    auto slow = start_one(a, "slow [[fake latency_ms=60000]]");
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    auto deadline = clock_type::now() + 5s;
    while (str(view_of(b, slow), "state") != "running" && clock_type::now() < deadline)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(str(view_of(b, slow), "state"), "running");

    // Peek through B is answered by A, which has the live turn.
    auto peek = b.call("agents_peek", json::object{{"job", slow}});
    EXPECT_EQ(str(peek.at("job"), "id"), slow) << json::serialize(peek);
    EXPECT_EQ(str(peek.at("job"), "state"), "running") << json::serialize(peek);

    // Cancel through B stops the turn on A; both instances show it.
    auto done = start_one(a, "quick [[fake latency_ms=20]]");
    auto cancelled = b.call("agents_cancel", json::object{{"jobs", ids({slow, done})}});
    ASSERT_EQ(jobs_of(cancelled).size(), 2u) << json::serialize(cancelled);
    EXPECT_EQ(str(jobs_of(cancelled).at(0), "id"), slow);
    EXPECT_EQ(str(jobs_of(cancelled).at(0), "state"), "cancelled") << json::serialize(cancelled);
    EXPECT_EQ(str(jobs_of(cancelled).at(1), "id"), done);
    EXPECT_EQ(str(view_of(a, slow), "state"), "cancelled");
    EXPECT_TRUE(fake_->wait_counter_at_most("prompts_in_flight", 0, 5s));

    // A permission request on A's job: waited for and answered through B.
    auto asking = start_one(a, "clean [[fake permission=bash patterns=rm_-rf_build]]");
    auto waited = wait_on(b, {asking}, 10000, false);
    ASSERT_EQ(str(jobs_of(waited).at(0), "state"), "waiting") << json::serialize(waited);
    // B's answer shows the request from the row; peek (answered by A) shows the same.
    auto const& shown = jobs_of(waited).at(0).as_object();
    ASSERT_TRUE(shown.contains("requests")) << json::serialize(shown);
    auto request = str(shown.at("requests").as_array().at(0), "id");
    auto live = b.call("agents_peek", json::object{{"job", asking}});
    EXPECT_EQ(str(live.at("job").at("requests").as_array().at(0), "id"), request);
    auto answered =
        b.call("agents_respond",
               json::object{{"job", asking}, {"request", request}, {"decision", "allow"}});
    EXPECT_EQ(str(answered.at("job"), "id"), asking) << json::serialize(answered);
    auto finished = wait_on(b, {asking}, 10000);
    EXPECT_EQ(str(jobs_of(finished).at(0), "state"), "completed") << json::serialize(finished);

    // An unknown id stays unknown on every instance.
    std::string const unknown = "job_00000000000000000000000000000000";
    EXPECT_EQ(view_of(b, unknown), view_of(a, unknown));
    EXPECT_EQ(str(view_of(b, unknown), "state"), "not_found");
}

TEST_F(cluster_test, ThreeInstancesListAndPushEveryJob) {
    auto& a = add_instance();
    auto& b = add_instance();
    auto& c = add_instance();
    ws_client events(static_cast<unsigned short>(c.port()),
                     {{"Authorization", "Bearer " + c.token()}});
    events.send(json::serialize(json::object{{"jsonrpc", "2.0"},
                                             {"id", 1},
                                             {"method", "agents_subscribe"},
                                             {"params", {{"all", true}}}}));
    std::vector<std::string> started{start_one(a, "on a [[fake latency_ms=30]]"),
                                     start_one(b, "on b [[fake latency_ms=30]]"),
                                     start_one(c, "on c [[fake latency_ms=30]]")};
    auto all = wait_on(c, started, 10000);
    EXPECT_TRUE(all.at("done").as_bool()) << json::serialize(all);
    for (auto const& j : jobs_of(all)) EXPECT_EQ(str(j, "state"), "completed");

    // C's listing of the session holds all three, newest first.
    auto listed = jobs_of(c.call("agents_status", json::object{}));
    std::vector<std::string> seen;
    for (auto const& j : listed) seen.push_back(str(j, "id"));
    EXPECT_EQ(seen, (std::vector<std::string>{started[2], started[1], started[0]}));

    // C's WebSocket saw each job complete, wherever it ran.
    std::set<std::string> completed;
    auto until = clock_type::now() + 10s;
    while (completed.size() < 3 && clock_type::now() < until) {
        auto text = events.receive(5s);
        if (!text) break;
        auto v = json::parse(*text).as_object();
        if (!v.contains("params")) continue;
        auto const& params = v.at("params").as_object();
        if (!params.contains("job")) continue;
        if (str(params.at("job"), "state") == "completed")
            completed.insert(str(params.at("job"), "id"));
    }
    EXPECT_EQ(completed, std::set<std::string>(started.begin(), started.end()));
}

// MCP needs affinity (its sessions live in one process): a session id names its instance, so a
// load balancer can route by it; a job started over MCP on A is seen on B.
TEST_F(cluster_test, McpSessionIdsNameTheirInstance) {
    auto& a = add_instance();
    auto& b = add_instance();
    std::string name;
    std::ifstream(a.state_dir() / "instance") >> name;
    ASSERT_FALSE(name.empty());
    auto init =
        json::serialize(json::object{{"jsonrpc", "2.0"},
                                     {"id", 1},
                                     {"method", "initialize"},
                                     {"params",
                                      {{"protocolVersion", "2025-11-25"},
                                       {"capabilities", json::object{}},
                                       {"clientInfo", {{"name", "it"}, {"version", "1"}}}}}});
    auto r = http_request(a.port(), "POST", "/mcp", init,
                          {{"Authorization", "Bearer " + a.token()},
                           {"Content-Type", "application/json"},
                           {"Accept", "application/json, text/event-stream"}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto session = r.header("mcp-session-id");
    EXPECT_TRUE(std::regex_match(session, std::regex(name + "[.][0-9a-f]{32}"))) << session;

    // The same MCP session id on B is unknown there (404: the client initializes again).
    auto ping = json::serialize(json::object{{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}});
    auto elsewhere = http_request(b.port(), "POST", "/mcp", ping,
                                  {{"Authorization", "Bearer " + b.token()},
                                   {"Content-Type", "application/json"},
                                   {"Accept", "application/json, text/event-stream"},
                                   {"Mcp-Session-Id", session}});
    EXPECT_EQ(elsewhere.status, 404) << elsewhere.body;
}

// DESIGN §9: B wakes within milliseconds of A's completion (LISTEN/NOTIFY, no polling).
TEST_F(cluster_test, AWaitOnAnotherInstanceWakesWithinMilliseconds) {
    auto& a = add_instance();
    auto& b = add_instance();
    std::vector<double> lags;
    for (int i = 0; i < 40; ++i) {
        auto id = start_one(a, "tick [[fake latency_ms=60]]");
        view_of(b, id);  // B knows it before the waits begin
        auto on = [&](agentd_process& p) {
            return std::async(std::launch::async, [&p, body = wait_body(id)] {
                auto r = p.post(body);
                EXPECT_EQ(r.status, 200);
                return clock_type::now();
            });
        };
        auto here = on(a);
        auto there = on(b);
        auto const a_done = here.get();
        auto const b_done = there.get();
        lags.push_back(std::chrono::duration<double, std::milli>(b_done - a_done).count());
        EXPECT_EQ(str(view_of(b, id), "state"), "completed");
    }
    std::sort(lags.begin(), lags.end());
    auto p99 = lags[lags.size() * 99 / 100];
    std::printf("cross-instance wake-up lag over %zu jobs: median %.2f ms, p99 %.2f ms\n",
                lags.size(), lags[lags.size() / 2], p99);
    EXPECT_LT(p99, 50.0);
}

// The holder of 100 running jobs dies: another instance takes every one over within the lease
// time (+2 s), re-attaches to the turns still running upstream, and no job is lost or prompted
// twice.
TEST_F(cluster_test, AKilledInstancesRunningJobsAreTakenOverWithoutARerun) {
    auto& a = add_instance();
    auto& b = add_instance();
    json::array tasks;
    for (int i = 0; i < 100; ++i) tasks.push_back(task("long [[fake latency_ms=6000]]"));
    auto started = a.call("agents_start", json::object{{"tasks", tasks}});
    std::vector<std::string> list;
    for (auto const& j : jobs_of(started)) list.push_back(str(j, "id"));
    ASSERT_EQ(list.size(), 100u);
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 100, 10s));

    auto const killed = clock_type::now();
    a.process().signal(SIGKILL);
    ASSERT_TRUE(a.process().wait_exit(5s).has_value());

    // B claims all of them in one round, within the lease time (+2 s)...
    auto taken = b.process().wait_for_line(std::regex("jobs_taken_over count=100 "), 15s);
    ASSERT_TRUE(taken.has_value()) << b.process().stderr_text();
    auto took = std::chrono::duration<double>(clock_type::now() - killed).count();
    std::printf(
        "100 running jobs of a killed instance taken over %.2f s after the kill (lease "
        "%d ms)\n",
        took, lease_ttl_ms);
    EXPECT_LT(took, lease_ttl_ms / 1000.0 + 2.0);

    // ...and finishes every one: re-attached to its running turn, or its result read back.
    auto waited = wait_on(b, list, 20000);
    ASSERT_TRUE(waited.at("done").as_bool()) << json::serialize(waited);
    std::size_t completed = 0;
    for (auto const& j : jobs_of(waited)) {
        auto state = str(j, "state");
        EXPECT_TRUE(state == "completed" || state == "interrupted") << json::serialize(j);
        completed += state == "completed";
    }
    EXPECT_EQ(completed, 100u) << "turns still running upstream are re-attached, not interrupted";
    // Never prompted twice.
    EXPECT_EQ(fake_->stats().at("prompts_started").as_int64(), 100);
}

}  // namespace
}  // namespace agentd::test
