// The one URL parser of the tree: the daemon's upstream URL (opencode: http; openai: http or
// https) and agentctl's --url (http or unix:). Each caller accepts the schemes it can speak;
// the syntax and the port rules are the same for all.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace agentd::common {

enum class url_scheme { http, https, unix_socket };

// http[s]://HOST[:PORT][/PATH], http[s]://[IPV6][:PORT][/PATH] or unix:PATH.
struct url {
    url_scheme scheme = url_scheme::http;
    std::string host;       // IPv6 without brackets; empty for unix:
    std::string port;       // 1-65535; the scheme's default (80, 443) when absent; empty for unix:
    std::string base_path;  // "" or "/prefix" (no trailing slash); empty for unix:
    std::string socket_path;  // unix: only

    bool tls() const { return scheme == url_scheme::https; }
    // "host:port", IPv6 in brackets; "localhost" for a unix socket, which has no host.
    std::string host_header() const;
};

struct parsed_url {
    std::optional<url> value;
    std::string error;  // when value is empty: why, as a phrase ("no host", "bad port")
};

parsed_url parse_url(std::string_view text);

}  // namespace agentd::common
