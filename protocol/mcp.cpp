// MCP mapping of agentd's methods: tool definitions whose JSON Schemas (2020-12 keywords that
// draft-07 validators read the same way) mirror params.cpp's validation and JobView exactly,
// version negotiation, and the shapes of tools/call results and notifications.
#include "protocol/mcp.hpp"

#include "protocol/job_view.hpp"
#include "protocol/params.hpp"
#include "protocol/version.hpp"

#include <fmt/format.h>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <span>

namespace agentd::protocol::mcp {
namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 3> versions{"2025-11-25", "2025-06-18", "2025-03-26"};

// --- schema builders ------------------------------------------------------------------------

json::object described(json::object schema, std::string_view description) {
    schema["description"] = description;
    return schema;
}

json::object string_schema(std::string_view description) {
    return {{"type", "string"}, {"description", description}};
}

// `values` are an enum's wire names (enum_names), so the schema lists what the parser accepts;
// `extra` is a word the wire adds to them (a JobView's not_found state).
json::object enum_schema(std::span<std::string_view const> values, std::string_view description,
                         std::optional<std::string_view> extra = std::nullopt) {
    json::array items;
    for (auto v : values) items.emplace_back(v);
    if (extra) items.emplace_back(*extra);
    return {{"type", "string"}, {"enum", std::move(items)}, {"description", description}};
}

json::object integer_schema(std::string_view description) {
    return {{"type", "integer"}, {"description", description}};
}

json::object at_least(json::object schema, std::int64_t min) {
    schema["minimum"] = min;
    return schema;
}

json::object array_of(json::object items, std::string_view description) {
    return {{"type", "array"}, {"items", std::move(items)}, {"description", description}};
}

// Input objects are closed, as params.cpp rejects unknown fields; outputs stay open so that a
// field added later does not break a validating client.
json::object object_schema(json::object properties,
                           std::initializer_list<std::string_view> required, bool closed) {
    json::array names;
    for (auto r : required) names.emplace_back(r);
    json::object o{{"type", "object"}, {"properties", std::move(properties)}};
    if (!names.empty()) o["required"] = std::move(names);
    if (closed) o["additionalProperties"] = false;
    return o;
}

// --- input schemas (params.cpp) ---------------------------------------------------------------

json::object session_schema() {
    json::object s = string_schema(
        "Owner session of the jobs. Defaults to this MCP session (Mcp-Session-Id); name "
        "another session only to reach jobs started there.");
    s["pattern"] = "^[A-Za-z0-9._:-]{1,128}$";
    return s;
}

json::object job_id_schema() {
    json::object s = string_schema("A job id (job_<32 hex>).");
    s["minLength"] = 1;
    s["maxLength"] = 256;
    return s;
}

json::object job_ids_schema(std::string_view description) {
    json::object s = array_of(job_id_schema(), description);
    s["maxItems"] = max_job_ids;
    return s;
}

json::object non_empty(json::object s) {
    s["minLength"] = 1;
    return s;
}

json::object task_schema() {
    json::object model =
        string_schema("Model as \"provider/model\"; the agent's default when absent.");
    model["pattern"] = "^[^/]+/.+$";
    json::object timeout = at_least(
        integer_schema(
            "Wall-clock limit of this job in ms (default: the daemon's job_timeout_ms, 30 min)."),
        1);
    timeout["maximum"] = max_task_timeout_ms;
    return object_schema(
        {{"prompt", non_empty(string_schema("What the sub-agent should do."))},
         {"description", string_schema("A short label shown in job views.")},
         {"agent", non_empty(string_schema("Upstream agent name (e.g. \"build\", \"plan\")."))},
         {"model", std::move(model)},
         {"system", string_schema("Extra system prompt.")},
         {"directory", non_empty(string_schema("Working directory of the sub-agent's session."))},
         {"timeout_ms", std::move(timeout)}},
        {"prompt"}, true);
}

json::object start_input() {
    json::object tasks = array_of(task_schema(),
                                  "One job per task, in order; at most max_tasks_per_call "
                                  "(default 8), over it the call fails with a limit error.");
    tasks["minItems"] = 1;
    json::object parent =
        string_schema("Upstream session id (ses…) to make the new upstream sessions its children.");
    parent["pattern"] = "^ses[A-Za-z0-9_-]+$";
    parent["maxLength"] = 128;
    return object_schema({{"session", session_schema()},
                          {"tasks", std::move(tasks)},
                          {"upstream_parent", std::move(parent)}},
                         {"tasks"}, true);
}

json::object status_input() {
    return object_schema(
        {{"session", session_schema()},
         {"jobs", job_ids_schema("Jobs to report; all of the session's jobs, newest first, "
                                 "when absent.")}},
        {}, true);
}

json::object wait_input() {
    json::object mode = enum_schema(enum_names<wait_mode>,
                                    "all: until every selected job is terminal; any: until at "
                                    "least one is (all that are are reported).");
    mode["default"] = "all";
    json::object timeout = at_least(integer_schema("Longest wait in ms; 0 checks now."), 0);
    timeout["maximum"] = max_wait_timeout_ms;
    timeout["default"] = default_wait_timeout_ms;
    return object_schema(
        {{"session", session_schema()},
         {"jobs", job_ids_schema("Jobs to wait for; the session's unfinished jobs when absent.")},
         {"mode", std::move(mode)},
         {"timeout_ms", std::move(timeout)}},
        {}, true);
}

json::object cancel_input() {
    return object_schema(
        {{"session", session_schema()}, {"jobs", job_ids_schema("Jobs to cancel.")}}, {"jobs"},
        true);
}

json::object peek_input() {
    return object_schema({{"session", session_schema()}, {"job", job_id_schema()}}, {"job"}, true);
}

// --- output schemas (JobView, DESIGN §2) --------------------------------------------------------

json::object time_schema(std::string_view description) {
    json::object s = string_schema(description);
    s["format"] = "date-time";
    return s;
}

json::object job_view_schema() {
    json::object error = object_schema(
        {{"kind", enum_schema(enum_names<error_kind>, "Why the job failed.")},
         {"phase", enum_schema(enum_names<error_phase>, "Upstream call that failed.")},
         {"message", string_schema("What went wrong.")},
         {"http_status", integer_schema("Upstream HTTP status, when there was one.")}},
        {"kind", "message"}, false);
    json::object usage =
        object_schema({{"input_tokens", integer_schema("Prompt tokens.")},
                       {"output_tokens", integer_schema("Completion tokens.")},
                       {"cost", described({{"type", "number"}}, "Cost reported upstream.")}},
                      {"input_tokens", "output_tokens", "cost"}, false);
    json::object upstream = object_schema({{"backend", string_schema("Upstream backend.")},
                                           {"session", string_schema("Upstream session id.")}},
                                          {"backend", "session"}, false);
    return object_schema(
        {{"id", string_schema("Job id.")},
         {"description", string_schema("The task's description.")},
         {"state", enum_schema(enum_names<job_state>, "not_found: unknown, or another owner's job.",
                               not_found_state)},
         {"created_at", time_schema("When the job was admitted (UTC).")},
         {"started_at", time_schema("When it started running.")},
         {"finished_at", time_schema("When it became terminal.")},
         {"elapsed_ms",
          at_least(integer_schema("Running time so far, or in all once finished."), 0)},
         {"depth", at_least(integer_schema("Nesting depth; a top-level job has depth 1."), 1)},
         {"upstream", std::move(upstream)},
         {"output", string_schema("Final assistant text (completed jobs only).")},
         {"truncated", described({{"type", "boolean"}}, "Whether output was capped.")},
         {"output_omitted",
          described({{"type", "boolean"}},
                    "The response had no room for output (max_response_bytes): fetch this job "
                    "alone.")},
         {"error", std::move(error)},
         {"usage", std::move(usage)}},
        {"id", "state"}, false);
}

json::object jobs_output() {
    return object_schema({{"jobs", array_of(job_view_schema(), "One view per job.")}}, {"jobs"},
                         false);
}

json::object wait_output() {
    return object_schema(
        {{"done", described({{"type", "boolean"}}, "Whether the wait condition was met.")},
         {"timed_out", described({{"type", "boolean"}}, "Whether the timeout ended the wait.")},
         {"jobs", array_of(job_view_schema(), "The selected jobs.")}},
        {"done", "timed_out", "jobs"}, false);
}

json::object peek_output() {
    return object_schema(
        {{"job", job_view_schema()},
         {"partial_output", string_schema("Text the sub-agent has produced so far.")},
         {"output_omitted",
          described({{"type", "boolean"}},
                    "partial_output was left out: the response had no room for it.")}},
        {"job", "partial_output"}, false);
}

// --- tools ---------------------------------------------------------------------------------------

json::object annotations(bool read_only, bool destructive, bool idempotent, bool open_world) {
    json::object a{{"readOnlyHint", read_only}};
    if (!read_only) a["destructiveHint"] = destructive;
    a["idempotentHint"] = idempotent;
    a["openWorldHint"] = open_world;
    return a;
}

json::object tool(std::string_view name, std::string_view title, std::string_view description,
                  json::object input, json::object output, json::object hints) {
    return {{"name", name},
            {"title", title},
            {"description", description},
            {"inputSchema", std::move(input)},
            {"outputSchema", std::move(output)},
            {"annotations", std::move(hints)}};
}

json::array tools() {
    json::array out;
    out.push_back(tool("agents_start", "Start sub-agent jobs",
                       "Start LLM sub-agent jobs, one per task, all at once. Returns as soon as "
                       "they are admitted (queued or running) with their job ids; it does not "
                       "wait for the sub-agents. An upstream failure of one task fails only that "
                       "job. Follow up with agents_wait, agents_status or agents_peek.",
                       start_input(), jobs_output(), annotations(false, false, false, true)));
    out.push_back(tool("agents_status", "Job status",
                       "Report jobs of the session without changing anything. An unknown id, or "
                       "one of another session, comes back with state not_found.",
                       status_input(), jobs_output(), annotations(true, false, true, false)));
    out.push_back(tool("agents_wait", "Wait for jobs",
                       "Wait until the selected jobs are terminal (mode all) or at least one is "
                       "(mode any), or the timeout passes; returns their views with each "
                       "completed job's output. Sends progress notifications as jobs finish when "
                       "the call carries a progressToken.",
                       wait_input(), wait_output(), annotations(true, false, true, false)));
    out.push_back(tool("agents_cancel", "Cancel jobs",
                       "Cancel jobs: queued ones at once, running ones are aborted upstream. "
                       "Jobs already finished stay as they are.",
                       cancel_input(), jobs_output(), annotations(false, true, true, true)));
    out.push_back(tool("agents_peek", "Peek at a job",
                       "The text a job's sub-agent has produced so far, with the job's view.",
                       peek_input(), peek_output(), annotations(true, false, true, true)));
    return out;
}

bool is_tool(std::string_view name) {
    return name == "agents_start" || name == "agents_status" || name == "agents_wait" ||
           name == "agents_cancel" || name == "agents_peek";
}

bool is_response(json::value const& v) {
    auto const* o = v.if_object();
    return o && !o->contains("method") && o->contains("id") &&
           (o->contains("result") || o->contains("error"));
}

}  // namespace

std::span<std::string_view const> supported_versions() {
    return versions;
}

bool is_supported_version(std::string_view version) {
    return std::find(versions.begin(), versions.end(), version) != versions.end();
}

result<std::string> negotiate_version(json::value const& initialize_params) {
    auto const* params = initialize_params.if_object();
    auto const* requested = params ? params->if_contains("protocolVersion") : nullptr;
    if (!requested || !requested->is_string())
        return invalid_params("protocolVersion", "must be a string");
    auto version = std::string_view(requested->get_string());
    return std::string(is_supported_version(version) ? version : latest_version);
}

json::object initialize_result(std::string_view version) {
    return {{"protocolVersion", version},
            {"capabilities", json::object{{"tools", json::object{{"listChanged", false}}}}},
            {"serverInfo", json::object{{"name", server_name}, {"version", agentd::version}}},
            {"instructions",
             "agentd runs LLM sub-agent jobs concurrently. agents_start launches several tasks "
             "at once and returns job ids at once; agents_wait blocks until they finish (with "
             "progress notifications); agents_status and agents_peek look without waiting; "
             "agents_cancel stops jobs. Jobs belong to this MCP session unless a call names "
             "another `session`."}};
}

json::object tools_list_result() {
    static json::array const all = tools();
    return {{"tools", all}};
}

result<body> parse_body(std::string_view text, codec_limits const& limits) {
    auto f = parse_frame(text, limits);
    if (!f) return f.error();
    body out;
    out.is_batch = f->is_batch;
    for (auto const& v : f->elements()) {
        if (is_response(v))
            ++out.responses;
        else
            out.calls.push_back(parse_request(v));
    }
    return out;
}

result<tool_call> parse_tool_call(json::value const& params) {
    auto const* obj = params.if_object();
    if (!obj) return invalid_params("params", "must be an object");
    auto const* name = obj->if_contains("name");
    if (!name || !name->is_string()) return invalid_params("name", "must be a string");
    if (!is_tool(name->get_string())) {
        auto error = invalid_params("name", "unknown tool");
        error.message = fmt::format("Unknown tool: {}", std::string_view(name->get_string()));
        return error;
    }
    tool_call call{std::string(name->get_string()), nullptr, std::nullopt};
    if (auto const* args = obj->if_contains("arguments"); args && !args->is_null()) {
        if (!args->is_object()) return invalid_params("arguments", "must be an object");
        call.arguments = *args;
    }
    auto const* meta = obj->if_contains("_meta");
    auto const* token =
        meta && meta->is_object() ? meta->get_object().if_contains("progressToken") : nullptr;
    if (token && (token->is_string() || token->is_int64() || token->is_uint64()))
        call.progress_token = *token;
    return call;
}

json::object tool_success(json::value const& structured) {
    auto text = json::serialize(structured);
    if (text.size() > max_text_copy_bytes) {
        // The spec requires structuredContent (the tools declare an outputSchema); the text
        // copy is only a SHOULD for older clients, so a large result is not sent twice.
        text = fmt::format(
            "The result ({} bytes) is in structuredContent; it is not repeated here. Fetch jobs "
            "one at a time (agents_status with one id) for a smaller text result.",
            text.size());
    }
    return {{"content", json::array{json::object{{"type", "text"}, {"text", std::move(text)}}}},
            {"structuredContent", structured},
            {"isError", false}};
}

json::object tool_failure(rpc_error const& error) {
    std::string text = error.message;
    auto const* data = error.data.if_object();
    auto const* field = data ? data->if_contains("field") : nullptr;
    auto const* reason = data ? data->if_contains("reason") : nullptr;
    if (field && reason && field->is_string() && reason->is_string()) {
        text += fmt::format(": {} {}", std::string_view(field->get_string()),
                            std::string_view(reason->get_string()));
    } else if (!error.data.is_null()) {
        text += ": " + json::serialize(error.data);
    }
    return {{"content", json::array{json::object{{"type", "text"}, {"text", std::move(text)}}}},
            {"isError", true}};
}

bool is_tool_failure(rpc_error const& error) {
    return error.code != error_code::internal_error && error.code != error_code::method_not_found;
}

json::object progress_notification(json::value const& token, std::int64_t progress,
                                   std::int64_t total, std::string_view message) {
    return {{"jsonrpc", "2.0"},
            {"method", "notifications/progress"},
            {"params", json::object{{"progressToken", token},
                                    {"progress", progress},
                                    {"total", total},
                                    {"message", message}}}};
}

std::optional<json::value> cancelled_request_id(json::value const& params) {
    auto const* obj = params.if_object();
    auto const* id = obj ? obj->if_contains("requestId") : nullptr;
    if (!id || !(id->is_string() || id->is_number())) return std::nullopt;
    return *id;
}

}  // namespace agentd::protocol::mcp
