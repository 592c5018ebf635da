// The shared URL parser; see url.hpp. It replaced three (the upstream HTTP pool's, the openai
// backend's and agentctl's) and keeps the strictest rule where they differed: a port is 1-65535.
// Userinfo, queries and fragments are not interpreted: no caller has a use for them.
#include "common/url.hpp"

#include <algorithm>
#include <charconv>

namespace agentd::common {
namespace {

constexpr std::string_view http_prefix = "http://";
constexpr std::string_view https_prefix = "https://";
constexpr std::string_view unix_prefix = "unix:";

bool is_port(std::string_view s) {
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), is_digit)) return false;
    int n = 0;
    std::from_chars(s.data(), s.data() + s.size(), n);
    return n > 0 && n <= 65535;
}

parsed_url failure(std::string why) {
    return {std::nullopt, std::move(why)};
}

// "HOST[:PORT]" or "[IPV6][:PORT]" into u.host and u.port (left as the default when absent).
std::optional<std::string> split_authority(std::string_view authority, url& u) {
    std::string_view host = authority;
    std::string_view rest;
    if (authority.starts_with('[')) {
        auto close = authority.find(']');
        if (close == std::string_view::npos) return "missing ]";
        host = authority.substr(1, close - 1);
        rest = authority.substr(close + 1);
    } else if (authority.find(':') != authority.rfind(':')) {
        return "an IPv6 address needs [brackets]";
    } else if (auto colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        rest = authority.substr(colon);
    }
    if (host.empty()) return "no host";
    u.host = std::string(host);
    if (rest.empty()) return std::nullopt;
    if (!rest.starts_with(':') || !is_port(rest.substr(1))) return "bad port";
    u.port = std::string(rest.substr(1));
    return std::nullopt;
}

}  // namespace

std::string url::host_header() const {
    if (scheme == url_scheme::unix_socket) return "localhost";
    return host.find(':') == std::string::npos ? host + ":" + port : "[" + host + "]:" + port;
}

parsed_url parse_url(std::string_view text) {
    url u;
    if (text.starts_with(unix_prefix)) {
        u.scheme = url_scheme::unix_socket;
        u.socket_path = std::string(text.substr(unix_prefix.size()));
        if (u.socket_path.empty()) return failure("no socket path");
        return {std::move(u), {}};
    }
    if (text.starts_with(https_prefix)) {
        u.scheme = url_scheme::https;
        u.port = "443";
        text.remove_prefix(https_prefix.size());
    } else if (text.starts_with(http_prefix)) {
        u.port = "80";
        text.remove_prefix(http_prefix.size());
    } else {
        return failure("not http://, https:// or unix:");
    }
    auto slash = text.find('/');
    if (auto why = split_authority(text.substr(0, slash), u)) return failure(std::move(*why));
    auto path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash);
    while (path.ends_with('/')) path.remove_suffix(1);
    u.base_path = std::string(path);
    return {std::move(u), {}};
}

}  // namespace agentd::common
