// JSON-RPC over WebSocket (/ws) against the real agentd: the upgrade's guards, calls and batches,
// the planner's rule across messages that arrive while earlier ones still run, and the `ask`
// approval policy's server→client `approval/request`.
#include "agentd_fixture.hpp"
#include "ws_client.hpp"

#include <regex>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::pair<std::string, std::string>> auth(agentd_process& a) {
    return {{"Authorization", "Bearer " + a.token()}};
}

std::string request(int id, std::string const& method, json::object params) {
    return json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
}

// The next message that is not an agents_event push.
json::object next(ws_client& ws, std::chrono::milliseconds timeout = 5s) {
    for (;;) {
        auto text = ws.receive(timeout);
        EXPECT_TRUE(text.has_value()) << "no message within " << timeout.count() << " ms";
        if (!text) return {};
        auto v = json::parse(*text);
        if (v.is_object() && str(v, "method") == "agents_event") continue;
        return v.is_object() ? v.as_object() : json::object{{"batch", v}};
    }
}

json::object start_params(std::string prompt) {
    return {{"tasks", json::array{task(std::move(prompt))}}};
}

TEST_F(agentd_test, WebSocketUpgradeIsGuarded) {
    EXPECT_EQ(ws_upgrade_status(agentd_->port(), {}), 401);
    auto evil = auth(*agentd_);
    evil.emplace_back("Origin", "https://evil.example");
    EXPECT_EQ(ws_upgrade_status(agentd_->port(), evil), 403);
    EXPECT_EQ(ws_upgrade_status(agentd_->port(), auth(*agentd_)), 101);
    auto plain_get = http_request(agentd_->port(), "GET", "/ws", "", auth(*agentd_));
    EXPECT_EQ(plain_get.status, 426);
}

TEST_F(agentd_test, WebSocketCarriesCallsAndBatches) {
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("over ws")));
    auto started = next(ws);
    EXPECT_EQ(started.at("id").as_int64(), 1);
    auto id = str(started.at("result").at("jobs").at(0), "id");

    ws.send("[" + request(2, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 5000}}) +
            "," + request(3, "agents_status", {{"jobs", json::array{id}}}) + "]");
    auto batch = next(ws).at("batch").as_array();
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch[0].at("id").as_int64(), 2);
    EXPECT_EQ(str(batch[0].at("result").at("jobs").at(0), "output"), "echo: over ws");
    EXPECT_EQ(batch[1].at("id").as_int64(), 3);

    ws.send("{oops");
    EXPECT_EQ(next(ws).at("error").at("code").as_int64(), -32700);
}

TEST_F(agentd_test, WebSocketReadsRunBesideALongWaitButMutationsWait) {
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("slow [[fake latency_ms=5000]]")));
    auto id = str(next(ws).at("result").at("jobs").at(0), "id");

    // A read-only status sent after a blocked wait is answered first: they run in parallel.
    ws.send(request(2, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 800}}));
    ws.send(request(3, "agents_status", {{"jobs", json::array{id}}}));
    auto first = next(ws);
    EXPECT_EQ(first.at("id").as_int64(), 3);
    auto second = next(ws);
    EXPECT_EQ(second.at("id").as_int64(), 2);
    EXPECT_TRUE(second.at("result").at("timed_out").as_bool());

    // A cancel is a barrier: it runs only after the wait before it, and the status after it
    // waits for the cancel.
    ws.send(request(4, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 500}}));
    ws.send(request(5, "agents_cancel", {{"jobs", json::array{id}}}));
    ws.send(request(6, "agents_status", {{"jobs", json::array{id}}}));
    auto a = next(ws), b = next(ws), c = next(ws);
    EXPECT_EQ(a.at("id").as_int64(), 4);
    EXPECT_EQ(str(a.at("result").at("jobs").at(0), "state"), "running");
    EXPECT_EQ(b.at("id").as_int64(), 5);
    EXPECT_EQ(c.at("id").as_int64(), 6);
    EXPECT_EQ(str(c.at("result").at("jobs").at(0), "state"), "cancelled");
}

TEST_F(agentd_test, AskPolicyRequestsApprovalOverWebSocket) {
    restart_agentd({"--approval-start", "ask"});
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("needs a yes")));
    auto ask = next(ws);
    EXPECT_EQ(str(ask, "method"), "approval/request");
    EXPECT_EQ(str(ask.at("params"), "method"), "agents_start");
    EXPECT_EQ(str(ask.at("params").at("params").at("tasks").at(0), "prompt"), "needs a yes");
    EXPECT_EQ(fake_->stats().at("creates_started").as_int64(), 0);  // nothing runs before a yes
    ws.send(json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", ask.at("id")}, {"result", {{"approved", true}}}}));
    auto started = next(ws);
    EXPECT_EQ(started.at("id").as_int64(), 1);
    EXPECT_EQ(started.at("result").at("jobs").as_array().size(), 1u);

    ws.send(request(2, "agents_start", start_params("gets a no")));
    auto ask2 = next(ws);
    ws.send(json::serialize(json::object{
        {"jsonrpc", "2.0"}, {"id", ask2.at("id")}, {"result", {{"approved", false}}}}));
    auto refused = next(ws);
    EXPECT_EQ(refused.at("id").as_int64(), 2);
    EXPECT_EQ(refused.at("error").at("code").as_int64(), -32002);
}

TEST_F(agentd_test, ApprovalRequiredStartsRunOneAtATime) {
    restart_agentd({"--approval-start", "ask"});
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("one")));
    ws.send(request(2, "agents_start", start_params("two")));
    auto ask1 = next(ws);
    EXPECT_EQ(str(ask1.at("params").at("params").at("tasks").at(0), "prompt"), "one");
    // The second start is serial behind the first: no second question while the first is open.
    EXPECT_FALSE(ws.receive(300ms).has_value());
    ws.send(json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", ask1.at("id")}, {"result", {{"approved", true}}}}));
    EXPECT_EQ(next(ws).at("id").as_int64(), 1);
    auto ask2 = next(ws);
    EXPECT_EQ(str(ask2.at("params").at("params").at("tasks").at(0), "prompt"), "two");
}

TEST_F(agentd_test, AskPolicyWithoutAChannelAndDenyPolicyRefuse) {
    restart_agentd({"--approval-start", "ask"});
    auto err = agentd_->error("agents_start", start_params("over http"));
    EXPECT_EQ(err.at("code").as_int64(), -32002);
    restart_agentd({"--approval-start", "deny"});
    auto denied = agentd_->error("agents_start", start_params("never"));
    EXPECT_EQ(denied.at("code").as_int64(), -32002);
    EXPECT_EQ(fake_->stats().at("creates_started").as_int64(), 0);
}

// Collects agents_event notifications for one job id until it is terminal.
std::vector<std::string> states_of(ws_client& ws, std::string const& id) {
    std::vector<std::string> states;
    while (states.empty() || (states.back() != "completed" && states.back() != "failed" &&
                              states.back() != "cancelled")) {
        auto text = ws.receive(5s);
        if (!text) break;
        auto msg = json::parse(*text).as_object();
        if (str(msg, "method") != "agents_event") continue;
        auto const& job = msg.at("params").at("job");
        if (str(job, "id") == id) states.push_back(str(job, "state"));
    }
    return states;
}

TEST_F(agentd_test, WebSocketPushesEveryStateChangeOfItsJobs) {
    restart_agentd({"--max-running", "1"});
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(
        request(1, "agents_start",
                {{"tasks", json::array{task("first [[fake latency_ms=200]]"), task("second")}}}));
    // Events arrive before the response; find the response, keep the rest.
    std::string second;
    std::vector<json::object> early;
    while (second.empty()) {
        auto text = ws.receive(5s);
        ASSERT_TRUE(text.has_value());
        auto msg = json::parse(*text).as_object();
        if (msg.contains("id")) {
            second = str(msg.at("result").at("jobs").at(1), "id");
        } else {
            early.push_back(msg);
        }
    }
    std::vector<std::string> states;
    for (auto const& e : early) {
        auto const& job = e.at("params").at("job");
        if (str(job, "id") == second) states.push_back(str(job, "state"));
    }
    for (auto const& s : states_of(ws, second)) states.push_back(s);
    EXPECT_EQ(states, (std::vector<std::string>{"queued", "running", "completed"}));
}

TEST_F(agentd_test, WebSocketSubscriptionFollowsASessionAndOnlyThat) {
    ws_client watcher(agentd_->port(), auth(*agentd_));
    ws_client bystander(agentd_->port(), auth(*agentd_));
    watcher.send(request(1, "agents_subscribe", {{"session", "alice"}}));
    EXPECT_TRUE(next(watcher).at("result").at("ok").as_bool());
    auto started =
        agentd_->call("agents_start", {{"session", "alice"}, {"tasks", json::array{task("hi")}}});
    auto id = str(jobs_of(started)[0], "id");
    auto states = states_of(watcher, id);
    ASSERT_FALSE(states.empty());
    EXPECT_EQ(states.back(), "completed");
    agentd_->call("agents_start",
                  {{"session", "bob"}, {"tasks", json::array{task("not for you")}}});
    EXPECT_FALSE(bystander.receive(300ms).has_value());
    auto bad = agentd_->rpc("agents_subscribe", {{"session", "alice"}});  // HTTP cannot push
    EXPECT_EQ(bad.at("error").at("code").as_int64(), -32601);
}

// A client that stops reading is cut off once its unsent replies pass --ws-max-outbox-bytes;
// the daemon keeps serving everyone else.
TEST_F(agentd_test, WebSocketSlowReaderIsDisconnectedNotBuffered) {
    restart_agentd({"--ws-max-outbox-bytes", "65536"});
    auto started = agentd_->call(
        "agents_start", {{"tasks", json::array{task("big [[fake output_bytes=200000]]")}}});
    auto id = str(jobs_of(started)[0], "id");
    agentd_->call("agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 10000}});

    ws_client slow(agentd_->port(), auth(*agentd_), "/ws", read_mode::paused);
    constexpr int sent = 100;  // 100 x 200 kB replies: far beyond loopback socket buffers
    try {
        for (int i = 0; i < sent; ++i)
            slow.send(request(i, "agents_status", {{"jobs", json::array{id}}}));
    } catch (std::runtime_error const&) {
        // the server may cut the connection before the last request is written
    }
    EXPECT_TRUE(agentd_->process().wait_for_line(std::regex("websocket client too slow"), 10s));
    slow.resume_reading();
    auto received = slow.drain_until_closed(10s);
    ASSERT_TRUE(received.has_value()) << "the slow connection was not closed";
    EXPECT_LT(*received, std::size_t{sent});

    ws_client other(agentd_->port(), auth(*agentd_));
    other.send(request(1, "agents_status", {{"jobs", json::array{id}}}));
    auto reply = next(other);
    ASSERT_TRUE(reply.contains("result")) << agentd_->process().stderr_text();
    EXPECT_EQ(str(reply.at("result").at("jobs").at(0), "state"), "completed");
}

// Keep-alive: an idle peer that reads gets pings (and its automatic pongs keep it connected);
// one that answers nothing is closed after --ws-idle-timeout-ms.
TEST_F(agentd_test, WebSocketPingsIdlePeersAndClosesSilentOnes) {
    restart_agentd({"--ws-idle-timeout-ms", "600"});
    ws_client live(agentd_->port(), auth(*agentd_));
    ws_client mute(agentd_->port(), auth(*agentd_), "/ws", read_mode::paused);
    // Idle on purpose: two and a half idle timeouts with nothing sent by either client.
    std::this_thread::sleep_for(1500ms);
    EXPECT_GE(live.pings(), 2);
    live.send(request(1, "agents_status", {{"jobs", json::array{"job_0"}}}));
    EXPECT_TRUE(next(live).contains("result"));
    mute.resume_reading();
    EXPECT_TRUE(mute.drain_until_closed(5s).has_value()) << "a silent peer stayed connected";
}

}  // namespace
}  // namespace agentd::test
