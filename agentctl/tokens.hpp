// `agentctl token add|list|revoke`: edits the tokens file of agentd's named principals
// (common/tokens_file.hpp) in place, atomically; a new token is printed once and only its hash
// is stored. agentd reads the file at start and on SIGHUP (`systemctl reload agentd`).
#pragma once

#include "cli.hpp"

namespace agentctl {

// Runs the command's token subcommand; returns the exit code (exit_codes.hpp).
int run_token(invocation const& inv);

}  // namespace agentctl
