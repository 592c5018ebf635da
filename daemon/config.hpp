// The daemon's configuration (DESIGN §8): listeners, state dir, auth, upstream and limits,
// from a TOML file (--config) and flags, flags winning. Defaults live here and nowhere else.
#pragma once

#include "common/log.hpp"
#include "jobs/manager.hpp"
#include "jobs/upstream/backend.hpp"
#include "planner/traits.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace agentd::daemon {

enum class auth_mode { token, none };
BOOST_DESCRIBE_ENUM(auth_mode, token, none)

// Where job rows live (DESIGN §7, §9): SQLite in the state directory, or a PostgreSQL database.
enum class store_backend { sqlite, postgres };
BOOST_DESCRIBE_ENUM(store_backend, sqlite, postgres)

struct config {
    std::vector<std::string> listen{"127.0.0.1:7077"};
    std::string state_dir;  // resolved default when empty after parsing
    auth_mode auth = auth_mode::token;
    store_backend store = store_backend::sqlite;
    std::optional<std::string> store_url;  // postgres://…; may hold a password: never logged
    // Several instances on one PostgreSQL store (DESIGN §9): this one's name (unset: kept in
    // STATE_DIR/instance, made once) and the lease time after which another takes its jobs.
    std::optional<std::string> store_instance;
    std::chrono::milliseconds store_lease_ttl{15'000};
    unsigned token_mode = 0600;  // 0640: the system service's group agentd may read the token
    // Named principals' token hashes (auth.tokens_file); unset: STATE_DIR/tokens.toml if it exists.
    std::optional<std::string> tokens_file;
    jobs::upstream::backend_kind upstream_backend = jobs::upstream::backend_kind::opencode;
    // Several servers of one backend (jobs/upstream/pool.hpp); one is today's single upstream.
    std::vector<std::string> upstream_urls{"http://127.0.0.1:4096"};
    std::size_t upstream_max_running_per_server = 0;            // 0: no cap per server
    std::chrono::milliseconds upstream_health_interval{2'000};  // several servers only
    std::optional<std::string> upstream_username;
    std::optional<std::string> upstream_password_file;  // else $OPENCODE_SERVER_PASSWORD
    std::optional<std::string> upstream_password;       // loaded; never logged or printed
    std::chrono::milliseconds upstream_timeout{30'000};
    std::optional<std::string> upstream_model;         // openai: for tasks that name no model
    std::optional<std::string> upstream_api_key_env;   // openai: where the key is: a variable
    std::optional<std::string> upstream_api_key_file;  // or a file (the two exclude each other)
    std::optional<std::string> upstream_api_key;       // loaded; never logged or printed
    std::optional<std::string> upstream_ca_file;       // https: CAs trusted besides the system's
    jobs::limits limits;
    // Limits of the transports rather than of jobs (DESIGN §3, §6).
    std::size_t max_response_bytes = 16 << 20;
    std::size_t max_mcp_sessions = 1024;  // per principal
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_connections = 1024;
    std::chrono::milliseconds read_timeout{30'000};          // per request, and idle keep-alive
    std::chrono::milliseconds first_request_timeout{5'000};  // a new connection's first head
    std::chrono::milliseconds shutdown_grace{10'000};        // SIGTERM: running jobs may finish
    std::size_t ws_max_outbox_bytes = 8 << 20;
    std::chrono::milliseconds ws_idle_timeout{300'000};
    planner::policy approval;
    std::vector<std::string> allowed_hosts;
    std::vector<std::string> allowed_origins;
    log::level log_level = log::level::info;
    log::format log_format = log::format::text;
};

// What the command line asks for: run with `run`, or leave with `exit_code` after printing
// `output` (--help, --version and --print-config: stdout, exit 0; errors: stderr, exit 2).
struct startup {
    std::optional<config> run;
    int exit_code = 0;
    std::string output;
};

// `args` as main's argv (args[0] is the program). Reads the --config file and the secrets.
startup read_startup(std::vector<std::string> const& args);

// read_startup on main's arguments, printing its output: the config, or the exit code.
std::variant<config, int> parse_config(int argc, char** argv);

// The config as TOML, in the --config format; secrets are redacted (only whether they are set).
std::string config_to_toml(config const& c);

// common::default_state_dir() (the one agentctl looks in), else ./.local/state/agentd.
std::string default_state_dir();

}  // namespace agentd::daemon
