// URL parsing, state-directory precedence and token lookup for agentctl.
// Empty environment variables count as unset, as the XDG spec asks and as shells make easy.
#include "discover.hpp"

#include "exit_codes.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace agentctl {
namespace {

constexpr std::string_view default_url = "http://127.0.0.1:7077";
constexpr std::string_view http_scheme = "http://";
constexpr std::string_view unix_scheme = "unix:";

std::optional<std::string> env(char const* name) {
    char const* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return value;
}

bool is_port(std::string_view s) {
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), is_digit)) return false;
    int n = std::stoi(std::string(s));
    return n > 0 && n <= 65535;
}

// Splits "HOST[:PORT]" or "[IPV6][:PORT]" into host and port ("80" when absent).
std::pair<std::string, std::string> split_authority(std::string_view authority,
                                                    std::string_view url) {
    std::string_view host = authority;
    std::string_view rest;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            throw usage_error(fmt::format("bad URL {}: missing ]", url));
        host = authority.substr(1, close - 1);
        rest = authority.substr(close + 1);
    } else if (authority.find(':') != authority.rfind(':')) {
        throw usage_error(fmt::format("bad URL {}: an IPv6 address needs [brackets]", url));
    } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        rest = authority.substr(colon);
    }
    if (host.empty()) throw usage_error(fmt::format("bad URL {}: no host", url));
    if (rest.empty()) return {std::string(host), "80"};
    if (!rest.starts_with(':') || !is_port(rest.substr(1))) {
        throw usage_error(fmt::format("bad URL {}: bad port", url));
    }
    return {std::string(host), std::string(rest.substr(1))};
}

std::string rpc_target(std::string_view prefix) {
    while (prefix.ends_with('/')) prefix.remove_suffix(1);
    return std::string(prefix) + "/rpc";
}

std::string_view trimmed(std::string_view s) {
    auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// A bearer token is one visible-ASCII word; anything else would corrupt the header.
std::string checked_token(std::string_view raw, std::string_view source) {
    auto token = trimmed(raw);
    auto visible = [](char c) { return c > ' ' && c < 0x7f; };
    if (token.empty() || !std::all_of(token.begin(), token.end(), visible)) {
        throw usage_error(
            fmt::format("token from {} is empty or not one visible-ASCII word", source));
    }
    return std::string(token);
}

credentials token_from_file(std::filesystem::path const& path, bool required) {
    std::ifstream in(path);
    if (!in) {
        // libstdc++ opens with open(2), so errno tells a missing file from a forbidden one.
        std::error_code why(errno, std::generic_category());
        auto reason = fmt::format("{}: {}", path.string(), why.message());
        if (required) throw usage_error("cannot read token file " + reason);
        return {std::nullopt, "no token: " + reason};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (!required && trimmed(text.str()).empty())
        return {std::nullopt, "no token: " + path.string() + " is empty"};
    return {checked_token(text.str(), path.string()), path.string()};
}

}  // namespace

std::string resolve_url(global_options const& globals) {
    if (globals.url) return *globals.url;
    return env("AGENTD_URL").value_or(std::string(default_url));
}

endpoint parse_url(std::string_view url) {
    if (url.starts_with(unix_scheme)) {
        auto path = url.substr(unix_scheme.size());
        if (path.empty()) throw usage_error(fmt::format("bad URL {}: no socket path", url));
        return {"", "", std::string(path), "/rpc", "localhost"};
    }
    if (!url.starts_with(http_scheme)) {
        throw usage_error(fmt::format("bad URL {}: use http://HOST:PORT or unix:/PATH", url));
    }
    auto rest = url.substr(http_scheme.size());
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    auto [host, port] = split_authority(authority, url);
    auto prefix = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    return {host, port, "", rpc_target(prefix), std::string(authority)};
}

std::filesystem::path resolve_state_dir(global_options const& globals) {
    if (globals.state_dir) return *globals.state_dir;
    if (auto dir = env("AGENTD_STATE_DIR")) return *dir;
    // systemd joins several StateDirectory= entries with ':'; the daemon's own is the first.
    if (auto dirs = env("STATE_DIRECTORY")) return dirs->substr(0, dirs->find(':'));
    if (auto xdg = env("XDG_STATE_HOME"); xdg && xdg->starts_with('/')) {
        return std::filesystem::path(*xdg) / "agentd";
    }
    if (auto home = env("HOME")) return std::filesystem::path(*home) / ".local/state/agentd";
    return {};
}

credentials resolve_credentials(global_options const& globals) {
    if (globals.token) return {checked_token(*globals.token, "--token"), "--token"};
    if (globals.token_file) return token_from_file(*globals.token_file, true);
    if (auto token = env("AGENTD_TOKEN"))
        return {checked_token(*token, "$AGENTD_TOKEN"), "$AGENTD_TOKEN"};
    auto dir = resolve_state_dir(globals);
    if (dir.empty()) return {std::nullopt, "no token: no state directory (HOME is unset)"};
    return token_from_file(dir / "token", false);
}

}  // namespace agentctl
