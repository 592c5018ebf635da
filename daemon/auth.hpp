// Caller identity and request guards (DESIGN §6): the bearer token kept in $STATE_DIR/token,
// and the Host/Origin checks that stop DNS-rebinding pages from reaching a localhost daemon.
// Pure functions plus the token file; no sockets.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::daemon {

// Host header names a loopback host (localhost, *.localhost, 127.x.y.z, [::1]), any port,
// or one of `extra` (configured names).
bool host_allowed(std::string_view host, std::vector<std::string> const& extra = {});
// Origin is http(s):// + an allowed host, or one of `extra` exactly.
bool origin_allowed(std::string_view origin, std::vector<std::string> const& extra = {});
// The token of "Bearer <token>" (scheme case-insensitive), or empty. Tokens are compared as
// hashes, in constant time, by principals::find.
std::string_view bearer_token(std::string_view authorization);

// Browsers cannot set headers on a WebSocket, so /ws also takes the token as a subprotocol:
// the client offers `agentd.v1` and `agentd.bearer.<token>`, the server selects `agentd.v1`.
inline constexpr std::string_view ws_subprotocol = "agentd.v1";
inline constexpr std::string_view ws_bearer_prefix = "agentd.bearer.";
// The tokens a Sec-WebSocket-Protocol list offers as `agentd.bearer.<token>`, in order.
std::vector<std::string_view> subprotocol_bearers(std::string_view protocols);
// Whether the list offers `name` (the one the server then selects).
bool subprotocol_offered(std::string_view protocols, std::string_view name);

// Creates the state directory (0700) when missing; throws std::runtime_error when unusable.
void ensure_state_dir(std::filesystem::path const& state_dir);

// Reads $STATE_DIR/token, creating the directory (0700) and a random token on first start; the
// token gets `mode` (token_mode: 0600 or 0640) whether new or not, so a changed setting applies
// to an existing token. Throws std::runtime_error with a clear message when unusable.
std::string load_or_create_token(std::filesystem::path const& state_dir, mode_t mode = 0600);

}  // namespace agentd::daemon
