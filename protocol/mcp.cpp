// MCP mapping of agentd's methods: tool definitions whose JSON Schemas (2020-12 keywords that
// draft-07 validators read the same way) mirror params.cpp's validation and JobView exactly,
// version negotiation, the shapes of tools/call results and notifications, and the
// elicitation/create forms for a waiting job's requests and the reading of their answers.
#include "protocol/mcp.hpp"

#include "protocol/job_view.hpp"
#include "protocol/json_text.hpp"
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
    json::object cost = described({{"type", "number"}, {"minimum", 0}},
                                  "Largest cost the job may report (the upstream's currency).");
    json::object budget = object_schema(
        {{"max_cost", std::move(cost)},
         {"max_tokens", at_least(integer_schema("Largest input + output token count."), 1)}},
        {}, true);
    budget["description"] =
        "Past either bound the job is aborted and fails (kind limit); replaces the daemon's "
        "default_max_cost.";
    budget["minProperties"] = 1;
    return object_schema(
        {{"prompt", non_empty(string_schema("What the sub-agent should do."))},
         {"description", string_schema("A short label shown in job views.")},
         {"agent", non_empty(string_schema("Upstream agent name (e.g. \"build\", \"plan\")."))},
         {"model", std::move(model)},
         {"system", string_schema("Extra system prompt.")},
         {"directory", non_empty(string_schema("Working directory of the sub-agent's session."))},
         {"timeout_ms", std::move(timeout)},
         {"permissions",
          enum_schema(enum_names<permission_policy>,
                      "What the sub-agent's permission requests get: ask (the job waits for an "
                      "answer), allow (once each) or deny; the daemon's upstream.permissions "
                      "when absent.")},
         {"budget", std::move(budget)},
         {"isolation", enum_schema(enum_names<isolation_mode>,
                                   "worktree: run in a fresh git worktree of the directory "
                                   "(opencode), kept when the job ends (JobView worktree).")},
         {"continue",
          non_empty(string_schema(
              "Follow-up: the id of a finished job whose upstream session this task's turn "
              "continues (its directory, agent and model carry over; only the latest job of a "
              "chain; not with directory or isolation). The output is the new turn only."))}},
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
    json::object on_input = enum_schema(
        std::array<std::string_view, 2>{"return", "ignore"},
        "return: the wait also ends, with done false, as soon as a selected job is waiting for "
        "an answer (listed in needs_input); ignore: sleep through waiting jobs (someone else or "
        "the input timeout answers them).");
    on_input["default"] = "return";
    return object_schema(
        {{"session", session_schema()},
         {"jobs", job_ids_schema("Jobs to wait for; the session's unfinished jobs when absent.")},
         {"mode", std::move(mode)},
         {"timeout_ms", std::move(timeout)},
         {"on_input", std::move(on_input)}},
        {}, true);
}

json::object cancel_input() {
    return object_schema(
        {{"session", session_schema()}, {"jobs", job_ids_schema("Jobs to cancel.")}}, {"jobs"},
        true);
}

json::object peek_input() {
    return object_schema(
        {{"session", session_schema()},
         {"job", job_id_schema()},
         {"diff", described({{"type", "boolean"}},
                            "Also return `changes`: the files the job's turn changed, with "
                            "patches.")}},
        {"job"}, true);
}

json::object respond_input() {
    json::object request = string_schema("The pending request's id (JobView requests[].id).");
    request["minLength"] = 1;
    request["maxLength"] = 256;
    json::object message =
        string_schema("With decision deny on a permission: the reason, passed to the sub-agent.");
    message["maxLength"] = max_answer_bytes;
    json::object label = string_schema("An option's label, or free text where custom is true.");
    label["minLength"] = 1;
    label["maxLength"] = max_answer_bytes;
    json::object one =
        array_of(std::move(label), "The answer to one question: one label unless it is multiple.");
    one["maxItems"] = max_answers;
    json::object answers =
        array_of(std::move(one),
                 "A question's answers, one array per question, in order (instead of "
                 "decision).");
    answers["minItems"] = 1;
    answers["maxItems"] = max_answers;
    return object_schema(
        {{"session", session_schema()},
         {"job", job_id_schema()},
         {"request", std::move(request)},
         {"decision", enum_schema(enum_names<respond_decision>,
                                  "A permission: allow (once), allow_always (this pattern for "
                                  "the rest of the session) or deny. A question: deny only "
                                  "(dismiss it); give answers instead.")},
         {"message", std::move(message)},
         {"answers", std::move(answers)}},
        {"job", "request"}, true);
}

// --- output schemas (JobView, DESIGN §2) --------------------------------------------------------

json::object time_schema(std::string_view description) {
    json::object s = string_schema(description);
    s["format"] = "date-time";
    return s;
}

json::object request_schema() {
    json::object option = object_schema({{"label", string_schema("What to answer.")},
                                         {"description", string_schema("What it means.")}},
                                        {"label"}, false);
    json::object question = object_schema(
        {{"question", string_schema("The question.")},
         {"header", string_schema("A short label.")},
         {"options", array_of(std::move(option), "The choices.")},
         {"multiple", described({{"type", "boolean"}}, "Several labels may be chosen.")},
         {"custom", described({{"type", "boolean"}}, "Free text is allowed.")}},
        {"question", "options"}, false);
    return object_schema(
        {{"id", string_schema("Request id, for agents_respond.")},
         {"kind", enum_schema(enum_names<request_kind>, "Permission or question.")},
         {"permission", string_schema("A permission's kind (e.g. bash, edit).")},
         {"patterns", array_of(string_schema("A pattern."), "What it would run or touch.")},
         {"questions", array_of(std::move(question), "A question request's questions.")},
         {"asked_at", time_schema("When it was asked.")}},
        {"id", "kind", "asked_at"}, false);
}

json::object step_schema() {
    return object_schema({{"tool", string_schema("The tool (e.g. bash).")},
                          {"status", enum_schema(enum_names<step_status>, "The step's status.")},
                          {"title", string_schema("What it does (at most 160 characters).")},
                          {"started_at", time_schema("When it started.")},
                          {"finished_at", time_schema("When it ended.")},
                          {"output_tail", string_schema("The last 2 KiB of its output.")}},
                         {"tool", "status", "title"}, false);
}

json::object usage_schema(std::string_view description) {
    return described(
        object_schema({{"input_tokens", integer_schema("Prompt tokens.")},
                       {"output_tokens", integer_schema("Completion tokens.")},
                       {"cost", described({{"type", "number"}}, "Cost reported upstream.")}},
                      {"input_tokens", "output_tokens", "cost"}, false),
        description);
}

json::object job_view_schema() {
    json::object error = object_schema(
        {{"kind", enum_schema(enum_names<error_kind>, "Why the job failed.")},
         {"phase", enum_schema(enum_names<error_phase>, "Upstream call that failed.")},
         {"message", string_schema("What went wrong.")},
         {"http_status", integer_schema("Upstream HTTP status, when there was one.")}},
        {"kind", "message"}, false);
    json::object upstream = object_schema({{"backend", string_schema("Upstream backend.")},
                                           {"session", string_schema("Upstream session id.")}},
                                          {"backend", "session"}, false);
    json::object task =
        object_schema({{"prompt", string_schema("The prompt's first 200 characters.")},
                       {"agent", string_schema("Upstream agent.")},
                       {"model", string_schema("Model.")},
                       {"directory", string_schema("Working directory.")}},
                      {"prompt"}, false);
    json::object activity =
        object_schema({{"steps", at_least(integer_schema("Tool steps so far."), 0)},
                       {"tool", string_schema("The current or last step's tool.")},
                       {"title", string_schema("Its title (e.g. the command).")},
                       {"since", time_schema("When that step started.")}},
                      {"steps", "tool", "since"}, false);
    json::object answered =
        object_schema({{"id", string_schema("Request id.")},
                       {"kind", enum_schema(enum_names<request_kind>, "Permission or question.")},
                       {"decision", enum_schema(enum_names<decision>, "How it was settled.")},
                       {"by", enum_schema(enum_names<answered_by>, "Who settled it.")},
                       {"at", time_schema("When.")}},
                      {"id", "kind", "decision", "by", "at"}, false);
    return object_schema(
        {{"id", string_schema("Job id.")},
         {"session", string_schema("The owner session.")},
         {"description", string_schema("The task's description.")},
         {"state", enum_schema(enum_names<job_state>,
                               "waiting: a request of the sub-agent needs an answer (see requests; "
                               "agents_respond). not_found: unknown, or another owner's job.",
                               not_found_state)},
         {"task", std::move(task)},
         {"created_at", time_schema("When the job was admitted (UTC).")},
         {"started_at", time_schema("When it started running.")},
         {"finished_at", time_schema("When it became terminal.")},
         {"elapsed_ms",
          at_least(integer_schema("Running time so far, or in all once finished."), 0)},
         {"depth", at_least(integer_schema("Nesting depth; a top-level job has depth 1."), 1)},
         {"upstream", std::move(upstream)},
         {"activity", std::move(activity)},
         {"requests", array_of(request_schema(), "What a waiting job needs answered.")},
         {"answered", array_of(std::move(answered), "The last 20 settled requests.")},
         {"worktree",
          object_schema({{"directory", string_schema("The git worktree the job ran in (kept).")},
                         {"branch", string_schema("Its branch.")}},
                        {"directory"}, false)},
         {"diff_summary", object_schema({{"files", integer_schema("Files the job changed.")},
                                         {"additions", integer_schema("Lines added.")},
                                         {"deletions", integer_schema("Lines removed.")}},
                                        {"files", "additions", "deletions"}, false)},
         {"continues", string_schema("The job this one is the follow-up of.")},
         {"output", string_schema("Final assistant text (completed jobs only).")},
         {"truncated", described({{"type", "boolean"}}, "Whether output was capped.")},
         {"output_omitted",
          described({{"type", "boolean"}},
                    "The response had no room for output (max_response_bytes): fetch this job "
                    "alone.")},
         {"error", std::move(error)},
         {"usage", usage_schema("Tokens and cost the upstream reported.")}},
        {"id", "state"}, false);
}

json::object jobs_output() {
    return object_schema({{"jobs", array_of(job_view_schema(), "One view per job.")}}, {"jobs"},
                         false);
}

json::object status_output() {
    return object_schema({{"jobs", array_of(job_view_schema(), "One view per job.")},
                          {"usage", usage_schema("The sum over the listed jobs.")}},
                         {"jobs", "usage"}, false);
}

json::object wait_output() {
    return object_schema(
        {{"done", described({{"type", "boolean"}}, "Whether the wait condition was met.")},
         {"timed_out", described({{"type", "boolean"}}, "Whether the timeout ended the wait.")},
         {"jobs", array_of(job_view_schema(), "The selected jobs.")},
         {"needs_input", array_of(string_schema("A job id."),
                                  "The selected jobs that are waiting: answer their requests with "
                                  "agents_respond.")}},
        {"done", "timed_out", "jobs", "needs_input"}, false);
}

json::object change_schema() {
    return object_schema(
        {{"file", string_schema("Path relative to the job's directory.")},
         {"status", enum_schema(std::array<std::string_view, 3>{"added", "modified", "deleted"},
                                "What happened to the file.")},
         {"additions", integer_schema("Lines added.")},
         {"deletions", integer_schema("Lines removed.")},
         {"patch", string_schema("Unified diff of the file.")}},
        {"file", "status", "additions", "deletions", "patch"}, false);
}

json::object peek_output() {
    return object_schema(
        {{"job", job_view_schema()},
         {"partial_output", string_schema("Text the sub-agent has produced so far.")},
         {"steps", array_of(step_schema(), "Its tool steps, oldest first (at most 100).")},
         {"changes", array_of(change_schema(), "With diff: the files the job changed.")},
         {"output_omitted",
          described({{"type", "boolean"}},
                    "partial_output was left out: the response had no room for it.")}},
        {"job", "partial_output", "steps"}, false);
}

json::object respond_output() {
    return object_schema({{"job", job_view_schema()}}, {"job"}, false);
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
                       status_input(), status_output(), annotations(true, false, true, false)));
    out.push_back(tool("agents_wait", "Wait for jobs",
                       "Wait until the selected jobs are terminal (mode all) or at least one is "
                       "(mode any), or the timeout passes; returns their views with each "
                       "completed job's output. A job that needs an answer (state waiting: a "
                       "permission or question of its sub-agent) ends the wait early with "
                       "done false and its id in needs_input: answer it with agents_respond and "
                       "wait again (or pass on_input ignore). When the client supports "
                       "elicitation, the wait asks the user itself and keeps waiting. Sends "
                       "progress notifications as jobs finish when the call carries a "
                       "progressToken.",
                       wait_input(), wait_output(), annotations(true, false, true, false)));
    out.push_back(tool("agents_cancel", "Cancel jobs",
                       "Cancel jobs: queued ones at once, running ones are aborted upstream. "
                       "Jobs already finished stay as they are.",
                       cancel_input(), jobs_output(), annotations(false, true, true, true)));
    out.push_back(tool("agents_peek", "Peek at a job",
                       "The text a job's sub-agent has produced so far, with the job's view.",
                       peek_input(), peek_output(), annotations(true, false, true, true)));
    out.push_back(tool("agents_respond", "Answer a job's request",
                       "Answer a pending request of a waiting job (JobView requests): a "
                       "permission with decision allow, allow_always or deny (message: the "
                       "reason, with deny); a question with answers (one array of option "
                       "labels per question; free text where custom) or decision deny. Returns "
                       "the job's view; it runs on, so follow up with agents_wait.",
                       respond_input(), respond_output(), annotations(false, false, false, true)));
    return out;
}

bool is_tool(std::string_view name) {
    return name == "agents_start" || name == "agents_status" || name == "agents_wait" ||
           name == "agents_cancel" || name == "agents_peek" || name == "agents_respond";
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
             "agents_cancel stops jobs. A sub-agent may need a permission or ask a question: "
             "its job is then `waiting` and agents_wait returns early listing it in "
             "needs_input (unless the client supports elicitation, where the user is asked "
             "directly); read the job's `requests` and answer with agents_respond, then wait "
             "again. Jobs belong to this MCP session unless a call names another `session`."}};
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
            out.responses.push_back(v.get_object());
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
    auto text = to_text(structured);
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

json::object cancelled_notification(json::value const& request_id, std::string_view reason) {
    return {{"jsonrpc", "2.0"},
            {"method", "notifications/cancelled"},
            {"params", json::object{{"requestId", request_id}, {"reason", reason}}}};
}

bool offers_form_elicitation(json::value const& initialize_params, std::string_view version) {
    if (version < std::string_view("2025-06-18")) return false;  // no elicitation before it
    auto const* params = initialize_params.if_object();
    auto const* caps = params ? params->if_contains("capabilities") : nullptr;
    auto const* elicitation =
        caps && caps->is_object() ? caps->get_object().if_contains("elicitation") : nullptr;
    if (!elicitation || !elicitation->is_object()) return false;
    auto const& modes = elicitation->get_object();
    // An empty object means form mode (the only mode before 2025-11-25).
    return modes.empty() || modes.contains("form") || !modes.contains("url");
}

namespace {

// 2025-11-25 has titled enums (oneOf const/title) and multi-select arrays of them.
bool has_titled_enums(std::string_view version) {
    return version >= std::string_view("2025-11-25");
}

std::string question_key(std::size_t i, std::size_t n) {
    return n == 1 ? std::string("answer") : fmt::format("answer_{}", i + 1);
}

// A single-choice string property whose values are `values`, shown as `titles`.
json::object choice(std::span<std::string const> values, std::span<std::string const> titles,
                    bool titled_enums) {
    json::object p{{"type", "string"}};
    json::array names;
    json::array shown;
    json::array one_of;
    for (std::size_t i = 0; i < values.size(); ++i) {
        names.emplace_back(values[i]);
        shown.emplace_back(titles[i]);
        one_of.emplace_back(json::object{{"const", values[i]}, {"title", titles[i]}});
    }
    if (titled_enums) {
        p["oneOf"] = std::move(one_of);
    } else {
        p["enum"] = std::move(names);
        p["enumNames"] = std::move(shown);
    }
    return p;
}

std::string job_label(job_view const& job) {
    return job.description.empty() ? job.id : fmt::format("{} ({})", job.id, job.description);
}

std::optional<json::object> question_property(question_item const& q, bool titled_enums) {
    json::object p;
    if (q.options.empty()) {
        if (!q.custom) return std::nullopt;
        p = {{"type", "string"}, {"minLength", 1}, {"maxLength", max_answer_bytes}};
    } else {
        std::vector<std::string> labels;
        std::vector<std::string> titles;
        for (auto const& o : q.options) {
            labels.push_back(o.label);
            titles.push_back(
                o.description.empty() ? o.label : fmt::format("{} — {}", o.label, o.description));
        }
        if (!q.multiple) {
            p = choice(labels, titles, titled_enums);
        } else {
            if (!titled_enums) return std::nullopt;  // array enums came with 2025-11-25
            json::array any_of;
            for (std::size_t i = 0; i < labels.size(); ++i)
                any_of.emplace_back(json::object{{"const", labels[i]}, {"title", titles[i]}});
            p = {{"type", "array"},
                 {"minItems", 1},
                 {"items", json::object{{"anyOf", std::move(any_of)}}}};
        }
    }
    p["title"] = q.header.empty() ? std::string("Answer") : q.header;
    p["description"] = q.question;
    return p;
}

}  // namespace

std::optional<json::object> elicitation_params(job_view const& job, pending_request const& request,
                                               std::string_view version) {
    bool titled = has_titled_enums(version);
    json::object properties;
    json::array required;
    std::string message;
    if (request.kind == request_kind::permission) {
        std::string patterns;
        for (auto const& p : request.patterns) patterns += (patterns.empty() ? "" : ", ") + p;
        message = fmt::format("A sub-agent (job {}) asks for permission: {}{}", job_label(job),
                              request.permission, patterns.empty() ? "" : ": " + patterns);
        static std::string const values[] = {"allow", "allow_always", "deny"};
        static std::string const titles[] = {"Allow once", "Always allow", "Deny"};
        json::object decision = choice(values, titles, titled);
        decision["title"] = "Decision";
        properties["decision"] = std::move(decision);
        properties["message"] =
            json::object{{"type", "string"},
                         {"title", "Message"},
                         {"description", "With Deny: the reason, passed to the sub-agent."},
                         {"maxLength", max_answer_bytes}};
        required.emplace_back("decision");
    } else {
        if (request.questions.empty()) return std::nullopt;
        message = fmt::format("A sub-agent (job {}) asks:", job_label(job));
        auto n = request.questions.size();
        for (std::size_t i = 0; i < n; ++i) {
            auto const& q = request.questions[i];
            auto p = question_property(q, titled);
            if (!p) return std::nullopt;
            message += "\n" + q.question;
            auto key = question_key(i, n);
            properties[key] = std::move(*p);
            required.emplace_back(key);
        }
    }
    json::object params;
    if (titled) params["mode"] = "form";
    params["message"] = std::move(message);
    params["requestedSchema"] = json::object{{"type", "object"},
                                             {"properties", std::move(properties)},
                                             {"required", std::move(required)}};
    return params;
}

elicitation_answer read_elicitation(pending_request const& request, json::object const& response) {
    using action = elicitation_answer::action;
    elicitation_answer out;
    auto const* result = response.if_contains("result");
    if (!result || !result->is_object()) {
        out.what = action::cancel;  // an error response: nobody answered
        return out;
    }
    auto const& r = result->get_object();
    auto const* what = r.if_contains("action");
    std::string_view name = what && what->is_string() ? std::string_view(what->get_string()) : "";
    if (name == "decline" || name == "cancel") {
        out.what = name == "decline" ? action::decline : action::cancel;
        return out;
    }
    if (name != "accept") return out;
    auto const* content_value = r.if_contains("content");
    if (!content_value || !content_value->is_object()) return out;
    auto const& content = content_value->get_object();
    auto text = [&](std::string_view key) -> std::optional<std::string_view> {
        auto const* v = content.if_contains(key);
        if (!v || !v->is_string()) return std::nullopt;
        return std::string_view(v->get_string());
    };
    if (request.kind == request_kind::permission) {
        auto decision = text("decision");
        if (!decision || !from_string<respond_decision>(*decision)) return out;
        out.respond["decision"] = *decision;
        auto message = text("message");
        if (*decision == "deny" && message && !message->empty() &&
            message->size() <= max_answer_bytes)
            out.respond["message"] = *message;
    } else {
        json::array answers;
        auto n = request.questions.size();
        for (std::size_t i = 0; i < n; ++i) {
            auto const* v = content.if_contains(question_key(i, n));
            if (!v) return out;
            if (v->is_string()) {
                answers.emplace_back(json::array{v->get_string()});
            } else if (v->is_array()) {
                for (auto const& label : v->get_array())
                    if (!label.is_string()) return out;
                answers.emplace_back(v->get_array());
            } else {
                return out;
            }
        }
        out.respond["answers"] = std::move(answers);
    }
    out.what = action::accept;
    return out;
}

}  // namespace agentd::protocol::mcp
