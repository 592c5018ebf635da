// The daemon's configuration (DESIGN §8): listeners, state dir, auth, upstream and limits,
// parsed from flags. Defaults live here and nowhere else.
#pragma once

#include "daemon/rpc.hpp"
#include "jobs/manager.hpp"
#include "planner/traits.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace agentd::daemon {

enum class auth_mode { token, none };

struct config {
    std::vector<std::string> listen{"127.0.0.1:7077"};
    std::string state_dir;  // resolved default when empty after parsing
    auth_mode auth = auth_mode::token;
    std::string upstream_backend = "opencode";
    std::string upstream_url = "http://127.0.0.1:4096";
    std::optional<std::string> upstream_username;
    std::optional<std::string> upstream_password;  // from $OPENCODE_SERVER_PASSWORD; never logged
    std::chrono::milliseconds upstream_timeout{30'000};
    std::optional<std::string> upstream_model;    // openai: for tasks that name no model
    std::optional<std::string> upstream_api_key;  // openai: from a file or env var; never logged
    std::optional<std::string> upstream_ca_file;  // https: CAs trusted besides the system's
    jobs::limits limits;
    std::size_t max_body_bytes = 1 << 20;
    std::size_t max_connections = 1024;
    std::chrono::milliseconds read_timeout{30'000};    // per request, and idle keep-alive
    std::chrono::milliseconds shutdown_grace{10'000};  // SIGTERM: running jobs may finish
    std::size_t ws_max_outbox_bytes = 8 << 20;
    std::chrono::milliseconds ws_idle_timeout{300'000};
    planner::policy approval;
    dispatch_mode dispatch = dispatch_mode::planned;
    std::vector<std::string> allowed_hosts;
    std::vector<std::string> allowed_origins;
};

// The parsed config, or the exit code to leave with (0 after --help, 2 on a usage error; the
// message has been printed).
std::variant<config, int> parse_config(int argc, char** argv);

// $STATE_DIRECTORY, else $XDG_STATE_HOME/agentd, else ~/.local/state/agentd.
std::string default_state_dir();

}  // namespace agentd::daemon
