// MCP on /mcp (Streamable HTTP) against the real agentd binary: sessions and the status codes
// of the spec (400/401/403/404/405/406/415, 202 for notifications), the tool list, tools/call
// results and tool errors, agents_wait progress over SSE, agents_respond, the elicitation round
// trip of a waiting job (accept, decline), notifications/cancelled, DELETE, listings per
// Mcp-Session-Id or Agentd-Session header, and ids that work across sessions.
#include "agentd_fixture.hpp"
#include "protocol/version.hpp"
#include "raw_socket.hpp"

#include <future>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

json::object tool_call(json::value id, std::string name, json::value args,
                       json::value progress_token = nullptr) {
    json::object params{{"name", std::move(name)}, {"arguments", std::move(args)}};
    if (!progress_token.is_null())
        params["_meta"] = json::object{{"progressToken", std::move(progress_token)}};
    return {
        {"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", "tools/call"}, {"params", params}};
}

json::object notification(std::string method, json::value params = nullptr) {
    json::object n{{"jsonrpc", "2.0"}, {"method", std::move(method)}};
    if (!params.is_null()) n["params"] = std::move(params);
    return n;
}

// The data of each event of a text/event-stream body, parsed.
std::vector<json::value> sse_events(std::string const& body) {
    std::vector<json::value> events;
    std::size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
        auto end = body.find('\n', pos);
        events.push_back(json::parse(body.substr(pos + 6, end - pos - 6)));
        pos = end;
    }
    return events;
}

// A small MCP client over the test HTTP helpers; it sends the session header once it has one.
class mcp_client {
  public:
    explicit mcp_client(agentd_process& agentd) : agentd_(agentd) {}

    http_headers headers(http_headers extra = {}) const {
        http_headers h{{"Authorization", "Bearer " + agentd_.token()},
                       {"Accept", "application/json, text/event-stream"}};
        if (!session_.empty()) h.emplace_back("Mcp-Session-Id", session_);
        if (!pinned_.empty()) h.emplace_back("Agentd-Session", pinned_);
        h.insert(h.end(), extra.begin(), extra.end());  // later entries replace earlier ones
        return h;
    }

    http_response post(json::value const& message, http_headers extra = {},
                       std::chrono::milliseconds timeout = default_http_timeout) const {
        return http_request(agentd_.port(), "POST", "/mcp", json::serialize(message),
                            headers(std::move(extra)), timeout);
    }

    json::object initialize(std::string version = "2025-11-25", json::object capabilities = {}) {
        json::object init{
            {"jsonrpc", "2.0"},
            {"id", next_id_++},
            {"method", "initialize"},
            {"params",
             json::object{{"protocolVersion", version},
                          {"capabilities", std::move(capabilities)},
                          {"clientInfo", json::object{{"name", "it"}, {"version", "1"}}}}}};
        auto r = post(init);
        EXPECT_EQ(r.status, 200) << r.body;
        session_ = r.header("mcp-session-id");
        auto initialized = post(notification("notifications/initialized"));
        EXPECT_EQ(initialized.status, 202);
        return json::parse(r.body).as_object().at("result").as_object();
    }

    // One request; the whole JSON-RPC response.
    json::object request(std::string method, json::value params = nullptr) {
        json::object req{{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", std::move(method)}};
        if (!params.is_null()) req["params"] = std::move(params);
        auto r = post(req);
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.header("content-type"), "application/json");
        return json::parse(r.body).as_object();
    }

    // tools/call expected to answer with a result (a tool error is a result too).
    json::object call(std::string name, json::value args) {
        auto r = post(tool_call(next_id_++, std::move(name), std::move(args)));
        EXPECT_EQ(r.status, 200) << r.body;
        auto v = json::parse(r.body).as_object();
        EXPECT_TRUE(v.contains("result")) << r.body;
        return v.contains("result") ? v.at("result").as_object() : json::object{};
    }

    // The structuredContent of a successful tools/call.
    json::object structured(std::string name, json::value args) {
        auto result = call(std::move(name), std::move(args));
        EXPECT_FALSE(result.at("isError").as_bool()) << json::serialize(result);
        EXPECT_EQ(json::parse(result.at("content").at(0).at("text").as_string()),
                  result.at("structuredContent"));
        return result.at("structuredContent").as_object();
    }

    std::string const& session() const { return session_; }
    void forget_session() { session_.clear(); }
    // Sends `Agentd-Session: name` with every request from now on, as an MCP config would.
    void pin(std::string name) { pinned_ = std::move(name); }

  private:
    agentd_process& agentd_;
    std::string session_;
    std::string pinned_;
    int next_id_ = 1;
};

json::object start_args(std::vector<std::string> prompts) {
    json::array tasks;
    for (auto& p : prompts) tasks.push_back(task(std::move(p)));
    return {{"tasks", std::move(tasks)}};
}

TEST_F(agentd_test, McpInitializeOpensASessionAndNegotiatesTheVersion) {
    mcp_client c(*agentd_);
    auto result = c.initialize("2025-06-18");
    EXPECT_EQ(c.session().size(), 32u);
    EXPECT_EQ(c.session().find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(result.at("protocolVersion").as_string(), "2025-06-18");
    EXPECT_EQ(result.at("capabilities"), json::parse(R"({"tools":{"listChanged":false}})"));
    EXPECT_EQ(result.at("serverInfo"),
              (json::object{{"name", "agentd"}, {"version", agentd::version}}));

    mcp_client other(*agentd_);
    EXPECT_EQ(other.initialize("2024-01-01").at("protocolVersion").as_string(), "2025-11-25");
    EXPECT_NE(other.session(), c.session());
    EXPECT_EQ(mcp_client(*agentd_).initialize("2025-03-26").at("protocolVersion").as_string(),
              "2025-03-26");

    EXPECT_EQ(c.request("ping").at("result"), json::object{});
    EXPECT_EQ(c.request("resources/list").at("error").at("code").as_int64(), -32601);
}

TEST_F(agentd_test, McpRefusesBadRequestsWithTheSpecStatusCodes) {
    mcp_client c(*agentd_);
    c.initialize();
    json::object ping{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}};

    EXPECT_EQ(c.post(ping, {{"Accept", "application/json"}}).status, 406);
    EXPECT_EQ(c.post(ping, {{"Accept", "text/event-stream"}}).status, 406);
    EXPECT_EQ(c.post(ping, {{"Content-Type", "text/plain"}}).status, 415);
    EXPECT_EQ(c.post(ping, {{"MCP-Protocol-Version", "1999-01-01"}}).status, 400);
    EXPECT_EQ(c.post(ping, {{"MCP-Protocol-Version", "2025-06-18"}}).status, 200);
    EXPECT_EQ(c.post(ping, {{"Authorization", ""}}).status, 401);
    EXPECT_EQ(c.post(ping, {{"Host", "evil.example.com"}}).status, 403);
    EXPECT_EQ(c.post(ping, {{"Origin", "http://evil.example.com"}}).status, 403);
    EXPECT_EQ(c.post(ping, {{"Origin", "http://localhost:3000"}}).status, 200);

    auto bad_json = http_request(agentd_->port(), "POST", "/mcp", "{nope", c.headers());
    EXPECT_EQ(bad_json.status, 400);
    EXPECT_EQ(json::parse(bad_json.body).at("error").at("code").as_int64(), -32700);

    auto no_session = c.post(ping, {{"Mcp-Session-Id", ""}});
    EXPECT_EQ(no_session.status, 400);
    auto unknown = c.post(ping, {{"Mcp-Session-Id", std::string(32, 'a')}});
    EXPECT_EQ(unknown.status, 404);
    EXPECT_TRUE(json::parse(unknown.body).at("id").is_null());

    auto get = http_request(agentd_->port(), "GET", "/mcp", "", c.headers());
    EXPECT_EQ(get.status, 405);
    EXPECT_EQ(get.header("allow"), "POST, DELETE");
}

TEST_F(agentd_test, McpNotificationsAndResponsesGet202) {
    mcp_client c(*agentd_);
    c.initialize();
    auto note = c.post(notification("notifications/roots/list_changed"));
    EXPECT_EQ(note.status, 202);
    EXPECT_TRUE(note.body.empty());
    auto response = c.post(json::parse(R"({"jsonrpc":"2.0","id":"s1","result":{}})"));
    EXPECT_EQ(response.status, 202);
    auto cancel_unknown =
        c.post(notification("notifications/cancelled", json::object{{"requestId", 99}}));
    EXPECT_EQ(cancel_unknown.status, 202);
}

TEST_F(agentd_test, McpToolsListHasTheSixToolsWithSchemasAndAnnotations) {
    mcp_client c(*agentd_);
    c.initialize();
    auto tools = c.request("tools/list").at("result").at("tools").as_array();
    ASSERT_EQ(tools.size(), 6u);
    std::map<std::string, json::object> by_name;
    for (auto const& t : tools) by_name[std::string(t.at("name").as_string())] = t.as_object();
    for (auto name : {"agents_start", "agents_status", "agents_wait", "agents_cancel",
                      "agents_peek", "agents_respond"}) {
        ASSERT_TRUE(by_name.contains(name)) << name;
        auto const& t = by_name[name];
        EXPECT_FALSE(t.at("title").as_string().empty());
        EXPECT_FALSE(t.at("description").as_string().empty());
        EXPECT_EQ(t.at("inputSchema").at("type").as_string(), "object");
        EXPECT_EQ(t.at("inputSchema").at("additionalProperties"), false) << name;
        EXPECT_TRUE(t.at("inputSchema").at("properties").as_object().contains("session"));
        EXPECT_EQ(t.at("outputSchema").at("type").as_string(), "object");
        bool reads = std::string_view(name) == "agents_status" ||
                     std::string_view(name) == "agents_wait" ||
                     std::string_view(name) == "agents_peek";
        EXPECT_EQ(t.at("annotations").at("readOnlyHint").as_bool(), reads) << name;
    }
    EXPECT_TRUE(by_name["agents_cancel"].at("annotations").at("destructiveHint").as_bool());
    EXPECT_EQ(by_name["agents_start"].at("inputSchema").at("required"), json::array{"tasks"});
    EXPECT_EQ(by_name["agents_cancel"].at("inputSchema").at("required"), json::array{"jobs"});
    EXPECT_EQ(by_name["agents_peek"].at("inputSchema").at("required"), json::array{"job"});
    auto const& wait_mode = by_name["agents_wait"].at("inputSchema").at("properties").at("mode");
    EXPECT_EQ(wait_mode.at("enum"), json::parse(R"(["all","any"])"));
    auto const& job =
        by_name["agents_status"].at("outputSchema").at("properties").at("jobs").at("items");
    EXPECT_EQ(job.at("required"), json::parse(R"(["id","state"])"));
    auto const& states = job.at("properties").at("state").at("enum").as_array();
    EXPECT_NE(std::find(states.begin(), states.end(), json::value("not_found")), states.end());
    EXPECT_EQ(by_name["agents_wait"].at("outputSchema").at("required"),
              json::parse(R"(["done","timed_out","jobs","needs_input"])"));
    EXPECT_EQ(by_name["agents_respond"].at("inputSchema").at("required"),
              json::parse(R"(["job","request"])"));
    EXPECT_EQ(by_name["agents_respond"].at("outputSchema").at("required"), json::array{"job"});
}

TEST_F(agentd_test, McpRespondAnswersAWaitingJob) {
    mcp_client c(*agentd_);
    c.initialize();
    auto unknown = c.call("agents_respond", json::parse(R"({"job":"job_1","request":"per_1",
                                                            "decision":"allow"})"));
    EXPECT_TRUE(unknown.at("isError").as_bool());
    EXPECT_NE(unknown.at("content").at(0).at("text").as_string().find("job"), std::string::npos);

    auto started = c.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto ids = ids_of(jobs_of(started));
    auto waited = c.structured("agents_wait", json::object{{"jobs", ids}, {"timeout_ms", 10'000}});
    EXPECT_FALSE(waited.at("done").as_bool());
    EXPECT_EQ(waited.at("needs_input"), ids);
    auto const& job = jobs_of(waited).at(0);
    ASSERT_EQ(str(job, "state"), "waiting") << json::serialize(waited);
    auto request = job.at("requests").at(0).at("id");
    auto responded = c.structured(
        "agents_respond",
        json::object{{"job", ids.at(0)}, {"request", request}, {"decision", "allow_always"}});
    EXPECT_EQ(responded.at("job").at("id"), ids.at(0));
    auto done = c.structured("agents_wait", json::object{{"jobs", ids}, {"timeout_ms", 10'000}});
    EXPECT_EQ(str(jobs_of(done).at(0), "state"), "completed");
    EXPECT_EQ(done.at("jobs").at(0).at("answered").at(0).at("by"), "caller");
}

// A client that declares elicitation gets its wait as SSE; a waiting job's request arrives as
// elicitation/create there, and the client's response, POSTed separately, is applied.
json::object elicitation_caps() {
    return {{"elicitation", json::object{}}};
}

// Runs one agents_wait as SSE while POSTing `reply` as the response to the session's first
// elicitation/create until the wait ends; its events.
std::vector<json::value> wait_answering(mcp_client& c, json::value const& ids,
                                        json::value const& reply) {
    json::object args{{"jobs", ids}, {"timeout_ms", 10'000}};
    auto wait = std::async(std::launch::async,
                           [&] { return c.post(tool_call("w", "agents_wait", args), {}, 20s); });
    json::object response{{"jsonrpc", "2.0"}, {"id", "agentd-elicitation-1"}, {"result", reply}};
    // A response before its request is ignored, so repeat it until the wait ends.
    auto t0 = std::chrono::steady_clock::now();
    while (wait.wait_for(50ms) != std::future_status::ready) {
        EXPECT_EQ(c.post(response).status, 202);
        if (std::chrono::steady_clock::now() - t0 > 15s) break;
    }
    auto r = wait.get();
    EXPECT_EQ(r.header("content-type"), "text/event-stream") << r.body;
    return sse_events(r.body);
}

TEST_F(agentd_test, McpElicitationAcceptAppliesTheAnswerAndTheWaitGoesOn) {
    mcp_client c(*agentd_);
    c.initialize("2025-06-18", elicitation_caps());
    auto started = c.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto ids = ids_of(jobs_of(started));
    auto events = wait_answering(
        c, ids, json::parse(R"({"action":"accept","content":{"decision":"allow"}})"));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].at("method"), "elicitation/create");
    EXPECT_EQ(events[0].at("id"), "agentd-elicitation-1");
    auto const& decision =
        events[0].at("params").at("requestedSchema").at("properties").at("decision");
    EXPECT_EQ(decision.at("enum"), json::parse(R"(["allow","allow_always","deny"])"));
    auto const& out = events[1].at("result").at("structuredContent");
    EXPECT_TRUE(out.at("done").as_bool()) << json::serialize(out);
    EXPECT_EQ(str(out.at("jobs").at(0), "state"), "completed");
    EXPECT_EQ(out.at("jobs").at(0).at("answered").at(0).at("by"), "caller");
}

// An open form is withdrawn (notifications/cancelled) when the wait's timeout passes, and when
// the request is answered elsewhere meanwhile, after which the wait goes on.
TEST_F(agentd_test, McpElicitationIsWithdrawnAtTheTimeoutOrWhenAnsweredElsewhere) {
    mcp_client c(*agentd_);
    c.initialize("2025-11-25", elicitation_caps());
    auto started = c.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto ids = ids_of(jobs_of(started));
    auto timed =
        c.post(tool_call("w1", "agents_wait", json::object{{"jobs", ids}, {"timeout_ms", 300}}));
    auto events = sse_events(timed.body);
    ASSERT_EQ(events.size(), 3u) << timed.body;
    EXPECT_EQ(events[0].at("method"), "elicitation/create");
    EXPECT_EQ(events[1].at("method"), "notifications/cancelled");
    EXPECT_EQ(events[1].at("params").at("requestId"), events[0].at("id"));
    EXPECT_EQ(events[2].at("result").at("structuredContent").at("needs_input"), ids);

    auto second = c.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto second_ids = ids_of(jobs_of(second));
    json::object args{{"jobs", second_ids}, {"timeout_ms", 10'000}};
    auto wait = std::async(std::launch::async,
                           [&] { return c.post(tool_call("w2", "agents_wait", args), {}, 20s); });
    std::this_thread::sleep_for(300ms);  // the job asks and the wait sends its form
    auto status = c.structured("agents_status", json::object{{"jobs", second_ids}});
    auto request = jobs_of(status).at(0).at("requests").at(0).at("id");
    c.structured(
        "agents_respond",
        json::object{{"job", second_ids.at(0)}, {"request", request}, {"decision", "allow"}});
    auto r = wait.get();
    auto streamed = sse_events(r.body);
    ASSERT_EQ(streamed.size(), 3u) << r.body;
    EXPECT_EQ(streamed[0].at("method"), "elicitation/create");
    EXPECT_EQ(streamed[1].at("method"), "notifications/cancelled");
    auto const& out = streamed[2].at("result").at("structuredContent");
    EXPECT_TRUE(out.at("done").as_bool()) << json::serialize(out);
    EXPECT_EQ(str(out.at("jobs").at(0), "state"), "completed");
    c.structured("agents_cancel", json::object{{"jobs", ids}});
}

// Before 2025-11-25 a multiple-choice question has no form (array enums): it is left to
// agents_respond, and a progress wait without elicitation returns on a waiting job at once.
TEST_F(agentd_test, McpWaitsReturnOnRequestsTheyCannotElicit) {
    mcp_client c(*agentd_);
    c.initialize("2025-06-18", elicitation_caps());
    auto started = c.structured("agents_start", start_args({"q [[fake question=A|B multiple=1]]"}));
    auto ids = ids_of(jobs_of(started));
    auto t0 = std::chrono::steady_clock::now();
    auto r = c.post(tool_call("w", "agents_wait", json::object{{"jobs", ids}}));
    auto events = sse_events(r.body);
    ASSERT_EQ(events.size(), 1u) << r.body;
    EXPECT_EQ(events[0].at("result").at("structuredContent").at("needs_input"), ids);

    mcp_client plain(*agentd_);
    plain.initialize();
    auto asks = plain.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto ask_ids = ids_of(jobs_of(asks));
    auto progress =
        plain.post(tool_call("p", "agents_wait", json::object{{"jobs", ask_ids}}, "tok"));
    auto progress_events = sse_events(progress.body);
    ASSERT_FALSE(progress_events.empty());
    auto const& out = progress_events.back().at("result").at("structuredContent");
    EXPECT_FALSE(out.at("done").as_bool());
    EXPECT_EQ(out.at("needs_input"), ask_ids);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    c.structured("agents_cancel", json::object{{"jobs", ids}});
    plain.structured("agents_cancel", json::object{{"jobs", ask_ids}});
}

TEST_F(agentd_test, McpElicitationDeclineReturnsTheWaitWithTheJobWaiting) {
    mcp_client c(*agentd_);
    c.initialize("2025-11-25", elicitation_caps());
    auto started = c.structured("agents_start", start_args({"ask [[fake permission=bash]]"}));
    auto ids = ids_of(jobs_of(started));
    auto events = wait_answering(c, ids, json::parse(R"({"action":"decline"})"));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].at("method"), "elicitation/create");
    auto const& out = events[1].at("result").at("structuredContent");
    EXPECT_FALSE(out.at("done").as_bool());
    EXPECT_EQ(out.at("needs_input"), ids);
    EXPECT_EQ(str(out.at("jobs").at(0), "state"), "waiting");

    // Never asked twice: the next wait returns at once without an elicitation.
    auto again = c.post(tool_call("w2", "agents_wait", json::object{{"jobs", ids}}));
    auto again_events = sse_events(again.body);
    ASSERT_EQ(again_events.size(), 1u) << again.body;
    EXPECT_EQ(again_events[0].at("result").at("structuredContent").at("needs_input"), ids);
    c.structured("agents_cancel", json::object{{"jobs", ids}});
}

TEST_F(agentd_test, McpStartAnswersStructuredJobsAndToolErrorsAreResults) {
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured("agents_start", start_args({"one", "two"}));
    ASSERT_EQ(jobs_of(started).size(), 2u);
    EXPECT_TRUE(str(jobs_of(started)[0], "id").starts_with("job_"));

    auto empty = c.call("agents_start", json::object{{"tasks", json::array{}}});
    EXPECT_TRUE(empty.at("isError").as_bool());
    EXPECT_NE(empty.at("content").at(0).at("text").as_string().find("tasks"), std::string::npos);
    EXPECT_FALSE(empty.contains("structuredContent"));

    json::array nine;
    for (int i = 0; i < 9; ++i) nine.push_back(task("x"));
    auto over = c.call("agents_start", json::object{{"tasks", nine}});
    EXPECT_TRUE(over.at("isError").as_bool());
    EXPECT_EQ(over.at("content").at(0).at("text").as_string().find(
                  "Limit exceeded: 9 tasks > max_tasks_per_call 8: "),
              0u);

    auto unknown = json::parse(c.post(tool_call(7, "agents_explode", json::object{})).body);
    EXPECT_EQ(unknown.at("error").at("code").as_int64(), -32602);
    auto bad_args = json::parse(c.post(tool_call(8, "agents_status", json::array{})).body);
    EXPECT_EQ(bad_args.at("error").at("code").as_int64(), -32602);
}

TEST_F(agentd_test, McpWaitWithAProgressTokenStreamsProgressThenTheResult) {
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured(
        "agents_start", start_args({"a [[fake latency_ms=100]]", "b [[fake latency_ms=300]]"}));
    auto ids = ids_of(jobs_of(started));
    json::object args{{"jobs", ids}, {"timeout_ms", 10'000}};
    auto r = c.post(tool_call(42, "agents_wait", args, "tok"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "text/event-stream");
    EXPECT_EQ(r.header("mcp-session-id"), c.session());
    auto events = sse_events(r.body);
    ASSERT_EQ(events.size(), 3u) << r.body;
    for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(events[i].at("method").as_string(), "notifications/progress");
        auto const& p = events[i].at("params");
        EXPECT_EQ(p.at("progressToken").as_string(), "tok");
        EXPECT_EQ(p.at("progress").as_int64(), i + 1);
        EXPECT_EQ(p.at("total").as_int64(), 2);
    }
    EXPECT_EQ(events[2].at("id").as_int64(), 42);
    auto const& result = events[2].at("result");
    EXPECT_FALSE(result.at("isError").as_bool());
    EXPECT_TRUE(result.at("structuredContent").at("done").as_bool());
    EXPECT_EQ(str(result.at("structuredContent").at("jobs").at(1), "state"), "completed");

    // Without a token the same call is one JSON answer.
    auto plain = c.post(tool_call(43, "agents_wait", args));
    EXPECT_EQ(plain.header("content-type"), "application/json");
    EXPECT_TRUE(json::parse(plain.body).at("result").at("structuredContent").at("done").as_bool());
}

TEST_F(agentd_test, McpProgressWaitEndsAtItsTimeout) {
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured("agents_start", start_args({"slow [[fake latency_ms=30000]]"}));
    json::object args{{"jobs", ids_of(jobs_of(started))}, {"timeout_ms", 300}};
    auto events = sse_events(c.post(tool_call(1, "agents_wait", args, 5)).body);
    ASSERT_EQ(events.size(), 1u);
    auto const& out = events[0].at("result").at("structuredContent");
    EXPECT_FALSE(out.at("done").as_bool());
    EXPECT_TRUE(out.at("timed_out").as_bool());
    c.structured("agents_cancel", json::object{{"jobs", ids_of(jobs_of(started))}});
}

TEST_F(agentd_test, McpCancelledNotificationEndsAWaitButNotItsJob) {
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured("agents_start", start_args({"slow [[fake latency_ms=60000]]"}));
    auto ids = ids_of(jobs_of(started));
    json::object args{{"jobs", ids}, {"timeout_ms", 60'000}};
    auto t0 = std::chrono::steady_clock::now();
    auto streamed = std::async(std::launch::async, [&] {
        return c.post(tool_call("w-sse", "agents_wait", args, "p"), {}, 30s);
    });
    auto plain = std::async(std::launch::async, [&] {
        return c.post(tool_call("w-json", "agents_wait", args), {}, 30s);
    });
    // A cancellation that arrives before its request is ignored, so repeat it until both end.
    while (streamed.wait_for(50ms) != std::future_status::ready ||
           plain.wait_for(0ms) != std::future_status::ready) {
        c.post(notification("notifications/cancelled", json::object{{"requestId", "w-sse"}}));
        c.post(notification("notifications/cancelled", json::object{{"requestId", "w-json"}}));
        ASSERT_LT(std::chrono::steady_clock::now() - t0, 10s) << "the waits were not cancelled";
    }
    auto sse = streamed.get();
    EXPECT_EQ(sse.status, 200);
    EXPECT_EQ(sse.header("content-type"), "text/event-stream");
    EXPECT_TRUE(sse_events(sse.body).empty()) << sse.body;  // no response for a cancelled request
    auto json_wait = plain.get();
    EXPECT_EQ(json_wait.status, 202);
    EXPECT_TRUE(json_wait.body.empty());

    auto status = c.structured("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(status)[0], "state"), "running");
    auto cancelled = c.structured("agents_cancel", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(cancelled)[0], "state"), "cancelled");
}

TEST_F(agentd_test, McpDeleteEndsTheSession) {
    mcp_client c(*agentd_);
    c.initialize();
    auto del = http_request(agentd_->port(), "DELETE", "/mcp", "", c.headers());
    EXPECT_EQ(del.status, 204);
    json::object ping{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}};
    EXPECT_EQ(c.post(ping).status, 404);
    EXPECT_EQ(http_request(agentd_->port(), "DELETE", "/mcp", "", c.headers()).status, 404);
    c.forget_session();
    EXPECT_EQ(http_request(agentd_->port(), "DELETE", "/mcp", "", c.headers()).status, 400);
}

TEST_F(agentd_test, McpJobsBelongToTheirMcpSession) {
    mcp_client a(*agentd_);
    mcp_client b(*agentd_);
    a.initialize();
    b.initialize();
    auto started = a.structured("agents_start", start_args({"mine"}));
    auto ids = ids_of(jobs_of(started));

    // Another MCP session (a reconnected client) reaches the job by id but does not list it.
    auto by_id = b.structured("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(by_id)[0], "state"), "running");
    EXPECT_EQ(str(jobs_of(by_id)[0], "session"), a.session());
    EXPECT_TRUE(jobs_of(b.structured("agents_status", json::object{})).empty());
    EXPECT_EQ(jobs_of(a.structured("agents_status", json::object{})).size(), 1u);
    EXPECT_TRUE(jobs_of(agentd_->call("agents_status", json::object{})).empty());
    // Naming the session explicitly reaches the jobs (same principal), over /rpc as over MCP.
    auto named = agentd_->call("agents_status", json::object{{"session", a.session()}});
    EXPECT_EQ(jobs_of(named).size(), 1u);
}

TEST_F(agentd_test, McpAgentdSessionHeaderPinsTheOwnerSession) {
    mcp_client a(*agentd_);
    a.pin("my-editor");
    a.initialize();
    auto started = a.structured("agents_start", start_args({"pinned [[fake latency_ms=20000]]"}));
    auto id = str(jobs_of(started)[0], "id");
    EXPECT_EQ(str(jobs_of(started)[0], "session"), "my-editor");

    // A restarted client: a new MCP session with the same header lists the same jobs.
    mcp_client b(*agentd_);
    b.pin("my-editor");
    b.initialize();
    EXPECT_NE(b.session(), a.session());
    auto listed = b.structured("agents_status", json::object{});
    ASSERT_EQ(jobs_of(listed).size(), 1u);
    EXPECT_EQ(str(jobs_of(listed)[0], "id"), id);
    auto waited = b.structured("agents_wait", json::object{{"timeout_ms", 0}});
    EXPECT_EQ(jobs_of(waited).size(), 1u);
    EXPECT_TRUE(
        jobs_of(agentd_->call("agents_status", json::object{{"session", a.session()}})).empty());
    auto named = agentd_->call("agents_status", json::object{{"session", "my-editor"}});
    EXPECT_EQ(jobs_of(named).size(), 1u);

    // A call's own session wins over the header.
    auto explicit_start = b.structured(
        "agents_start",
        json::object{{"session", "explicit"}, {"tasks", json::array{task("elsewhere")}}});
    EXPECT_EQ(str(jobs_of(explicit_start)[0], "session"), "explicit");
    EXPECT_EQ(jobs_of(b.structured("agents_status", json::object{})).size(), 1u);
    EXPECT_EQ(jobs_of(b.structured("agents_status", json::object{{"session", "explicit"}})).size(),
              1u);

    // Without the header: the MCP session's own listing, empty; ids still reach the job.
    mcp_client plain(*agentd_);
    plain.initialize();
    EXPECT_TRUE(jobs_of(plain.structured("agents_status", json::object{})).empty());
    auto cancelled = plain.structured("agents_cancel", json::object{{"jobs", json::array{id}}});
    EXPECT_EQ(str(jobs_of(cancelled)[0], "state"), "cancelled");
}

// A raw POST /mcp of a ping with `extra` header lines ("Name: value\r\n" each); its status.
int raw_ping_status(agentd_process& a, std::string const& session, std::string const& extra) {
    raw_socket sock(a.port());
    std::string body = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
    sock.send(fmt::format(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        "Mcp-Session-Id: {}\r\n{}Content-Length: {}\r\n\r\n{}",
        a.token(), session, extra, body.size(), body));
    auto r = sock.read_response(5s);
    if (!r) return 0;
    return std::stoi(r->head.substr(9, 3));
}

TEST_F(agentd_test, McpRefusesABadAgentdSessionHeaderWith400) {
    mcp_client c(*agentd_);
    c.initialize();
    json::object ping{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "ping"}};
    for (std::string const& bad :
         std::vector<std::string>{"has space", "a/b", "caf\xc3\xa9", std::string(129, 'x'), "*"}) {
        auto r = c.post(ping, {{"Agentd-Session", bad}});
        EXPECT_EQ(r.status, 400) << bad;
        EXPECT_TRUE(json::parse(r.body).at("id").is_null()) << r.body;
        EXPECT_EQ(json::parse(r.body).at("error").at("code").as_int64(), -32600) << r.body;
    }
    EXPECT_EQ(c.post(ping, {{"Agentd-Session", std::string(128, 'x')}}).status, 200);
    EXPECT_EQ(c.post(ping, {{"Agentd-Session", "a.b_c:d-1"}}).status, 200);
    mcp_client bad_init(*agentd_);
    bad_init.pin("no way");
    json::object init{{"jsonrpc", "2.0"},
                      {"id", 1},
                      {"method", "initialize"},
                      {"params", json::object{{"protocolVersion", "2025-11-25"},
                                              {"capabilities", json::object{}}}}};
    EXPECT_EQ(bad_init.post(init).status, 400);

    // An empty header and two headers are refused too (the raw bytes: the client helper
    // drops empty headers and merges repeated ones).
    EXPECT_EQ(raw_ping_status(*agentd_, c.session(), "Agentd-Session: \r\n"), 400);
    EXPECT_EQ(raw_ping_status(*agentd_, c.session(), "Agentd-Session: a\r\nAgentd-Session: b\r\n"),
              400);
    EXPECT_EQ(raw_ping_status(*agentd_, c.session(), "Agentd-Session: a\r\n"), 200);
    EXPECT_EQ(c.request("ping").at("result"), json::object{});  // the daemon goes on
}

TEST_F(agentd_test, McpBatchesAreAnsweredForOlderClients) {
    mcp_client c(*agentd_);
    c.initialize("2025-03-26");
    auto r = c.post(json::parse(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},
                                    {"jsonrpc":"2.0","method":"notifications/initialized"},
                                    {"jsonrpc":"2.0","id":2,"method":"tools/list"}])"));
    ASSERT_EQ(r.status, 200);
    auto answers = json::parse(r.body).as_array();
    ASSERT_EQ(answers.size(), 2u);
    EXPECT_EQ(answers[0].at("id").as_int64(), 1);
    EXPECT_EQ(answers[1].at("result").at("tools").as_array().size(), 6u);
}

// A raw POST /mcp of `message` on `sock`, in `session` (no keep-alive games: one request).
void raw_mcp_post(raw_socket& sock, agentd_process& a, std::string const& session,
                  json::value const& message) {
    auto body = json::serialize(message);
    sock.send(
        fmt::format("POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
                    "Accept: application/json, text/event-stream\r\n"
                    "Content-Type: application/json\r\nMcp-Session-Id: {}\r\n"
                    "Content-Length: {}\r\n\r\n{}",
                    a.token(), session, body.size(), body));
}

// An initialize flood from the same principal evicts the flood's own sessions (never used for a
// tool), not a client's session at work.
TEST_F(agentd_test, McpSessionSurvivesAFloodOfInitializes) {
    restart_agentd({"--max-mcp-sessions", "8"});
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured("agents_start", start_args({"mine"}));
    for (int i = 0; i < 200; ++i) {
        mcp_client flood(*agentd_);
        json::object init{
            {"jsonrpc", "2.0"},
            {"id", 1},
            {"method", "initialize"},
            {"params",
             json::object{{"protocolVersion", "2025-11-25"},
                          {"capabilities", json::object{}},
                          {"clientInfo", json::object{{"name", "f"}, {"version", "1"}}}}}};
        ASSERT_EQ(flood.post(init).status, 200);
    }
    auto status = c.structured("agents_status", json::object{});
    EXPECT_EQ(jobs_of(status).size(), 1u);
    EXPECT_EQ(str(jobs_of(status)[0], "id"), str(jobs_of(started)[0], "id"));
}

// Busy sessions (a request in flight) are never evicted: at the cap with all busy, initialize
// gets 503 with Retry-After; once one is idle again, a new session takes its place.
TEST_F(agentd_test, McpAllSessionsBusyRefusesNewOnesWith503) {
    restart_agentd({"--max-mcp-sessions", "2"});
    mcp_client a(*agentd_);
    mcp_client b(*agentd_);
    a.initialize();
    b.initialize();
    // Each waits on a job of its own MCP session (another session's ids are not found, and
    // such a wait would end at once).
    auto started = a.structured("agents_start", start_args({"slow [[fake latency_ms=60000]]"}));
    auto started_b = b.structured("agents_start", start_args({"slow [[fake latency_ms=60000]]"}));
    auto ids = ids_of(jobs_of(started));
    auto ids_b = ids_of(jobs_of(started_b));
    json::object args{{"jobs", ids}, {"timeout_ms", 60'000}};
    json::object args_b{{"jobs", ids_b}, {"timeout_ms", 60'000}};
    raw_socket wait_a(agentd_->port());
    raw_socket wait_b(agentd_->port());
    raw_mcp_post(wait_a, *agentd_, a.session(), tool_call("wa", "agents_wait", args, "pa"));
    raw_mcp_post(wait_b, *agentd_, b.session(), tool_call("wb", "agents_wait", args_b, "pb"));
    // The SSE head is written once the request is registered in flight.
    ASSERT_TRUE(wait_a.readable_within(5s));
    ASSERT_TRUE(wait_b.readable_within(5s));

    mcp_client c(*agentd_);
    json::object init{
        {"jsonrpc", "2.0"},
        {"id", 1},
        {"method", "initialize"},
        {"params", json::object{{"protocolVersion", "2025-11-25"},
                                {"capabilities", json::object{}},
                                {"clientInfo", json::object{{"name", "c"}, {"version", "1"}}}}}};
    auto refused = c.post(init);
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_FALSE(refused.header("retry-after").empty());
    EXPECT_TRUE(refused.header("mcp-session-id").empty());
    EXPECT_EQ(a.post(json::object{{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}}).status, 200);

    // b's wait ends (cancelled by its client): b is idle, and may make room.
    b.post(notification("notifications/cancelled", json::object{{"requestId", "wb"}}));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    http_response accepted;
    do {
        accepted = c.post(init);  // the cancellation settles asynchronously: retry briefly
    } while (accepted.status == 503 && std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(accepted.status, 200) << accepted.body;
    EXPECT_EQ(b.post(json::object{{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}}).status, 404);
    EXPECT_EQ(a.post(json::object{{"jsonrpc", "2.0"}, {"id", 9}, {"method", "ping"}}).status, 200);
    a.structured("agents_cancel", json::object{{"jobs", ids}});
}

// Outputs past --max-response-bytes come back as output_omitted, and a large tool result is in
// structuredContent only (its text says so) rather than twice.
TEST_F(agentd_test, McpLargeResultsAreBoundedAndSentOnce) {
    restart_agentd({"--max-response-bytes", "300000"});
    mcp_client c(*agentd_);
    c.initialize();
    auto started = c.structured("agents_start", start_args({"a [[fake output_bytes=200000]]",
                                                            "b [[fake output_bytes=200000]]"}));
    auto ids = ids_of(jobs_of(started));
    json::object args{{"jobs", ids}, {"timeout_ms", 10'000}};
    auto r = c.post(tool_call(5, "agents_wait", args));
    ASSERT_EQ(r.status, 200);
    EXPECT_LT(r.body.size(), 300'000u + 10'000u);
    auto result = json::parse(r.body).at("result").as_object();
    auto const& jobs = result.at("structuredContent").at("jobs").as_array();
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(jobs[0].at("output").as_string().size(), 200'000u);
    EXPECT_TRUE(jobs[1].at("output_omitted").as_bool());
    EXPECT_FALSE(jobs[1].as_object().contains("output"));
    auto const& text = result.at("content").at(0).at("text").as_string();
    EXPECT_NE(std::string_view(text).find("structuredContent"), std::string_view::npos);
    // One at a time, each fits.
    auto alone = c.call("agents_status", json::object{{"jobs", json::array{ids.as_array()[1]}}});
    EXPECT_EQ(alone.at("structuredContent").at("jobs").at(0).at("output").as_string().size(),
              200'000u);
}

}  // namespace
}  // namespace agentd::test
