// Tests of fake_opencode over loopback, through the same support library the integration tests
// use: OpenCode-shaped answers, turn timing and queuing, the event stream, abort, every fault
// mode in both phases, and agentic turns (tool steps, permissions, questions, silence). Waits are
// event-driven (/_fake/wait, SSE), never sleep-and-hope.
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
// Agentic turns (issue #16): tool steps, permissions, questions, silence. Shapes follow
// tests/e2e/captured/*.jsonl of opencode 1.18.33.

// The /global/event frames of one session, unwrapped is left to the caller.
struct global_frame {
    json::object frame;
    json::object payload;
    std::string type;
};

// Frames of `session_id` from a /global/event stream until one of type `last` (inclusive); with
// `heartbeats`, counts server.heartbeat frames seen on the way.
std::vector<global_frame> frames_until(sse_connection& sse, std::string_view session_id,
                                       std::string_view last, int* heartbeats = nullptr,
                                       std::chrono::milliseconds timeout = 10s) {
    std::vector<global_frame> out;
    auto const deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
        auto data = sse.next_data(left);
        if (!data) break;
        auto frame = json::parse(*data).as_object();
        auto payload = frame.at("payload").as_object();
        std::string type(payload.at("type").as_string());
        if (type == "server.heartbeat" && heartbeats) ++*heartbeats;
        if (session_of(payload) != session_id) continue;
        out.push_back({frame, payload, type});
        if (type == last) return out;
    }
    ADD_FAILURE() << "no " << last << " frame for " << session_id << " within " << timeout.count()
                  << " ms";
    return out;
}

// The states a tool part went through, in order, by callID.
std::map<std::string, std::vector<json::object>> tool_states(
    std::vector<global_frame> const& frames) {
    std::map<std::string, std::vector<json::object>> out;
    for (auto const& f : frames) {
        if (f.type != "message.part.updated") continue;
        auto const& part = f.payload.at("properties").at("part").as_object();
        if (part.at("type").as_string() != "tool") continue;
        out[std::string(part.at("callID").as_string())].push_back(part.at("state").as_object());
    }
    return out;
}

std::vector<std::string> statuses(std::vector<json::object> const& states) {
    std::vector<std::string> out;
    for (auto const& s : states) out.emplace_back(s.at("status").as_string());
    return out;
}

std::size_t index_of(std::vector<global_frame> const& frames, std::string_view type) {
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (frames[i].type == type) return i;
    }
    return frames.size();
}

// The state without its times (they vary), for comparing whole shapes.
json::object timeless(json::object state) {
    state.erase("time");
    return state;
}

std::string text_of(json::value const& answer) {
    std::string text;
    for (auto const& p : answer.at("parts").as_array()) {
        if (p.at("type").as_string() == "text") text += p.at("text").as_string();
    }
    return text;
}

class FakeOpencodeAgentic : public FakeOpencode {
  protected:
    FakeOpencodeAgentic() : FakeOpencode({"--latency-ms", "20"}) {}

    std::future<http_response> prompt_later(std::string const& sid, std::string text) {
        return std::async(std::launch::async, [this, sid, text] { return prompt(sid, text); });
    }

    json::array list(std::string const& target) {
        auto res = http_request(port(), "GET", target);
        EXPECT_EQ(res.status, 200) << res.body;
        return parse(res).as_array();
    }

    http_response post(std::string const& target, std::string body = {}) {
        return http_request(port(), "POST", target, std::move(body));
    }
};

TEST_F(FakeOpencodeAgentic, ToolStepsEmitTheRealPartSequence) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto start = clock_type::now();
    auto res =
        prompt(sid,
               "run it [[fake tool=bash tool_title=npm_test tool_output=all_green tool_ms=100 "
               "steps=2]]");
    ASSERT_EQ(res.status, 200) << res.body;
    EXPECT_GE(ms_since(start), 200) << "two steps of 100 ms";
    auto answer = parse(res);
    EXPECT_EQ(text_of(answer), "tool said: all green\ntool said: all green");
    EXPECT_EQ(answer.at("info").at("finish").as_string(), "stop");
    auto const& parts = answer.at("parts").as_array();
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_EQ(parts[1].at("type").as_string(), "tool");
    EXPECT_EQ(parts[2].at("type").as_string(), "tool");
    EXPECT_EQ(parts[3].at("type").as_string(), "text");

    auto frames = frames_until(sse, sid, "session.idle");
    for (auto const& f : frames) {
        EXPECT_EQ(f.frame.at("directory").as_string(), "/fake");
        EXPECT_EQ(f.frame.at("project").as_string().size(), 40u);
        EXPECT_TRUE(f.payload.at("id").as_string().starts_with("evt_")) << f.payload;
    }
    auto tools = tool_states(frames);
    ASSERT_EQ(tools.size(), 2u);
    for (auto const& [call, states] : tools) {
        EXPECT_TRUE(std::regex_match(call, std::regex("call_[0-9a-f]{12}"))) << call;
        EXPECT_EQ(statuses(states),
                  (std::vector<std::string>{"pending", "running", "running", "completed"}));
        EXPECT_EQ(states[0],
                  (json::object{{"status", "pending"}, {"input", json::object{}}, {"raw", ""}}));
        json::object const input{{"command", "npm test"}};
        EXPECT_EQ(timeless(states[1]), (json::object{{"status", "running"}, {"input", input}}));
        EXPECT_EQ(timeless(states[2]), (json::object{{"status", "running"},
                                                     {"input", input},
                                                     {"metadata", {{"output", "all green"}}}}));
        EXPECT_EQ(timeless(states[3]),
                  (json::object{
                      {"status", "completed"},
                      {"input", input},
                      {"output", "all green"},
                      {"metadata", {{"output", "all green"}, {"exit", 0}, {"truncated", false}}},
                      {"title", "npm test"}}));
        auto const& time = states[3].at("time");
        EXPECT_GE(time.at("end").as_int64() - time.at("start").as_int64(), 100);
        EXPECT_EQ(states[1].at("time").at("start"), time.at("start"));
    }
    // The part itself: ids, the tool, the assistant message.
    for (auto const& f : frames) {
        if (f.type != "message.part.updated") continue;
        auto const& props = f.payload.at("properties").as_object();
        EXPECT_EQ(props.at("sessionID").as_string(), sid);
        EXPECT_TRUE(props.at("time").is_int64());
        auto const& part = props.at("part").as_object();
        if (part.at("type").as_string() != "tool") continue;
        EXPECT_EQ(part.at("tool").as_string(), "bash");
        EXPECT_EQ(part.at("messageID"), answer.at("info").at("id"));
        EXPECT_TRUE(part.at("id").as_string().starts_with("prt_"));
    }
    // The text part comes only after the steps, and its deltas after it.
    std::size_t last_completed = 0;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        auto const* part = frames[i].payload.at("properties").as_object().if_contains("part");
        if (part && part->at("type") == "tool" && part->at("state").at("status") == "completed")
            last_completed = i;
    }
    auto first_text = frames.size();
    for (std::size_t i = 0; i < frames.size() && first_text == frames.size(); ++i) {
        auto const* part = frames[i].payload.at("properties").as_object().if_contains("part");
        // The user's own text part comes first; the assistant's is the one that counts.
        if (part && part->at("type") == "text" &&
            part->at("messageID") == answer.at("info").at("id"))
            first_text = i;
    }
    EXPECT_LT(last_completed, first_text);
    EXPECT_LT(first_text, index_of(frames, "message.part.delta"));
}

TEST_F(FakeOpencodeAgentic, FailingToolStepEndsInError) {
    sse_connection sse(port());
    auto sid = create_session();
    auto res = prompt(sid, "[[fake tool=read tool_title=missing.txt tool_fail=1]]");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(text_of(parse(res)), "tool failed: fake tool failed");
    auto events = events_until(sse, sid, "session.idle");
    std::vector<json::object> states;
    for (auto const& e : events) {
        auto const* part = e.at("properties").as_object().if_contains("part");
        if (part && part->at("type") == "tool") states.push_back(part->at("state").as_object());
    }
    ASSERT_FALSE(states.empty());
    EXPECT_EQ(timeless(states.back()), (json::object{{"status", "error"},
                                                     {"input", {{"command", "missing.txt"}}},
                                                     {"error", "fake tool failed"}}));
}

// Runs a permission prompt up to the ask; returns the pending prompt and the asked event.
struct asked {
    std::future<http_response> reply;
    json::object request;
};

class FakeOpencodePermission : public FakeOpencodeAgentic {
  protected:
    asked ask(sse_connection& sse, std::string const& sid, std::string const& extra = {}) {
        auto pending = prompt_later(sid,
                                    "clean up [[fake permission=bash patterns=rm_-rf_build|ls "
                                    "tool_output=removed " +
                                        extra + "]]");
        auto frames = frames_until(sse, sid, "permission.asked");
        EXPECT_FALSE(frames.empty());
        if (frames.empty()) return {std::move(pending), {}};
        // The tool part is running by the time the permission is asked.
        auto tools = tool_states(frames);
        EXPECT_EQ(tools.size(), 1u);
        if (!tools.empty()) {
            EXPECT_EQ(statuses(tools.begin()->second),
                      (std::vector<std::string>{"pending", "running"}));
        }
        return {std::move(pending), frames.back().payload.at("properties").as_object()};
    }
};

TEST_F(FakeOpencodePermission, AskedAndListedInTheRealShape) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto [pending, request] = ask(sse, sid);
    auto const id = std::string(request.at("id").as_string());
    EXPECT_TRUE(std::regex_match(id, std::regex("per_[0-9a-f]{24}"))) << id;
    EXPECT_EQ(request.at("sessionID").as_string(), sid);
    EXPECT_EQ(request.at("permission").as_string(), "bash");
    EXPECT_EQ(request.at("patterns"), (json::array{"rm -rf build", "ls"}));
    EXPECT_EQ(request.at("metadata"), (json::object{{"command", "rm -rf build && ls"}}));
    EXPECT_EQ(request.at("always"), (json::array{"rm *", "ls *"}));
    EXPECT_TRUE(request.at("tool").at("messageID").as_string().starts_with("msg_"));
    EXPECT_TRUE(request.at("tool").at("callID").as_string().starts_with("call_"));
    EXPECT_EQ(request.size(), 7u) << request;

    EXPECT_EQ(list("/permission"), (json::array{request}));
    EXPECT_EQ(list("/permission?directory=%2Felsewhere"), json::array{})
        << "lists are per instance";
    EXPECT_EQ(list("/question"), json::array{});
    EXPECT_EQ(parse(http_request(port(), "GET", "/session/status")),
              (json::object{{sid, {{"type", "busy"}}}}));
    EXPECT_NE(pending.wait_for(0s), std::future_status::ready) << "the prompt waits";

    // A bad reply is refused before the id is looked up, so the request stays pending.
    auto bad = post("/permission/" + id + "/reply", R"({"reply":"maybe"})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad),
              (json::value{{"name", "BadRequest"},
                           {"data",
                            {{"message",
                              "Expected \"once\" | \"always\" | \"reject\", got \"maybe\"\n  at "
                              "[\"reply\"]"},
                             {"kind", "Payload"}}}}));
    EXPECT_EQ(post("/permission/" + id + "/reply", "{}").status, 400);
    EXPECT_EQ(list("/permission").size(), 1u);

    auto ok = post("/permission/" + id + "/reply", R"({"reply":"once"})");
    ASSERT_EQ(ok.status, 200);
    EXPECT_EQ(parse(ok), json::value(true));
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(text_of(answer), "permission once: removed");
    EXPECT_EQ(answer.at("info").at("finish").as_string(), "stop");

    auto frames = frames_until(sse, sid, "session.idle");
    ASSERT_LT(index_of(frames, "permission.replied"), frames.size());
    EXPECT_EQ(frames[index_of(frames, "permission.replied")].payload.at("properties"),
              (json::object{{"sessionID", sid}, {"requestID", id}, {"reply", "once"}}));
    auto tools = tool_states(frames);
    ASSERT_EQ(tools.size(), 1u);
    EXPECT_EQ(statuses(tools.begin()->second), (std::vector<std::string>{"running", "completed"}));
    EXPECT_EQ(tools.begin()->second.back().at("output").as_string(), "removed");

    EXPECT_EQ(list("/permission"), json::array{});
    for (auto const& gone : {id, std::string("per_00000000000000000000000000")}) {
        auto again = post("/permission/" + gone + "/reply", R"({"reply":"once"})");
        EXPECT_EQ(again.status, 404);
        EXPECT_EQ(parse(again),
                  (json::value{{"_tag", "PermissionNotFoundError"},
                               {"requestID", gone},
                               {"message", "Permission request not found: " + gone}}));
    }
}

TEST_F(FakeOpencodePermission, AlwaysCompletesTheToolAndAllowsLaterCalls) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto [pending, request] = ask(sse, sid);
    auto const id = std::string(request.at("id").as_string());
    ASSERT_EQ(post("/permission/" + id + "/reply", R"({"reply":"always"})").status, 200);
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(text_of(parse(res)), "permission always: removed");
    auto frames = frames_until(sse, sid, "session.idle");
    EXPECT_EQ(frames[index_of(frames, "permission.replied")]
                  .payload.at("properties")
                  .at("reply")
                  .as_string(),
              "always");

    // `always` covered "rm *" and "ls *": a later matching call in the session runs unasked...
    res = prompt(sid, "again [[fake permission=bash patterns=rm_-rf_dist]]");
    ASSERT_EQ(res.status, 200);
    EXPECT_EQ(text_of(parse(res)), "permission always: ok");
    frames = frames_until(sse, sid, "session.idle");
    EXPECT_EQ(index_of(frames, "permission.asked"), frames.size());
    EXPECT_EQ(stat("permissions_asked"), 1);
    // ...while another command, or another session, is asked again.
    auto other = prompt_later(sid, "[[fake permission=bash patterns=git_push]]");
    frames = frames_until(sse, sid, "permission.asked");
    ASSERT_FALSE(frames.empty());
    auto const again = std::string(frames.back().payload.at("properties").at("id").as_string());
    ASSERT_EQ(post("/permission/" + again + "/reply", R"({"reply":"once"})").status, 200);
    EXPECT_EQ(text_of(parse(other.get())), "permission once: ok");
    auto sid2 = create_session();
    auto fresh = prompt_later(sid2, "[[fake permission=bash patterns=rm_x]]");
    EXPECT_TRUE(fake_.wait_counter("permissions_asked", 3, 5s));
    ASSERT_EQ(http_request(port(), "POST", "/session/" + sid2 + "/abort").status, 200);
    EXPECT_EQ(fresh.get().status, 200);
}

TEST_F(FakeOpencodePermission, RejectWithMessageGoesOn) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto [pending, request] = ask(sse, sid);
    auto const id = std::string(request.at("id").as_string());
    ASSERT_EQ(
        post("/permission/" + id + "/reply", R"({"reply":"reject","message":"not on my machine"})")
            .status,
        200);
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(text_of(answer), "permission rejected: not on my machine");
    EXPECT_EQ(answer.at("info").at("finish").as_string(), "stop");
    auto tools = tool_states(frames_until(sse, sid, "session.idle"));
    ASSERT_EQ(tools.size(), 1u);
    EXPECT_EQ(tools.begin()->second.back().at("error").as_string(),
              "The user rejected permission to use this specific tool call with the following "
              "feedback: not on my machine");
}

TEST_F(FakeOpencodePermission, RejectWithoutMessageEndsTheTurnWithoutText) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto [pending, request] = ask(sse, sid, "question=never");
    auto const id = std::string(request.at("id").as_string());
    ASSERT_EQ(post("/permission/" + id + "/reply", R"({"reply":"reject"})").status, 200);
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(answer.at("info").at("finish").as_string(), "tool-calls");
    EXPECT_FALSE(answer.at("info").as_object().contains("error"));
    auto const& parts = answer.at("parts").as_array();
    ASSERT_EQ(parts.size(), 2u) << "step-start and the tool, no text";
    EXPECT_EQ(parts[1].at("state").at("status").as_string(), "error");
    EXPECT_EQ(parts[1].at("state").at("error").as_string(),
              "The user rejected permission to use this specific tool call.");
    auto frames = frames_until(sse, sid, "session.idle");
    EXPECT_EQ(index_of(frames, "message.part.delta"), frames.size());
    EXPECT_EQ(index_of(frames, "question.asked"), frames.size()) << "later steps are skipped";
    EXPECT_EQ(list("/question"), json::array{});
}

class FakeOpencodeQuestion : public FakeOpencodeAgentic {
  protected:
    // Starts a question prompt with prompt_async and returns the asked event's properties.
    json::object ask(sse_connection& sse, std::string const& sid, std::string const& directives) {
        auto res = post("/session/" + sid + "/prompt_async",
                        prompt_body("pick [[fake " + directives + "]]"));
        EXPECT_EQ(res.status, 204);
        auto frames = frames_until(sse, sid, "question.asked");
        if (frames.empty()) return {};
        return frames.back().payload.at("properties").as_object();
    }
};

TEST_F(FakeOpencodeQuestion, ReplyGoesOnWithTheAnswer) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto request = ask(sse, sid, "question=red|green|blue");
    auto const id = std::string(request.at("id").as_string());
    EXPECT_TRUE(std::regex_match(id, std::regex("que_[0-9a-f]{24}"))) << id;
    json::object const question{{"question", "Which colour?"},
                                {"header", "Colour"},
                                {"options",
                                 {{{"label", "red"}, {"description", "Answer red"}},
                                  {{"label", "green"}, {"description", "Answer green"}},
                                  {{"label", "blue"}, {"description", "Answer blue"}}}}};
    EXPECT_EQ(request.at("questions"), (json::array{question}));
    EXPECT_EQ(request.at("sessionID").as_string(), sid);
    EXPECT_TRUE(request.at("tool").at("callID").as_string().starts_with("call_"));
    EXPECT_EQ(request.size(), 4u) << request;
    EXPECT_EQ(list("/question"), (json::array{request}));
    EXPECT_EQ(list("/permission"), json::array{});

    auto bad = post("/question/" + id + "/reply", R"({"answers":["red"]})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(parse(bad).at("data").at("kind").as_string(), "Payload");

    auto ok = post("/question/" + id + "/reply", R"({"answers":[["red"]]})");
    ASSERT_EQ(ok.status, 200);
    EXPECT_EQ(parse(ok), json::value(true));
    auto frames = frames_until(sse, sid, "session.idle");
    EXPECT_EQ(
        frames[index_of(frames, "question.replied")].payload.at("properties"),
        (json::object{
            {"sessionID", sid}, {"requestID", id}, {"answers", json::array{json::array{"red"}}}}));
    auto tools = tool_states(frames);
    ASSERT_EQ(tools.size(), 1u);
    auto const& done = tools.begin()->second.back();
    EXPECT_EQ(timeless(done),
              (json::object{{"status", "completed"},
                            {"input", {{"questions", json::array{question}}}},
                            {"output",
                             "User has answered your questions: \"Which colour?\"=\"red\". You "
                             "can now continue with the user's answers in mind."},
                            {"metadata",
                             {{"answers", json::array{json::array{"red"}}}, {"truncated", false}}},
                            {"title", "Asked 1 question"}}));
    EXPECT_EQ(deltas_of([&] {
                  std::vector<json::object> payloads;
                  for (auto const& f : frames) payloads.push_back(f.payload);
                  return payloads;
              }()),
              "answered: red");
    EXPECT_EQ(list("/question"), json::array{});

    for (auto const& gone : {id, std::string("que_00000000000000000000000000")}) {
        for (auto const& [verb, body] :
             {std::pair{"reply", R"({"answers":[["red"]]})"}, std::pair{"reject", ""}}) {
            auto again = post("/question/" + gone + "/" + verb, body);
            EXPECT_EQ(again.status, 404);
            EXPECT_EQ(parse(again),
                      (json::value{{"_tag", "QuestionNotFoundError"},
                                   {"requestID", gone},
                                   {"message", "Question request not found: " + gone}}));
        }
    }
}

TEST_F(FakeOpencodeQuestion, FreeTextAndSeveralAnswers) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto request =
        ask(sse, sid, "question=red|blue multiple=1 question_text=Which_ones%3F header=Pick");
    auto const& q = request.at("questions").at(0);
    EXPECT_EQ(q.at("multiple"), json::value(true));
    EXPECT_EQ(q.at("question").as_string(), "Which ones?");
    EXPECT_EQ(q.at("header").as_string(), "Pick");
    auto id = std::string(request.at("id").as_string());
    ASSERT_EQ(post("/question/" + id + "/reply", R"({"answers":[["red","blue"]]})").status, 200);
    auto frames = frames_until(sse, sid, "session.idle");
    auto messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    EXPECT_EQ(text_of(messages.back()), "answered: red,blue");

    request = ask(sse, sid, "question=red|blue");
    id = std::string(request.at("id").as_string());
    ASSERT_EQ(post("/question/" + id + "/reply", R"({"answers":[["purple, obviously"]]})").status,
              200);
    frames_until(sse, sid, "session.idle");
    messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    EXPECT_EQ(text_of(messages.back()), "answered: purple, obviously");
}

TEST_F(FakeOpencodeQuestion, RejectEndsTheTurnWithoutText) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    auto request = ask(sse, sid, "question=red|blue");
    auto const id = std::string(request.at("id").as_string());
    auto ok = post("/question/" + id + "/reject");
    ASSERT_EQ(ok.status, 200);
    EXPECT_EQ(parse(ok), json::value(true));
    auto frames = frames_until(sse, sid, "session.idle");
    EXPECT_EQ(frames[index_of(frames, "question.rejected")].payload.at("properties"),
              (json::object{{"sessionID", sid}, {"requestID", id}}));
    EXPECT_EQ(index_of(frames, "message.part.delta"), frames.size());
    auto tools = tool_states(frames);
    ASSERT_EQ(tools.size(), 1u);
    EXPECT_EQ(tools.begin()->second.back().at("status").as_string(), "error");
    EXPECT_EQ(tools.begin()->second.back().at("error").as_string(),
              "The user dismissed this question");
    auto messages = parse(http_request(port(), "GET", "/session/" + sid + "/message")).as_array();
    auto const& info = messages.back().at("info");
    EXPECT_EQ(info.at("finish").as_string(), "tool-calls");
    EXPECT_EQ(text_of(messages.back()), "");
    EXPECT_EQ(post("/question/" + id + "/reject").status, 404);
}

TEST_F(FakeOpencodeAgentic, AbortDropsPendingRequests) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    for (auto const& directive : {"permission=bash", "question=yes|no"}) {
        auto sid = create_session();
        auto pending = prompt_later(sid, std::string("[[fake ") + directive + "]]");
        bool const is_permission = std::string_view(directive).starts_with("permission");
        auto frames = frames_until(sse, sid, is_permission ? "permission.asked" : "question.asked");
        ASSERT_FALSE(frames.empty());
        auto const id = std::string(frames.back().payload.at("properties").at("id").as_string());
        auto const route = is_permission ? std::string("/permission") : std::string("/question");
        EXPECT_EQ(list(route).size(), 1u);

        ASSERT_EQ(post("/session/" + sid + "/abort").status, 200);
        EXPECT_EQ(list(route), json::array{}) << "dropped at once";
        auto res = pending.get();
        ASSERT_EQ(res.status, 200);
        auto answer = parse(res);
        EXPECT_EQ(answer.at("info").at("error").at("name").as_string(), "MessageAbortedError");
        EXPECT_FALSE(answer.at("info").as_object().contains("finish"));
        auto const& tool = answer.at("parts").at(1).at("state");
        EXPECT_EQ(tool.at("status").as_string(), "error");
        EXPECT_EQ(tool.at("error").as_string(), "Tool execution aborted");
        EXPECT_EQ(post(route + "/" + id + (is_permission ? "/reply" : "/reject"),
                       is_permission ? R"({"reply":"once"})" : "")
                      .status,
                  404);
        frames = frames_until(sse, sid, "session.idle");
        EXPECT_LT(index_of(frames, "session.error"), frames.size());
    }
}

TEST(FakeOpencodeSilence, TurnGoesQuietWhileHeartbeatsGoOn) {
    fake_upstream fake(FAKE_OPENCODE_PATH, {"--latency-ms", "0", "--heartbeat-ms", "50"});
    sse_connection sse(fake.port(), "/global/event");
    ASSERT_TRUE(fake.wait_counter("event_subscribers", 1, 5s));
    auto const sid = std::string(
        parse(http_request(fake.port(), "POST", "/session", "{}")).at("id").as_string());
    auto send = [&](std::string_view directives) {
        auto res =
            http_request(fake.port(), "POST", "/session/" + sid + "/message",
                         prompt_body(std::string("hush [[fake ") + std::string(directives) + "]]"));
        EXPECT_EQ(res.status, 200) << res.body;
    };
    auto time_of = [](global_frame const& f) {
        return f.payload.at("properties").at("time").as_int64();
    };

    // Without tools: quiet after the step-start and empty text parts.
    send("silent_ms=400");
    int heartbeats = 0;
    auto frames = frames_until(sse, sid, "session.idle", &heartbeats);
    std::vector<std::size_t> parts;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (frames[i].type == "message.part.updated") parts.push_back(i);
    }
    // user text, step-start, empty text, final text
    ASSERT_EQ(parts.size(), 4u);
    EXPECT_GE(time_of(frames[parts[3]]) - time_of(frames[parts[2]]), 400);
    for (auto i = parts[2] + 1; i < parts[3]; ++i) {
        EXPECT_EQ(frames[i].type, "message.part.delta") << "nothing else during the silence";
    }
    EXPECT_GE(heartbeats, 2) << "heartbeats go on";

    // With a tool: quiet between running and the tool's next frame, a tool that hangs.
    send("tool=bash silent_ms=300");
    frames = frames_until(sse, sid, "session.idle");
    std::vector<global_frame> tool_frames;
    for (auto const& f : frames) {
        auto const* part = f.payload.at("properties").as_object().if_contains("part");
        if (part && part->at("type") == "tool") tool_frames.push_back(f);
    }
    ASSERT_EQ(tool_frames.size(), 4u);
    EXPECT_GE(time_of(tool_frames[2]) - time_of(tool_frames[1]), 300);
    EXPECT_EQ(fake.stop(5s), 0);
}

TEST_F(FakeOpencodeAgentic, StepsRunInTheirFixedOrder) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session();
    // Keys in another order than the steps run: the order is fixed, not the keys'.
    auto pending = prompt_later(sid, "[[fake question=a|b permission=edit tool=bash]]");
    auto frames = frames_until(sse, sid, "permission.asked");
    EXPECT_EQ(tool_states(frames).size(), 2u) << "bash ran before the permission";
    auto const per = std::string(frames.back().payload.at("properties").at("id").as_string());
    ASSERT_EQ(post("/permission/" + per + "/reply", R"({"reply":"once"})").status, 200);
    frames = frames_until(sse, sid, "question.asked");
    auto const que = std::string(frames.back().payload.at("properties").at("id").as_string());
    ASSERT_EQ(post("/question/" + que + "/reply", R"({"answers":[["b"]]})").status, 200);
    auto res = pending.get();
    ASSERT_EQ(res.status, 200);
    auto answer = parse(res);
    EXPECT_EQ(text_of(answer), "tool said: ok\npermission once: ok\nanswered: b");
    std::vector<std::string> tools;
    for (auto const& p : answer.at("parts").as_array()) {
        if (p.at("type") == "tool") tools.emplace_back(p.at("tool").as_string());
    }
    EXPECT_EQ(tools, (std::vector<std::string>{"bash", "edit", "question"}));
}

TEST_F(FakeOpencodeAgentic, CallsRecordTheirDirectory) {
    sse_connection sse(port(), "/global/event");
    ASSERT_TRUE(fake_.wait_counter("event_subscribers", 1, 5s));
    auto sid = create_session("/session?directory=%2Fjob%20dir");
    auto const q = std::string("?directory=%2Fjob%20dir");
    auto pending = std::async(std::launch::async, [&] {
        return http_request(port(), "POST", "/session/" + sid + "/message" + q,
                            prompt_body("[[fake permission=bash]]"));
    });
    auto frames = frames_until(sse, sid, "permission.asked");
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames.back().frame.at("directory").as_string(), "/job dir");
    auto const id = std::string(frames.back().payload.at("properties").at("id").as_string());
    EXPECT_EQ(list("/permission"), json::array{}) << "not in the server's own directory";
    EXPECT_EQ(list("/permission" + q).size(), 1u);
    ASSERT_EQ(post("/permission/" + id + "/reply" + q, R"({"reply":"once"})").status, 200);
    ASSERT_EQ(pending.get().status, 200);
    ASSERT_EQ(post("/session/" + sid + "/abort").status, 200);
    list("/question" + q);

    auto calls = parse(http_request(port(), "GET", "/_fake/calls")).as_array();
    auto call = [](std::string method, std::string path, json::value directory) {
        return json::value{{"method", method}, {"path", path}, {"directory", directory}};
    };
    EXPECT_EQ(
        calls,
        (json::array{call("GET", "/global/event", nullptr), call("POST", "/session", "/job dir"),
                     call("POST", "/session/" + sid + "/message", "/job dir"),
                     call("GET", "/permission", nullptr), call("GET", "/permission", "/job dir"),
                     call("POST", "/permission/" + id + "/reply", "/job dir"),
                     call("POST", "/session/" + sid + "/abort", nullptr),
                     call("GET", "/question", "/job dir")}));
    fake_.reset();
    EXPECT_EQ(parse(http_request(port(), "GET", "/_fake/calls")), json::array{});
}

TEST_F(FakeOpencodeAgentic, DirectiveValidation) {
    auto sid = create_session();
    for (auto const* text :
         {"[[fake steps=2]]", "[[fake patterns=ls]]", "[[fake multiple=1]]",
          "[[fake question=a||b]]", "[[fake tool_fail=2 tool=bash]]", "[[fake silent_ms=x]]"}) {
        expect_error(prompt(sid, text), 400, "BadRequest");
    }
    // `_` is a space, %XX any byte.
    auto res = prompt(sid, "[[fake tool=bash tool_title=a%5Fb_c tool_output=x%5Dy]]");
    ASSERT_EQ(res.status, 200);
    auto const answer = parse(res);
    auto const& tool = answer.at("parts").at(1);
    EXPECT_EQ(tool.at("state").at("title").as_string(), "a_b c");
    EXPECT_EQ(tool.at("state").at("output").as_string(), "x]y");
    EXPECT_EQ(stat("prompts_started"), 1);
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
