// Tests of fake_opencode over loopback, through the same support library the integration tests
// use: OpenCode-shaped answers, turn timing and queuing, the event stream, abort, and every
// fault mode in both phases. Waits are event-driven (/_fake/wait, SSE), never sleep-and-hope.
#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::test::fake_upstream;
using agentd::test::http_connection;
using agentd::test::http_error;
using agentd::test::http_request;
using agentd::test::http_response;
using agentd::test::sse_connection;
using clock_type = std::chrono::steady_clock;

std::int64_t ms_since(clock_type::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
}

json::value parse(http_response const& res) {
    return json::parse(res.body);
}

std::string prompt_body(std::string_view text) {
    return json::serialize(
        json::object{{"parts", json::array{{{"type", "text"}, {"text", text}}}}});
}

std::string title_body(std::string_view title) {
    return json::serialize(json::object{{"title", title}});
}

// Expects OpenCode's error shape: {"name": name, "data": {"message": "..."}}.
void expect_error(http_response const& res, int status, std::string_view name) {
    EXPECT_EQ(res.status, status) << res.body;
    EXPECT_EQ(res.header("content-type"), "application/json") << res.body;
    auto body = parse(res).as_object();
    EXPECT_EQ(body.at("name").as_string(), name);
    EXPECT_TRUE(body.at("data").at("message").is_string());
}

http_error::kind failure_of(std::function<void()> const& call) {
    try {
        call();
    } catch (http_error const& e) {
        return e.failure();
    }
    ADD_FAILURE() << "the call did not fail";
    return http_error::kind::other;
}

// The session an OpenCode event is about; empty for server-level events.
std::string session_of(json::object const& event) {
    auto const& props = event.at("properties").as_object();
    if (auto const* s = props.if_contains("sessionID")) return std::string(s->as_string());
    if (auto const* info = props.if_contains("info")) {
        return std::string(info->at("sessionID").as_string());
    }
    if (auto const* part = props.if_contains("part")) {
        return std::string(part->at("sessionID").as_string());
    }
    return {};
}

// Events of one session from an SSE stream, until one of type `last` (inclusive).
std::vector<json::object> events_until(sse_connection& sse, std::string_view session_id,
                                       std::string_view last,
                                       std::chrono::milliseconds timeout = 5s) {
    std::vector<json::object> out;
    auto const deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        auto data = sse.next_data(left);
        if (!data) break;
        auto event = json::parse(*data).as_object();
        if (session_of(event) != session_id) continue;
        out.push_back(event);
        if (event.at("type").as_string() == last) return out;
    }
    ADD_FAILURE() << "no " << last << " event for " << session_id << " within " << timeout.count()
                  << " ms";
    return out;
}

std::string deltas_of(std::vector<json::object> const& events) {
    std::string text;
    for (auto const& e : events) {
        if (e.at("type").as_string() == "message.part.delta") {
            text += e.at("properties").at("delta").as_string();
        }
    }
    return text;
}

std::vector<std::string> types_of(std::vector<json::object> const& events) {
    std::vector<std::string> types;
    for (auto const& e : events) types.emplace_back(e.at("type").as_string());
    return types;
}

class FakeOpencode : public ::testing::Test {
  protected:
    explicit FakeOpencode(std::vector<std::string> args = {"--latency-ms", "50"})
        : fake_(FAKE_OPENCODE_PATH, std::move(args)) {}

    // A clean exit after every scenario proves the drain on SIGTERM works with whatever the
    // test left behind (hung turns, open streams), and lets a sanitizer's leak check count.
    void TearDown() override { EXPECT_EQ(fake_.stop(5s), 0) << fake_.process().stderr_text(); }

    unsigned short port() const { return fake_.port(); }

    std::string create_session(std::string const& target = "/session", std::string body = "{}") {
        auto res = http_request(port(), "POST", target, std::move(body));
        EXPECT_EQ(res.status, 200) << res.body;
        return std::string(parse(res).at("id").as_string());
    }

    http_response prompt(std::string const& session, std::string_view text,
                         std::chrono::milliseconds timeout = 10s) {
        return http_request(port(), "POST", "/session/" + session + "/message", prompt_body(text),
                            {}, timeout);
    }

    std::int64_t stat(std::string_view name) { return fake_.stats().at(name).as_int64(); }

    fake_upstream fake_;
};

// ---------------------------------------------------------------------------------------------
// Basics

TEST_F(FakeOpencode, HealthUnknownPathsAndHandlerFailures) {
    auto res = http_request(port(), "GET", "/global/health");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(parse(res), (json::value{{"healthy", true}, {"version", "1.18.33"}}));

    expect_error(http_request(port(), "GET", "/no/such/path"), 404, "NotFoundError");
    expect_error(http_request(port(), "DELETE", "/global/health"), 404, "NotFoundError");
    expect_error(http_request(port(), "GET", "/_fake/throw"), 500, "UnknownError");
    EXPECT_EQ(http_request(port(), "GET", "/global/health").status, 200) << "still serving";
}

TEST_F(FakeOpencode, KeepAliveServesManyRequestsOnOneConnection) {
    http_connection c(port());
    for (int i = 0; i < 5; ++i) ASSERT_EQ(c.request("GET", "/global/health").status, 200);
    EXPECT_TRUE(c.is_open());
    EXPECT_EQ(stat("requests_total"), 5) << "/_fake/ requests are not counted";
}

TEST_F(FakeOpencode, MalformedRequestGets400) {
    auto reply = agentd::test::raw_exchange(port(), "GARBAGE\r\n\r\n", 2s);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << reply;
}

// ---------------------------------------------------------------------------------------------
// Session create

TEST_F(FakeOpencode, CreateSessionRecordsDirectoryAndBody) {
    auto body = title_body("first task");
    auto res = http_request(port(), "POST", "/session?directory=%2Ftmp%2Fmy%20dir", body);
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_EQ(res.header("content-type"), "application/json");
    auto info = parse(res).as_object();
    EXPECT_TRUE(
        std::regex_match(std::string(info.at("id").as_string()), std::regex("ses_[0-9a-f]{24}")))
        << info.at("id");
    EXPECT_EQ(info.at("title").as_string(), "first task");
    EXPECT_EQ(info.at("directory").as_string(), "/tmp/my dir");
    EXPECT_GT(info.at("time").at("created").as_int64(), 0);
    EXPECT_FALSE(info.contains("parentID"));

    auto plain = parse(http_request(port(), "POST", "/session", "{}")).as_object();
    EXPECT_EQ(plain.at("directory").as_string(), "/fake");

    auto stats = fake_.stats();
    EXPECT_EQ(stats.at("sessions_created").as_int64(), 2);
    EXPECT_EQ(stats.at("creates_started").as_int64(), 2);
    EXPECT_EQ(stats.at("directories"), (json::array{"/tmp/my dir"}));
    EXPECT_EQ(stats.at("last_create_body"), json::object{});

    auto got = http_request(port(), "GET", "/session/" + std::string(info.at("id").as_string()));
    EXPECT_EQ(parse(got), info);
}

TEST_F(FakeOpencode, CreateSessionValidatesBody) {
    expect_error(http_request(port(), "POST", "/session", R"({"title":"x","color":"red"})"), 400,
                 "BadRequest");
    EXPECT_EQ(fake_.stats().at("last_create_body"), (json::value{{"title", "x"}, {"color", "red"}}))
        << "rejected bodies are recorded too";
    expect_error(http_request(port(), "POST", "/session", R"({"title":5})"), 400, "BadRequest");
    expect_error(http_request(port(), "POST", "/session", "[1]"), 400, "BadRequest");
    expect_error(http_request(port(), "POST", "/session", "{not json"), 400, "BadRequest");
    expect_error(
        http_request(port(), "POST", "/session", R"({"parentID":"ses_000000000000000000000000"})"),
        400, "BadRequest");
    expect_error(http_request(port(), "POST", "/session", title_body("[[fake bogus=1]]")), 400,
                 "BadRequest");
    expect_error(
        http_request(port(), "POST", "/session", title_body("[[fake create_fault=error]]")), 400,
        "BadRequest");
    EXPECT_EQ(stat("sessions_created"), 0);

    auto parent = create_session();
    auto child = http_request(port(), "POST", "/session",
                              json::serialize(json::object{{"parentID", parent}}));
    ASSERT_EQ(child.status, 200) << child.body;
    EXPECT_EQ(parse(child).at("parentID").as_string(), parent);
}

TEST_F(FakeOpencode, CreateLatencyIsObservableInFlight) {
    auto start = clock_type::now();
    auto pending = std::async(std::launch::async, [&] {
        return http_request(port(), "POST", "/session",
                            title_body("t [[fake create_latency_ms=300]]"));
    });
    EXPECT_TRUE(fake_.wait_counter("creates_in_flight", 1, 5s));
    auto res = pending.get();
    EXPECT_EQ(res.status, 200);
    EXPECT_GE(ms_since(start), 300);
    EXPECT_EQ(stat("creates_in_flight"), 0);
    EXPECT_EQ(stat("max_creates_in_flight"), 1);
}

// ---------------------------------------------------------------------------------------------
// Prompts

TEST_F(FakeOpencode, PromptAnswersWithOpencodeShape) {
    auto sid = create_session();
    json::object body{{"parts", json::array{{{"type", "text"}, {"text", "hello brave new world"}}}},
                      {"agent", "general"},
                      {"model", {{"providerID", "fake"}, {"modelID", "fake-model"}}},
                      {"system", "be brief"}};
    auto res = http_request(port(), "POST", "/session/" + sid + "/message?directory=%2Fw",
                            json::serialize(body));
    ASSERT_EQ(res.status, 200) << res.body;
    auto answer = parse(res).as_object();
    auto const& info = answer.at("info").as_object();
    EXPECT_TRUE(info.at("id").as_string().starts_with("msg_"));
    EXPECT_EQ(info.at("sessionID").as_string(), sid);
    EXPECT_EQ(info.at("role").as_string(), "assistant");
    EXPECT_EQ(info.at("modelID").as_string(), "fake-model");
    EXPECT_EQ(info.at("providerID").as_string(), "fake");
    EXPECT_DOUBLE_EQ(info.at("cost").as_double(), 0.0012);
    EXPECT_GE(info.at("time").at("completed").as_int64(), info.at("time").at("created").as_int64());
    EXPECT_EQ(info.at("tokens"), (json::value{{"input", 4},
                                              {"output", 5},
                                              {"reasoning", 0},
                                              {"cache", {{"read", 0}, {"write", 0}}}}));
    EXPECT_FALSE(info.contains("error"));

    auto const& parts = answer.at("parts").as_array();
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].at("type").as_string(), "step-start");
    EXPECT_EQ(parts[1].at("type").as_string(), "text");
    EXPECT_EQ(parts[1].at("text").as_string(), "echo: hello brave new world");
    for (auto const& p : parts) {
        EXPECT_TRUE(p.at("id").as_string().starts_with("prt_"));
        EXPECT_EQ(p.at("sessionID").as_string(), sid);
        EXPECT_EQ(p.at("messageID"), info.at("id"));
    }

    auto stats = fake_.stats();
    EXPECT_EQ(stats.at("last_prompt_body"), body);
    EXPECT_EQ(stats.at("directories"), (json::array{"/w"}));
    EXPECT_EQ(stats.at("prompts_started").as_int64(), 1);
    EXPECT_EQ(stats.at("prompts_completed").as_int64(), 1);
    EXPECT_EQ(stats.at("prompts_in_flight").as_int64(), 0);

    auto messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at("info").at("role").as_string(), "user");
    EXPECT_EQ(messages[0].at("parts").at(0).at("text").as_string(), "hello brave new world");
    EXPECT_EQ(messages[1], answer);
}

TEST_F(FakeOpencode, DirectivesShapeOutputAndAreRemovedFromIt) {
    auto sid = create_session();
    auto res = prompt(sid, "  say [[fake chunks=2]] this [[fake latency_ms=5]]  ");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(parse(res).at("parts").at(1).at("text").as_string(), "echo: say  this");

    res = prompt(sid, "[[fake output_bytes=25]] ignored");
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(answer.at("parts").at(1).at("text").as_string(), "abcdefghijabcdefghijabcde");
    EXPECT_EQ(answer.at("info").at("tokens").at("output").as_int64(), 1);

    auto start = clock_type::now();
    ASSERT_EQ(prompt(sid, "slow [[fake latency_ms=250]]").status, 200);
    EXPECT_GE(ms_since(start), 250);

    auto utf8 = prompt(sid, "h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC [[fake chunks=50]]");
    ASSERT_EQ(utf8.status, 200);
    EXPECT_EQ(parse(utf8).at("parts").at(1).at("text").as_string(),
              "echo: h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC");
}

TEST_F(FakeOpencode, PromptValidation) {
    auto sid = create_session();
    auto const target = "/session/" + sid + "/message";
    expect_error(http_request(port(), "POST", target,
                              R"({"parts":[{"type":"text","text":"x"}],"temperature":1})"),
                 400, "BadRequest");
    expect_error(http_request(port(), "POST", target, R"({"parts":[]})"), 400, "BadRequest");
    expect_error(http_request(port(), "POST", target, R"({"agent":"a"})"), 400, "BadRequest");
    expect_error(http_request(port(), "POST", target,
                              R"({"parts":[{"type":"text","text":"x"}],"model":"fake/m"})"),
                 400, "BadRequest");
    expect_error(http_request(port(), "POST", target, prompt_body("[[fake latency_ms=abc]]")), 400,
                 "BadRequest");
    expect_error(http_request(port(), "POST", target, prompt_body("[[fake fault=teapot]]")), 400,
                 "BadRequest");
    expect_error(http_request(port(), "POST", target, prompt_body("[[fake latency_ms=1")), 400,
                 "BadRequest");

    auto missing = prompt("ses_000000000000000000000000", "hi");
    expect_error(missing, 404, "NotFoundError");
    EXPECT_EQ(parse(missing).at("data").at("message").as_string(),
              "Session not found: ses_000000000000000000000000");
    expect_error(http_request(port(), "GET", "/session/ses_nope/message"), 404, "NotFoundError");
    EXPECT_EQ(stat("prompts_started"), 0);
}

TEST_F(FakeOpencode, PromptsOnOneSessionQueue) {
    auto sid = create_session();
    auto start = clock_type::now();
    auto run = [&] {
        auto res = prompt(sid, "queued [[fake latency_ms=300]]");
        return std::pair{res, ms_since(start)};
    };
    auto first = std::async(std::launch::async, run);
    ASSERT_TRUE(fake_.wait_counter("prompts_in_flight", 1, 5s));
    auto second = std::async(std::launch::async, run);
    ASSERT_TRUE(fake_.wait_counter("prompts_in_flight", 2, 5s));
    auto [a, a_ms] = first.get();
    auto [b, b_ms] = second.get();
    ASSERT_EQ(a.status, 200);
    ASSERT_EQ(b.status, 200);
    EXPECT_GE(a_ms, 300);
    EXPECT_GE(b_ms, 600) << "the second turn waited for the first";
    auto a_info = parse(a).at("info");
    auto b_info = parse(b).at("info");
    EXPECT_GE(b_info.at("time").at("created").as_int64(),
              a_info.at("time").at("completed").as_int64());
}

TEST_F(FakeOpencode, PromptsOnDifferentSessionsRunConcurrently) {
    constexpr int n = 8;
    std::vector<std::string> sessions;
    for (int i = 0; i < n; ++i) sessions.push_back(create_session());
    auto start = clock_type::now();
    std::vector<std::future<http_response>> pending;
    for (auto const& sid : sessions) {
        pending.push_back(std::async(std::launch::async, [&, sid] {
            return prompt(sid, "fan out [[fake latency_ms=400]]");
        }));
    }
    EXPECT_TRUE(fake_.wait_counter("prompts_in_flight", n, 5s));
    for (auto& p : pending) EXPECT_EQ(p.get().status, 200);
    EXPECT_LT(ms_since(start), 3 * 400) << "eight 400 ms turns overlapped (serial: 3200 ms)";
    auto stats = fake_.stats();
    EXPECT_EQ(stats.at("max_prompts_in_flight").as_int64(), n);
    EXPECT_EQ(stats.at("prompts_completed").as_int64(), n);
}

// ---------------------------------------------------------------------------------------------
// Event stream and messages

TEST_F(FakeOpencode, EventStreamCarriesTheTurn) {
    sse_connection sse(port());
    ASSERT_EQ(sse.status(), 200);
    EXPECT_EQ(sse.headers().at("content-type"), "text/event-stream");
    auto first = sse.next_data(5s);
    ASSERT_TRUE(first);
    EXPECT_EQ(json::parse(*first),
              (json::value{{"type", "server.connected"}, {"properties", json::object{}}}));
    sse_connection second_reader(port());
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 2, 5s));

    auto sid = create_session();
    auto res = prompt(sid, "stream [[fake chunks=5 output_bytes=37 latency_ms=100]]");
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    auto const output = std::string(answer.at("parts").at(1).at("text").as_string());

    for (auto* reader : {&sse, &second_reader}) {
        auto events = events_until(*reader, sid, "session.idle");
        auto types = types_of(events);
        EXPECT_EQ(std::count(types.begin(), types.end(), "message.part.delta"), 5);
        EXPECT_EQ(deltas_of(events), output);
        auto busy = std::find(types.begin(), types.end(), "session.status");
        auto first_delta = std::find(types.begin(), types.end(), "message.part.delta");
        EXPECT_LT(busy, first_delta);
        ASSERT_GE(events.size(), 4u);
        // Closing sequence: final part, completed message, idle status, session.idle.
        auto const tail = std::vector<std::string>(types.end() - 4, types.end());
        EXPECT_EQ(tail, (std::vector<std::string>{"message.part.updated", "message.updated",
                                                  "session.status", "session.idle"}));
        auto const& final_part = events[events.size() - 4].at("properties").at("part");
        EXPECT_EQ(final_part.at("text").as_string(), output);
        EXPECT_EQ(final_part.at("id"), answer.at("parts").at(1).at("id"));
        auto const& delta = *std::find_if(events.begin(), events.end(), [](auto const& e) {
            return e.at("type").as_string() == "message.part.delta";
        });
        EXPECT_EQ(delta.at("properties").at("messageID"), answer.at("info").at("id"));
        EXPECT_EQ(delta.at("properties").at("partID"), answer.at("parts").at(1).at("id"));
        EXPECT_EQ(delta.at("properties").at("field").as_string(), "text");
        EXPECT_EQ(events[events.size() - 2].at("properties").at("status").at("type").as_string(),
                  "idle");
    }

    second_reader.close();
    EXPECT_TRUE(fake_.wait_counter_at_most("event_subscribers", 1, 5s));

    // More chunks than bytes, with multi-byte characters: deltas never split a UTF-8 sequence
    // (json::parse inside events_until rejects invalid UTF-8).
    auto utf8 = prompt(sid, "h\xC3\xA9llo \xE2\x82\xAC [[fake chunks=50 latency_ms=20]]");
    ASSERT_EQ(utf8.status, 200);
    auto events = events_until(sse, sid, "session.idle");
    EXPECT_EQ(deltas_of(events), "echo: h\xC3\xA9llo \xE2\x82\xAC");
}

TEST_F(FakeOpencode, MessagesMidTurnShowAnEmptyTextPart) {
    sse_connection sse(port());
    auto sid = create_session();
    auto res = http_request(port(), "POST", "/session/" + sid + "/prompt_async",
                            prompt_body("peek at me [[fake latency_ms=800 chunks=3]]"));
    ASSERT_EQ(res.status, 204);
    auto early = events_until(sse, sid, "message.part.delta");
    ASSERT_FALSE(deltas_of(early).empty());

    auto messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    ASSERT_EQ(messages.size(), 2u);
    auto const& assistant = messages[1].as_object();
    EXPECT_EQ(assistant.at("info").at("role").as_string(), "assistant");
    EXPECT_FALSE(assistant.at("info").at("time").as_object().contains("completed"));
    auto const& parts = assistant.at("parts").as_array();
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[1].at("type").as_string(), "text");
    EXPECT_EQ(parts[1].at("text").as_string(), "") << "only the event stream carries partial text";

    auto rest = events_until(sse, sid, "session.idle");
    EXPECT_EQ(deltas_of(early) + deltas_of(rest), "echo: peek at me");
    messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    EXPECT_EQ(messages[1].at("parts").at(1).at("text").as_string(), "echo: peek at me");
    EXPECT_TRUE(messages[1].at("info").at("time").as_object().contains("completed"));
}

TEST_F(FakeOpencode, HeartbeatsAndSubscriberCleanup) {
    fake_upstream fast(FAKE_OPENCODE_PATH, {"--heartbeat-ms", "50"});
    {
        sse_connection sse(fast.port());
        ASSERT_EQ(json::parse(*sse.next_data(5s)).at("type").as_string(), "server.connected");
        for (int i = 0; i < 2; ++i) {
            auto beat = sse.next_data(5s);
            ASSERT_TRUE(beat);
            EXPECT_EQ(json::parse(*beat).at("type").as_string(), "server.heartbeat");
        }
        EXPECT_TRUE(fast.wait_counter("event_subscribers", 1, 1s));
    }
    EXPECT_TRUE(fast.wait_counter_at_most("event_subscribers", 0, 5s))
        << "a reader that went away is unsubscribed";
    EXPECT_EQ(fast.stop(5s), 0);
}

TEST(FakeOpencodeScopedEvents, EventStreamsFollowTheDirectoryAndGlobalSeesAll) {
    fake_upstream fake(FAKE_OPENCODE_PATH, {"--latency-ms", "20"});
    sse_connection in_a(fake.port(), "/event?directory=%2Fa");
    sse_connection in_default(fake.port(), "/event");
    sse_connection global(fake.port(), "/global/event");
    ASSERT_TRUE(fake.wait_counter("event_subscribers", 3, 5s));
    auto create = [&](std::string const& target) {
        return std::string(
            parse(http_request(fake.port(), "POST", target, "{}")).at("id").as_string());
    };
    auto const a = create("/session?directory=%2Fa");
    auto const d = create("/session");
    auto run = [&](std::string const& sid) {
        ASSERT_EQ(
            http_request(fake.port(), "POST", "/session/" + sid + "/message", prompt_body("x"))
                .status,
            200);
    };
    run(d);
    run(a);
    run(d);

    // Reads up to the `count`-th session.idle of `until`; returns the sessions seen on the way.
    auto sessions_seen = [](sse_connection& sse, std::string const& until, int count) {
        std::set<std::string> seen;
        while (count > 0) {
            auto data = sse.next_data(5s);
            if (!data) {
                ADD_FAILURE() << "stream went quiet";
                break;
            }
            auto event = json::parse(*data).as_object();
            auto sid = session_of(event);
            if (!sid.empty()) seen.insert(sid);
            if (sid == until && event.at("type").as_string() == "session.idle") --count;
        }
        return seen;
    };
    EXPECT_EQ(sessions_seen(in_a, a, 1), (std::set<std::string>{a}));
    EXPECT_EQ(sessions_seen(in_default, d, 2), (std::set<std::string>{d}));

    auto first = json::parse(*global.next_data(5s));
    EXPECT_EQ(first.at("payload").at("type").as_string(), "server.connected");
    std::map<std::string, std::string> directory_of;
    int idles = 0;
    while (idles < 3) {
        auto data = global.next_data(5s);
        ASSERT_TRUE(data);
        auto wrapped = json::parse(*data).as_object();
        auto const& payload = wrapped.at("payload").as_object();
        directory_of[session_of(payload)] = std::string(wrapped.at("directory").as_string());
        if (payload.at("type").as_string() == "session.idle") ++idles;
    }
    EXPECT_EQ(directory_of, (std::map<std::string, std::string>{{a, "/a"}, {d, "/fake"}}));
    EXPECT_EQ(fake.stop(5s), 0);
}

TEST(FakeOpencodeSlowReader, IsDroppedWithoutHoldingUpOthers) {
    // Every turn streams 1 MiB of deltas and a 1 MiB final part. The fast reader reads each turn
    // to its end before the next one starts, so its backlog never exceeds one turn (~2 MiB)
    // however loaded the machine is; the reader that never reads falls ~2 MiB further behind
    // with every turn, so after a few turns (whatever its socket buffers absorb) it passes the
    // 8 MiB bound and is dropped. The turn count is bounded, not timed.
    constexpr std::size_t size = 1u << 20;
    fake_upstream fake(FAKE_OPENCODE_PATH, {"--event-queue-bytes", std::to_string(8u << 20)});
    sse_connection slow(fake.port());
    sse_connection fast(fake.port());
    ASSERT_TRUE(fake.wait_counter("event_subscribers", 2, 5s));
    auto created = http_request(fake.port(), "POST", "/session", "{}");
    auto const sid = std::string(parse(created).at("id").as_string());
    auto const directive = fmt::format("[[fake output_bytes={} chunks=16 latency_ms=20]]", size);
    bool dropped = false;
    for (int turn = 0; turn < 64 && !dropped; ++turn) {
        auto pending = std::async(std::launch::async, [&] {
            return http_request(fake.port(), "POST", "/session/" + sid + "/message",
                                prompt_body(directive), {}, 30s);
        });
        auto events = events_until(fast, sid, "session.idle", 30s);
        ASSERT_EQ(deltas_of(events).size(), size) << "turn " << turn;
        ASSERT_EQ(pending.get().status, 200);
        dropped = fake.stats().at("event_subscribers").as_int64() == 1;
    }
    EXPECT_TRUE(dropped) << "the reader that fell behind was dropped";
    EXPECT_THROW(
        {
            while (slow.next_data(5s)) {
            }
        },
        http_error)
        << "and its stream ended";
    EXPECT_EQ(fake.stop(5s), 0);
}

// ---------------------------------------------------------------------------------------------
// Abort

TEST_F(FakeOpencode, AbortEndsTheTurnWithWhatWasStreamed) {
    sse_connection sse(port());
    auto sid = create_session();
    auto start = clock_type::now();
    auto pending = std::async(std::launch::async, [&] {
        return prompt(sid, "[[fake latency_ms=5000 chunks=10 output_bytes=100]]");
    });
    auto before = events_until(sse, sid, "message.part.delta");
    auto abort = http_request(port(), "POST", "/session/" + sid + "/abort");
    ASSERT_EQ(abort.status, 200);
    EXPECT_EQ(parse(abort), json::value(true));

    auto res = pending.get();
    EXPECT_LT(ms_since(start), 5000);
    ASSERT_EQ(res.status, 200) << res.body;
    auto answer = parse(res);
    EXPECT_EQ(answer.at("info").at("error"),
              (json::value{{"name", "MessageAbortedError"},
                           {"data", {{"message", "The operation was aborted."}}}}));
    auto after = events_until(sse, sid, "session.idle");
    auto const streamed = deltas_of(before) + deltas_of(after);
    EXPECT_FALSE(streamed.empty());
    EXPECT_LT(streamed.size(), 100u);
    EXPECT_EQ(answer.at("parts").at(1).at("text").as_string(), streamed);
    auto types = types_of(after);
    auto error = std::find(types.begin(), types.end(), "session.error");
    ASSERT_NE(error, types.end());
    EXPECT_EQ(after[static_cast<std::size_t>(error - types.begin())]
                  .at("properties")
                  .at("error")
                  .at("name")
                  .as_string(),
              "MessageAbortedError");

    EXPECT_EQ(parse(http_request(port(), "POST", "/session/ses_unknown/abort")), json::value(true));
    auto stats = fake_.stats();
    EXPECT_EQ(stats.at("aborts_total").as_int64(), 2);
    EXPECT_EQ(stats.at("aborted_sessions"), (json::array{json::string(sid), "ses_unknown"}));
    EXPECT_EQ(stats.at("prompts_in_flight").as_int64(), 0);
}

TEST_F(FakeOpencode, AbortAlsoEndsQueuedTurns) {
    auto sid = create_session();
    std::vector<std::future<http_response>> pending;
    for (int i = 0; i < 2; ++i) {
        pending.push_back(std::async(std::launch::async,
                                     [&] { return prompt(sid, "[[fake latency_ms=5000]]"); }));
        ASSERT_TRUE(fake_.wait_counter("prompts_in_flight", i + 1, 5s));
    }
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/abort").status, 200);
    for (auto& p : pending) {
        auto res = p.get();
        ASSERT_EQ(res.status, 200);
        EXPECT_EQ(parse(res).at("info").at("error").at("name").as_string(), "MessageAbortedError");
    }
}

// ---------------------------------------------------------------------------------------------
// Faults, prompt phase

TEST_F(FakeOpencode, PromptTransportFaults) {
    auto sid = create_session();
    auto start = clock_type::now();
    EXPECT_EQ(failure_of([&] { prompt(sid, "[[fake fault=close latency_ms=100]]"); }),
              http_error::kind::closed);
    EXPECT_GE(ms_since(start), 100) << "the fault comes after the latency";

    auto reset = failure_of([&] { prompt(sid, "[[fake fault=reset]]"); });
    EXPECT_TRUE(reset == http_error::kind::reset || reset == http_error::kind::partial)
        << to_string(reset);

    EXPECT_EQ(failure_of([&] { prompt(sid, "[[fake fault=slow_headers]]", 300ms); }),
              http_error::kind::timeout);

    // The turns themselves completed; only the replies were spoiled.
    EXPECT_TRUE(fake_.wait_counter("prompts_completed", 3, 5s));
}

TEST_F(FakeOpencode, PromptHangNeedsAnAbort) {
    sse_connection sse(port());
    auto sid = create_session();
    auto start = clock_type::now();
    EXPECT_EQ(failure_of([&] { prompt(sid, "[[fake fault=hang]]", 300ms); }),
              http_error::kind::timeout);
    EXPECT_GE(ms_since(start), 300);
    // Like a provider that never answers: the turn stays in flight after the client left...
    EXPECT_FALSE(fake_.wait_counter_at_most("prompts_in_flight", 0, 200ms));
    // ...until it is aborted, which also tells the event stream.
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/abort").status, 200);
    EXPECT_TRUE(fake_.wait_counter_at_most("prompts_in_flight", 0, 5s));
    auto events = events_until(sse, sid, "session.idle");
    auto types = types_of(events);
    EXPECT_EQ(std::count(types.begin(), types.end(), "message.part.delta"), 0);
    EXPECT_NE(std::find(types.begin(), types.end(), "session.error"), types.end());

    // A hung prompt still answers a client that waits for the abort.
    auto pending =
        std::async(std::launch::async, [&] { return prompt(sid, "[[fake fault=hang]]"); });
    ASSERT_TRUE(fake_.wait_counter("prompts_in_flight", 1, 5s));
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/abort").status, 200);
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(parse(res).at("info").at("error").at("name").as_string(), "MessageAbortedError");
}

TEST_F(FakeOpencode, PromptStatusAndBodyFaults) {
    auto sid = create_session();
    expect_error(prompt(sid, "[[fake fault=500]]"), 500, "UnknownError");
    expect_error(prompt(sid, "[[fake fault=404]]"), 404, "NotFoundError");
    expect_error(prompt(sid, "[[fake fault=400]]"), 400, "BadRequest");

    auto unavailable = prompt(sid, "[[fake fault=503]]");
    EXPECT_EQ(unavailable.status, 503);
    EXPECT_TRUE(unavailable.header("content-type").starts_with("text/plain"));
    EXPECT_FALSE(unavailable.body.empty());

    auto garbage = prompt(sid, "[[fake fault=garbage]]");
    EXPECT_EQ(garbage.status, 200);
    EXPECT_EQ(garbage.header("content-type"), "application/json");
    EXPECT_EQ(garbage.body, "<html>oops");
    boost::system::error_code ec;
    json::parse(garbage.body, ec);
    EXPECT_TRUE(ec);

    auto wrong = prompt(sid, "[[fake fault=wrong_shape]]");
    EXPECT_EQ(wrong.status, 200);
    EXPECT_EQ(parse(wrong), (json::value{{"unexpected", true}}));
}

TEST_F(FakeOpencode, PromptProviderError) {
    sse_connection sse(port());
    auto sid = create_session();
    auto res = prompt(sid, "[[fake fault=error]]");
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(answer.at("info").at("error"),
              (json::value{{"name", "APIError"},
                           {"data", {{"message", "fake provider error"}, {"statusCode", 503}}}}));
    for (auto const& p : answer.at("parts").as_array()) EXPECT_NE(p.at("type").as_string(), "text");
    auto events = events_until(sse, sid, "session.idle");
    auto types = types_of(events);
    auto error = std::find(types.begin(), types.end(), "session.error");
    ASSERT_NE(error, types.end());
    EXPECT_EQ(events[static_cast<std::size_t>(error - types.begin())]
                  .at("properties")
                  .at("error")
                  .at("name")
                  .as_string(),
              "APIError");
}

TEST_F(FakeOpencode, PromptAsyncRunsInTheBackground) {
    sse_connection sse(port());
    auto sid = create_session();
    auto start = clock_type::now();
    auto res = http_request(port(), "POST", "/session/" + sid + "/prompt_async",
                            prompt_body("later [[fake latency_ms=300]]"));
    EXPECT_EQ(res.status, 204);
    EXPECT_LT(ms_since(start), 300) << "204 comes at once";
    auto events = events_until(sse, sid, "session.idle");
    EXPECT_EQ(deltas_of(events), "echo: later");
    EXPECT_EQ(stat("prompts_completed"), 1);

    expect_error(http_request(port(), "POST", "/session/ses_nope/prompt_async", prompt_body("x")),
                 404, "NotFoundError");
    expect_error(http_request(port(), "POST", "/session/" + sid + "/prompt_async",
                              prompt_body("[[fake fault=500]]")),
                 500, "UnknownError");
    EXPECT_EQ(stat("prompts_started"), 1) << "a refused prompt_async starts no turn";

    // stall: accepted, then never finishes until aborted.
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/prompt_async",
                           prompt_body("[[fake fault=stall]]"))
                  .status,
              204);
    EXPECT_FALSE(fake_.wait_counter("prompts_completed", 2, 200ms));
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/abort").status, 200);
    EXPECT_TRUE(fake_.wait_counter("prompts_completed", 2, 5s));
}

// ---------------------------------------------------------------------------------------------
// Faults, create phase

TEST_F(FakeOpencode, CreateTransportFaults) {
    auto create = [&](std::string_view directive, std::chrono::milliseconds timeout = 10s) {
        return http_request(port(), "POST", "/session", title_body(directive), {}, timeout);
    };
    auto start = clock_type::now();
    EXPECT_EQ(failure_of([&] { create("[[fake create_fault=close create_latency_ms=100]]"); }),
              http_error::kind::closed);
    EXPECT_GE(ms_since(start), 100);
    auto reset = failure_of([&] { create("[[fake create_fault=reset]]"); });
    EXPECT_TRUE(reset == http_error::kind::reset || reset == http_error::kind::partial)
        << to_string(reset);
    EXPECT_EQ(failure_of([&] { create("[[fake create_fault=slow_headers]]", 300ms); }),
              http_error::kind::timeout);

    EXPECT_EQ(failure_of([&] { create("[[fake create_fault=hang]]", 300ms); }),
              http_error::kind::timeout);
    // The hung create ends with its client: nothing stays in flight.
    EXPECT_TRUE(fake_.wait_counter_at_most("creates_in_flight", 0, 5s));
    EXPECT_EQ(stat("sessions_created"), 0);
    EXPECT_EQ(stat("creates_started"), 4);
}

TEST_F(FakeOpencode, CreateStatusAndBodyFaults) {
    auto create = [&](std::string_view directive) {
        return http_request(port(), "POST", "/session", title_body(directive));
    };
    expect_error(create("[[fake create_fault=500]]"), 500, "UnknownError");
    expect_error(create("[[fake create_fault=404]]"), 404, "NotFoundError");
    expect_error(create("[[fake create_fault=400]]"), 400, "BadRequest");
    auto unavailable = create("[[fake create_fault=503]]");
    EXPECT_EQ(unavailable.status, 503);
    EXPECT_TRUE(unavailable.header("content-type").starts_with("text/plain"));
    auto garbage = create("[[fake create_fault=garbage]]");
    EXPECT_EQ(garbage.status, 200);
    EXPECT_EQ(garbage.body, "<html>oops");
    auto wrong = create("[[fake create_fault=wrong_shape]]");
    EXPECT_EQ(wrong.status, 200);
    EXPECT_EQ(parse(wrong), (json::value{{"unexpected", true}}));
    EXPECT_EQ(stat("sessions_created"), 0);
}

// ---------------------------------------------------------------------------------------------
// Test control

TEST_F(FakeOpencode, WaitAnswersWhenTheCounterGetsThere) {
    auto sid = create_session();
    auto pending =
        std::async(std::launch::async, [&] { return prompt(sid, "[[fake latency_ms=200]]"); });
    auto start = clock_type::now();
    EXPECT_TRUE(fake_.wait_counter("prompts_completed", 1, 5s));
    EXPECT_LT(ms_since(start), 5000);
    EXPECT_EQ(pending.get().status, 200);

    start = clock_type::now();
    auto res = http_request(port(), "GET", "/_fake/wait?counter=aborts_total&min=1&timeout_ms=200");
    EXPECT_GE(ms_since(start), 200);
    EXPECT_EQ(parse(res), (json::value{{"ok", false}, {"value", 0}}));
    EXPECT_FALSE(fake_.wait_counter("aborts_total", 1, 100ms));
    EXPECT_TRUE(fake_.wait_counter_at_most("prompts_in_flight", 0, 100ms));

    expect_error(http_request(port(), "GET", "/_fake/wait?counter=nope&min=1"), 400, "BadRequest");
}

TEST_F(FakeOpencode, ResetZeroesCountersButKeepsSessions) {
    auto sid = create_session("/session?directory=/d");
    ASSERT_EQ(prompt(sid, "one").status, 200);
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid + "/abort").status, 200);
    fake_.reset();
    auto stats = fake_.stats();
    for (auto name : {"sessions_created", "prompts_started", "prompts_completed", "aborts_total",
                      "requests_total", "max_prompts_in_flight"}) {
        EXPECT_EQ(stats.at(name).as_int64(), 0) << name;
    }
    EXPECT_TRUE(stats.at("aborted_sessions").as_array().empty());
    EXPECT_TRUE(stats.at("directories").as_array().empty());
    EXPECT_TRUE(stats.at("last_prompt_body").is_null());
    EXPECT_EQ(prompt(sid, "two").status, 200) << "sessions survive a reset";
}

TEST_F(FakeOpencode, StopsPromptlyOnSigterm) {
    sse_connection sse(port());
    auto sid = create_session();
    auto pending = std::async(std::launch::async, [&] {
        return failure_of([&] { prompt(sid, "[[fake fault=hang]]"); });
    });
    ASSERT_TRUE(fake_.wait_counter("prompts_in_flight", 1, 5s));
    auto start = clock_type::now();
    EXPECT_EQ(fake_.stop(5s), 0);
    EXPECT_LT(ms_since(start), 2000);
    EXPECT_EQ(pending.get(), http_error::kind::closed) << "the hung request was closed";
}

// ---------------------------------------------------------------------------------------------
// Basic auth

class FakeOpencodeAuth : public FakeOpencode {
  protected:
    FakeOpencodeAuth() : FakeOpencode({"--password", "s3cret"}) {}
};

TEST_F(FakeOpencodeAuth, RequiresBasicAuth) {
    auto anonymous = http_request(port(), "GET", "/global/health");
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_FALSE(anonymous.header("www-authenticate").empty());
    // base64("opencode:wrong") and base64("opencode:s3cret").
    EXPECT_EQ(http_request(port(), "GET", "/global/health", {},
                           {{"Authorization", "Basic b3BlbmNvZGU6d3Jvbmc="}})
                  .status,
              401);
    EXPECT_EQ(http_request(port(), "GET", "/global/health", {},
                           {{"Authorization", "Basic b3BlbmNvZGU6czNjcmV0"}})
                  .status,
              200);
    EXPECT_EQ(stat("requests_total"), 3) << "/_fake/ needs no credentials";
}

}  // namespace
