// The MCP mapping (protocol/mcp: version negotiation, body parsing, tools/call params and
// results) and the MCP session registry (ids, idle expiry, the cap's LRU eviction that spares
// busy sessions, stopping in-flight requests), without sockets.
#include "protocol/mcp.hpp"
#include "daemon/mcp_sessions.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

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
    EXPECT_EQ(single->responses, 1u);
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
    auto limit = mcp::tool_failure(protocol::limit_exceeded("max_tasks", 8));
    EXPECT_EQ(limit.at("content").at(0).at("text"),
              R"(Limit exceeded: {"limit":"max_tasks","max":8})");

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

TEST(McpProtocol, ListsFiveToolsWhoseInputsAreClosedObjects) {
    auto tools = mcp::tools_list_result().at("tools").as_array();
    ASSERT_EQ(tools.size(), 5u);
    for (auto const& t : tools) {
        EXPECT_EQ(t.at("inputSchema").at("additionalProperties"), false);
        EXPECT_EQ(t.at("outputSchema").at("type"), "object");
        EXPECT_TRUE(t.at("annotations").as_object().contains("readOnlyHint"));
    }
}

daemon::mcp_sessions registry(std::size_t max_sessions, std::chrono::milliseconds idle = 1h) {
    return daemon::mcp_sessions({max_sessions, idle});
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
