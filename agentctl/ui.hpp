// `agentctl ui`: the URL of agentd's dashboard with the token in its fragment (#token=…, which
// browsers never send to a server, so it reaches no log), printed or handed to xdg-open.
#pragma once

#include "cli.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace agentctl {

// http://HOST:PORT[/PREFIX]/ui, plus #token=<percent-encoded token> when there is one.
std::string dashboard_url(std::string_view url, std::optional<std::string> const& token);

// Prints the URL; with --open also starts xdg-open on it. Returns the exit code.
int run_ui(invocation const& inv);

}  // namespace agentctl
