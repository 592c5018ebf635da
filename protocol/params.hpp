// Typed params of the five agents_* methods (DESIGN §2), parsed and validated once here so
// handlers never touch raw JSON. Every rejection names the exact field (`tasks[2].prompt`).
#pragma once

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

struct task {
    std::string prompt;
    std::string description;
    std::optional<std::string> agent;
    std::optional<std::string> model;  // "provider/model"
    std::optional<std::string> system;
    std::optional<std::string> directory;
    std::optional<std::int64_t> timeout_ms;
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
};

struct cancel_params {
    std::optional<std::string> session;
    std::vector<std::string> jobs;
};

struct peek_params {
    std::optional<std::string> session;
    std::string job;
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
result<subscribe_params> parse_subscribe(boost::json::value const& params);

bool valid_session_name(std::string_view s);

}  // namespace agentd::protocol
