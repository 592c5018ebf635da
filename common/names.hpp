// The names operators give things agentd keys by: principals (the tokens file) and instances
// sharing a store (store.instance). One rule for both, so either is safe in a TOML key, a log
// field, a NOTIFY payload and an MCP session id prefix.
#pragma once

#include <string_view>

namespace agentd::common {

// [A-Za-z0-9_.-]{1,64}
bool valid_name(std::string_view name);

}  // namespace agentd::common
