// Unit tests of the protocol layer: the JSON-RPC 2.0 codec (ids, notifications, batches, malformed
// elements, depth and batch limits, response shapes), the validation of every field of the five
// agents_* params with the exact error code and data.field, and the JobView JSON (omitted
// optional fields, times, elapsed_ms).
#include "protocol/errors.hpp"
#include "protocol/job_view.hpp"
#include "protocol/json_text.hpp"
#include "protocol/params.hpp"
#include "protocol/rpc.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

namespace agentd::protocol {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

json::value js(std::string_view text) {
    return json::parse(text);
}

int code_of(rpc_error const& e) {
    return static_cast<int>(e.code);
}

// The data.field of an invalid-params error ("" when the error has no such field).
std::string field_of(rpc_error const& e) {
    if (!e.data.is_object()) return "";
    auto const* f = e.data.get_object().if_contains("field");
    return f && f->is_string() ? std::string(f->get_string()) : "";
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC codec
// ---------------------------------------------------------------------------------------------

message parse_ok(std::string_view body, codec_limits const& limits = {}) {
    auto m = parse_message(body, limits);
    EXPECT_TRUE(m.has_value()) << body;
    return m ? *m : message{};
}

TEST(rpc_codec, single_request_with_number_id) {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":7,"method":"agents_status","params":{"a":1}})");
    EXPECT_FALSE(m.is_batch);
    ASSERT_EQ(m.elements.size(), 1u);
    auto const& el = m.elements[0];
    ASSERT_TRUE(el.req.has_value());
    ASSERT_TRUE(el.req->id.has_value());
    EXPECT_EQ(*el.req->id, json::value(7));
    EXPECT_EQ(el.req->method, "agents_status");
    EXPECT_EQ(el.req->params, js(R"({"a":1})"));
}

TEST(rpc_codec, string_id_and_array_params) {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":"abc","method":"m","params":[1,2]})");
    ASSERT_EQ(m.elements.size(), 1u);
    ASSERT_TRUE(m.elements[0].req.has_value());
    EXPECT_EQ(*m.elements[0].req->id, json::value("abc"));
    EXPECT_EQ(m.elements[0].req->params, js("[1,2]"));
}

TEST(rpc_codec, fractional_number_id_is_kept) {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":1.5,"method":"m"})");
    ASSERT_TRUE(m.elements[0].req.has_value());
    EXPECT_EQ(*m.elements[0].req->id, json::value(1.5));
}

TEST(rpc_codec, null_id_is_a_request_not_a_notification) {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":null,"method":"m"})");
    ASSERT_TRUE(m.elements[0].req.has_value());
    ASSERT_TRUE(m.elements[0].req->id.has_value());
    EXPECT_TRUE(m.elements[0].req->id->is_null());
}

TEST(rpc_codec, notification_has_no_id_and_params_default_to_null) {
    auto m = parse_ok(R"({"jsonrpc":"2.0","method":"notify"})");
    ASSERT_EQ(m.elements.size(), 1u);
    ASSERT_TRUE(m.elements[0].req.has_value());
    EXPECT_FALSE(m.elements[0].req->id.has_value());
    EXPECT_EQ(m.elements[0].req->method, "notify");
    EXPECT_TRUE(m.elements[0].req->params.is_null());
}

TEST(rpc_codec, invalid_id_types_are_invalid_request_with_null_id) {
    for (auto id : {"true", "{}", "[1]", R"({"x":1})"}) {
        auto body = std::string(R"({"jsonrpc":"2.0","method":"m","id":)") + id + "}";
        auto m = parse_ok(body);
        ASSERT_EQ(m.elements.size(), 1u) << body;
        auto const& el = m.elements[0];
        ASSERT_FALSE(el.req.has_value()) << body;
        EXPECT_EQ(el.req.error().code, error_code::invalid_request) << body;
        EXPECT_TRUE(el.error_id.is_null()) << body;
    }
}

TEST(rpc_codec, missing_or_wrong_jsonrpc_keeps_the_id) {
    for (auto body :
         {R"({"id":5,"method":"m"})", R"({"jsonrpc":"1.0","id":5,"method":"m"})",
          R"({"jsonrpc":2.0,"id":5,"method":"m"})", R"({"jsonrpc":null,"id":5,"method":"m"})"}) {
        auto m = parse_ok(body);
        auto const& el = m.elements[0];
        ASSERT_FALSE(el.req.has_value()) << body;
        EXPECT_EQ(el.req.error().code, error_code::invalid_request) << body;
        EXPECT_EQ(el.error_id, json::value(5)) << body;
    }
}

TEST(rpc_codec, method_missing_or_not_a_string) {
    for (auto body : {R"({"jsonrpc":"2.0","id":"q"})", R"({"jsonrpc":"2.0","id":"q","method":1})",
                      R"({"jsonrpc":"2.0","id":"q","method":null})",
                      R"({"jsonrpc":"2.0","id":"q","method":["m"]})"}) {
        auto m = parse_ok(body);
        auto const& el = m.elements[0];
        ASSERT_FALSE(el.req.has_value()) << body;
        EXPECT_EQ(el.req.error().code, error_code::invalid_request) << body;
        EXPECT_EQ(el.error_id, json::value("q")) << body;
    }
}

TEST(rpc_codec, scalar_or_null_params_are_invalid_request) {
    for (auto params : {"1", R"("x")", "true", "null"}) {
        auto body = std::string(R"({"jsonrpc":"2.0","id":3,"method":"m","params":)") + params + "}";
        auto m = parse_ok(body);
        auto const& el = m.elements[0];
        ASSERT_FALSE(el.req.has_value()) << body;
        EXPECT_EQ(code_of(el.req.error()), -32600) << body;
        EXPECT_EQ(el.error_id, json::value(3)) << body;
    }
}

TEST(rpc_codec, non_object_single_message_is_invalid_request) {
    for (auto body : {"1", R"("hello")", "null"}) {
        auto m = parse_ok(body);
        EXPECT_FALSE(m.is_batch);
        ASSERT_EQ(m.elements.size(), 1u);
        ASSERT_FALSE(m.elements[0].req.has_value()) << body;
        EXPECT_EQ(code_of(m.elements[0].req.error()), -32600);
        EXPECT_TRUE(m.elements[0].error_id.is_null());
    }
}

TEST(rpc_codec, unparsable_body_is_parse_error) {
    for (auto body : {"", "{", R"({"jsonrpc":"2.0","method":"m",})", "[1,2", "nul", "{} {}"}) {
        auto m = parse_message(body);
        ASSERT_FALSE(m.has_value()) << body;
        EXPECT_EQ(code_of(m.error()), -32700) << body;
    }
}

TEST(rpc_codec, invalid_utf8_is_parse_error) {
    auto m = parse_message("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\xff\"}");
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(code_of(m.error()), -32700);
}

TEST(rpc_codec, empty_batch_is_invalid_request) {
    auto m = parse_message("[]");
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(code_of(m.error()), -32600);
}

TEST(rpc_codec, batch_keeps_per_element_errors_and_recovered_ids) {
    auto m = parse_ok(R"([
        {"jsonrpc":"2.0","id":1,"method":"a"},
        1,
        {"jsonrpc":"2.0","id":"x"},
        {"id":5,"method":"b"},
        {"jsonrpc":"2.0","method":"note"},
        {"jsonrpc":"2.0","id":{"bad":1},"method":"c"},
        {"jsonrpc":"2.0","id":null,"method":"d","params":7}
    ])");
    EXPECT_TRUE(m.is_batch);
    ASSERT_EQ(m.elements.size(), 7u);

    ASSERT_TRUE(m.elements[0].req.has_value());
    EXPECT_EQ(m.elements[0].req->method, "a");
    EXPECT_EQ(*m.elements[0].req->id, json::value(1));

    ASSERT_FALSE(m.elements[1].req.has_value());
    EXPECT_EQ(code_of(m.elements[1].req.error()), -32600);
    EXPECT_TRUE(m.elements[1].error_id.is_null());

    ASSERT_FALSE(m.elements[2].req.has_value());
    EXPECT_EQ(code_of(m.elements[2].req.error()), -32600);
    EXPECT_EQ(m.elements[2].error_id, json::value("x"));

    ASSERT_FALSE(m.elements[3].req.has_value());
    EXPECT_EQ(m.elements[3].error_id, json::value(5));

    ASSERT_TRUE(m.elements[4].req.has_value());
    EXPECT_FALSE(m.elements[4].req->id.has_value());

    ASSERT_FALSE(m.elements[5].req.has_value());
    EXPECT_EQ(code_of(m.elements[5].req.error()), -32600);
    EXPECT_TRUE(m.elements[5].error_id.is_null());

    ASSERT_FALSE(m.elements[6].req.has_value());
    EXPECT_TRUE(m.elements[6].error_id.is_null());
}

TEST(rpc_codec, batch_of_one_invalid_element) {
    auto m = parse_ok("[1]");
    EXPECT_TRUE(m.is_batch);
    ASSERT_EQ(m.elements.size(), 1u);
    ASSERT_FALSE(m.elements[0].req.has_value());
    EXPECT_EQ(code_of(m.elements[0].req.error()), -32600);
}

std::string nested_arrays(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

TEST(rpc_codec, nesting_deeper_than_max_depth_is_parse_error) {
    codec_limits lim;
    lim.max_depth = 4;
    // depth 4 (the request object plus three arrays) is fine; 5 is not.
    auto ok = parse_message(
        R"({"jsonrpc":"2.0","id":1,"method":"m","params":)" + nested_arrays(3) + "}", lim);
    EXPECT_TRUE(ok.has_value());
    auto deep = parse_message(
        R"({"jsonrpc":"2.0","id":1,"method":"m","params":)" + nested_arrays(4) + "}", lim);
    ASSERT_FALSE(deep.has_value());
    EXPECT_EQ(code_of(deep.error()), -32700);

    // The default limit (32) also holds: a 10 000 deep document is refused, not recursed into.
    auto very_deep = parse_message(nested_arrays(10'000));
    ASSERT_FALSE(very_deep.has_value());
    EXPECT_EQ(code_of(very_deep.error()), -32700);
}

TEST(rpc_codec, batch_longer_than_max_batch_is_invalid_request) {
    codec_limits lim;
    lim.max_batch = 3;
    std::string el = R"({"jsonrpc":"2.0","id":1,"method":"m"})";
    auto three = parse_message("[" + el + "," + el + "," + el + "]", lim);
    ASSERT_TRUE(three.has_value());
    EXPECT_EQ(three->elements.size(), 3u);
    auto four = parse_message("[" + el + "," + el + "," + el + "," + el + "]", lim);
    ASSERT_FALSE(four.has_value());
    EXPECT_EQ(code_of(four.error()), -32600);
}

TEST(rpc_codec, make_result_shape) {
    auto r = make_result(json::value("id-1"), js(R"({"jobs":[]})"));
    EXPECT_EQ(r, js(R"({"jsonrpc":"2.0","id":"id-1","result":{"jobs":[]}})"));
    auto null_id = make_result(nullptr, json::value(true));
    EXPECT_EQ(null_id, js(R"({"jsonrpc":"2.0","id":null,"result":true})"));
}

TEST(rpc_codec, make_error_omits_null_data) {
    auto e = make_error(json::value(4), shutting_down());
    EXPECT_EQ(e,
              js(R"({"jsonrpc":"2.0","id":4,"error":{"code":-32003,"message":"Shutting down"}})"));
    EXPECT_FALSE(e.get_object().contains("result"));
}

TEST(rpc_codec, make_error_carries_data) {
    auto e = make_error(nullptr, invalid_params("tasks[0].prompt", "is required"));
    auto const& err = e.at("error").as_object();
    EXPECT_TRUE(e.at("id").is_null());
    EXPECT_EQ(err.at("code"), json::value(-32602));
    EXPECT_EQ(err.at("message"), json::value("Invalid params"));
    EXPECT_EQ(err.at("data"), js(R"({"field":"tasks[0].prompt","reason":"is required"})"));
    auto lim = make_error(json::value(1), queue_full(1025, 1024));
    EXPECT_EQ(lim.at("error").at("code"), json::value(-32001));
    EXPECT_EQ(lim.at("error").at("message"),
              json::value("Limit exceeded: admission queue full (max_queued 1024)"));
    EXPECT_EQ(lim.at("error").at("data"), js(R"({"limit":"max_queued","max":1024,"value":1025})"));
}

TEST(rpc_codec, error_constructors_use_the_documented_codes) {
    EXPECT_EQ(code_of(parse_error("x")), -32700);
    EXPECT_EQ(code_of(invalid_request("x")), -32600);
    EXPECT_EQ(code_of(method_not_found("m")), -32601);
    EXPECT_EQ(method_not_found("m").data, js(R"({"method":"m"})"));
    EXPECT_EQ(code_of(invalid_params("f", "r")), -32602);
    EXPECT_EQ(code_of(internal_error()), -32603);
    EXPECT_TRUE(internal_error().data.is_null());
    EXPECT_EQ(code_of(too_deep(3, 2)), -32001);
    EXPECT_EQ(too_deep(3, 2).message, "Limit exceeded: depth 3 > max_depth 2");
    EXPECT_EQ(too_deep(3, 2).data, js(R"({"limit":"max_depth","max":2,"value":3})"));
    EXPECT_EQ(code_of(approval_error("denied")), -32002);
    EXPECT_EQ(code_of(shutting_down()), -32003);
}

TEST(rpc_codec, result_value_on_error_throws) {
    result<int> r = invalid_params("f", "r");
    EXPECT_THROW((void)r.value(), std::runtime_error);
}

// ---------------------------------------------------------------------------------------------
// Params
// ---------------------------------------------------------------------------------------------

// Asserts `r` is an error with `code` and (for -32602) data.field == field.
template <class T>
void expect_error(result<T> const& r, int code, std::string_view field, std::string_view what) {
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(code_of(r.error()), code) << what;
    if (code == -32602) {
        EXPECT_EQ(field_of(r.error()), field) << what;
        EXPECT_EQ(r.error().message, "Invalid params");
        ASSERT_TRUE(r.error().data.is_object());
        EXPECT_TRUE(r.error().data.get_object().contains("reason")) << what;
    }
}

template <class T>
void expect_invalid(result<T> const& r, std::string_view field, std::string_view what = "") {
    expect_error(r, -32602, field, what);
}

result<start_params> start(std::string_view params, param_limits lim = {}) {
    return parse_start(js(params), lim);
}

// A start request with one task whose fields are `task_fields` (JSON object members).
result<start_params> start_task(std::string_view task_fields) {
    return start(std::string(R"({"tasks":[{)") + std::string(task_fields) + "}]}");
}

TEST(params_start, minimal_task_gets_defaults) {
    auto p = start(R"({"tasks":[{"prompt":"hello"}]})");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->session, std::nullopt);  // absent: the caller's default applies later
    ASSERT_EQ(p->tasks.size(), 1u);
    auto const& t = p->tasks[0];
    EXPECT_EQ(t.prompt, "hello");
    EXPECT_EQ(t.description, "");
    EXPECT_FALSE(t.agent);
    EXPECT_FALSE(t.model);
    EXPECT_FALSE(t.system);
    EXPECT_FALSE(t.directory);
    EXPECT_FALSE(t.timeout_ms);
    EXPECT_FALSE(p->upstream_parent);
}

TEST(params_start, every_field_is_read) {
    auto p = start(R"({"session":"chat-1.a:b_c","upstream_parent":"ses_ABC-123",
        "tasks":[{"prompt":"p0","description":"d0","agent":"build","model":"anthropic/claude-x",
                  "system":"sys","directory":"/tmp/w","timeout_ms":1234},
                 {"prompt":"p1"}]})");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->session, "chat-1.a:b_c");
    EXPECT_EQ(p->upstream_parent, "ses_ABC-123");
    ASSERT_EQ(p->tasks.size(), 2u);
    auto const& t = p->tasks[0];
    EXPECT_EQ(t.prompt, "p0");
    EXPECT_EQ(t.description, "d0");
    EXPECT_EQ(t.agent, "build");
    EXPECT_EQ(t.model, "anthropic/claude-x");
    EXPECT_EQ(t.system, "sys");
    EXPECT_EQ(t.directory, "/tmp/w");
    EXPECT_EQ(t.timeout_ms, 1234);
    EXPECT_EQ(p->tasks[1].prompt, "p1");
}

TEST(params_start, budget_is_read) {
    auto p = start_task(R"("prompt":"x","budget":{"max_cost":0.5,"max_tokens":1000})");
    ASSERT_TRUE(p.has_value());
    ASSERT_TRUE(p->tasks[0].budget);
    EXPECT_EQ(p->tasks[0].budget->max_cost, 0.5);
    EXPECT_EQ(p->tasks[0].budget->max_tokens, 1000);
    auto zero = start_task(R"("prompt":"x","budget":{"max_cost":0})");
    ASSERT_TRUE(zero.has_value());
    EXPECT_EQ(zero->tasks[0].budget->max_cost, 0.0);
    EXPECT_FALSE(zero->tasks[0].budget->max_tokens);
    auto absent = start_task(R"("prompt":"x","budget":null)");
    ASSERT_TRUE(absent.has_value());
    EXPECT_FALSE(absent->tasks[0].budget);
}

TEST(params_start, bad_budget_names_the_field) {
    expect_invalid(start_task(R"("prompt":"x","budget":5)"), "tasks[0].budget");
    expect_invalid(start_task(R"("prompt":"x","budget":{})"), "tasks[0].budget");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_cost":-0.01})"),
                   "tasks[0].budget.max_cost");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_cost":"1"})"),
                   "tasks[0].budget.max_cost");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_tokens":0})"),
                   "tasks[0].budget.max_tokens");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_tokens":1.5})"),
                   "tasks[0].budget.max_tokens");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_tokens":18446744073709551615})"),
                   "tasks[0].budget.max_tokens");
    expect_invalid(start_task(R"("prompt":"x","budget":{"max_cost":1,"maxcost":2})"),
                   "tasks[0].budget.maxcost");
}

TEST(params_start, isolation_worktree_is_read) {
    auto p = start_task(R"("prompt":"x","isolation":"worktree")");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->tasks[0].isolation, isolation_mode::worktree);
    EXPECT_FALSE(start_task(R"("prompt":"x")")->tasks[0].isolation);
    EXPECT_FALSE(start_task(R"("prompt":"x","isolation":null)")->tasks[0].isolation);
}

TEST(params_start, bad_isolation_names_the_field) {
    for (auto bad : {R"("container")", R"("")", R"("Worktree")", "1", "true", "{}"})
        expect_invalid(start_task(std::string(R"("prompt":"x","isolation":)") + bad),
                       "tasks[0].isolation", bad);
    expect_invalid(start(R"({"tasks":[{"prompt":"x"},{"prompt":"y","isolation":"vm"}]})"),
                   "tasks[1].isolation");
}

TEST(params_peek, diff_is_an_optional_boolean) {
    EXPECT_FALSE(parse_peek(js(R"({"job":"j"})"))->diff);
    EXPECT_TRUE(parse_peek(js(R"({"job":"j","diff":true})"))->diff);
    EXPECT_FALSE(parse_peek(js(R"({"job":"j","diff":false})"))->diff);
    expect_invalid(parse_peek(js(R"({"job":"j","diff":"yes"})")), "diff");
    expect_invalid(parse_peek(js(R"({"job":"j","diff":1})")), "diff");
}

TEST(params_worktree_remove, job_is_required) {
    auto p = parse_worktree_remove(js(R"({"session":"s","job":"job_1"})"));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->job, "job_1");
    EXPECT_EQ(p->session, "s");
    expect_invalid(parse_worktree_remove(js("{}")), "job");
    expect_invalid(parse_worktree_remove(js(R"({"job":""})")), "job");
    expect_invalid(parse_worktree_remove(js(R"({"job":"j","force":true})")), "force");
}

TEST(job_view_json, worktree_and_diff_summary_are_shown_when_set) {
    job_view v;
    v.id = "job_1";
    auto plain = to_json(v, {}).as_object();
    EXPECT_FALSE(plain.contains("worktree"));
    EXPECT_FALSE(plain.contains("diff_summary"));
    v.worktree = worktree_ref{"/wt/a", "opencode/a"};
    v.diff_summary = summarize({{"a.txt", "modified", 2, 1, "p"}, {"b.txt", "added", 3, 0, "q"}});
    auto o = to_json(v, {}).as_object();
    EXPECT_EQ(o.at("worktree"),
              (boost::json::value{{"directory", "/wt/a"}, {"branch", "opencode/a"}}));
    EXPECT_EQ(o.at("diff_summary"),
              (boost::json::value{{"files", 2}, {"additions", 5}, {"deletions", 1}}));
    v.worktree->branch.reset();
    EXPECT_FALSE(to_json(v, {}).at("worktree").as_object().contains("branch"));
}

TEST(params_start, null_fields_count_as_absent) {
    auto p = start(
        R"({"upstream_parent":null,"tasks":[{"prompt":"x","agent":null,"model":null,
            "timeout_ms":null,"description":null}]})");
    ASSERT_TRUE(p.has_value());
    EXPECT_FALSE(p->upstream_parent);
    EXPECT_FALSE(p->tasks[0].agent);
    EXPECT_FALSE(p->tasks[0].model);
    EXPECT_FALSE(p->tasks[0].timeout_ms);
}

TEST(params_start, params_must_be_an_object) {
    expect_invalid(parse_start(js("[1]"), {}), "params");
    expect_invalid(parse_start(js(R"("x")"), {}), "params");
    expect_invalid(parse_start(js("3"), {}), "params");
    // null params means {}: then `tasks` is what is missing.
    expect_invalid(parse_start(nullptr, {}), "tasks");
}

TEST(params_start, unknown_keys_are_rejected) {
    expect_invalid(start(R"({"tasks":[{"prompt":"x"}],"task":1})"), "task");
    expect_invalid(start(R"({"tasks":[{"prompt":"x"}],"Session":"a"})"), "Session");
    expect_invalid(start(R"({"tasks":[{"prompt":"x"},{"prompt":"y","promt":"z"}]})"),
                   "tasks[1].promt");
    expect_invalid(start_task(R"("prompt":"x","timeout":5)"), "tasks[0].timeout");
}

TEST(params_start, tasks_required_array_nonempty) {
    expect_invalid(start(R"({})"), "tasks");
    expect_invalid(start(R"({"tasks":null})"), "tasks");
    expect_invalid(start(R"({"tasks":{"prompt":"x"}})"), "tasks");
    expect_invalid(start(R"({"tasks":"x"})"), "tasks");
    expect_invalid(start(R"({"tasks":[]})"), "tasks");
    expect_invalid(start(R"({"tasks":[{"prompt":"x"},"y"]})"), "tasks[1]");
    expect_invalid(start(R"({"tasks":[{"prompt":"x"},{"prompt":"y"},null]})"), "tasks[2]");
}

std::string n_tasks(std::size_t n) {
    std::string s = R"({"tasks":[)";
    for (std::size_t i = 0; i < n; ++i) s += (i ? "," : "") + std::string(R"({"prompt":"p"})");
    return s + "]}";
}

TEST(params_start, too_many_tasks_is_limit_exceeded) {
    EXPECT_TRUE(start(n_tasks(8)).has_value());
    auto r = start(n_tasks(9));
    expect_error(r, -32001, "", "9 tasks");
    ASSERT_TRUE(r.error().data.is_object());
    EXPECT_EQ(r.error().data.at("limit"), json::value("max_tasks"));
    EXPECT_EQ(r.error().data.at("max"), json::value(8));
    EXPECT_EQ(r.error().data.at("value"), json::value(9));
    EXPECT_EQ(r.error().message, "Limit exceeded: 9 tasks > max_tasks_per_call 8");

    param_limits two{2};
    EXPECT_TRUE(start(n_tasks(2), two).has_value());
    auto r3 = start(n_tasks(3), two);
    expect_error(r3, -32001, "", "3 tasks, limit 2");
    EXPECT_EQ(r3.error().data.at("max"), json::value(2));
    EXPECT_EQ(r3.error().message, "Limit exceeded: 3 tasks > max_tasks_per_call 2");
}

TEST(params_start, prompt_required_nonempty_string_bounded) {
    expect_invalid(start(R"({"tasks":[{"prompt":"a"},{"description":"no prompt"}]})"),
                   "tasks[1].prompt");
    expect_invalid(start_task(R"("prompt":"")"), "tasks[0].prompt");
    expect_invalid(start_task(R"("prompt":5)"), "tasks[0].prompt");
    expect_invalid(start_task(R"("prompt":["a"])"), "tasks[0].prompt");
    std::string max(512 * 1024, 'a');
    EXPECT_TRUE(start_task(R"("prompt":")" + max + "\"").has_value());
    expect_invalid(start_task(R"("prompt":")" + max + "a\""), "tasks[0].prompt");
}

TEST(params_start, description) {
    auto empty = start_task(R"("prompt":"x","description":"")");
    ASSERT_TRUE(empty.has_value());
    EXPECT_EQ(empty->tasks[0].description, "");
    expect_invalid(start_task(R"("prompt":"x","description":1)"), "tasks[0].description");
    std::string big(1025, 'd');
    expect_invalid(start_task(R"("prompt":"x","description":")" + big + "\""),
                   "tasks[0].description");
    EXPECT_TRUE(start_task(R"("prompt":"x","description":")" + big.substr(1) + "\"").has_value());
}

TEST(params_start, agent) {
    EXPECT_EQ(start_task(R"("prompt":"x","agent":"plan")")->tasks[0].agent, "plan");
    expect_invalid(start_task(R"("prompt":"x","agent":"")"), "tasks[0].agent");
    expect_invalid(start_task(R"("prompt":"x","agent":true)"), "tasks[0].agent");
    expect_invalid(start_task(R"("prompt":"x","agent":")" + std::string(1025, 'a') + "\""),
                   "tasks[0].agent");
}

TEST(params_start, model_must_be_provider_slash_model) {
    for (auto ok : {"openai/gpt-4o", "a/b", "openrouter/meta/llama"}) {
        auto p = start_task(std::string(R"("prompt":"x","model":")") + ok + "\"");
        ASSERT_TRUE(p.has_value()) << ok;
        EXPECT_EQ(p->tasks[0].model, ok);
    }
    for (auto bad : {"gpt-4o", "/gpt", "openai/", "/", ""}) {
        expect_invalid(start_task(std::string(R"("prompt":"x","model":")") + bad + "\""),
                       "tasks[0].model", bad);
    }
    expect_invalid(start_task(R"("prompt":"x","model":{"providerID":"a","modelID":"b"})"),
                   "tasks[0].model");
}

TEST(params_start, system) {
    auto p = start_task(R"("prompt":"x","system":"")");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->tasks[0].system, "");
    expect_invalid(start_task(R"("prompt":"x","system":[])"), "tasks[0].system");
    expect_invalid(
        start_task(R"("prompt":"x","system":")" + std::string(256 * 1024 + 1, 's') + "\""),
        "tasks[0].system");
}

TEST(params_start, directory) {
    EXPECT_EQ(start_task(R"("prompt":"x","directory":"/w")")->tasks[0].directory, "/w");
    expect_invalid(start_task(R"("prompt":"x","directory":"")"), "tasks[0].directory");
    expect_invalid(start_task(R"("prompt":"x","directory":1)"), "tasks[0].directory");
    expect_invalid(start_task(R"("prompt":"x","directory":")" + std::string(4097, 'd') + "\""),
                   "tasks[0].directory");
}

// DESIGN §2 `continue`: a job id; the follow-up runs where its job ran, so no directory.
TEST(params_start, continue_names_a_job_and_excludes_directory) {
    auto p = start_task(R"("prompt":"x","continue":"job_0123","system":"s","agent":"a")");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->tasks[0].continues, "job_0123");
    EXPECT_FALSE(start_task(R"("prompt":"x")")->tasks[0].continues);
    EXPECT_FALSE(start_task(R"("prompt":"x","continue":null)")->tasks[0].continues);
    expect_invalid(start_task(R"("prompt":"x","continue":"")"), "tasks[0].continue");
    expect_invalid(start_task(R"("prompt":"x","continue":7)"), "tasks[0].continue");
    expect_invalid(start_task(R"("prompt":"x","continue":")" + std::string(257, 'j') + "\""),
                   "tasks[0].continue");
    auto both =
        start(R"({"tasks":[{"prompt":"x"},{"prompt":"y","continue":"job_1","directory":"/w"}]})");
    expect_invalid(both, "tasks[1].directory");
    ASSERT_FALSE(both.has_value());
    EXPECT_EQ(both.error().data.at("reason"), json::value("not allowed with continue"));
}

TEST(params_start, task_timeout_range) {
    EXPECT_EQ(start_task(R"("prompt":"x","timeout_ms":1)")->tasks[0].timeout_ms, 1);
    auto max = std::to_string(max_task_timeout_ms);
    EXPECT_EQ(start_task(R"("prompt":"x","timeout_ms":)" + max)->tasks[0].timeout_ms,
              max_task_timeout_ms);
    auto over = std::to_string(max_task_timeout_ms + 1);
    for (std::string bad :
         {std::string("0"), std::string("-1"), over, std::string("1.5"), std::string("\"100\""),
          std::string("true"), std::string("18446744073709551615")}) {
        expect_invalid(start_task(R"("prompt":"x","timeout_ms":)" + bad), "tasks[0].timeout_ms",
                       bad);
    }
}

TEST(params_start, field_path_names_the_failing_task) {
    expect_invalid(start(R"({"tasks":[{"prompt":"a"},{"prompt":"b","model":"x"}]})"),
                   "tasks[1].model");
    expect_invalid(start(R"({"tasks":[{"prompt":"a"},{"prompt":"b"},{"prompt":"c","agent":""}]})"),
                   "tasks[2].agent");
}

TEST(params_start, session_name_rules) {
    auto ok128 = std::string(128, 'a');
    for (std::string ok : {std::string("default"), std::string("A-z_0.9:x"), ok128}) {
        auto p = start(R"({"session":")" + ok + R"(","tasks":[{"prompt":"x"}]})");
        ASSERT_TRUE(p.has_value()) << ok;
        EXPECT_EQ(p->session, ok);
    }
    for (std::string bad : {std::string(R"("")"), std::string(R"("a b")"), std::string(R"("a/b")"),
                            std::string(R"("é")"), std::string("1"), std::string("[]"),
                            std::string("null"), "\"" + std::string(129, 'a') + "\""}) {
        expect_invalid(start(R"({"session":)" + bad + R"(,"tasks":[{"prompt":"x"}]})"), "session",
                       bad);
    }
    EXPECT_TRUE(valid_session_name("x"));
    EXPECT_FALSE(valid_session_name(""));
    // null is not "absent" for session (DESIGN §2): every method refuses it.
    expect_invalid(parse_status(js(R"({"session":null})")), "session");
    expect_invalid(parse_wait(js(R"({"session":null})")), "session");
    expect_invalid(parse_cancel(js(R"({"session":null,"jobs":["j"]})")), "session");
    expect_invalid(parse_peek(js(R"({"session":null,"job":"j"})")), "session");
    expect_invalid(parse_subscribe(js(R"({"session":null})")), "session");
    EXPECT_FALSE(valid_session_name(std::string_view("a\0b", 3)));
}

TEST(params_start, upstream_parent_must_look_like_an_upstream_session) {
    for (auto ok : {"ses_1", "sesABC", "ses-x_y"}) {
        auto p =
            start(std::string(R"({"upstream_parent":")") + ok + R"(","tasks":[{"prompt":"x"}]})");
        ASSERT_TRUE(p.has_value()) << ok;
        EXPECT_EQ(p->upstream_parent, ok);
    }
    for (std::string bad :
         {std::string(R"("ses")"), std::string(R"("abc_1")"), std::string(R"("ses_a/b")"),
          std::string(R"("ses a")"), std::string(R"("")"), std::string("12"),
          "\"ses" + std::string(126, 'a') + "\""}) {
        expect_invalid(start(R"({"upstream_parent":)" + bad + R"(,"tasks":[{"prompt":"x"}]})"),
                       "upstream_parent", bad);
    }
}

TEST(params_status, defaults_and_ids) {
    auto none = parse_status(nullptr);
    ASSERT_TRUE(none.has_value());
    EXPECT_EQ(none->session, std::nullopt);
    EXPECT_FALSE(none->jobs.has_value());

    auto empty_obj = parse_status(js("{}"));
    ASSERT_TRUE(empty_obj.has_value());
    EXPECT_FALSE(empty_obj->jobs.has_value());

    auto empty = parse_status(js(R"({"jobs":[]})"));
    ASSERT_TRUE(empty.has_value());
    ASSERT_TRUE(empty->jobs.has_value());
    EXPECT_TRUE(empty->jobs->empty());

    auto two = parse_status(js(R"({"session":"s1","jobs":["job_a","job_b"]})"));
    ASSERT_TRUE(two.has_value());
    EXPECT_EQ(two->session, "s1");
    EXPECT_EQ(*two->jobs, (std::vector<std::string>{"job_a", "job_b"}));
}

TEST(params_status, invalid_fields) {
    expect_invalid(parse_status(js("[]")), "params");
    expect_invalid(parse_status(js(R"({"job":["a"]})")), "job");
    expect_invalid(parse_status(js(R"({"session":"a b"})")), "session");
    expect_invalid(parse_status(js(R"({"jobs":"job_a"})")), "jobs");
    expect_invalid(parse_status(js(R"({"jobs":[1]})")), "jobs[0]");
    expect_invalid(parse_status(js(R"({"jobs":["a","b",null]})")), "jobs[2]");
    expect_invalid(parse_status(js(R"({"jobs":["a",{"id":"b"}]})")), "jobs[1]");
    expect_invalid(parse_status(js(R"({"jobs":[")" + std::string(257, 'j') + "\"]}")), "jobs[0]");
    EXPECT_TRUE(parse_status(js(R"({"jobs":[")" + std::string(256, 'j') + "\"]}")).has_value());
}

TEST(params_status, id_count_is_bounded) {
    json::array ids;
    for (std::size_t i = 0; i < max_job_ids; ++i) ids.push_back(json::value("job"));
    EXPECT_TRUE(parse_status(json::object{{"jobs", ids}}).has_value());
    ids.push_back(json::value("job"));
    expect_invalid(parse_status(json::object{{"jobs", ids}}), "jobs");
}

TEST(params_wait, defaults) {
    for (auto const& params : {json::value(nullptr), js("{}")}) {
        auto p = parse_wait(params);
        ASSERT_TRUE(p.has_value());
        EXPECT_EQ(p->session, std::nullopt);
        EXPECT_FALSE(p->jobs.has_value());
        EXPECT_EQ(p->mode, wait_mode::all);
        EXPECT_EQ(p->timeout_ms, 30'000);
    }
}

TEST(params_wait, every_field) {
    auto p = parse_wait(js(R"({"session":"s","jobs":["j1"],"mode":"any","timeout_ms":0})"));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->session, "s");
    EXPECT_EQ(*p->jobs, std::vector<std::string>{"j1"});
    EXPECT_EQ(p->mode, wait_mode::any);
    EXPECT_EQ(p->timeout_ms, 0);
    auto all = parse_wait(js(R"({"mode":"all","timeout_ms":3600000})"));
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(all->mode, wait_mode::all);
    EXPECT_EQ(all->timeout_ms, 3'600'000);
}

TEST(params_wait, invalid_fields) {
    for (auto mode : {R"("some")", R"("")", R"("ALL")", "1", R"("anyany-long")", "[]"}) {
        expect_invalid(parse_wait(js(std::string(R"({"mode":)") + mode + "}")), "mode", mode);
    }
    for (auto t : {"-1", "3600001", "1.5", R"("10")", "false"}) {
        expect_invalid(parse_wait(js(std::string(R"({"timeout_ms":)") + t + "}")), "timeout_ms", t);
    }
    expect_invalid(parse_wait(js(R"({"jobs":[1]})")), "jobs[0]");
    expect_invalid(parse_wait(js(R"({"jobs":{}})")), "jobs");
    expect_invalid(parse_wait(js(R"({"session":""})")), "session");
    expect_invalid(parse_wait(js(R"({"timeout":5})")), "timeout");
    expect_invalid(parse_wait(js(R"("x")")), "params");
}

TEST(params_cancel, jobs_required) {
    auto p = parse_cancel(js(R"({"session":"s","jobs":["a","b"]})"));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->session, "s");
    EXPECT_EQ(p->jobs, (std::vector<std::string>{"a", "b"}));
    auto d = parse_cancel(js(R"({"jobs":["a"]})"));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->session, std::nullopt);

    expect_invalid(parse_cancel(nullptr), "jobs");
    expect_invalid(parse_cancel(js("{}")), "jobs");
    expect_invalid(parse_cancel(js(R"({"jobs":null})")), "jobs");
    expect_invalid(parse_cancel(js(R"({"jobs":"a"})")), "jobs");
    expect_invalid(parse_cancel(js(R"({"jobs":["a","b",3]})")), "jobs[2]");
    expect_invalid(parse_cancel(js(R"({"jobs":["a"],"mode":"all"})")), "mode");
    expect_invalid(parse_cancel(js(R"({"jobs":["a"],"session":5})")), "session");
    expect_invalid(parse_cancel(js("[]")), "params");
}

TEST(params_peek, job_required) {
    auto p = parse_peek(js(R"({"session":"s","job":"job_1"})"));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->session, "s");
    EXPECT_EQ(p->job, "job_1");
    EXPECT_EQ(parse_peek(js(R"({"job":"j"})"))->session, std::nullopt);

    expect_invalid(parse_peek(nullptr), "job");
    expect_invalid(parse_peek(js(R"({"job":""})")), "job");
    expect_invalid(parse_peek(js(R"({"job":1})")), "job");
    expect_invalid(parse_peek(js(R"({"job":["a"]})")), "job");
    expect_invalid(parse_peek(js(R"({"job":")" + std::string(257, 'j') + "\"}")), "job");
    expect_invalid(parse_peek(js(R"({"jobs":["a"]})")), "jobs");
    expect_invalid(parse_peek(js(R"({"job":"a","session":"x y"})")), "session");
    expect_invalid(parse_peek(js("1")), "params");
}

TEST(params_subscribe, a_session_or_all_and_an_optional_snapshot) {
    auto all = parse_subscribe(js(R"({"all":true,"snapshot":true})"));
    ASSERT_TRUE(all.has_value());
    EXPECT_TRUE(all->all);
    EXPECT_TRUE(all->snapshot);
    EXPECT_FALSE(all->session.has_value());
    auto one = parse_subscribe(js(R"({"session":"s"})"));
    ASSERT_TRUE(one.has_value());
    EXPECT_EQ(one->session, "s");
    EXPECT_FALSE(one->snapshot);

    expect_invalid(parse_subscribe(nullptr), "session");
    expect_invalid(parse_subscribe(js(R"({"all":true,"session":"s"})")), "session");
    expect_invalid(parse_subscribe(js(R"({"all":true,"snapshot":1})")), "snapshot");
    expect_invalid(parse_subscribe(js(R"({"all":"yes"})")), "all");
    expect_invalid(parse_subscribe(js(R"({"all":true,"jobs":[]})")), "jobs");
}

// ---------------------------------------------------------------------------------------------
// JobView
// ---------------------------------------------------------------------------------------------

wall_time at(int y, unsigned mo, unsigned d, int h, int mi, int s, int ms) {
    using namespace std::chrono;
    return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
           milliseconds{ms};
}

std::set<std::string> keys_of(json::value const& v) {
    std::set<std::string> out;
    for (auto const& kv : v.as_object()) out.emplace(kv.key());
    return out;
}

// A view's times as they go on the wire (created_at is rendered like every other time).
std::string format_time(wall_time t) {
    job_view v;
    v.created_at = t;
    return std::string(to_json(v, t).at("created_at").as_string());
}

// agentd keeps a finished job's status text while its view compares equal: every field counts,
// and outputs compare by content, not by which copy holds them.
TEST(job_view_json, views_are_equal_only_when_every_field_is) {
    job_view a;
    a.id = "job_1";
    a.state = job_state::completed;
    a.output = std::string("out");
    a.usage = job_usage{1, 2, 0.5};
    auto b = a;
    EXPECT_EQ(a, b);
    b.output = std::string("out");  // another copy of the same text
    EXPECT_EQ(a, b);
    EXPECT_TRUE(a.output == "out");
    b.output = std::string("other");
    EXPECT_NE(a, b);
    b = a;
    b.worktree = worktree_ref{"/tmp/w", std::nullopt};
    EXPECT_NE(a, b);
    b = a;
    b.usage->cost = 0.25;
    EXPECT_NE(a, b);
    b = a;
    b.answered.push_back(answered_request{});
    EXPECT_NE(a, b);
    b = a;
    b.output.reset();
    EXPECT_NE(a, b);
}

// to_json() is charge() and then to_json_charged(): the same text and the same budget left.
TEST(job_view_json, charge_then_render_is_to_json) {
    job_view v;
    v.id = "job_1";
    v.state = job_state::completed;
    v.output = std::string(100, 'x');
    for (std::size_t bytes : {50u, 500u, 5000u}) {
        response_budget one(bytes), two(bytes);
        auto whole = to_json(v, {}, {}, &one);
        bool fits = charge(v, two);
        EXPECT_EQ(boost::json::serialize(whole),
                  boost::json::serialize(to_json_charged(v, {}, {}, fits)));
        EXPECT_EQ(one.take(1), two.take(1));
    }
}

TEST(job_view_json, format_time_is_iso8601_utc_with_millis) {
    EXPECT_EQ(format_time(at(2026, 11, 22, 5, 17, 51, 123)), "2026-11-22T05:17:51.123Z");
    EXPECT_EQ(format_time(at(2026, 1, 2, 3, 4, 5, 0)), "2026-01-02T03:04:05.000Z");
    EXPECT_EQ(format_time(at(1999, 12, 31, 23, 59, 59, 9)), "1999-12-31T23:59:59.009Z");
    EXPECT_EQ(format_time(wall_time{}), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_time(at(2024, 2, 29, 23, 59, 59, 999)), "2024-02-29T23:59:59.999Z");
    EXPECT_EQ(format_time(at(2024, 2, 29, 23, 59, 59, 999) + std::chrono::milliseconds(1)),
              "2024-03-01T00:00:00.000Z");
    EXPECT_EQ(format_time(at(2100, 12, 31, 12, 0, 0, 10)), "2100-12-31T12:00:00.010Z");
    // Sub-millisecond parts are truncated, not rounded up into the next second.
    EXPECT_EQ(format_time(at(2026, 11, 22, 5, 17, 51, 999) + std::chrono::microseconds(900)),
              "2026-11-22T05:17:51.999Z");
}

TEST(job_view_json, queued_job_omits_unknown_fields) {
    job_view v;
    v.id = "job_0123";
    v.created_at = at(2026, 3, 4, 5, 6, 7, 8);
    auto j = to_json(v, at(2026, 3, 4, 6, 0, 0, 0));
    EXPECT_EQ(keys_of(j), (std::set<std::string>{"id", "state", "created_at", "depth"}));
    EXPECT_EQ(j.at("id"), json::value("job_0123"));
    EXPECT_EQ(j.at("state"), json::value("queued"));
    EXPECT_EQ(j.at("created_at"), json::value("2026-03-04T05:06:07.008Z"));
    EXPECT_EQ(j.at("depth"), json::value(1));
}

TEST(job_view_json, continues_is_shown_only_when_set) {
    job_view v;
    v.id = "job_f";
    EXPECT_FALSE(to_json(v, {}).as_object().contains("continues"));
    v.continues = "job_0";
    EXPECT_EQ(to_json(v, {}).at("continues"), json::value("job_0"));
}

TEST(job_view_json, running_job_elapsed_is_measured_to_now) {
    job_view v;
    v.id = "job_r";
    v.description = "scan the repo";
    v.state = job_state::running;
    v.depth = 2;
    v.created_at = at(2026, 3, 4, 5, 6, 7, 0);
    v.started_at = at(2026, 3, 4, 5, 6, 7, 500);
    v.upstream = upstream_ref{"opencode", "ses_42"};
    auto j = to_json(v, *v.started_at + 1234ms);
    EXPECT_EQ(keys_of(j), (std::set<std::string>{"id", "description", "state", "created_at",
                                                 "started_at", "elapsed_ms", "depth", "upstream"}));
    EXPECT_EQ(j.at("description"), json::value("scan the repo"));
    EXPECT_EQ(j.at("state"), json::value("running"));
    EXPECT_EQ(j.at("started_at"), json::value("2026-03-04T05:06:07.500Z"));
    EXPECT_EQ(j.at("elapsed_ms"), json::value(1234));
    EXPECT_EQ(j.at("depth"), json::value(2));
    EXPECT_EQ(j.at("upstream"), js(R"({"backend":"opencode","session":"ses_42"})"));
    // A clock that steps back never gives a negative elapsed time.
    EXPECT_EQ(to_json(v, *v.started_at - 5s).at("elapsed_ms"), json::value(0));
}

TEST(job_view_json, completed_job_elapsed_is_finish_minus_start) {
    job_view v;
    v.id = "job_c";
    v.state = job_state::completed;
    v.created_at = at(2026, 3, 4, 5, 6, 7, 0);
    v.started_at = at(2026, 3, 4, 5, 6, 8, 0);
    v.finished_at = at(2026, 3, 4, 5, 6, 10, 250);
    v.output = "final text";
    v.usage = job_usage{120, 45, 0.0125};
    auto j = to_json(v, at(2030, 1, 1, 0, 0, 0, 0));
    EXPECT_EQ(j.at("finished_at"), json::value("2026-03-04T05:06:10.250Z"));
    EXPECT_EQ(j.at("elapsed_ms"), json::value(2250));
    EXPECT_EQ(j.at("output"), json::value("final text"));
    EXPECT_EQ(j.at("truncated"), json::value(false));
    EXPECT_EQ(j.at("usage").at("input_tokens"), json::value(120));
    EXPECT_EQ(j.at("usage").at("output_tokens"), json::value(45));
    EXPECT_DOUBLE_EQ(j.at("usage").at("cost").to_number<double>(), 0.0125);
    EXPECT_FALSE(j.as_object().contains("error"));
}

TEST(job_view_json, output_and_truncated_come_together) {
    job_view v;
    v.id = "job_t";
    v.state = job_state::completed;
    v.truncated = true;  // without output, neither key appears
    auto none = to_json(v, {});
    EXPECT_FALSE(none.as_object().contains("output"));
    EXPECT_FALSE(none.as_object().contains("truncated"));
    v.output = "";
    auto empty = to_json(v, {});
    EXPECT_EQ(empty.at("output"), json::value(""));
    EXPECT_EQ(empty.at("truncated"), json::value(true));
}

TEST(job_view_json, json_string_size_counts_quotes_and_escapes) {
    for (std::string text : {std::string(), std::string("plain"), std::string("q\"b\\n\nt\t"),
                             std::string("\x01\x1f"), std::string("h\xc3\xa9 \x7f")}) {
        EXPECT_EQ(json_string_size(text), json::serialize(json::value(text)).size()) << text;
    }
}

// Outputs fill the response budget in rendering order; one that does not fit is omitted
// (output_omitted) while smaller ones after it may still fit.
TEST(job_view_json, outputs_past_the_response_budget_are_omitted) {
    job_view v;
    v.id = "job_b";
    v.state = job_state::completed;
    response_budget budget(3000);
    v.output = std::string(1500, 'a');
    auto first = to_json(v, {}, {}, &budget);
    EXPECT_EQ(first.at("output").as_string().size(), 1500u);
    auto second = to_json(v, {}, {}, &budget);
    EXPECT_FALSE(second.as_object().contains("output"));
    EXPECT_EQ(second.at("output_omitted"), json::value(true));
    EXPECT_EQ(second.at("truncated"), json::value(false));
    v.output = "short";
    EXPECT_EQ(to_json(v, {}, {}, &budget).at("output"), json::value("short"));
    // Without a budget nothing is omitted.
    v.output = std::string(5000, 'a');
    EXPECT_EQ(to_json(v, {}).at("output").as_string().size(), 5000u);
}

TEST(job_view_json, error_fields) {
    job_view v;
    v.id = "job_e";
    v.state = job_state::failed;
    v.error = job_error{error_kind::upstream, error_phase::prompt, "Bad Gateway", 502};
    auto j = to_json(v, {});
    EXPECT_EQ(
        j.at("error"),
        js(R"({"kind":"upstream","phase":"prompt","message":"Bad Gateway","http_status":502})"));
    v.error =
        job_error{error_kind::cancelled, std::nullopt, "cancelled by the caller", std::nullopt};
    v.state = job_state::cancelled;
    auto c = to_json(v, {});
    EXPECT_EQ(c.at("error"), js(R"({"kind":"cancelled","message":"cancelled by the caller"})"));
    EXPECT_EQ(c.at("state"), json::value("cancelled"));
    EXPECT_FALSE(c.as_object().contains("usage"));
}

TEST(job_view_json, names_of_states_kinds_and_phases) {
    EXPECT_EQ(to_string(job_state::queued), "queued");
    EXPECT_EQ(to_string(job_state::running), "running");
    EXPECT_EQ(to_string(job_state::completed), "completed");
    EXPECT_EQ(to_string(job_state::failed), "failed");
    EXPECT_EQ(to_string(job_state::cancelled), "cancelled");
    EXPECT_EQ(to_string(job_state::interrupted), "interrupted");
    EXPECT_EQ(to_string(error_kind::transport), "transport");
    EXPECT_EQ(to_string(error_kind::timeout), "timeout");
    EXPECT_EQ(to_string(error_kind::upstream), "upstream");
    EXPECT_EQ(to_string(error_kind::protocol), "protocol");
    EXPECT_EQ(to_string(error_kind::cancelled), "cancelled");
    EXPECT_EQ(to_string(error_kind::interrupted), "interrupted");
    EXPECT_EQ(to_string(error_kind::limit), "limit");
    EXPECT_EQ(to_string(error_phase::create), "create");
    EXPECT_EQ(to_string(error_phase::prompt), "prompt");
    EXPECT_EQ(to_string(error_phase::abort), "abort");
    EXPECT_FALSE(is_terminal(job_state::queued));
    EXPECT_FALSE(is_terminal(job_state::running));
    EXPECT_TRUE(is_terminal(job_state::completed));
    EXPECT_TRUE(is_terminal(job_state::failed));
    EXPECT_TRUE(is_terminal(job_state::cancelled));
    EXPECT_TRUE(is_terminal(job_state::interrupted));
}

TEST(job_view_json, not_found) {
    EXPECT_EQ(not_found_json("job_x"), js(R"({"id":"job_x","state":"not_found"})"));
}

TEST(json_text, exponent_numbers_become_plain_decimals) {
    EXPECT_EQ(plain_decimals("0E0"), "0");
    EXPECT_EQ(plain_decimals("-0E0"), "-0");
    EXPECT_EQ(plain_decimals("1.2E-3"), "0.0012");
    EXPECT_EQ(plain_decimals("5E-1"), "0.5");
    EXPECT_EQ(plain_decimals("1.5E0"), "1.5");
    EXPECT_EQ(plain_decimals("1E2"), "100");
    EXPECT_EQ(plain_decimals("1.23456789E7"), "12345678.9");
    EXPECT_EQ(plain_decimals("-2.5E1"), "-25");
    EXPECT_EQ(plain_decimals("1.2E+3"), "1200");
    EXPECT_EQ(plain_decimals("[1E1,2,3.5E-2]"), "[10,2,0.035]");
}

TEST(json_text, strings_and_plain_numbers_are_left_alone) {
    std::string text = R"({"a":"1E5 \"2E3\"","b":-17,"ERROR":12})";
    EXPECT_EQ(plain_decimals(text), text);
    EXPECT_EQ(plain_decimals("[]"), "[]");
    // A string that ends in an escaped backslash ends at its quote; escaped quotes do not end it.
    EXPECT_EQ(plain_decimals(R"({"a":"x\\","b":1E1})"), R"({"a":"x\\","b":10})");
    EXPECT_EQ(plain_decimals(R"({"a":"q\"1E1\\\"2E0","b":2E0,"c":"E"})"),
              R"({"a":"q\"1E1\\\"2E0","b":2,"c":"E"})");
    EXPECT_EQ(plain_decimals(R"(["1E1)"), R"(["1E1)");  // unterminated: copied as it is
}

TEST(json_text, a_job_view_cost_prints_as_a_plain_decimal_and_keeps_its_value) {
    job_view v;
    v.id = "job_c";
    v.state = job_state::completed;
    for (double cost : {0.0, 0.0012, 0.1, 1234.5678, 3.0000000000000004e-7}) {
        v.usage = job_usage{1, 2, cost};
        auto text = to_text(to_json(v, {}));
        EXPECT_EQ(text.find('E'), std::string::npos) << text;
        EXPECT_EQ(json::parse(text).at("usage").at("cost").to_number<double>(), cost) << text;
    }
    v.usage = job_usage{1, 2, 0.0012};
    EXPECT_NE(to_text(to_json(v, {})).find(R"("cost":0.0012)"), std::string::npos);
}

// boxed<T> reads like std::optional<T>, copies deep, and is what keeps a queued job small.
TEST(boxed, reads_like_an_optional_and_copies_deep) {
    boxed<std::string> a;
    EXPECT_FALSE(a);
    EXPECT_TRUE(a == std::nullopt);
    EXPECT_EQ(a.value_or("none"), "none");
    EXPECT_THROW(static_cast<void>(a.value()), std::bad_optional_access);
    a = "first";
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a == std::string("first"));
    auto b = a;  // deep: changing one leaves the other
    *b += " changed";
    EXPECT_EQ(*a, "first");
    EXPECT_EQ(*b, "first changed");
    EXPECT_FALSE(a == b);
    b = a;
    EXPECT_TRUE(a == b);
    auto moved = std::move(b);
    EXPECT_EQ(*moved, "first");
    b = std::nullopt;
    EXPECT_FALSE(b);
    EXPECT_FALSE(a == b);
    b = moved;
    EXPECT_TRUE(a == b);
    a.reset();
    EXPECT_EQ(a.optional(), std::nullopt);
    EXPECT_EQ(b.optional(), std::optional<std::string>("first"));
    boxed<std::string> from_optional = std::optional<std::string>("x");
    EXPECT_EQ(from_optional.emplace(3, 'y'), "yyy");
    EXPECT_EQ(boxed<std::string>(std::optional<std::string>()), std::nullopt);
}

TEST(boxed, an_empty_field_takes_a_pointer_and_a_view_compares_its_boxes_by_value) {
    static_assert(sizeof(boxed<upstream_ref>) == sizeof(void*));
    job_view v;
    v.id = "job_1";
    v.upstream = upstream_ref{"opencode", "ses_1"};
    auto w = v;
    EXPECT_EQ(v, w);
    w.upstream->session = "ses_2";
    EXPECT_NE(v, w);
    EXPECT_EQ(v.upstream->session, "ses_1");
    w.upstream = std::nullopt;
    EXPECT_NE(v, w);
}

}  // namespace
}  // namespace agentd::protocol
