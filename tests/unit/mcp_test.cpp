// The MCP mapping (protocol/mcp: version negotiation, body parsing, tools/call params and
// results, elicitation forms and answers) and the MCP session registry (ids, idle expiry, the
// cap's LRU eviction that spares busy sessions, stopping in-flight requests, client replies).
#include "protocol/mcp.hpp"
#include "daemon/mcp_sessions.hpp"
#include "protocol/params.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <thread>

namespace agentd {
namespace {

namespace json = boost::json;
namespace mcp = protocol::mcp;
using namespace std::chrono_literals;

TEST(McpProtocol, NegotiatesTheClientsVersionOrTheLatest) {
    for (auto v : {"2025-11-25", "2025-06-18", "2025-03-26"})
        EXPECT_EQ(*mcp::negotiate_version(json::object{{"protocolVersion", v}}), v);
    EXPECT_EQ(*mcp::negotiate_version(json::object{{"protocolVersion", "2024-11-05"}}),
              "2025-11-25");
    EXPECT_FALSE(mcp::negotiate_version(json::object{}));
    EXPECT_FALSE(mcp::is_supported_version("2025-11-26"));
}

TEST(McpProtocol, ParsesBodiesTellingResponsesFromCalls) {
    auto single = mcp::parse_body(R"({"jsonrpc":"2.0","id":1,"result":{}})");
    ASSERT_TRUE(single);
    ASSERT_EQ(single->responses.size(), 1u);
    EXPECT_EQ(single->responses[0].at("id"), 1);
    EXPECT_TRUE(single->calls.empty());

    auto batch = mcp::parse_body(R"([{"jsonrpc":"2.0","method":"a"},{"id":2},7])");
    ASSERT_TRUE(batch);
    EXPECT_TRUE(batch->is_batch);
    ASSERT_EQ(batch->calls.size(), 3u);
    EXPECT_TRUE(batch->calls[0].req);
    EXPECT_FALSE(batch->calls[1].req);
    EXPECT_EQ(batch->calls[1].error_id, 2);

    EXPECT_EQ(mcp::parse_body("{").error().code, protocol::error_code::parse_error);
    EXPECT_EQ(mcp::parse_body("[]").error().code, protocol::error_code::invalid_request);
}

TEST(McpProtocol, ParsesToolCalls) {
    auto call = mcp::parse_tool_call(json::parse(
        R"({"name":"agents_wait","arguments":{"mode":"any"},"_meta":{"progressToken":"t"}})"));
    ASSERT_TRUE(call);
    EXPECT_EQ(call->name, "agents_wait");
    EXPECT_EQ(call->arguments.at("mode"), "any");
    EXPECT_EQ(*call->progress_token, "t");

    auto bare = mcp::parse_tool_call(json::parse(R"({"name":"agents_status"})"));
    ASSERT_TRUE(bare);
    EXPECT_TRUE(bare->arguments.is_null());
    EXPECT_FALSE(bare->progress_token);
    auto odd_token = mcp::parse_tool_call(
        json::parse(R"({"name":"agents_status","_meta":{"progressToken":true}})"));
    EXPECT_FALSE(odd_token->progress_token);

    auto unknown = mcp::parse_tool_call(json::parse(R"({"name":"rm_rf"})"));
    EXPECT_EQ(unknown.error().code, protocol::error_code::invalid_params);
    EXPECT_EQ(unknown.error().message, "Unknown tool: rm_rf");
    EXPECT_FALSE(mcp::parse_tool_call(json::parse(R"({"name":"agents_peek","arguments":[1]})")));
    EXPECT_FALSE(mcp::parse_tool_call(json::parse(R"({"arguments":{}})")));
}

TEST(McpProtocol, ToolResultsCarryTextAndStructuredContent) {
    json::value out = json::parse(R"({"jobs":[]})");
    auto ok = mcp::tool_success(out);
    EXPECT_EQ(ok.at("structuredContent"), out);
    EXPECT_EQ(json::parse(ok.at("content").at(0).at("text").as_string()), out);
    EXPECT_FALSE(ok.at("isError").as_bool());

    auto bad = mcp::tool_failure(protocol::invalid_params("tasks[0].prompt", "must not be empty"));
    EXPECT_TRUE(bad.at("isError").as_bool());
    EXPECT_EQ(bad.at("content").at(0).at("text"),
              "Invalid params: tasks[0].prompt must not be empty");
    auto limit = mcp::tool_failure(protocol::too_many_tasks(9, 8));
    EXPECT_EQ(
        limit.at("content").at(0).at("text"),
        R"(Limit exceeded: 9 tasks > max_tasks_per_call 8: {"limit":"max_tasks","max":8,"value":9})");

    EXPECT_TRUE(mcp::is_tool_failure(protocol::approval_error("no")));
    EXPECT_FALSE(mcp::is_tool_failure(protocol::internal_error()));
}

// A large result is sent once: in structuredContent (required with an outputSchema), with a
// text that says so rather than a second copy.
TEST(McpProtocol, LargeToolResultsAreNotSentTwice) {
    json::value out = json::object{
        {"jobs",
         json::array{json::object{{"id", "job_1"}, {"output", std::string(200'000, 'x')}}}}};
    auto ok = mcp::tool_success(out);
    EXPECT_EQ(ok.at("structuredContent"), out);
    auto const& text = ok.at("content").at(0).at("text").as_string();
    EXPECT_LT(text.size(), 1000u);
    EXPECT_NE(std::string_view(text).find("structuredContent"), std::string_view::npos);
}

TEST(McpProtocol, ListsSixToolsWhoseInputsAreClosedObjects) {
    auto tools = mcp::tools_list_result().at("tools").as_array();
    ASSERT_EQ(tools.size(), 6u);
    auto const& respond = tools.at(5).as_object();
    EXPECT_EQ(respond.at("name"), "agents_respond");
    EXPECT_EQ(respond.at("annotations").at("readOnlyHint"), false);
    EXPECT_EQ(respond.at("inputSchema").at("required"), json::parse(R"(["job","request"])"));
    EXPECT_EQ(respond.at("inputSchema").at("properties").at("decision").at("enum"),
              json::parse(R"(["allow","allow_always","deny"])"));
    EXPECT_EQ(respond.at("outputSchema").at("required"), json::parse(R"(["job"])"));
    auto const& wait = tools.at(2).as_object();
    EXPECT_EQ(wait.at("annotations").at("readOnlyHint"), true);
    EXPECT_TRUE(wait.at("inputSchema").at("properties").as_object().contains("on_input"));
    EXPECT_TRUE(wait.at("outputSchema").at("properties").as_object().contains("needs_input"));
    auto const& job = wait.at("outputSchema").at("properties").at("jobs").at("items").as_object();
    auto const& states = job.at("properties").at("state").at("enum").as_array();
    EXPECT_NE(std::find(states.begin(), states.end(), json::value("waiting")), states.end());
    for (auto field : {"activity", "requests", "answered", "session"})
        EXPECT_TRUE(job.at("properties").as_object().contains(field)) << field;
    EXPECT_TRUE(tools.at(4).at("outputSchema").at("properties").as_object().contains("steps"));
    for (auto const& t : tools) {
        EXPECT_EQ(t.at("inputSchema").at("additionalProperties"), false);
        EXPECT_EQ(t.at("outputSchema").at("type"), "object");
        EXPECT_TRUE(t.at("annotations").as_object().contains("readOnlyHint"));
    }
}

// The agents_start tool's Task schema and protocol/params.cpp agree: every field the parser
// knows is in the schema and the other way round. A known field given a value of the wrong type
// fails on that value; only an unknown one fails with "unknown field". The candidates are
// DESIGN §2's Task fields, so a field added to the parser alone fails here.
TEST(McpProtocol, TaskSchemaHasEveryFieldAgentsStartAccepts) {
    auto tools = mcp::tools_list_result().at("tools").as_array();
    auto start = std::find_if(tools.begin(), tools.end(),
                              [](json::value const& t) { return t.at("name") == "agents_start"; });
    ASSERT_NE(start, tools.end());
    auto const& schema =
        start->at("inputSchema").at("properties").at("tasks").at("items").at("properties");
    auto accepts = [](std::string_view field) {
        json::object task{{"prompt", "x"}};
        task[field] = json::array{json::array{}};
        auto r = protocol::parse_start(json::object{{"tasks", json::array{task}}}, {});
        return r.has_value() || r.error().data.at("reason") != "unknown field";
    };
    for (auto field : {"prompt", "description", "agent", "model", "system", "directory",
                       "timeout_ms", "permissions", "continue", "isolation", "budget"})
        EXPECT_EQ(accepts(field), schema.as_object().contains(field)) << field;
    for (auto const& kv : schema.as_object()) EXPECT_TRUE(accepts(kv.key())) << kv.key();
    EXPECT_FALSE(accepts("permission")) << "the probe tells unknown fields";
    EXPECT_EQ(schema.at("permissions").at("enum"), json::parse(R"(["ask","allow","deny"])"));
    EXPECT_EQ(schema.at("budget").at("type"), "object");
}

TEST(McpProtocol, FormElicitationNeedsTheCapabilityAndA2025_06Protocol) {
    auto init = [](char const* caps) {
        return json::parse(std::string(R"({"protocolVersion":"x","capabilities":)") + caps + "}");
    };
    EXPECT_TRUE(mcp::offers_form_elicitation(init(R"({"elicitation":{}})"), "2025-06-18"));
    EXPECT_TRUE(mcp::offers_form_elicitation(init(R"({"elicitation":{"form":{}}})"), "2025-11-25"));
    EXPECT_FALSE(mcp::offers_form_elicitation(init(R"({"elicitation":{"url":{}}})"), "2025-11-25"));
    EXPECT_FALSE(mcp::offers_form_elicitation(init(R"({"elicitation":{}})"), "2025-03-26"));
    EXPECT_FALSE(mcp::offers_form_elicitation(init(R"({"sampling":{}})"), "2025-11-25"));
}

protocol::job_view waiting_job() {
    protocol::job_view v;
    v.id = "job_1";
    v.description = "tests";
    v.state = protocol::job_state::waiting;
    return v;
}

protocol::pending_request permission() {
    protocol::pending_request r;
    r.id = "per_1";
    r.kind = protocol::request_kind::permission;
    r.permission = "bash";
    r.patterns = {"npm test"};
    return r;
}

protocol::pending_request question(bool multiple) {
    protocol::pending_request r;
    r.id = "que_1";
    r.kind = protocol::request_kind::question;
    protocol::question_item q;
    q.question = "Which colour?";
    q.header = "Colour";
    q.options = {{"red", "Warm"}, {"blue", ""}};
    q.multiple = multiple;
    r.questions.push_back(q);
    return r;
}

json::object reply(char const* result) {
    return json::parse(std::string(R"({"jsonrpc":"2.0","id":"e1","result":)") + result + "}")
        .as_object();
}

TEST(McpElicitation, APermissionAsksForADecisionWithTitles) {
    auto latest = mcp::elicitation_params(waiting_job(), permission(), "2025-11-25");
    ASSERT_TRUE(latest);
    EXPECT_EQ(latest->at("mode"), "form");
    EXPECT_NE(std::string_view(latest->at("message").as_string()).find("bash: npm test"),
              std::string_view::npos);
    auto const& schema = latest->at("requestedSchema");
    EXPECT_EQ(schema.at("required"), json::parse(R"(["decision"])"));
    EXPECT_EQ(schema.at("properties").at("decision").at("oneOf").at(1),
              json::parse(R"({"const":"allow_always","title":"Always allow"})"));
    EXPECT_EQ(schema.at("properties").at("message").at("type"), "string");

    auto older = mcp::elicitation_params(waiting_job(), permission(), "2025-06-18");
    ASSERT_TRUE(older);
    EXPECT_FALSE(older->contains("mode"));
    auto const& decision = older->at("requestedSchema").at("properties").at("decision");
    EXPECT_EQ(decision.at("enum"), json::parse(R"(["allow","allow_always","deny"])"));
    EXPECT_EQ(decision.at("enumNames"), json::parse(R"(["Allow once","Always allow","Deny"])"));
}

TEST(McpElicitation, AMultipleChoiceQuestionNeedsArrayEnums) {
    auto single = mcp::elicitation_params(waiting_job(), question(false), "2025-06-18");
    ASSERT_TRUE(single);
    auto const& answer = single->at("requestedSchema").at("properties").at("answer");
    EXPECT_EQ(answer.at("enum"), json::parse(R"(["red","blue"])"));
    EXPECT_EQ(answer.at("title"), "Colour");
    EXPECT_EQ(answer.at("description"), "Which colour?");

    EXPECT_FALSE(mcp::elicitation_params(waiting_job(), question(true), "2025-06-18"));
    auto multiple = mcp::elicitation_params(waiting_job(), question(true), "2025-11-25");
    ASSERT_TRUE(multiple);
    auto const& many = multiple->at("requestedSchema").at("properties").at("answer");
    EXPECT_EQ(many.at("type"), "array");
    EXPECT_EQ(many.at("items").at("anyOf").at(0),
              json::parse(R"({"const":"red","title":"red — Warm"})"));
}

TEST(McpElicitation, ReadsAnswersIntoAgentsRespondArguments) {
    using action = mcp::elicitation_answer::action;
    auto allow = mcp::read_elicitation(
        permission(), reply(R"({"action":"accept","content":{"decision":"allow","message":"x"}})"));
    EXPECT_EQ(allow.what, action::accept);
    EXPECT_EQ(allow.respond, json::parse(R"({"decision":"allow"})"));  // message only with deny
    auto deny = mcp::read_elicitation(
        permission(), reply(R"({"action":"accept","content":{"decision":"deny","message":"no"}})"));
    EXPECT_EQ(deny.respond, json::parse(R"({"decision":"deny","message":"no"})"));
    EXPECT_EQ(mcp::read_elicitation(permission(), reply(R"({"action":"decline"})")).what,
              action::decline);
    EXPECT_EQ(mcp::read_elicitation(permission(), reply(R"({"action":"cancel"})")).what,
              action::cancel);
    EXPECT_EQ(mcp::read_elicitation(permission(),
                                    reply(R"({"action":"accept","content":{"decision":"maybe"}})"))
                  .what,
              action::invalid);
    auto error = json::parse(R"({"jsonrpc":"2.0","id":"e1","error":{"code":-1,"message":"x"}})");
    EXPECT_EQ(mcp::read_elicitation(permission(), error.as_object()).what, action::cancel);

    auto one = mcp::read_elicitation(question(false),
                                     reply(R"({"action":"accept","content":{"answer":"red"}})"));
    EXPECT_EQ(one.what, action::accept);
    EXPECT_EQ(one.respond, json::parse(R"({"answers":[["red"]]})"));
    auto many = mcp::read_elicitation(
        question(true), reply(R"({"action":"accept","content":{"answer":["red","blue"]}})"));
    EXPECT_EQ(many.respond, json::parse(R"({"answers":[["red","blue"]]})"));
    EXPECT_EQ(
        mcp::read_elicitation(question(false), reply(R"({"action":"accept","content":{}})")).what,
        action::invalid);
}

daemon::mcp_sessions registry(std::size_t max_sessions, std::chrono::milliseconds idle = 1h) {
    return daemon::mcp_sessions({max_sessions, idle, {}});
}

TEST(McpRegistry, OpensFindsAndEndsSessions) {
    auto r = registry(8);
    auto a = r.open("local");
    auto b = r.open("local");
    EXPECT_EQ(a->id.size(), 32u);
    EXPECT_NE(a->id, b->id);
    EXPECT_EQ(r.find(a->id), a);
    EXPECT_TRUE(r.end(a->id));
    EXPECT_EQ(r.find(a->id), nullptr);
    EXPECT_FALSE(r.end(a->id));
    EXPECT_TRUE(a->ended);
}

TEST(McpRegistry, EndingASessionStopsItsRequestsAndCancelStopsOne) {
    auto r = registry(8);
    auto s = r.open("local");
    int first = 0;
    int second = 0;
    daemon::mcp_in_flight one(s, "1", [&] { ++first; });
    daemon::mcp_in_flight two(s, "\"two\"", [&] { ++second; });
    s->cancel("1");
    EXPECT_EQ(first, 1);
    EXPECT_EQ(second, 0);
    r.end(s->id);
    EXPECT_EQ(first, 2);
    EXPECT_EQ(second, 1);
    int late = 0;
    daemon::mcp_in_flight after_end(s, "3", [&] { ++late; });
    EXPECT_EQ(late, 1);
}

TEST(McpRegistry, IdleSessionsExpireButBusyOnesDoNot) {
    auto r = registry(8, 1ms);
    auto idle = r.open("local");
    auto busy = r.open("local");
    daemon::mcp_in_flight request(busy, "1", [] {});
    std::this_thread::sleep_for(5ms);
    EXPECT_EQ(r.find(idle->id), nullptr);
    EXPECT_EQ(r.find(busy->id), busy);
}

TEST(McpRegistry, TheCapEvictsTheLeastRecentlyUsedIdleSession) {
    auto r = registry(2);
    auto busy = r.open("local");
    daemon::mcp_in_flight request(busy, "1", [] {});
    std::this_thread::sleep_for(1ms);
    auto idle = r.open("local");
    std::this_thread::sleep_for(1ms);
    auto third = r.open("local");
    EXPECT_TRUE(idle->ended);
    EXPECT_EQ(r.find(idle->id), nullptr);
    EXPECT_EQ(r.find(busy->id), busy);
    EXPECT_EQ(r.find(third->id), third);

    std::this_thread::sleep_for(1ms);
    r.find(busy->id);               // busy is now the most recently used, and still busy
    auto fourth = r.open("local");  // so the idle third goes
    EXPECT_TRUE(third->ended);
    EXPECT_FALSE(busy->ended);
    EXPECT_FALSE(fourth->ended);
}

// A flood of initializes evicts the flood's own sessions (never used for a tool) before a
// session that works, even one idle for longer.
TEST(McpRegistry, SessionsThatCalledAToolOutliveAFloodOfNewOnes) {
    auto r = registry(4);
    auto worker = r.open("local");
    worker->used = true;
    for (int i = 0; i < 100; ++i) ASSERT_NE(r.open("local"), nullptr);
    EXPECT_FALSE(worker->ended);
    EXPECT_EQ(r.find(worker->id), worker);
}

// Busy sessions are never evicted: at the cap with all busy, open() refuses (HTTP 503).
TEST(McpRegistry, AllBusyAtTheCapRefusesANewSession) {
    auto r = registry(2);
    auto a = r.open("local");
    auto b = r.open("local");
    daemon::mcp_in_flight ra(a, "1", [] {});
    {
        daemon::mcp_in_flight rb(b, "1", [] {});
        EXPECT_EQ(r.open("local"), nullptr);
        EXPECT_FALSE(a->ended);
        EXPECT_FALSE(b->ended);
    }
    auto c = r.open("local");  // b is idle again: it makes room
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(b->ended);
    EXPECT_FALSE(a->ended);
}

TEST(McpRegistry, RepliesReachTheirRequestAndRequestsAreElicitedOnce) {
    auto r = registry(8);
    auto s = r.open("local");
    json::object got;
    s->awaiting["\"e1\""] = [&](json::object const& reply) { got = reply; };
    EXPECT_FALSE(s->take_reply(json::parse(R"({"id":"e2","result":{}})").as_object()));
    EXPECT_TRUE(s->take_reply(json::parse(R"({"id":"e1","result":{"a":1}})").as_object()));
    EXPECT_EQ(got.at("result").at("a"), 1);
    EXPECT_FALSE(s->take_reply(json::parse(R"({"id":"e1","result":{}})").as_object()));

    EXPECT_TRUE(s->mark_elicited("job_1", "per_1"));
    EXPECT_FALSE(s->mark_elicited("job_1", "per_1"));
    EXPECT_TRUE(s->mark_elicited("job_2", "per_1"));
}

// The cap counts per principal: one principal's flood does not touch another's sessions.
TEST(McpRegistry, TheCapIsPerPrincipal) {
    auto r = registry(2);
    auto alice = r.open("alice");
    for (int i = 0; i < 10; ++i) ASSERT_NE(r.open("bob"), nullptr);
    EXPECT_FALSE(alice->ended);
    EXPECT_EQ(r.find(alice->id), alice);
}

}  // namespace
}  // namespace agentd
