// Typed params of the five agents_* methods (DESIGN §2), parsed and validated once here so
// handlers never touch raw JSON. Every rejection names the exact field (`tasks[2].prompt`).
#pragma once

#include "protocol/boxed.hpp"
#include "protocol/enum_names.hpp"
#include "protocol/errors.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agentd::protocol {

// The owner session of a call that names none and comes from no MCP session (DESIGN §2). The
// params keep `session` absent; daemon::caller::owner() applies the defaults, in one place.
inline constexpr std::string_view default_session = "default";
inline constexpr std::int64_t default_wait_timeout_ms = 30'000;
inline constexpr std::int64_t max_wait_timeout_ms = 3'600'000;
inline constexpr std::int64_t max_task_timeout_ms = 7 * 24 * 3'600'000LL;
inline constexpr std::size_t max_job_ids = 1024;

// upstream.permissions and a task's `permissions` (DESIGN §2 requests).
enum class permission_policy { ask, allow, deny };
BOOST_DESCRIBE_ENUM(permission_policy, ask, allow, deny)

// A task's spending bound (DESIGN §2 `budget`): past either, the job is aborted and fails
// `kind: limit`. Tokens count input + output as the upstream reports them. A task's budget
// replaces limits.default_max_cost; it sets at least one bound.
struct task_budget {
    std::optional<double> max_cost;
    std::optional<std::int64_t> max_tokens;
    bool operator==(task_budget const&) const = default;
};

// Task `isolation` (DESIGN §2): "worktree" runs the job in a fresh git worktree (opencode).
enum class isolation_mode { worktree };
BOOST_DESCRIBE_ENUM(isolation_mode, worktree)

// A job keeps its task for its whole life: the optional fields most tasks leave out are boxed.
struct task {
    std::string prompt;
    std::string description;
    boxed<std::string> agent;
    boxed<std::string> model;  // "provider/model"
    boxed<std::string> system;
    boxed<std::string> directory;
    std::optional<std::int64_t> timeout_ms;
    std::optional<permission_policy> permissions;
    boxed<task_budget> budget;
    std::optional<isolation_mode> isolation;
    // `continue`: the job whose upstream session this task's turn follows (DESIGN §2).
    boxed<std::string> continues;
};

struct start_params {
    std::optional<std::string> session;
    std::vector<task> tasks;
    std::optional<std::string> upstream_parent;
};

struct status_params {
    std::optional<std::string> session;
    std::optional<std::vector<std::string>> jobs;
};

enum class wait_mode { all, any };
BOOST_DESCRIBE_ENUM(wait_mode, all, any)

struct wait_params {
    std::optional<std::string> session;
    std::optional<std::vector<std::string>> jobs;
    wait_mode mode = wait_mode::all;
    std::int64_t timeout_ms = default_wait_timeout_ms;
    // on_input: "ignore" sleeps through `waiting` jobs; "return" (default) ends the wait on one.
    bool ignore_input = false;
};

struct cancel_params {
    std::optional<std::string> session;
    std::vector<std::string> jobs;
};

struct peek_params {
    std::optional<std::string> session;
    std::string job;
    bool diff = false;  // also the files the job's turn changed (`changes`)
};

// agents_worktree_remove (DESIGN names no method for agentctl worktree rm): the job whose
// worktree opencode removes.
struct worktree_remove_params {
    std::optional<std::string> session;
    std::string job;
};

// agents_respond: a permission takes `decision`; a question `answers` (one array of labels per
// question) or `decision: deny`. What fits the request is checked against it (jobs layer).
inline constexpr std::size_t max_answer_bytes = 4096;
inline constexpr std::size_t max_answers = 64;

enum class respond_decision { allow, allow_always, deny };
BOOST_DESCRIBE_ENUM(respond_decision, allow, allow_always, deny)

struct respond_params {
    std::optional<std::string> session;
    std::string job;
    std::string request;
    std::optional<respond_decision> decision;
    std::optional<std::string> message;
    std::optional<std::vector<std::vector<std::string>>> answers;
};

// agents_subscribe / agents_unsubscribe (WebSocket only): one session of the caller's
// principal, or all of them (`all: true`, for dashboards). `snapshot: true` (subscribe only)
// also answers the jobs followed from now on, so a client starts from a complete picture.
inline constexpr std::size_t max_snapshot_jobs = 1000;

struct subscribe_params {
    std::optional<std::string> session;
    bool all = false;
    bool snapshot = false;
};

struct param_limits {
    std::size_t max_tasks_per_call = 8;
};

// `params` is the request's params (null when absent, which means {}).
result<start_params> parse_start(boost::json::value const& params, param_limits const& limits);
result<status_params> parse_status(boost::json::value const& params);
result<wait_params> parse_wait(boost::json::value const& params);
result<cancel_params> parse_cancel(boost::json::value const& params);
result<peek_params> parse_peek(boost::json::value const& params);
result<worktree_remove_params> parse_worktree_remove(boost::json::value const& params);
result<respond_params> parse_respond(boost::json::value const& params);
result<subscribe_params> parse_subscribe(boost::json::value const& params);

bool valid_session_name(std::string_view s);

}  // namespace agentd::protocol
