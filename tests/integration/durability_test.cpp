// Durability and shutdown of the real agentd (DESIGN §7): jobs survive kill -9 exactly as they
// were; after a restart queued ones stay queued, running ones are followed live while the
// upstream still runs them or take the result it finished meanwhile, all settled before the
// first answer; retention still applies, a bad state dir is a clear start-up error, and SIGTERM
// drains.
#include "agentd_fixture.hpp"
#include "ws_client.hpp"
#ifdef AGENTD_DURABILITY_ON_POSTGRES
#include "postgres/postgres_fixture.hpp"
#endif

#include <fstream>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;
// The same scenarios run on the PostgreSQL store too: tests/postgres builds this file again with
// AGENTD_DURABILITY_ON_POSTGRES (the state-directory tests below are SQLite's only).
#ifdef AGENTD_DURABILITY_ON_POSTGRES
using durability_test = postgres_agentd_test;
#else
using durability_test = agentd_test;
#endif

json::object start(agentd_process& a, json::array tasks) {
    return a.call("agents_start", json::object{{"tasks", std::move(tasks)}});
}

json::object wait_for(agentd_process& a, json::value ids, std::int64_t timeout_ms = 10000) {
    return a.call("agents_wait",
                  json::object{{"jobs", std::move(ids)}, {"timeout_ms", timeout_ms}});
}

TEST_F(durability_test, FinishedJobsAnswerExactlyTheSameAfterKill9) {
    auto started =
        start(*agentd_, json::array{task("fine", "ok"), task("boom [[fake fault=500]]", "bad"),
                                    task("slow [[fake latency_ms=5000]]", "cancel me")});
    auto ids = ids_of(jobs_of(started));
    agentd_->call("agents_cancel", json::object{{"jobs", json::array{ids.as_array()[2]}}});
    wait_for(*agentd_, ids);
    auto before = agentd_->call("agents_status", json::object{});
    agentd_->kill_and_restart();
    auto after = agentd_->call("agents_status", json::object{});
    EXPECT_EQ(json::serialize(before), json::serialize(after));
    ASSERT_EQ(jobs_of(after).size(), 3u);
    // Still owner-scoped after the restart.
    auto other = agentd_->call("agents_status", json::object{{"session", "other"}});
    EXPECT_TRUE(jobs_of(other).empty());
}

TEST_F(durability_test, KillDuringHundredRunningJobsReattachesThemAndACancelRightAfterSticks) {
    restart_agentd({"--max-running", "100", "--max-tasks-per-call", "100"});
    json::array tasks;
    for (int i = 0; i < 100; ++i)
        tasks.push_back(task(fmt::format("long {} [[fake latency_ms=60000]]", i)));
    auto ids = ids_of(jobs_of(start(*agentd_, tasks)));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 100, 10s))
        << json::serialize(fake_->stats());
    agentd_->kill_and_restart();
    // The upstream still runs every turn: the jobs are followed live (DESIGN §7), and the very
    // first answer after the restart already shows it; a cancel right away is not lost.
    auto first = agentd_->call("agents_status", json::object{{"jobs", ids}});
    for (auto const& j : jobs_of(first))
        EXPECT_EQ(str(j, "state"), "running") << json::serialize(j);
    auto cancelled = agentd_->call("agents_cancel", json::object{{"jobs", ids}});
    for (auto const& j : jobs_of(cancelled))
        EXPECT_EQ(str(j, "state"), "cancelled") << json::serialize(j);
    EXPECT_TRUE(fake_->wait_counter("aborts_total", 100, 10s));
    auto done = wait_for(*agentd_, ids);
    for (auto const& j : jobs_of(done)) EXPECT_EQ(str(j, "state"), "cancelled");
}

TEST_F(durability_test, RunningJobIsReattachedLiveAfterKill9AndCompletesWithItsOutput) {
    auto ids = ids_of(jobs_of(
        start(*agentd_, json::array{task("outlive agentd [[fake latency_ms=2500 chunks=5]]")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->kill_and_restart();
    auto first = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(first).at(0), "state"), "running") << json::serialize(first);
    auto done = wait_for(*agentd_, ids);
    auto const& job = jobs_of(done).at(0);
    EXPECT_EQ(str(job, "state"), "completed") << json::serialize(job);
    EXPECT_EQ(str(job, "output"), "echo: outlive agentd");
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 0);
    EXPECT_EQ(fake_->stats().at("prompts_started").as_int64(), 1) << "never prompted again";
}

TEST_F(durability_test, JobFinishedUpstreamWhileDownIsReattached) {
    auto ids = ids_of(
        jobs_of(start(*agentd_, json::array{task("finish without me [[fake latency_ms=600]]")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->process().signal(SIGKILL);
    agentd_->process().wait_exit(5s);
    ASSERT_TRUE(fake_->wait_counter("prompts_completed", 1, 5s));
    agentd_->start_again();
    // Recovery is over before the first answer: never a "running" it is about to leave.
    auto first = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(first).at(0), "state"), "completed") << json::serialize(first);
    auto done = wait_for(*agentd_, ids);
    auto const& job = jobs_of(done).at(0);
    EXPECT_EQ(str(job, "state"), "completed") << json::serialize(job);
    EXPECT_EQ(str(job, "output"), "echo: finish without me");
    EXPECT_GT(job.at("usage").at("output_tokens").as_int64(), 0);
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 0);
}

TEST_F(durability_test, QueuedJobStaysQueuedAndRunsAfterRestart) {
    restart_agentd({"--max-running", "1"});
    auto ids = ids_of(
        jobs_of(start(*agentd_, json::array{task("a [[fake latency_ms=60000]]"), task("b")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->kill_and_restart();
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(s)[0], "state"), "running") << json::serialize(s);
    EXPECT_EQ(str(jobs_of(s)[1], "state"), "queued") << json::serialize(s);
    // Once the re-attached job frees the launch slot, the queued one runs.
    agentd_->call("agents_cancel", json::object{{"jobs", json::array{ids.as_array()[0]}}});
    auto b = wait_for(*agentd_, json::array{ids.as_array()[1]});
    EXPECT_EQ(str(jobs_of(b).at(0), "state"), "completed") << json::serialize(b);
    EXPECT_EQ(str(jobs_of(b).at(0), "output"), "echo: b");
}

TEST_F(durability_test, RetentionAppliesToRestoredJobs) {
    restart_agentd({"--retention-ms", "1500"});
    auto ids = ids_of(jobs_of(start(*agentd_, json::array{task("brief")})));
    wait_for(*agentd_, ids);
    agentd_->kill_and_restart();
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(s)[0], "state"), "completed");
    std::string state = "completed";
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (state != "not_found" && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
        state =
            str(jobs_of(agentd_->call("agents_status", json::object{{"jobs", ids}}))[0], "state");
    }
    EXPECT_EQ(state, "not_found");
}

#ifndef AGENTD_DURABILITY_ON_POSTGRES
TEST_F(durability_test, CorruptDatabaseIsAClearStartupError) {
    auto dir = agentd_->state_dir();
    agentd_->process().signal(SIGKILL);
    agentd_->process().wait_exit(5s);
    std::filesystem::remove(dir / "agentd.db-wal");
    std::filesystem::remove(dir / "agentd.db-shm");
    std::ofstream(dir / "agentd.db", std::ios::trunc) << std::string(8192, 'X');
    child_process p({AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir", dir.string()});
    auto status = p.wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1);
    // Read through the pipe to its end: the exit can be seen before the last stderr bytes.
    EXPECT_TRUE(p.wait_for_line(std::regex("agentd[.]db"), std::chrono::seconds(5)).has_value())
        << p.stderr_text();
}

TEST_F(durability_test, UnusableStateDirIsAClearStartupError) {
    auto file = agentd_->state_dir() / "not-a-dir";
    std::ofstream(file) << "x";
    child_process p(
        {AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir", (file / "sub").string()});
    auto status = p.wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 1);
    // Read through the pipe to its end: the exit can be seen before the last stderr bytes.
    EXPECT_TRUE(p.wait_for_line(std::regex("state directory"), std::chrono::seconds(5)).has_value())
        << p.stderr_text();
}

#endif

TEST_F(durability_test, SigtermLetsRunningJobsFinishAndAnswersWaiters) {
    auto ids =
        ids_of(jobs_of(start(*agentd_, json::array{task("almost done [[fake latency_ms=400]]")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    // Over one WebSocket: a status sent after the wait is answered while the wait still runs
    // (reads run in parallel), which proves the wait is in flight when SIGTERM arrives.
    ws_client ws(agentd_->port(), {{"Authorization", "Bearer " + agentd_->token()}});
    auto rpc = [](int id, std::string const& method, json::object params) {
        return json::serialize(json::object{
            {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
    };
    auto next_response = [&] {
        for (;;) {
            auto text = ws.receive(10s);
            if (!text) return json::object{};
            auto v = json::parse(*text).as_object();
            if (v.contains("id")) return v;
        }
    };
    ws.send(rpc(1, "agents_wait", {{"jobs", ids}, {"timeout_ms", 30000}}));
    ws.send(rpc(2, "agents_status", {{"jobs", ids}}));
    ASSERT_EQ(next_response().at("id").as_int64(), 2);
    agentd_->process().signal(SIGTERM);
    auto answer = next_response();
    ASSERT_EQ(answer.at("id").as_int64(), 1) << json::serialize(answer);
    EXPECT_EQ(str(answer.at("result").at("jobs").at(0), "state"), "completed")
        << json::serialize(answer);
    auto status = agentd_->process().wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
    agentd_->start_again();
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(s)[0], "output"), "echo: almost done");
}

TEST_F(durability_test, SigtermInterruptsJobsPastTheGraceAndAbortsThem) {
    restart_agentd({"--shutdown-grace-ms", "200"});
    auto ids =
        ids_of(jobs_of(start(*agentd_, json::array{task("too long [[fake latency_ms=60000]]")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    auto t0 = std::chrono::steady_clock::now();
    agentd_->process().signal(SIGTERM);
    auto status = agentd_->process().wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 1);
    agentd_->start_again();
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(s)[0], "state"), "interrupted");
}

TEST_F(durability_test, SecondSignalExitsAtOnce) {
    auto ids =
        ids_of(jobs_of(start(*agentd_, json::array{task("long [[fake latency_ms=60000]]")})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->process().signal(SIGTERM);
    ASSERT_TRUE(agentd_->process().wait_for_line(std::regex("draining"), 5s).has_value());
    agentd_->process().signal(SIGTERM);
    auto status = agentd_->process().wait_exit(3s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 128 + SIGTERM);
    agentd_->start_again();  // the store is consistent: the job is there, re-attached or ended
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_NE(str(jobs_of(s)[0], "state"), "not_found");
}

}  // namespace
}  // namespace agentd::test
