// What `wait` and `watch` do when a job waits for a permission or an answer (DESIGN §2
// Requests): on a terminal, ask inline and send agents_respond; otherwise print the requests
// for a script and end with exit 5 (input needed).
#pragma once

#include "cli.hpp"
#include "requests.hpp"

#include <optional>
#include <vector>

namespace agentctl {

// Whether a person can be asked here: stdin and stdout are terminals and --json is off.
bool can_ask(invocation const& inv);

// The requests' lines (request_lines) on stdout.
void print_requests(std::vector<input_request> const& requests);

// The stderr note that tells how to answer: agentctl respond JOB REQUEST ….
void print_input_hint();

// Asks about each request at the terminal and answers it (a request answered elsewhere
// meanwhile is reported and skipped), then returns nullopt so the caller keeps waiting. Where
// nobody can be asked (or stdin ends), prints the requests and returns exit_input_needed.
std::optional<int> settle(invocation const& inv, std::vector<input_request> const& requests);

}  // namespace agentctl
