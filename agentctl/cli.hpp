// Command-line grammar of agentctl: global options, the commands and their arguments.
// Parsing only; turning a command into JSON-RPC params is rpc.hpp's job, so both stay testable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agentctl {

struct global_options {
    std::optional<std::string> url;
    std::optional<std::string> token;
    std::optional<std::string> token_file;
    std::optional<std::string> state_dir;
    std::optional<std::string> session;
    bool json = false;
    std::int64_t http_timeout_ms = 30'000;  // --http-timeout-ms: one HTTP exchange's deadline
};

enum class command_kind {
    start,
    status,
    wait,
    cancel,
    peek,
    ui,
    watch,
    respond,
    diff,
    worktree_rm,
    service_install,
    service_uninstall,
    service_status,
    token_add,
    token_list,
    token_revoke
};

// Fields of a DESIGN §2 Task that `start` takes as options and applies to every task it sends.
struct task_options {
    std::optional<std::string> description;
    std::optional<std::string> agent;
    std::optional<std::string> model;
    std::optional<std::string> system;
    std::optional<std::string> directory;
    std::optional<std::string> isolation;  // "worktree": a git worktree of --directory per job
    std::optional<std::int64_t> timeout_ms;
    std::optional<std::string> continues;  // --continue JOB: a follow-up of that job
};

// `service install`: what goes into the per-user units.
struct service_options {
    std::optional<std::string> agentd;  // else found beside agentctl or in PATH
    std::optional<std::string> upstream_url;
    std::optional<std::string> listen;  // the socket's address instead of 127.0.0.1:7077
    bool no_start = false;
};

// `token add|list|revoke`: the tokens file of agentd's named principals (tokens.hpp).
struct token_options {
    std::optional<std::string> tokens_file;  // else STATE_DIR/tokens.toml, as agentd
    bool admin = false;
    std::int64_t max_running = 0;  // 0: only agentd's limits.max_running
};

struct command {
    command_kind kind = command_kind::status;
    std::vector<std::string> args;  // PROMPTs for start, job ids for the others
    task_options task;
    std::optional<std::string> tasks_file;  // "-" reads stdin
    bool wait_any = false;
    std::optional<std::int64_t> wait_timeout_ms;  // unset: wait until the jobs end
    std::vector<std::string> states;              // status --state: show only jobs in these
    bool cancel_all = false;                      // cancel --all: the session's unfinished jobs
    bool open_browser = false;                    // ui --open
    bool start_wait = false;                      // start --wait: then wait for the jobs it started
    bool quiet = false;                           // start --quiet: only the job ids, one per line
    bool watch_all = false;                       // watch --all: every session of the caller
    bool until_idle = false;  // watch --until-idle: stop once no job is queued or running
    bool watch_once = false;  // watch --once: print the table once
    // wait, watch, start --wait: --on-input ignore (agents_wait on_input) waits through requests
    // instead of asking at the terminal or exiting 5.
    bool ignore_input = false;
    // respond: the REQUEST id, allow/always/deny (as typed), --message, the --answer values.
    std::string request;
    std::optional<std::string> decision;
    std::optional<std::string> message;
    std::vector<std::string> answers;
    service_options service;
    token_options token;  // args[0]: the principal's NAME
};

struct invocation {
    global_options globals;
    command cmd;
};

// "90s", "1500ms", "2m", "1h" or plain seconds ("2.5") in milliseconds; nullopt when malformed.
std::optional<std::int64_t> parse_duration_ms(std::string_view text);

// On --help or a usage error the message is already printed and the exit code comes back instead.
std::variant<invocation, int> parse_cli(int argc, const char* const* argv);

}  // namespace agentctl
