// Validation of agents_* params: types, ranges, formats and unknown keys, each failure reported
// as -32602 with the field path. Limits that are policy (max_tasks) answer -32001 instead.
#include "protocol/params.hpp"

#include <fmt/format.h>
#include <boost/json/object.hpp>

#include <algorithm>
#include <initializer_list>
#include <limits>

namespace agentd::protocol {
namespace json = boost::json;

namespace {

// Reads fields of one JSON object, remembering the path for error messages.
class reader {
  public:
    reader(json::object const& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

    std::string field(std::string_view key) const {
        return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
    }

    json::value const* get(std::string_view key) const {
        auto const* v = obj_.if_contains(key);
        return v && !v->is_null() ? v : nullptr;
    }

    // Rejects keys outside `known`: a typo in a field name must not be silently ignored.
    std::optional<rpc_error> only(std::initializer_list<std::string_view> known) const {
        for (auto const& kv : obj_) {
            if (std::find(known.begin(), known.end(), kv.key()) == known.end())
                return invalid_params(field(kv.key()), "unknown field");
        }
        return std::nullopt;
    }

    result<std::optional<std::string>> opt_string(std::string_view key, std::size_t max_len,
                                                  bool allow_empty = true) const {
        auto const* v = get(key);
        if (!v) return std::optional<std::string>{};
        if (!v->is_string()) return invalid_params(field(key), "must be a string");
        auto const& s = v->get_string();
        if (!allow_empty && s.empty()) return invalid_params(field(key), "must not be empty");
        if (s.size() > max_len)
            return invalid_params(field(key), fmt::format("longer than {} bytes", max_len));
        return std::optional<std::string>{std::string(s)};
    }

    result<std::optional<std::int64_t>> opt_int(std::string_view key, std::int64_t min,
                                                std::int64_t max) const {
        auto const* v = get(key);
        if (!v) return std::optional<std::int64_t>{};
        if (!v->is_int64() && !v->is_uint64())
            return invalid_params(field(key), "must be an integer");
        // A uint64 only arises above INT64_MAX, which is out of every range here.
        if (v->is_uint64() || v->get_int64() < min || v->get_int64() > max)
            return invalid_params(field(key), fmt::format("must be between {} and {}", min, max));
        return std::optional<std::int64_t>{v->get_int64()};
    }

    // Unlike other optional fields, an explicit null is not "absent": a caller that sends
    // `"session": null` must not silently land in the default session (DESIGN §2).
    // Absent stays absent: which default applies depends on the transport (caller::owner()).
    result<std::optional<std::string>> session() const {
        auto const* v = obj_.if_contains("session");
        if (!v) return std::optional<std::string>{};
        if (!v->is_string() || !valid_session_name(v->get_string()))
            return invalid_params(field("session"), "must match [A-Za-z0-9._:-]{1,128}");
        return std::optional<std::string>{std::string(v->get_string())};
    }

    result<std::optional<std::vector<std::string>>> opt_ids(std::string_view key) const {
        auto const* v = get(key);
        if (!v) return std::optional<std::vector<std::string>>{};
        if (!v->is_array()) return invalid_params(field(key), "must be an array of job ids");
        auto const& arr = v->get_array();
        if (arr.size() > max_job_ids)
            return invalid_params(field(key), fmt::format("more than {} ids", max_job_ids));
        std::vector<std::string> ids;
        ids.reserve(arr.size());
        for (std::size_t i = 0; i < arr.size(); ++i) {
            if (!arr[i].is_string() || arr[i].get_string().size() > 256)
                return invalid_params(fmt::format("{}[{}]", field(key), i),
                                      "must be a job id string");
            ids.emplace_back(arr[i].get_string());
        }
        return std::optional<std::vector<std::string>>{std::move(ids)};
    }

  private:
    json::object const& obj_;
    std::string path_;
};

json::object const& empty_object() {
    static json::object const empty;
    return empty;
}

// Params must be an object or absent; by-position params are not offered.
result<json::object const*> as_object(json::value const& params) {
    if (params.is_null()) return &empty_object();
    if (!params.is_object()) return invalid_params("params", "must be an object");
    return &params.get_object();
}

// The prologue every method shares: params an object (or absent), no unknown keys, the owner
// session; then `rest` reads the method's own fields into `p` (an error, or nullopt).
template <class P, class Rest>
result<P> parse_object(json::value const& params, std::initializer_list<std::string_view> known,
                       Rest rest) {
    auto obj = as_object(params);
    if (!obj) return obj.error();
    reader r(**obj, "");
    if (auto e = r.only(known)) return *e;
    P p;
    auto session = r.session();
    if (!session) return session.error();
    p.session = std::move(*session);
    if (auto e = rest(r, p)) return *e;
    return p;
}

bool valid_model(std::string_view m) {
    auto slash = m.find('/');
    return slash != std::string_view::npos && slash > 0 && slash + 1 < m.size();
}

bool valid_upstream_session(std::string_view s) {
    return s.size() > 3 && s.size() <= 128 && s.substr(0, 3) == "ses" &&
           std::all_of(s.begin(), s.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
           });
}

// A cost bound in the upstream's currency: at least 0 (0 allows nothing billed).
result<std::optional<double>> opt_cost(reader const& r, std::string_view key) {
    auto const* v = r.get(key);
    if (!v) return std::optional<double>{};
    if (!v->is_number()) return invalid_params(r.field(key), "must be a number");
    auto n = v->to_number<double>();
    if (n < 0) return invalid_params(r.field(key), "must be a number of at least 0");
    return std::optional<double>{n};
}

result<std::optional<task_budget>> opt_budget(reader const& r) {
    auto const* v = r.get("budget");
    if (!v) return std::optional<task_budget>{};
    auto path = r.field("budget");
    if (!v->is_object()) return invalid_params(path, "must be an object");
    reader b(v->get_object(), path);
    if (auto e = b.only({"max_cost", "max_tokens"})) return *e;
    task_budget out;
    auto cost = opt_cost(b, "max_cost");
    if (!cost) return cost.error();
    out.max_cost = *cost;
    auto tokens = b.opt_int("max_tokens", 1, std::numeric_limits<std::int64_t>::max());
    if (!tokens) return tokens.error();
    out.max_tokens = *tokens;
    if (!out.max_cost && !out.max_tokens)
        return invalid_params(path, "must set max_cost or max_tokens");
    return std::optional<task_budget>{out};
}

constexpr std::size_t max_prompt_bytes = 512 * 1024;
constexpr std::size_t max_short_bytes = 1024;
constexpr std::size_t max_system_bytes = 256 * 1024;

result<task> parse_task(json::value const& v, std::string path) {
    if (!v.is_object()) return invalid_params(path, "must be an object");
    reader r(v.get_object(), path);
    if (auto e = r.only({"prompt", "description", "agent", "model", "system", "directory",
                         "timeout_ms", "permissions", "budget", "isolation", "continue"}))
        return *e;
    task t;
    auto prompt = r.opt_string("prompt", max_prompt_bytes, false);
    if (!prompt) return prompt.error();
    if (!*prompt) return invalid_params(r.field("prompt"), "is required");
    t.prompt = std::move(**prompt);

    auto description = r.opt_string("description", max_short_bytes);
    if (!description) return description.error();
    t.description = description->value_or("");
    auto agent = r.opt_string("agent", max_short_bytes, false);
    if (!agent) return agent.error();
    t.agent = std::move(*agent);
    auto model = r.opt_string("model", max_short_bytes, false);
    if (!model) return model.error();
    if (*model && !valid_model(**model))
        return invalid_params(r.field("model"), "must be \"provider/model\"");
    t.model = std::move(*model);
    auto system = r.opt_string("system", max_system_bytes);
    if (!system) return system.error();
    t.system = std::move(*system);
    auto directory = r.opt_string("directory", 4096, false);
    if (!directory) return directory.error();
    t.directory = std::move(*directory);
    auto timeout = r.opt_int("timeout_ms", 1, max_task_timeout_ms);
    if (!timeout) return timeout.error();
    t.timeout_ms = *timeout;
    auto permissions = r.opt_string("permissions", 8);
    if (!permissions) return permissions.error();
    if (*permissions) {
        t.permissions = from_string<permission_policy>(**permissions);
        if (!t.permissions)
            return invalid_params(r.field("permissions"), "must be \"ask\", \"allow\" or \"deny\"");
    }
    auto spend = opt_budget(r);
    if (!spend) return spend.error();
    t.budget = *spend;
    auto isolation = r.opt_string("isolation", 16);
    if (!isolation) return isolation.error();
    if (*isolation) {
        t.isolation = from_string<isolation_mode>(**isolation);
        if (!t.isolation) return invalid_params(r.field("isolation"), "must be \"worktree\"");
    }
    auto continues = r.opt_string("continue", 256, false);
    if (!continues) return continues.error();
    t.continues = std::move(*continues);
    // A follow-up runs where its job ran (DESIGN §2).
    if (t.continues && t.directory)
        return invalid_params(r.field("directory"), "not allowed with continue");
    if (t.continues && t.isolation)
        return invalid_params(r.field("isolation"), "not allowed with continue");
    return t;
}

}  // namespace

bool valid_session_name(std::string_view s) {
    return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
               c == '-';
    });
}

result<start_params> parse_start(json::value const& params, param_limits const& limits) {
    return parse_object<start_params>(
        params, {"session", "tasks", "upstream_parent"},
        [&](reader const& r, start_params& p) -> std::optional<rpc_error> {
            auto const* tasks = r.get("tasks");
            if (!tasks) return invalid_params("tasks", "is required");
            if (!tasks->is_array()) return invalid_params("tasks", "must be an array of tasks");
            auto const& arr = tasks->get_array();
            if (arr.empty()) return invalid_params("tasks", "must not be empty");
            if (arr.size() > limits.max_tasks_per_call)
                return too_many_tasks(static_cast<std::int64_t>(arr.size()),
                                      static_cast<std::int64_t>(limits.max_tasks_per_call));
            for (std::size_t i = 0; i < arr.size(); ++i) {
                auto t = parse_task(arr[i], fmt::format("tasks[{}]", i));
                if (!t) return t.error();
                p.tasks.push_back(std::move(*t));
            }

            auto parent = r.opt_string("upstream_parent", 128, false);
            if (!parent) return parent.error();
            if (*parent && !valid_upstream_session(**parent))
                return invalid_params("upstream_parent", "must be an upstream session id (ses…)");
            p.upstream_parent = std::move(*parent);
            return std::nullopt;
        });
}

result<status_params> parse_status(json::value const& params) {
    return parse_object<status_params>(
        params, {"session", "jobs"},
        [](reader const& r, status_params& p) -> std::optional<rpc_error> {
            auto ids = r.opt_ids("jobs");
            if (!ids) return ids.error();
            p.jobs = std::move(*ids);
            return std::nullopt;
        });
}

result<wait_params> parse_wait(json::value const& params) {
    return parse_object<wait_params>(
        params, {"session", "jobs", "mode", "timeout_ms", "on_input"},
        [](reader const& r, wait_params& p) -> std::optional<rpc_error> {
            auto ids = r.opt_ids("jobs");
            if (!ids) return ids.error();
            p.jobs = std::move(*ids);
            auto mode = r.opt_string("mode", 8);
            if (!mode) return mode.error();
            if (*mode) {
                auto known = from_string<wait_mode>(**mode);
                if (!known) return invalid_params("mode", "must be \"all\" or \"any\"");
                p.mode = *known;
            }
            auto timeout = r.opt_int("timeout_ms", 0, max_wait_timeout_ms);
            if (!timeout) return timeout.error();
            p.timeout_ms = timeout->value_or(default_wait_timeout_ms);
            auto on_input = r.opt_string("on_input", 8);
            if (!on_input) return on_input.error();
            if (*on_input && **on_input != "return" && **on_input != "ignore")
                return invalid_params("on_input", "must be \"return\" or \"ignore\"");
            p.ignore_input = *on_input && **on_input == "ignore";
            return std::nullopt;
        });
}

result<cancel_params> parse_cancel(json::value const& params) {
    return parse_object<cancel_params>(
        params, {"session", "jobs"},
        [](reader const& r, cancel_params& p) -> std::optional<rpc_error> {
            auto ids = r.opt_ids("jobs");
            if (!ids) return ids.error();
            if (!*ids) return invalid_params("jobs", "is required");
            p.jobs = std::move(**ids);
            return std::nullopt;
        });
}

result<peek_params> parse_peek(json::value const& params) {
    return parse_object<peek_params>(
        params, {"session", "job", "diff"},
        [](reader const& r, peek_params& p) -> std::optional<rpc_error> {
            auto job = r.opt_string("job", 256, false);
            if (!job) return job.error();
            if (!*job) return invalid_params("job", "is required");
            p.job = std::move(**job);
            if (auto const* diff = r.get("diff")) {
                if (!diff->is_bool()) return invalid_params("diff", "must be a boolean");
                p.diff = diff->get_bool();
            }
            return std::nullopt;
        });
}

result<worktree_remove_params> parse_worktree_remove(json::value const& params) {
    return parse_object<worktree_remove_params>(
        params, {"session", "job"},
        [](reader const& r, worktree_remove_params& p) -> std::optional<rpc_error> {
            auto job = r.opt_string("job", 256, false);
            if (!job) return job.error();
            if (!*job) return invalid_params("job", "is required");
            p.job = std::move(**job);
            return std::nullopt;
        });
}

namespace {

// agents_respond's `answers`: arrays of non-empty strings, bounded.
result<std::vector<std::vector<std::string>>> parse_answers(json::value const& v) {
    if (!v.is_array() || v.get_array().empty() || v.get_array().size() > max_answers)
        return invalid_params("answers", "must be a non-empty array of arrays of strings");
    std::vector<std::vector<std::string>> out;
    for (auto const& one : v.get_array()) {
        if (!one.is_array() || one.get_array().size() > max_answers)
            return invalid_params("answers", "must be a non-empty array of arrays of strings");
        std::vector<std::string> labels;
        for (auto const& label : one.get_array()) {
            if (!label.is_string() || label.get_string().empty() ||
                label.get_string().size() > max_answer_bytes)
                return invalid_params(
                    "answers", fmt::format("must hold strings of 1 to {} bytes", max_answer_bytes));
            labels.emplace_back(label.get_string());
        }
        out.push_back(std::move(labels));
    }
    return out;
}

}  // namespace

result<respond_params> parse_respond(json::value const& params) {
    return parse_object<respond_params>(
        params, {"session", "job", "request", "decision", "message", "answers"},
        [](reader const& r, respond_params& p) -> std::optional<rpc_error> {
            auto job = r.opt_string("job", 256, false);
            if (!job) return job.error();
            if (!*job) return invalid_params("job", "is required");
            p.job = std::move(**job);
            auto request = r.opt_string("request", 256, false);
            if (!request) return request.error();
            if (!*request) return invalid_params("request", "is required");
            p.request = std::move(**request);
            auto decision = r.opt_string("decision", 16);
            if (!decision) return decision.error();
            if (*decision) {
                p.decision = from_string<respond_decision>(**decision);
                if (!p.decision)
                    return invalid_params("decision",
                                          "must be \"allow\", \"allow_always\" or \"deny\"");
            }
            auto message = r.opt_string("message", max_answer_bytes);
            if (!message) return message.error();
            p.message = std::move(*message);
            if (auto const* answers = r.get("answers")) {
                auto parsed = parse_answers(*answers);
                if (!parsed) return parsed.error();
                p.answers = std::move(*parsed);
            }
            if (p.decision && p.answers)
                return invalid_params("answers", "give either a decision or answers, not both");
            if (!p.decision && !p.answers)
                return invalid_params("decision", "give a decision or answers");
            if (p.message && p.decision != respond_decision::deny)
                return invalid_params("message", "goes only with decision \"deny\"");
            return std::nullopt;
        });
}

result<subscribe_params> parse_subscribe(json::value const& params) {
    return parse_object<subscribe_params>(
        params, {"session", "all", "snapshot"},
        [](reader const& r, subscribe_params& p) -> std::optional<rpc_error> {
            if (auto const* all = r.get("all")) {
                if (!all->is_bool()) return invalid_params("all", "must be a boolean");
                p.all = all->get_bool();
            }
            if (auto const* snapshot = r.get("snapshot")) {
                if (!snapshot->is_bool()) return invalid_params("snapshot", "must be a boolean");
                p.snapshot = snapshot->get_bool();
            }
            if (p.all == p.session.has_value())
                return invalid_params("session", "give either a session or all: true");
            return std::nullopt;
        });
}

}  // namespace agentd::protocol
