// `agentctl service install|uninstall|status`: agentd as a systemd user service, without root.
// The units are packaging/user/'s (user_units.hpp) with ExecStart pointing at the agentd found,
// written to $XDG_CONFIG_HOME/systemd/user and driven with `systemctl --user`.
#pragma once

#include "cli.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace agentctl {

struct user_unit_texts {
    std::string service;
    std::string socket;
};

// packaging/user/'s units with ExecStart = `agentd` (and --upstream-url), and the socket's
// address replaced by --listen.
user_unit_texts make_user_units(std::filesystem::path const& agentd, service_options const& o);

// --agentd; else the agentd beside `self` (agentctl's own file) or at ../daemon/agentd (a build
// tree); else agentd in $PATH. nullopt when none is an executable file.
std::optional<std::filesystem::path> find_agentd(std::optional<std::string> const& given,
                                                 std::filesystem::path const& self);

// $XDG_CONFIG_HOME/systemd/user (an absolute one), else ~/.config/systemd/user.
std::filesystem::path user_unit_dir();

// Runs the command's service subcommand; returns the exit code.
int run_service(invocation const& inv);

}  // namespace agentctl
