// Builds agentd JSON-RPC requests from parsed commands and decodes the replies.
// Only the fields a caller set go into params, so the daemon's defaults (DESIGN §2) stay in force.
#include "rpc.hpp"

#include "exit_codes.hpp"
#include "requests.hpp"

#include <fmt/core.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace agentctl {
namespace json = boost::json;
namespace {

void set_if(json::object& obj, std::string_view key, std::optional<std::string> const& value) {
    if (value && !obj.contains(key)) obj[key] = *value;
}

void apply_options(json::object& task, task_options const& options) {
    set_if(task, "description", options.description);
    set_if(task, "agent", options.agent);
    set_if(task, "model", options.model);
    set_if(task, "system", options.system);
    set_if(task, "directory", options.directory);
    set_if(task, "isolation", options.isolation);
    set_if(task, "continue", options.continues);
    if (options.timeout_ms && !task.contains("timeout_ms"))
        task["timeout_ms"] = *options.timeout_ms;
}

json::array tasks_from_document(std::string_view text) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec) throw usage_error(fmt::format("--tasks: not JSON: {}", ec.message()));
    if (!doc.is_array()) throw usage_error("--tasks: expected a JSON array of Task objects");
    for (auto const& task : doc.get_array()) {
        if (!task.is_object()) throw usage_error("--tasks: every element must be a Task object");
    }
    return std::move(doc.get_array());
}

json::array id_array(std::vector<std::string> const& ids) {
    return json::array(ids.begin(), ids.end());
}

// agents_respond: JOB, REQUEST, then a decision or the answers (never both, never neither).
json::object respond_params(command const& cmd) {
    json::object params{{"job", cmd.args.at(0)}, {"request", cmd.request}};
    if (cmd.decision) {
        auto name = decision_name(*cmd.decision);
        if (!name) throw usage_error(fmt::format("respond: unknown decision {}", *cmd.decision));
        params["decision"] = *name;
        if (cmd.message) {
            if (*name != "deny") throw usage_error("respond: --message goes with deny");
            params["message"] = *cmd.message;
        }
    } else if (!cmd.answers.empty()) {
        params["answers"] = parse_answers(cmd.answers);
    } else {
        throw usage_error("respond needs allow, always or deny, or --answer LABEL");
    }
    return params;
}

json::object command_params(command const& cmd, std::string_view tasks_json) {
    json::object params;
    switch (cmd.kind) {
        case command_kind::start:
            params["tasks"] = build_tasks(cmd, tasks_json);
            break;
        case command_kind::status:
            if (!cmd.args.empty()) params["jobs"] = id_array(cmd.args);
            break;
        case command_kind::wait:
            if (!cmd.args.empty()) params["jobs"] = id_array(cmd.args);
            params["mode"] = cmd.wait_any ? "any" : "all";
            if (cmd.wait_timeout_ms) params["timeout_ms"] = *cmd.wait_timeout_ms;
            if (cmd.ignore_input) params["on_input"] = "ignore";
            break;
        case command_kind::cancel:
            params["jobs"] = id_array(cmd.args);
            break;
        case command_kind::peek:
        case command_kind::worktree_rm:
            params["job"] = cmd.args.at(0);
            break;
        case command_kind::diff:
            params["job"] = cmd.args.at(0);
            params["diff"] = true;
            break;
        case command_kind::respond:
            params = respond_params(cmd);
            break;
        case command_kind::ui:               // sends no request
        case command_kind::watch:            // speaks WebSocket (live.cpp)
        case command_kind::service_install:  // service.cpp: systemctl and GET /healthz
        case command_kind::service_uninstall:
        case command_kind::service_status:
        case command_kind::token_add:  // tokens.cpp: edits the tokens file
        case command_kind::token_list:
        case command_kind::token_revoke:
            break;
    }
    return params;
}

char const* method_of(command_kind kind) {
    switch (kind) {
        case command_kind::start:
            return "agents_start";
        case command_kind::status:
            return "agents_status";
        case command_kind::wait:
            return "agents_wait";
        case command_kind::cancel:
            return "agents_cancel";
        case command_kind::peek:
        case command_kind::diff:
            return "agents_peek";
        case command_kind::worktree_rm:
            return "agents_worktree_remove";
        case command_kind::respond:
            return "agents_respond";
        case command_kind::ui:
        case command_kind::watch:
        case command_kind::service_install:
        case command_kind::service_uninstall:
        case command_kind::service_status:
        case command_kind::token_add:  // tokens.cpp: edits the tokens file
        case command_kind::token_list:
        case command_kind::token_revoke:
            break;
    }
    return "";
}

std::string string_member(json::object const& obj, std::string_view key) {
    auto const* value = obj.if_contains(key);
    if (value == nullptr) return {};
    return value->is_string() ? std::string(value->get_string()) : json::serialize(*value);
}

}  // namespace

json::array build_tasks(command const& cmd, std::string_view tasks_json) {
    json::array tasks = tasks_json.empty() ? json::array{} : tasks_from_document(tasks_json);
    for (auto const& prompt : cmd.args) tasks.push_back(json::object{{"prompt", prompt}});
    if (tasks.empty()) throw usage_error("start needs a PROMPT or --tasks with at least one task");
    for (auto& task : tasks) apply_options(task.get_object(), cmd.task);
    return tasks;
}

rpc_request build_request(invocation const& inv, std::string_view tasks_json) {
    rpc_request request{method_of(inv.cmd.kind), command_params(inv.cmd, tasks_json)};
    if (inv.globals.session) request.params["session"] = *inv.globals.session;
    return request;
}

std::string encode_request(rpc_request const& request) {
    return json::serialize(json::object{
        {"jsonrpc", "2.0"}, {"id", 1}, {"method", request.method}, {"params", request.params}});
}

std::variant<json::value, rpc_error> decode_response(std::string_view body) {
    boost::system::error_code ec;
    auto doc = json::parse(body, ec);
    auto const* reply = ec ? nullptr : doc.if_object();
    if (reply != nullptr) {
        if (auto const* result = reply->if_contains("result")) return *result;
        if (auto const* error = reply->if_contains("error"); error && error->is_object()) {
            auto const& e = error->get_object();
            auto const* code = e.if_contains("code");
            auto const* data = e.if_contains("data");
            return rpc_error{code && code->is_int64() ? code->get_int64() : 0,
                             string_member(e, "message"), data ? *data : json::value{}};
        }
    }
    throw transport_error("the reply is not a JSON-RPC response (is this agentd?)");
}

std::string describe(rpc_error const& error) {
    auto text = fmt::format("error {}: {}", error.code, error.message);
    if (auto const* data = error.data.if_object()) {
        if (data->contains("field")) {
            text += fmt::format(" (field {}: {})", string_member(*data, "field"),
                                string_member(*data, "reason"));
        }
        if (data->contains("limit"))
            text += fmt::format(" (limit {})", string_member(*data, "limit"));
    }
    return text;
}

}  // namespace agentctl
