// Where agentctl finds agentd and its token: the URL and state-directory precedence over the
// daemon's own defaults and URL syntax (common/), so a client beside it needs no configuration.
#pragma once

#include "cli.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentctl {

struct endpoint {
    std::string host;  // IPv6 without brackets; empty for a unix socket
    std::string port;
    std::string socket_path;  // set for unix:/PATH
    std::string target;       // "/rpc", or "PREFIX/rpc" behind a reverse proxy
    std::string host_header;
    bool is_unix() const { return !socket_path.empty(); }
};

struct credentials {
    std::optional<std::string> token;
    std::string source;  // where the token came from, or why there is none; never the token
};

// --url, else $AGENTD_URL, else the daemon's default listener.
std::string resolve_url(global_options const& globals);

// Accepts http://HOST[:PORT][/PREFIX], http://[IPV6][:PORT][/PREFIX] and unix:PATH (common::
// parse_url's syntax; agentctl speaks no TLS, so not https://). Throws usage_error.
endpoint parse_url(std::string_view url);

// --state-dir, $AGENTD_STATE_DIR, then the daemon's default (common::default_state_dir: an
// absolute $XDG_STATE_HOME only); empty when none applies.
std::filesystem::path resolve_state_dir(global_options const& globals);

// The system service's token, readable by the members of group agentd (DESIGN §6).
inline constexpr char const* system_token_path = "/var/lib/agentd/token";

// --token, --token-file, $AGENTD_TOKEN, then STATE_DIR/token, then (when the state dir is the
// default one) the first readable file of `fallbacks`; no file at all means no token.
credentials resolve_credentials(global_options const& globals,
                                std::vector<std::filesystem::path> const& fallbacks);
// The same with `fallbacks` = {system_token_path}.
credentials resolve_credentials(global_options const& globals);

}  // namespace agentctl
