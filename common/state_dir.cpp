// The default state dir and the token's place in it; see state_dir.hpp.
#include "common/state_dir.hpp"

#include <cstdlib>

namespace agentd::common {

std::optional<std::string> env(char const* name) {
    char const* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return value;
}

std::filesystem::path default_state_dir() {
    // systemd joins several StateDirectory= entries with ':'; the daemon's own is the first.
    if (auto dirs = env("STATE_DIRECTORY")) return dirs->substr(0, dirs->find(':'));
    if (auto xdg = env("XDG_STATE_HOME"); xdg && xdg->starts_with('/'))
        return std::filesystem::path(*xdg) / "agentd";
    if (auto home = env("HOME")) return std::filesystem::path(*home) / ".local/state/agentd";
    return {};
}

std::filesystem::path token_path(std::filesystem::path const& state_dir) {
    return state_dir / "token";
}

}  // namespace agentd::common
