// One agentctl run: find the daemon, send the command's request, print the answer.
// Separate from main so the flow is a library function like the rest of the client.
#pragma once

#include "cli.hpp"
#include "rpc.hpp"

#include <boost/json/object.hpp>

#include <variant>

namespace agentctl {

// Returns the process exit code (exit_codes.hpp); prints results to stdout, diagnostics to stderr.
int run(invocation const& inv);

// One HTTP request for the command and its printed result (what run() does when nothing is live).
int run_request(invocation const& inv);

// One JSON-RPC call (under --timeout-ms) with the invocation's URL and token, and its --session
// unless the params name one: its result, or the exit code of a failure already reported on
// stderr.
std::variant<boost::json::object, int> call(invocation const& inv, rpc_request request);

}  // namespace agentctl
