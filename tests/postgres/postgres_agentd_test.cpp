// The real agentd on the PostgreSQL store (--store postgres://127.0.0.1:PORT/db) with the fake
// upstream: the calls of DESIGN §2 end to end and what survives a kill -9 (read back from the
// database), an unreachable database at start-up (a clear exit naming it, never the password),
// and a database lost while jobs run (they go on in memory, rows wait, /metrics shows it, and
// they are written once it is back).
#include "postgres/postgres_fixture.hpp"

#include <regex>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::string start_one(agentd_process& a, json::object t) {
    auto started = a.call("agents_start", json::object{{"tasks", json::array{std::move(t)}}});
    return str(jobs_of(started).at(0), "id");
}

json::object wait_one(agentd_process& a, std::string const& id, bool until_done = false) {
    json::object p{{"jobs", json::array{json::value(id)}}, {"timeout_ms", 10000}};
    if (until_done) p["on_input"] = "ignore";
    return a.call("agents_wait", std::move(p));
}

json::object status_of(agentd_process& a, std::string const& id) {
    auto s = a.call("agents_status", json::object{{"jobs", json::array{json::value(id)}}});
    return jobs_of(s).at(0).as_object();
}

// The value of the first sample of `name` with `label` in GET /metrics, or -1.
double metric(agentd_process& a, std::string const& name, std::string const& label = {}) {
    auto r =
        http_request(a.port(), "GET", "/metrics", "", {{"Authorization", "Bearer " + a.token()}});
    std::regex line("^" + name + "(\\{[^}]*\\})? ([0-9.e+-]+)$");
    std::istringstream in(r.body);
    std::string l;
    while (std::getline(in, l)) {
        std::smatch m;
        if (std::regex_match(l, m, line) &&
            (label.empty() || m[1].str().find(label) != std::string::npos))
            return std::stod(m[2].str());
    }
    return -1;
}

TEST_F(postgres_agentd_test, StartStatusWaitPeekCancelAndRespondWork) {
    auto done_id = start_one(*agentd_, task("hello [[fake latency_ms=50]]"));
    auto done = wait_one(*agentd_, done_id, true);
    EXPECT_EQ(str(jobs_of(done).at(0), "state"), "completed") << json::serialize(done);

    auto slow = start_one(*agentd_, task("slow [[fake latency_ms=60000]]"));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    EXPECT_EQ(str(status_of(*agentd_, slow), "state"), "running");
    auto peek = agentd_->call("agents_peek", json::object{{"job", slow}});
    EXPECT_TRUE(peek.contains("job")) << json::serialize(peek);
    auto cancelled =
        agentd_->call("agents_cancel", json::object{{"jobs", json::array{json::value(slow)}}});
    EXPECT_EQ(str(jobs_of(cancelled).at(0), "state"), "cancelled");

    auto asking = start_one(*agentd_, task("clean [[fake permission=bash patterns=rm_-rf_build]]"));
    auto w = wait_one(*agentd_, asking);
    auto const& job = jobs_of(w).at(0).as_object();
    ASSERT_EQ(str(job, "state"), "waiting") << json::serialize(w);
    auto request = str(job.at("requests").as_array().at(0), "id");
    agentd_->call("agents_respond",
                  json::object{{"job", asking}, {"request", request}, {"decision", "allow"}});
    auto answered = wait_one(*agentd_, asking, true);
    EXPECT_EQ(str(jobs_of(answered).at(0), "state"), "completed");

    // All of it is in the database: a kill -9 and a restart on it show the same.
    agentd_->kill_and_restart();
    EXPECT_EQ(str(status_of(*agentd_, done_id), "state"), "completed");
    EXPECT_EQ(str(status_of(*agentd_, slow), "state"), "cancelled");
    auto after = status_of(*agentd_, asking);
    EXPECT_EQ(str(after, "state"), "completed");
    ASSERT_TRUE(after.contains("answered")) << json::serialize(after);
    EXPECT_EQ(str(after.at("answered").as_array().at(0), "decision"), "allow");
}

TEST_F(postgres_agentd_test, AnUnreachableDatabaseIsAClearStartupErrorWithoutThePassword) {
    auto port = unused_port();
    auto url = fmt::format("postgres://agentd:hunter2@127.0.0.1:{}/jobs", port);
    child_process p({AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir",
                     agentd_->state_dir().string(), "--store", url});
    auto status = p.wait_exit(15s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1);
    auto named = p.wait_for_line(std::regex(fmt::format("127[.]0[.]0[.]1:{}/jobs", port)), 5s);
    EXPECT_TRUE(named.has_value()) << p.stderr_text();
    EXPECT_EQ(p.stderr_text().find("hunter2"), std::string::npos) << p.stderr_text();
}

TEST_F(postgres_agentd_test, JobsGoOnWhileTheDatabaseIsLostAndAreWrittenWhenItReturns) {
    auto id = start_one(*agentd_, task("long [[fake latency_ms=1500]]"));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    pg_cluster::shared().stop();
    // The job finishes in memory; its row waits.
    auto done = wait_one(*agentd_, id, true);
    EXPECT_EQ(str(jobs_of(done).at(0), "state"), "completed");
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (metric(*agentd_, "agentd_store_pending_rows") < 1 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    EXPECT_GE(metric(*agentd_, "agentd_store_pending_rows"), 1);
    EXPECT_GE(metric(*agentd_, "agentd_store_errors_total", "op=\"save\""), 1);
    // Calls still answer from memory.
    EXPECT_EQ(str(status_of(*agentd_, id), "state"), "completed");
    auto refused = agentd_->error("agents_start", json::object{{"tasks", json::array{task("x")}}});
    EXPECT_EQ(refused.at("code").as_int64(), -32603) << json::serialize(refused);

    pg_cluster::shared().start();
    deadline = std::chrono::steady_clock::now() + 15s;
    while (metric(*agentd_, "agentd_store_pending_rows") != 0 &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    EXPECT_EQ(metric(*agentd_, "agentd_store_pending_rows"), 0);
    // Written: it survives a kill -9.
    agentd_->kill_and_restart();
    auto back = status_of(*agentd_, id);
    EXPECT_EQ(str(back, "state"), "completed");
    EXPECT_FALSE(str(back, "output").empty());
}

}  // namespace
}  // namespace agentd::test
