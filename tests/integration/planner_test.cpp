// The planner end to end: a JSON-RPC batch of starts and reads runs as one parallel batch with
// responses in request order, mutating calls act as barriers, and N clients starting at once
// are all admitted before the first upstream session even exists (no global lock).
#include "agentd_fixture.hpp"

#include <barrier>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::string start_req(int id, std::string const& prompt, std::string const& description = {}) {
    json::object t{{"prompt", prompt}};
    if (!description.empty()) t["description"] = description;
    return json::serialize(json::object{{"jsonrpc", "2.0"},
                                        {"id", id},
                                        {"method", "agents_start"},
                                        {"params", json::object{{"tasks", json::array{t}}}}});
}

TEST_F(agentd_test, BatchOfStartsAndStatusLaunchesConcurrentlyInOrder) {
    std::string batch = "[" + start_req(1, "a [[fake latency_ms=1500]]") + "," +
                        start_req(2, "b [[fake latency_ms=1500]]") + "," +
                        R"({"jsonrpc":"2.0","id":3,"method":"agents_status"})" + "," +
                        start_req(4, "c [[fake latency_ms=1500]]") + "," +
                        start_req(5, "d [[fake latency_ms=1500]]") + "]";
    auto r = agentd_->post(batch);
    ASSERT_EQ(r.status, 200);
    auto responses = json::parse(r.body).as_array();
    ASSERT_EQ(responses.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(responses[i].at("id").as_int64(), i + 1);
        EXPECT_TRUE(responses[i].as_object().contains("result")) << json::serialize(responses[i]);
    }
    // All four prompts are in flight upstream at the same time.
    EXPECT_TRUE(fake_->wait_counter("prompts_in_flight", 4, 5s)) << json::serialize(fake_->stats());
    EXPECT_EQ(fake_->stats().at("max_prompts_in_flight").as_int64(), 4);
}

TEST_F(agentd_test, CancelInABatchIsABarrier) {
    auto started = agentd_->call(
        "agents_start", json::object{{"tasks", json::array{task("x [[fake latency_ms=5000]]")}}});
    auto id = str(jobs_of(started)[0], "id");
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    // status (before the barrier) sees it running; status after the cancel sees it cancelled.
    auto body = fmt::format(
        R"([{{"jsonrpc":"2.0","id":1,"method":"agents_status","params":{{"jobs":["{0}"]}}}},
            {{"jsonrpc":"2.0","id":2,"method":"agents_cancel","params":{{"jobs":["{0}"]}}}},
            {{"jsonrpc":"2.0","id":3,"method":"agents_status","params":{{"jobs":["{0}"]}}}}])",
        id);
    auto responses = json::parse(agentd_->post(body).body).as_array();
    ASSERT_EQ(responses.size(), 3u);
    EXPECT_EQ(str(jobs_of(responses[0].at("result").as_object())[0], "state"), "running");
    EXPECT_EQ(str(jobs_of(responses[1].at("result").as_object())[0], "state"), "cancelled");
    EXPECT_EQ(str(jobs_of(responses[2].at("result").as_object())[0], "state"), "cancelled");
}

TEST_F(agentd_test, TwentyClientsAreAdmittedBeforeAnyUpstreamSessionExists) {
    constexpr int clients = 20;
    restart_agentd({"--max-running", "32"});
    std::barrier sync(clients);
    std::vector<int> statuses(clients, 0);
    std::vector<std::string> states(clients);
    std::vector<std::thread> threads;
    auto port = agentd_->port();
    auto token = agentd_->token();
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            http_connection conn(port);
            sync.arrive_and_wait();
            auto r =
                conn.request("POST", "/rpc", start_req(i, "go", "[[fake create_latency_ms=1500]]"),
                             {{"Authorization", "Bearer " + token}});
            statuses[i] = r.status;
            auto v = json::parse(r.body);
            states[i] = str(v.at("result").at("jobs").at(0), "state");
        });
    }
    for (auto& t : threads) t.join();
    // Every start was answered while all 20 session creates were still pending upstream.
    auto stats = fake_->stats();
    EXPECT_EQ(stats.at("sessions_created").as_int64(), 0) << json::serialize(stats);
    for (int i = 0; i < clients; ++i) {
        EXPECT_EQ(statuses[i], 200);
        EXPECT_EQ(states[i], "running");
    }
    EXPECT_TRUE(fake_->wait_counter("creates_in_flight", clients, 5s));
}

}  // namespace
}  // namespace agentd::test
