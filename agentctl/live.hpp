// The commands that follow jobs live over /ws: `watch` (a table of the session's jobs, redrawn
// on every agents_event, or one plain line per change when stdout is not a terminal) and the
// progress display of `wait` and `start --wait` on a terminal.
#pragma once

#include "cli.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace agentctl {

// The width of the terminal on stdout, 80 when it is not one.
std::size_t terminal_columns();

// Whether wait should draw live progress: stdout is a terminal and --json is off.
bool wants_live_display(invocation const& inv);

// Both return the process exit code (exit_codes.hpp) and map failures like run() does.
int run_watch(invocation const& inv);
// Waits for `ids` (empty: the session's unfinished jobs) with a live per-job display, then
// prints the result like `wait` does.
int run_live_wait(invocation const& inv, std::vector<std::string> ids);

}  // namespace agentctl
