// Exit codes agentctl promises to scripts, and the two errors that end a run early with one of
// them. Kept apart from the parser so every part of the client can raise them without seeing CLI11.
#pragma once

#include <stdexcept>

namespace agentctl {

enum exit_code : int {
    exit_ok = 0,
    exit_failed = 1,  // a job did not complete, or the daemon answered with a JSON-RPC error
    exit_usage = 2,
    exit_timed_out = 3,
    exit_not_running = 3,    // service status: agentd is not running, or not healthy
    exit_unreachable = 4,    // no connection, an HTTP error, or a reply that is not JSON-RPC
    exit_input_needed = 5,   // a job waits for a permission or an answer nobody could give here
    exit_unknown_job = 6,    // an id the daemon does not know (or another owner's job)
    exit_unknown_name = 6,   // token revoke: no principal of that name in the tokens file
    exit_interrupted = 130,  // Ctrl-C ended a wait (128 + SIGINT, as shells report it); jobs go on
};

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct transport_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace agentctl
