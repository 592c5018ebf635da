// Where agentd keeps its state (the token, the database) when not told, and where the token is
// in it: the daemon creates the token there and agentctl reads it from there, so both ask here.
// Empty environment variables count as unset, as the XDG Base Directory spec asks.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace agentd::common {

// The variable's value; nullopt when it is unset or empty.
std::optional<std::string> env(char const* name);

// $STATE_DIRECTORY (systemd; its first entry), else $XDG_STATE_HOME/agentd when that is an
// absolute path (the spec says to ignore a relative one), else $HOME/.local/state/agentd;
// empty when HOME is unset too.
std::filesystem::path default_state_dir();

// STATE_DIR/token.
std::filesystem::path token_path(std::filesystem::path const& state_dir);

}  // namespace agentd::common
