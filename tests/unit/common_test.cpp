// Unit tests of agentd_common, what the daemon and agentctl share: the one URL parser (what the
// upstream pool's, the openai backend's and agentctl's parsers each accepted and rejected before
// they became it) and the default state dir, which ignores a relative $XDG_STATE_HOME.
#include "common/state_dir.hpp"
#include "common/url.hpp"
#include "discovery_env.hpp"

#include <gtest/gtest.h>

#include <string>

namespace agentd::common {
namespace {

namespace fs = std::filesystem;

url parsed(std::string_view text) {
    auto p = parse_url(text);
    EXPECT_TRUE(p.value) << text << ": " << p.error;
    return p.value.value_or(url{});
}

std::string error_of(std::string_view text) {
    auto p = parse_url(text);
    EXPECT_FALSE(p.value) << text;
    return p.error;
}

TEST(url, http_with_port_and_base_path) {
    auto u = parsed("http://127.0.0.1:8080/v1/");
    EXPECT_EQ(u.scheme, url_scheme::http);
    EXPECT_FALSE(u.tls());
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, "8080");
    EXPECT_EQ(u.base_path, "/v1");
    EXPECT_EQ(u.host_header(), "127.0.0.1:8080");
    EXPECT_EQ(parsed("http://h:1/agentd//").base_path, "/agentd");
    EXPECT_EQ(parsed("http://127.0.0.1:4096").base_path, "");
}

TEST(url, default_ports_by_scheme) {
    auto plain = parsed("http://localhost");
    EXPECT_EQ(plain.port, "80");
    EXPECT_EQ(plain.base_path, "");
    // Host always names the port: what both upstream clients sent (agentctl sent the URL's
    // authority as written, which differed only for a URL without a port).
    EXPECT_EQ(plain.host_header(), "localhost:80");
    auto secure = parsed("https://api.example.com/v1");
    EXPECT_TRUE(secure.tls());
    EXPECT_EQ(secure.port, "443");
    EXPECT_EQ(secure.base_path, "/v1");
    EXPECT_EQ(parsed("https://h:8443").port, "8443");
}

TEST(url, ipv6_in_brackets) {
    auto u = parsed("https://[::1]:9443/x");
    EXPECT_EQ(u.host, "::1");
    EXPECT_EQ(u.port, "9443");
    EXPECT_EQ(u.host_header(), "[::1]:9443");
    EXPECT_EQ(parsed("http://[::1]:9/").base_path, "");
    EXPECT_EQ(parsed("http://[fe80::1]").port, "80");
    EXPECT_EQ(error_of("http://::1:5"), "an IPv6 address needs [brackets]");
    EXPECT_EQ(error_of("http://[::1"), "missing ]");
    EXPECT_EQ(error_of("http://[::1]x"), "bad port");
    EXPECT_EQ(error_of("http://[]:80"), "no host");
}

TEST(url, unix_socket) {
    auto u = parsed("unix:/run/agentd/agentd.sock");
    EXPECT_EQ(u.scheme, url_scheme::unix_socket);
    EXPECT_EQ(u.socket_path, "/run/agentd/agentd.sock");
    EXPECT_EQ(u.host, "");
    EXPECT_EQ(u.host_header(), "localhost");
    EXPECT_EQ(parsed("unix:relative.sock").socket_path, "relative.sock");
    EXPECT_EQ(error_of("unix:"), "no socket path");
}

// Ports are 1-65535 in at most five digits: agentctl's rule. The upstream pool took any run of
// digits (0, 99999, 123456) and the openai backend up to five digits (0, 99999); the strictest
// rule won, as neither port can be connected to.
TEST(url, ports_are_1_to_65535) {
    EXPECT_EQ(parsed("http://h:65535").port, "65535");
    EXPECT_EQ(parsed("http://h:1").port, "1");
    for (auto bad : {"http://h:0", "http://h:99999", "http://h:65536", "https://h:123456",
                     "http://h:", "http://h:x", "http://h:8x", "http://h:-1", "http://h:+80"})
        EXPECT_EQ(error_of(bad), "bad port") << bad;
}

// What all three rejected, and still rejects.
TEST(url, rejects_malformed) {
    for (auto bad : {"", "h:80/v1", "h:1", "ftp://h/v1", "HTTP://h", "ws://h", " http://h"})
        EXPECT_EQ(error_of(bad), "not http://, https:// or unix:") << bad;
    for (auto bad : {"http://", "http:///v1", "http://:80", "http://:5", "https://"})
        EXPECT_EQ(error_of(bad), "no host") << bad;
}

class state_dir : public agentd::test_support::discovery_env {};

TEST_F(state_dir, precedence) {
    EXPECT_EQ(default_state_dir(), fs::path());
    ::setenv("HOME", "/home/u", 1);
    EXPECT_EQ(default_state_dir(), fs::path("/home/u/.local/state/agentd"));
    ::setenv("XDG_STATE_HOME", "/xdg", 1);
    EXPECT_EQ(default_state_dir(), fs::path("/xdg/agentd"));
    ::setenv("STATE_DIRECTORY", "/var/lib/agentd:/var/lib/other", 1);
    EXPECT_EQ(default_state_dir(), fs::path("/var/lib/agentd"));
    EXPECT_EQ(token_path(default_state_dir()), fs::path("/var/lib/agentd/token"));
}

// The XDG Base Directory spec: "If an implementation encounters a relative path in any of these
// variables it should consider the path invalid and ignore it."
TEST_F(state_dir, a_relative_xdg_state_home_is_ignored) {
    ::setenv("HOME", "/home/u", 1);
    for (auto relative : {"relative", "./state", "state/", "~/state"}) {
        ::setenv("XDG_STATE_HOME", relative, 1);
        EXPECT_EQ(default_state_dir(), fs::path("/home/u/.local/state/agentd")) << relative;
    }
}

TEST_F(state_dir, empty_variables_count_as_unset) {
    ::setenv("HOME", "/home/u", 1);
    ::setenv("STATE_DIRECTORY", "", 1);
    ::setenv("XDG_STATE_HOME", "", 1);
    EXPECT_EQ(default_state_dir(), fs::path("/home/u/.local/state/agentd"));
    EXPECT_FALSE(env("XDG_STATE_HOME"));
    ::setenv("HOME", "", 1);
    EXPECT_EQ(default_state_dir(), fs::path());
}

}  // namespace
}  // namespace agentd::common
