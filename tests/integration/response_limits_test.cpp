// limits.max_response_bytes (DESIGN §2, §3) on /rpc and /ws: a response past the bound carries
// jobs with `output_omitted: true` instead of their output, accounted while rendering, so a
// batch of status calls on large outputs never builds a response that stalls the daemon. (MCP's
// side is in mcp_test.cpp.)
#include "agentd_fixture.hpp"
#include "ws_client.hpp"

#include <future>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

// Starts `n` jobs with outputs of `bytes` each and waits until they completed; their ids.
json::array jobs_with_output(agentd_process& a, int n, std::size_t bytes) {
    json::array tasks;
    for (int i = 0; i < n; ++i)
        tasks.push_back(task(fmt::format("big {} [[fake output_bytes={}]]", i, bytes)));
    auto started = a.call("agents_start", {{"tasks", tasks}});
    auto ids = ids_of(jobs_of(started));
    auto done = a.call("agents_wait", {{"jobs", ids}, {"timeout_ms", 20000}});
    EXPECT_TRUE(done.at("done").as_bool());
    return ids.as_array();
}

// Counts the job views of a response (a batch or one result) with and without their output.
struct tally {
    int with_output = 0;
    int omitted = 0;
};

void count_jobs(json::value const& response, tally& t) {
    if (auto const* batch = response.if_array()) {
        for (auto const& r : *batch) count_jobs(r, t);
        return;
    }
    for (auto const& j : response.at("result").at("jobs").as_array()) {
        auto const& o = j.as_object();
        if (o.contains("output")) ++t.with_output;
        if (o.contains("output_omitted")) {
            EXPECT_TRUE(o.at("output_omitted").as_bool());
            EXPECT_FALSE(o.contains("output"));
            ++t.omitted;
        }
    }
}

std::string status_batch(json::array const& ids, int calls) {
    json::array batch;
    for (int i = 0; i < calls; ++i)
        batch.push_back(json::object{{"jsonrpc", "2.0"},
                                     {"id", i},
                                     {"method", "agents_status"},
                                     {"params", {{"jobs", ids}}}});
    return json::serialize(batch);
}

// The case at the default bound (16 MiB): 64 status calls on 8 jobs of 1 MB would be a
// 512 MB response; it stays within the bound, the first outputs whole and the rest omitted.
TEST_F(agentd_test, RpcBatchResponseIsBoundedByDefault) {
    auto ids = jobs_with_output(*agentd_, 8, 1'000'000);
    auto t0 = std::chrono::steady_clock::now();
    auto batch =
        std::async(std::launch::async, [&] { return agentd_->post(status_batch(ids, 64)); });
    // /healthz stays responsive while the batch is rendered and written.
    std::chrono::milliseconds slowest{0};
    do {
        auto asked = std::chrono::steady_clock::now();
        EXPECT_EQ(http_request(agentd_->port(), "GET", "/healthz").status, 200);
        slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now() - asked));
    } while (batch.wait_for(10ms) != std::future_status::ready);
    auto res = batch.get();
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(res.status, 200);
    std::cerr << "64 x agents_status on 8 x 1 MB: " << res.body.size() << " bytes in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
              << " ms; slowest /healthz meanwhile " << slowest.count() << " ms\n";
    // ~0.3 s here on a busy 2-core machine, 10.7 s before the bound; the margin is for load.
    EXPECT_LT(slowest, 3000ms);
    EXPECT_LE(res.body.size(), std::size_t{16 << 20} + (1 << 20));
    tally t;
    count_jobs(json::parse(res.body), t);
    EXPECT_EQ(t.with_output, 16);  // 16 MiB / 1 MB
    EXPECT_EQ(t.with_output + t.omitted, 64 * 8);
    // One job alone always comes whole.
    auto one = agentd_->call("agents_status", {{"jobs", json::array{ids[7]}}});
    EXPECT_EQ(jobs_of(one)[0].at("output").as_string().size(), 1'000'000u);
}

TEST_F(agentd_test, RpcResponseBoundIsConfigurable) {
    restart_agentd({"--max-response-bytes", "250000"});
    auto ids = jobs_with_output(*agentd_, 3, 100'000);
    auto status = agentd_->rpc("agents_status", {{"jobs", ids}});
    tally t;
    count_jobs(status, t);
    EXPECT_EQ(t.with_output, 2);
    EXPECT_EQ(t.omitted, 1);
    // agents_wait renders jobs the same way.
    auto waited = agentd_->rpc("agents_wait", {{"jobs", ids}, {"timeout_ms", 0}});
    tally w;
    count_jobs(waited, w);
    EXPECT_EQ(w.with_output, 2);
    EXPECT_EQ(w.omitted, 1);
}

TEST_F(agentd_test, WebSocketResponseIsBounded) {
    restart_agentd({"--max-response-bytes", "250000"});
    auto ids = jobs_with_output(*agentd_, 3, 100'000);
    ws_client ws(agentd_->port(), {{"Authorization", "Bearer " + agentd_->token()}});
    ws.send(status_batch(ids, 4));
    std::optional<json::value> reply;
    while (!reply) {
        auto text = ws.receive(5s);
        ASSERT_TRUE(text.has_value());
        auto v = json::parse(*text);
        if (v.is_array()) reply = std::move(v);  // skip agents_event pushes
    }
    tally t;
    count_jobs(*reply, t);
    EXPECT_EQ(t.with_output, 2);
    EXPECT_EQ(t.omitted, 4 * 3 - 2);
}

}  // namespace
}  // namespace agentd::test
