// The URL and state-directory precedence and the token lookup of agentctl; the syntax and the
// defaults are the daemon's (common/). Empty environment variables count as unset, as the XDG
// spec asks and as shells make easy.
#include "discover.hpp"

#include "exit_codes.hpp"

#include "common/state_dir.hpp"
#include "common/url.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace agentctl {
namespace {

namespace common = agentd::common;
using common::env;

constexpr std::string_view default_url = "http://127.0.0.1:7077";
constexpr std::string_view no_token = "no token: ";

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
        return {std::nullopt, std::string(no_token) + reason};
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (!required && trimmed(text.str()).empty())
        return {std::nullopt, std::string(no_token) + path.string() + " is empty"};
    return {checked_token(text.str(), path.string()), path.string()};
}

}  // namespace

std::string resolve_url(global_options const& globals) {
    if (globals.url) return *globals.url;
    return env("AGENTD_URL").value_or(std::string(default_url));
}

endpoint parse_url(std::string_view url) {
    auto parsed = common::parse_url(url);
    if (!parsed.value) throw usage_error(fmt::format("bad URL {}: {}", url, parsed.error));
    auto const& u = *parsed.value;
    if (u.tls()) {
        throw usage_error(fmt::format(
            "bad URL {}: agentctl speaks no TLS; use http://HOST:PORT or unix:/PATH", url));
    }
    return {u.host, u.port, u.socket_path, u.base_path + "/rpc", u.host_header()};
}

std::filesystem::path resolve_state_dir(global_options const& globals) {
    if (globals.state_dir) return *globals.state_dir;
    if (auto dir = env("AGENTD_STATE_DIR")) return *dir;
    return common::default_state_dir();
}

credentials resolve_credentials(global_options const& globals,
                                std::vector<std::filesystem::path> const& fallbacks) {
    if (globals.token) return {checked_token(*globals.token, "--token"), "--token"};
    if (globals.token_file) return token_from_file(*globals.token_file, true);
    if (auto token = env("AGENTD_TOKEN"))
        return {checked_token(*token, "$AGENTD_TOKEN"), "$AGENTD_TOKEN"};
    auto dir = resolve_state_dir(globals);
    auto found = dir.empty()
                     ? credentials{std::nullopt, "no token: no state directory (HOME is unset)"}
                     : token_from_file(common::token_path(dir), false);
    // A state dir the caller named is the only place asked; the default one may simply have no
    // daemon of the user's own, while the system service runs.
    if (found.token || globals.state_dir || env("AGENTD_STATE_DIR")) return found;
    for (auto const& path : fallbacks) {
        std::error_code ec;  // EACCES on the directory is worth reporting, ENOENT is not
        if (std::filesystem::status(path, ec).type() == std::filesystem::file_type::not_found)
            continue;
        auto other = token_from_file(path, false);
        if (other.token) return other;
        found.source += fmt::format("; {} (members of group agentd may read it)",
                                    std::string_view(other.source).substr(no_token.size()));
    }
    return found;
}

credentials resolve_credentials(global_options const& globals) {
    return resolve_credentials(globals, {system_token_path});
}

}  // namespace agentctl
