// Host/Origin allow-lists and the token file; see auth.hpp.
#include "daemon/auth.hpp"
#include "daemon/state_dir.hpp"

#include "common/state_dir.hpp"
#include "jobs/random.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>

namespace agentd::daemon {
namespace fs = std::filesystem;

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

bool is_ipv4_loopback(std::string_view h) {
    if (h.substr(0, 4) != "127.") return false;
    int dots = 0;
    for (char c : h) {
        if (c == '.')
            ++dots;
        else if (c < '0' || c > '9')
            return false;
    }
    return dots == 3;
}

// Strips ":port" from a host[:port] (IPv6 in brackets); nullopt when the port is malformed.
std::optional<std::string_view> host_part(std::string_view hp) {
    std::string_view host = hp;
    std::string_view port;
    if (!hp.empty() && hp.front() == '[') {
        auto close = hp.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = hp.substr(0, close + 1);
        port = hp.substr(close + 1);
        if (!port.empty() && port.front() != ':') return std::nullopt;
    } else if (auto colon = hp.find(':'); colon != std::string_view::npos) {
        host = hp.substr(0, colon);
        port = hp.substr(colon);
    }
    if (!port.empty()) {
        port.remove_prefix(1);
        if (port.empty() || port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
    }
    return host;
}

bool loopback_name(std::string_view host) {
    return iequals(host, "localhost") || ends_with_ci(host, ".localhost") ||
           is_ipv4_loopback(host) || host == "[::1]";
}

// Calls `f` with each element of a comma-separated header list, without blanks around it.
template <class F>
void for_each_subprotocol(std::string_view list, F f) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

}  // namespace

bool host_allowed(std::string_view host_header, std::vector<std::string> const& extra) {
    auto host = host_part(host_header);
    if (!host || host->empty()) return false;
    if (loopback_name(*host)) return true;
    return std::any_of(extra.begin(), extra.end(),
                       [&](auto const& e) { return iequals(e, *host); });
}

bool origin_allowed(std::string_view origin, std::vector<std::string> const& extra) {
    if (std::find(extra.begin(), extra.end(), origin) != extra.end()) return true;
    for (std::string_view scheme : {"http://", "https://"}) {
        if (origin.size() > scheme.size() && iequals(origin.substr(0, scheme.size()), scheme)) {
            auto host = host_part(origin.substr(scheme.size()));
            return host && loopback_name(*host);
        }
    }
    return false;
}

std::string_view bearer_token(std::string_view authorization) {
    constexpr std::string_view prefix = "Bearer ";
    if (authorization.size() <= prefix.size()) return {};
    if (!iequals(authorization.substr(0, prefix.size()), prefix)) return {};
    return authorization.substr(prefix.size());
}

std::vector<std::string_view> subprotocol_bearers(std::string_view protocols) {
    std::vector<std::string_view> tokens;
    for_each_subprotocol(protocols, [&](std::string_view p) {
        if (p.starts_with(ws_bearer_prefix) && p.size() > ws_bearer_prefix.size())
            tokens.push_back(p.substr(ws_bearer_prefix.size()));
    });
    return tokens;
}

bool subprotocol_offered(std::string_view protocols, std::string_view name) {
    bool offered = false;
    for_each_subprotocol(protocols, [&](std::string_view p) { offered = offered || p == name; });
    return offered;
}

void ensure_state_dir(fs::path const& state_dir) {
    std::error_code ec;
    // A directory agentd creates holds the token and jobs: private to the service user.
    if (fs::create_directories(state_dir, ec) && !ec)
        fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec)
        throw std::runtime_error("cannot create state directory " + state_dir.string() + ": " +
                                 ec.message());
    if (::access(state_dir.c_str(), W_OK | X_OK) != 0)
        throw std::runtime_error("state directory " + state_dir.string() + " is not writable");
}

namespace {

// The token of an existing file, checked on the descriptor it is read from (no symlink is
// followed, no FIFO blocks) and given `mode`, or nullopt when there is no file yet.
std::optional<std::string> read_token(fs::path const& path, mode_t mode) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw std::runtime_error("cannot read token file " + path.string() + ": " +
                                 (errno == ELOOP ? "it is a symbolic link" : std::strerror(errno)));
    }
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        throw std::runtime_error("cannot read token file " + path.string() + ": " +
                                 std::strerror(errno));
    verify_token_stat(path, st, mode);
    if ((st.st_mode & 07777) != mode && ::fchmod(fd, mode) != 0)
        throw std::runtime_error("cannot change the mode of token file " + path.string() + ": " +
                                 std::strerror(errno));
    std::string text(256, '\0');
    auto n = ::read(fd, text.data(), text.size());
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    auto token = text.substr(0, text.find('\n'));
    if (token.size() < 32)
        throw std::runtime_error("token file " + path.string() + " is empty or too short");
    return token;
}

}  // namespace

std::string load_or_create_token(fs::path const& state_dir, mode_t mode) {
    ensure_state_dir(state_dir);
    auto path = common::token_path(state_dir);
    if (auto token = read_token(path, mode)) return *token;
    std::string token = jobs::random_hex(32);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::runtime_error("cannot create token file " + path.string() + ": " +
                                 std::strerror(errno));
    std::string line = token + "\n";
    // fchmod, as the umask (UMask=0077 in the unit) would take the group's read bit away.
    bool ok = ::fchmod(fd, mode) == 0;
    ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ok;
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok) throw std::runtime_error("cannot write token file " + path.string());
    return token;
}

}  // namespace agentd::daemon
