// JSON-RPC over WebSocket (/ws) against the real agentd: the upgrade's guards, calls and batches,
// the planner's rule across messages that arrive while earlier ones still run, and the `ask`
// approval policy's server→client `approval/request`.
#include "agentd_fixture.hpp"
#include "ws_client.hpp"

#include <fstream>
#include <map>
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

TEST_F(agentd_test, WebSocketMessagesRunIndependentlyOfALongWait) {
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("slow [[fake latency_ms=20000]]")));
    auto id = str(next(ws).at("result").at("jobs").at(0), "id");

    // A read-only status sent after a blocked wait is answered first.
    ws.send(request(2, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 800}}));
    ws.send(request(3, "agents_status", {{"jobs", json::array{id}}}));
    EXPECT_EQ(next(ws).at("id").as_int64(), 3);
    auto second = next(ws);
    EXPECT_EQ(second.at("id").as_int64(), 2);
    EXPECT_TRUE(second.at("result").at("timed_out").as_bool());

    // So is a cancel (DESIGN §4: separate messages are independent): it is answered while the
    // wait is still pending (the job runs 20 s), and the wait then returns the cancelled job.
    // The wait may be answered first: the cancel's own reply follows the upstream abort.
    ws.send(request(4, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 8000}}));
    auto sent = std::chrono::steady_clock::now();
    ws.send(request(5, "agents_cancel", {{"jobs", json::array{id}}}));
    std::map<std::int64_t, json::object> replies;
    std::int64_t cancel_ms = -1;
    while (replies.size() < 2) {
        auto reply = next(ws);
        ASSERT_TRUE(reply.contains("id"));
        auto got = reply.at("id").as_int64();
        if (got == 5)
            cancel_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - sent)
                            .count();
        replies[got] = std::move(reply);
    }
    ASSERT_TRUE(replies.contains(4) && replies.contains(5));
    EXPECT_EQ(str(replies[5].at("result").at("jobs").at(0), "state"), "cancelled");
    EXPECT_LT(cancel_ms, 4000) << "the cancel waited behind the wait";
    EXPECT_TRUE(replies[4].at("result").at("done").as_bool());
    EXPECT_EQ(str(replies[4].at("result").at("jobs").at(0), "state"), "cancelled");
    std::cerr << "cancel behind a pending 8 s wait answered in " << cancel_ms << " ms\n";
}

// The plan still orders the calls of one message: a batch's cancel runs after its wait.
TEST_F(agentd_test, WebSocketBatchKeepsItsOrder) {
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("slow [[fake latency_ms=20000]]")));
    auto id = str(next(ws).at("result").at("jobs").at(0), "id");
    ws.send("[" + request(2, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 300}}) +
            "," + request(3, "agents_cancel", {{"jobs", json::array{id}}}) + "]");
    auto batch = next(ws).at("batch").as_array();
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(str(batch[0].at("result").at("jobs").at(0), "state"), "running");
    EXPECT_EQ(str(batch[1].at("result").at("jobs").at(0), "state"), "cancelled");
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

// Separate messages are independent, approvals included: two starts ask at once, and each
// answer settles its own start.
TEST_F(agentd_test, ApprovalRequestsOfSeparateMessagesAreIndependent) {
    restart_agentd({"--approval-start", "ask"});
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(request(1, "agents_start", start_params("one")));
    ws.send(request(2, "agents_start", start_params("two")));
    std::map<std::string, json::value> asks;  // prompt -> request id
    for (int i = 0; i < 2; ++i) {
        auto ask = next(ws);
        ASSERT_EQ(str(ask, "method"), "approval/request");
        asks[str(ask.at("params").at("params").at("tasks").at(0), "prompt")] = ask.at("id");
    }
    ASSERT_EQ(asks.size(), 2u);
    ws.send(json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", asks["two"]}, {"result", {{"approved", false}}}}));
    auto refused = next(ws);
    EXPECT_EQ(refused.at("id").as_int64(), 2);
    EXPECT_EQ(refused.at("error").at("code").as_int64(), -32002);
    ws.send(json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", asks["one"]}, {"result", {{"approved", true}}}}));
    auto started = next(ws);
    EXPECT_EQ(started.at("id").as_int64(), 1);
    EXPECT_TRUE(started.contains("result"));
}

// An object with an id and no method answers a request; one that answers nothing the server
// asked is an invalid request (DESIGN §6), as on /rpc. A late answer to a request the server
// did send is dropped quietly.
TEST_F(agentd_test, WebSocketStrayResponsesAreInvalidRequests) {
    restart_agentd({"--approval-start", "ask"});
    ws_client ws(agentd_->port(), auth(*agentd_));
    ws.send(R"({"jsonrpc":"2.0","id":"nobody-asked","result":{"approved":true}})");
    auto stray = next(ws);
    EXPECT_EQ(stray.at("id"), "nobody-asked");
    EXPECT_EQ(stray.at("error").at("code").as_int64(), -32600);
    ws.send(R"({"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}})");
    auto numeric = next(ws);
    EXPECT_EQ(numeric.at("id").as_int64(), 7);
    EXPECT_EQ(numeric.at("error").at("code").as_int64(), -32600);

    ws.send(request(1, "agents_start", start_params("asks")));
    auto ask = next(ws);
    auto answer = json::serialize(
        json::object{{"jsonrpc", "2.0"}, {"id", ask.at("id")}, {"result", {{"approved", true}}}});
    ws.send(answer);
    EXPECT_EQ(next(ws).at("id").as_int64(), 1);
    ws.send(answer);  // late: the request was already answered
    ws.send(request(2, "agents_status", {{"jobs", json::array{"job_0"}}}));
    EXPECT_EQ(next(ws).at("id").as_int64(), 2);  // nothing came for the late answer
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
    EXPECT_TRUE(agentd_->process().wait_for_line(
        std::regex("limit=ws_max_outbox_bytes action=disconnected"), 10s));
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

// VmRSS of a process, in bytes.
std::size_t rss_bytes(int pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
    ADD_FAILURE() << "no VmRSS for " << pid;
    return 0;
}

// agentd_rpc_duration_seconds_count of a method: its calls that have ended.
int ended_calls(agentd_process& a, std::string const& method) {
    auto res = http_request(a.port(), "GET", "/metrics", "", auth(a));
    std::smatch m;
    std::regex count("agentd_rpc_duration_seconds_count\\{method=\"" + method + "\"\\} (\\d+)");
    return std::regex_search(res.body, m, count) ? std::stoi(m[1]) : -1;
}

bool ended_calls_reach(agentd_process& a, std::string const& method, int n,
                       std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (ended_calls(a, method) < n) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(20ms);  // polls a counter, under a deadline
    }
    return true;
}

// A reader that falls behind gets each job's latest view once, not every change it missed: the
// outbox holds at most one unsent push per job (DESIGN §6 throttle).
TEST_F(agentd_test, WebSocketPushesQueuedForASlowReaderAreMergedPerJob) {
    restart_agentd({"--ws-max-outbox-bytes", std::to_string(256 << 20)});
    auto big_job = agentd_->call(
        "agents_start", {{"tasks", json::array{task("big [[fake output_bytes=200000]]")}}});
    auto big = str(jobs_of(big_job)[0], "id");
    agentd_->call("agents_wait", {{"jobs", json::array{big}}, {"timeout_ms", 10000}});

    ws_client slow(agentd_->port(), auth(*agentd_), "/ws", read_mode::paused);
    slow.send(request(1, "agents_subscribe", {{"session", "merged"}}));
    // 100 x 200 kB replies: far beyond loopback's socket buffers, so what follows waits in the
    // outbox (the slow-reader test above shows 20 MB outgrow them).
    constexpr int replies = 100;
    for (int i = 0; i < replies; ++i)
        slow.send(request(10 + i, "agents_status", {{"jobs", json::array{big}}}));
    ASSERT_TRUE(ended_calls_reach(*agentd_, "agents_status", replies, 20s));

    json::array tasks;
    for (int i = 0; i < 6; ++i) tasks.push_back(task("quick [[fake latency_ms=50]]"));
    auto started = agentd_->call("agents_start", {{"session", "merged"}, {"tasks", tasks}});
    std::vector<std::string> ids;
    for (auto const& j : jobs_of(started)) ids.push_back(str(j, "id"));
    agentd_->call("agents_wait", {{"session", "merged"},
                                  {"jobs", json::array(ids.begin(), ids.end())},
                                  {"timeout_ms", 10000}});

    slow.resume_reading();
    std::map<std::string, std::vector<std::string>> pushes;
    int answered = 0;
    auto all_pushed = [&] {
        return std::all_of(ids.begin(), ids.end(),
                           [&](auto const& id) { return pushes.contains(id); });
    };
    while (answered < replies + 1 || !all_pushed()) {
        auto text = slow.receive(10s);
        ASSERT_TRUE(text.has_value()) << "the slow reader's replies stopped at " << answered;
        auto msg = json::parse(*text).as_object();
        if (msg.contains("id")) {
            ++answered;
        } else {
            auto const& job = msg.at("params").at("job");
            pushes[str(job, "id")].push_back(str(job, "state"));
        }
    }
    // Every push was queued behind the replies, and each job's were merged into its last state.
    for (auto const& id : ids) EXPECT_EQ(pushes[id], std::vector<std::string>{"completed"}) << id;
}

// Read-ahead is bounded (DESIGN §4): 400 frames of ~1 MB, each a valid long agents_wait, sent
// to a connection that already waits. The server stops reading once the calls in flight hold
// their bound, so agentd's RSS stays flat; closing the connection ends those calls at once.
TEST_F(agentd_test, WebSocketReadAheadIsBoundedAndDroppedOnClose) {
    auto started = agentd_->call("agents_start", start_params("slow [[fake latency_ms=60000]]"));
    auto id = str(jobs_of(started)[0], "id");
    int pid = agentd_->process().pid();
    auto baseline = rss_bytes(pid);
    auto flood = std::make_unique<ws_client>(agentd_->port(), auth(*agentd_));
    flood->send(request(1, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 60000}}));
    auto big = json::serialize(
        json::object{{"jsonrpc", "2.0"},
                     {"id", std::string(1'000'000, 'x')},
                     {"method", "agents_wait"},
                     {"params", {{"jobs", json::array{id}}, {"timeout_ms", 60000}}}});
    constexpr std::size_t frames = 400;
    auto written = flood->flood(big, frames, 1500ms);
    auto during = rss_bytes(pid);
    std::cerr << "flood: " << written << " of " << frames << " frames written; agentd RSS "
              << baseline / 1024 << " KiB before, " << during / 1024 << " KiB during\n";
    EXPECT_LT(written, frames) << "the server read every frame";
    EXPECT_LT(during, baseline + (64u << 20));

    // Meanwhile another client is served at once.
    ws_client other(agentd_->port(), auth(*agentd_));
    other.send(request(1, "agents_status", {{"jobs", json::array{id}}}));
    EXPECT_EQ(str(next(other, 2s).at("result").at("jobs").at(0), "state"), "running");

    int before_close = ended_calls(*agentd_, "agents_wait");
    flood.reset();  // closes: every wait the connection had in flight ends now, not in 60 s
    EXPECT_TRUE(ended_calls_reach(*agentd_, "agents_wait", before_close + 2, 5s));
    auto after = rss_bytes(pid);
    std::cerr << "agentd RSS after close: " << after / 1024 << " KiB\n";
    EXPECT_LT(after, baseline + (64u << 20));
    EXPECT_FALSE(std::regex_search(agentd_->process().stderr_text(), std::regex("internal error")))
        << agentd_->process().stderr_text();
}

// A call cancelled because its client went away is not an internal error (rpc.cpp).
TEST_F(agentd_test, WebSocketCloseCancelsCallsWithoutLoggingErrors) {
    auto started = agentd_->call("agents_start", start_params("slow [[fake latency_ms=60000]]"));
    auto id = str(jobs_of(started)[0], "id");
    int before = ended_calls(*agentd_, "agents_wait");
    {
        ws_client ws(agentd_->port(), auth(*agentd_));
        ws.send(request(1, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 60000}}));
        ws.send("[" +
                request(2, "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 60000}}) +
                "," + request(3, "agents_status", {{"jobs", json::array{id}}}) + "]");
        ws.send(request(4, "agents_status", {{"jobs", json::array{id}}}));
        EXPECT_EQ(next(ws).at("id").as_int64(), 4);  // both waits are in flight by now
    }
    EXPECT_TRUE(ended_calls_reach(*agentd_, "agents_wait", before + 2, 5s));
    auto log = agentd_->process().stderr_text();
    EXPECT_EQ(log.find("internal error"), std::string::npos) << log;
    EXPECT_EQ(log.find("websocket call failed"), std::string::npos) << log;
}

// "session": null is invalid params naming the field, on every transport's shared codec.
TEST_F(agentd_test, NullSessionIsInvalidParams) {
    for (auto method : {"agents_status", "agents_wait"}) {
        auto err = agentd_->error(method, {{"session", nullptr}});
        EXPECT_EQ(err.at("code").as_int64(), -32602) << method;
        EXPECT_EQ(err.at("data").at("field"), "session") << method;
    }
    auto err =
        agentd_->error("agents_start", {{"session", nullptr}, {"tasks", json::array{task("x")}}});
    EXPECT_EQ(err.at("data").at("field"), "session");
    EXPECT_EQ(fake_->stats().at("creates_started").as_int64(), 0);
}

}  // namespace
}  // namespace agentd::test
