// `agentctl ui`: builds the dashboard URL from the resolved --url and token, prints it, and with
// --open hands it to xdg-open (spawned without a shell). See ui.hpp.
#include "ui.hpp"

#include "discover.hpp"
#include "exit_codes.hpp"

#include <fmt/core.h>

#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace agentctl {
namespace {

bool unreserved(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (unreserved(c))
            out.push_back(c);
        else
            out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
    return out;
}

// Runs xdg-open without a shell (the URL is never parsed as a command) and waits for it: it
// hands the URL to the browser and returns.
bool open_in_browser(std::string const& url) {
    char const* argv[] = {"xdg-open", url.c_str(), nullptr};
    pid_t pid = 0;
    int err =
        ::posix_spawnp(&pid, "xdg-open", nullptr, nullptr, const_cast<char* const*>(argv), environ);
    if (err != 0) {
        fmt::print(stderr, "agentctl: cannot run xdg-open: {}\n", std::strerror(err));
        return false;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
    fmt::print(stderr, "agentctl: xdg-open could not open the URL; open it yourself\n");
    return false;
}

}  // namespace

std::string dashboard_url(std::string_view url, std::optional<std::string> const& token) {
    auto to = parse_url(url);  // validates; a unix socket has no URL a browser could open
    if (to.is_unix())
        throw usage_error("the dashboard needs an HTTP listener: give --url http://HOST:PORT");
    std::string base(url);
    while (base.ends_with('/')) base.pop_back();
    base += "/ui";
    if (token) base += "#token=" + percent_encode(*token);
    return base;
}

int run_ui(invocation const& inv) {
    auto url = resolve_url(inv.globals);
    try {
        auto creds = resolve_credentials(inv.globals);
        if (!creds.token)
            fmt::print(stderr, "agentctl: {}; the URL carries no token\n", creds.source);
        auto page = dashboard_url(url, creds.token);
        fmt::print("{}\n", page);
        std::fflush(stdout);
        if (inv.cmd.open_browser) open_in_browser(page);
        return exit_ok;
    } catch (usage_error const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_usage;
    }
}

}  // namespace agentctl
