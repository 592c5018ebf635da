// Unit tests of the request guards and the token file: Host and Origin allow-lists against
// DNS-rebinding names, the bearer comparison, and load_or_create_token's directory and file
// modes, reuse and failures, in a temporary directory under /tmp that each test removes.
#include "daemon/auth.hpp"
#include "daemon/principals.hpp"
#include "daemon/routes.hpp"
#include "daemon/state_dir.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace agentd::daemon {
namespace {

namespace fs = std::filesystem;

TEST(host_allowed, loopback_names_with_any_port) {
    for (auto host : {"localhost", "LOCALHOST:7077", "LocalHost", "localhost:80", "foo.localhost",
                      "a.b.LOCALHOST:1", "127.0.0.1", "127.1.2.3:80", "127.0.0.1:65535", "[::1]",
                      "[::1]:7077"}) {
        EXPECT_TRUE(host_allowed(host)) << host;
    }
}

TEST(host_allowed, rejects_other_names) {
    for (auto host :
         {"evil.com", "evil.com:7077", "127.0.0.1.evil.com", "localhost.evil.com",
          "localhost.evil.com:7077", "evillocalhost", "[::2]", "[::2]:7077", "[::1", "::1",
          "0.0.0.0", "128.0.0.1", "10.0.0.1", "127.0.0", "127.0.0.1.2", "127.0.0.x", "", ":7077"}) {
        EXPECT_FALSE(host_allowed(host)) << host;
    }
}

TEST(host_allowed, rejects_malformed_ports) {
    for (auto host :
         {"localhost:", "localhost:abc", "localhost:80x", "localhost:123456", "localhost:-1",
          "localhost:80:80", "[::1]:", "[::1]x", "[::1]:7o77", "127.0.0.1: 80"}) {
        EXPECT_FALSE(host_allowed(host)) << host;
    }
}

TEST(host_allowed, extra_names_are_exact_and_case_insensitive) {
    std::vector<std::string> const extra{"agentd.lan", "box"};
    EXPECT_TRUE(host_allowed("agentd.lan", extra));
    EXPECT_TRUE(host_allowed("AGENTD.LAN:7077", extra));
    EXPECT_TRUE(host_allowed("box", extra));
    EXPECT_FALSE(host_allowed("x.agentd.lan", extra));
    EXPECT_FALSE(host_allowed("agentd.lan.evil.com", extra));
    EXPECT_FALSE(host_allowed("agentd.lan:bad", extra));
    EXPECT_FALSE(host_allowed("agentd.lan"));
}

TEST(origin_allowed, http_and_https_loopback) {
    for (auto origin :
         {"http://localhost", "http://localhost:3000", "https://localhost", "HTTP://LOCALHOST:8080",
          "http://127.0.0.1:7077", "https://[::1]:7077", "http://app.localhost"}) {
        EXPECT_TRUE(origin_allowed(origin)) << origin;
    }
}

TEST(origin_allowed, rejects_everything_else) {
    for (auto origin :
         {"null", "", "file://", "file:///etc/passwd", "http://evil.com", "https://evil.com:7077",
          "http://localhost.evil.com", "http://127.0.0.1.evil.com", "ws://localhost", "http://",
          "localhost", "http://localhost:abc", "http://user@localhost", "chrome-extension://abcdef",
          "http://[::2]"}) {
        EXPECT_FALSE(origin_allowed(origin)) << origin;
    }
}

TEST(origin_allowed, extra_origins_match_exactly) {
    std::vector<std::string> const extra{"https://app.example.com", "vscode-webview://x"};
    EXPECT_TRUE(origin_allowed("https://app.example.com", extra));
    EXPECT_TRUE(origin_allowed("vscode-webview://x", extra));
    EXPECT_FALSE(origin_allowed("https://app.example.com:443", extra));
    EXPECT_FALSE(origin_allowed("http://app.example.com", extra));
    EXPECT_FALSE(origin_allowed("https://app.example.com.evil.com", extra));
    EXPECT_TRUE(origin_allowed("http://localhost", extra));
}

// Whether `authorization` authenticates as the principal whose token is `token`: the header's
// token goes through principals::find, as routes.cpp does.
bool bearer_matches(std::string_view authorization, std::string const& token) {
    principals const set(token);
    auto const presented = bearer_token(authorization);
    return !presented.empty() && set.find(presented).has_value();
}

bool subprotocol_bearer_matches(std::string_view protocols, std::string const& token) {
    principals const set(token);
    for (auto presented : subprotocol_bearers(protocols))
        if (set.find(presented)) return true;
    return false;
}

TEST(bearer_matches, exact_token_only) {
    std::string const token = "0123456789abcdef0123456789abcdef";
    EXPECT_TRUE(bearer_matches("Bearer " + token, token));
    EXPECT_FALSE(bearer_matches("Bearer " + token.substr(0, 31) + "0", token)) << "wrong";
    EXPECT_FALSE(bearer_matches("Bearer " + token.substr(0, 16), token)) << "prefix";
    EXPECT_FALSE(bearer_matches("Bearer " + token + "x", token)) << "longer";
    EXPECT_FALSE(bearer_matches("Bearer " + token + " ", token)) << "trailing space";
    EXPECT_FALSE(bearer_matches("Bearer  " + token, token)) << "two spaces";
    EXPECT_FALSE(bearer_matches(token, token)) << "no scheme";
    EXPECT_FALSE(bearer_matches("Basic " + token, token));
    EXPECT_FALSE(bearer_matches("Bearer", token));
    EXPECT_FALSE(bearer_matches("", token));
}

TEST(subprotocol_bearer_matches, finds_the_token_among_offered_subprotocols) {
    std::string const token = "0123456789abcdef0123456789abcdef";
    EXPECT_TRUE(subprotocol_bearer_matches("agentd.v1, agentd.bearer." + token, token));
    EXPECT_TRUE(subprotocol_bearer_matches("agentd.bearer." + token + ",agentd.v1", token));
    EXPECT_TRUE(
        subprotocol_bearer_matches("x, agentd.bearer.wrong, agentd.bearer." + token, token));
    EXPECT_FALSE(subprotocol_bearer_matches("agentd.v1, agentd.bearer.wrong", token));
    EXPECT_FALSE(subprotocol_bearer_matches("agentd.bearer." + token + "x", token)) << "longer";
    EXPECT_FALSE(subprotocol_bearer_matches("agentd.bearer." + token.substr(1), token));
    EXPECT_FALSE(subprotocol_bearer_matches("AGENTD.BEARER." + token, token)) << "exact prefix";
    EXPECT_FALSE(subprotocol_bearer_matches(token, token)) << "no prefix";
    EXPECT_FALSE(subprotocol_bearer_matches("", token));
    EXPECT_TRUE(subprotocol_bearers("agentd.bearer.").empty()) << "an empty token is not offered";

    EXPECT_TRUE(subprotocol_offered("agentd.bearer.x , agentd.v1", "agentd.v1"));
    EXPECT_FALSE(subprotocol_offered("agentd.v10, agentd.v", "agentd.v1"));
    EXPECT_FALSE(subprotocol_offered("", "agentd.v1"));
}

TEST(bearer_matches, scheme_is_case_insensitive_token_is_not) {
    std::string const token = "AbCdEf0123456789AbCdEf0123456789";
    EXPECT_TRUE(bearer_matches("bearer " + token, token));
    EXPECT_TRUE(bearer_matches("BEARER " + token, token));
    EXPECT_FALSE(bearer_matches("Bearer abcdef0123456789abcdef0123456789", token));
}

TEST(bearer_token, empty_when_there_is_no_token) {
    EXPECT_EQ(bearer_token("Bearer "), "");
    EXPECT_EQ(bearer_token(""), "");
    EXPECT_EQ(bearer_token("Bearer"), "");
    EXPECT_EQ(bearer_token("Bearer x"), "x");
}

TEST(principals, local_token_is_admin_and_named_tokens_are_theirs) {
    principals set("local-token-0123456789abcdef0123",
                   {common::principal_entry{.name = "ci",
                                            .sha256 = common::sha256_hex("ci-token"),
                                            .admin = false,
                                            .max_running = 3}});
    auto const local = set.find("local-token-0123456789abcdef0123");
    ASSERT_TRUE(local);
    EXPECT_EQ(local->name, "local");
    EXPECT_TRUE(local->admin);
    auto const ci = set.find("ci-token");
    ASSERT_TRUE(ci);
    EXPECT_EQ(ci->name, "ci");
    EXPECT_FALSE(ci->admin);
    EXPECT_EQ(set.quotas().at("ci"), 3u);
    EXPECT_FALSE(set.find("ci-token2"));
    EXPECT_FALSE(set.find(""));

    std::vector<std::string> revoked;
    auto const handle = set.on_revoked([&](std::string const& name) { revoked.push_back(name); });
    set.replace({});
    EXPECT_FALSE(set.find("ci-token"));
    EXPECT_TRUE(set.find("local-token-0123456789abcdef0123"));
    EXPECT_EQ(revoked, std::vector<std::string>{"ci"});
}

// A request head as the HTTP session admits it.
admission admit_head(std::string const& head, server_options const& opts, auth_memo* memo) {
    request_parser parser;
    prepare_parser(parser);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(head), ec);
    EXPECT_TRUE(parser.is_header_done()) << ec.message();
    return admit(parser, opts, memo);
}

std::string rpc_head(std::string_view token) {
    return "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + std::string(token) +
           "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n";
}

TEST(auth_memo, remembers_a_connections_token_until_the_tokens_file_is_reloaded) {
    server_options opts;
    opts.principals = std::make_shared<principals>(
        "local-token-0123456789abcdef0123",
        std::vector<common::principal_entry>{{.name = "ci",
                                              .sha256 = common::sha256_hex("ci-token"),
                                              .admin = false,
                                              .max_running = 0}});
    auth_memo memo;
    auto first = admit_head(rpc_head("ci-token"), opts, &memo);
    ASSERT_FALSE(first.refusal);
    EXPECT_EQ(first.who.name, "ci");
    EXPECT_EQ(memo.who.name, "ci");
    auto again = admit_head(rpc_head("ci-token"), opts, &memo);
    ASSERT_FALSE(again.refusal);
    EXPECT_EQ(again.who.name, "ci");
    // Another token on the same connection is hashed and checked, never taken from the memo.
    auto wrong = admit_head(rpc_head("ci-token2"), opts, &memo);
    ASSERT_TRUE(wrong.refusal);
    EXPECT_EQ(wrong.refusal->result(), boost::beast::http::status::unauthorized);
    auto local = admit_head(rpc_head("local-token-0123456789abcdef0123"), opts, &memo);
    ASSERT_FALSE(local.refusal);
    EXPECT_EQ(local.who.name, "local");
    // A reload that revokes the token: the memo is stale, the token refused.
    ASSERT_FALSE(admit_head(rpc_head("ci-token"), opts, &memo).refusal);
    opts.principals->replace({});
    auto revoked = admit_head(rpc_head("ci-token"), opts, &memo);
    ASSERT_TRUE(revoked.refusal);
    EXPECT_EQ(revoked.refusal->result(), boost::beast::http::status::unauthorized);
}

TEST(json_ok_head, is_the_head_of_make_response_byte_for_byte) {
    for (unsigned version : {10u, 11u}) {
        for (bool keep_alive : {false, true}) {
            auto res = make_response(boost::beast::http::status::ok, version, "application/json",
                                     std::string(1234, 'x'));
            res.keep_alive(keep_alive);
            res.prepare_payload();
            EXPECT_EQ(json_ok_head(version, keep_alive, 1234), encode_head(res))
                << version << " " << keep_alive;
        }
    }
}

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class token_file_test : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = "/tmp/agentd_auth_test_XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(root_, fs::perms::owner_all, fs::perm_options::add, ec);
        for (auto const& e : fs::recursive_directory_iterator(root_, ec))
            fs::permissions(e.path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(root_, ec);
        EXPECT_FALSE(fs::exists(root_));
    }

    static unsigned mode_of(fs::path const& p) {
        struct stat st {};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    }

    static std::string read_file(fs::path const& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    fs::path root_;
};

TEST_F(token_file_test, creates_a_private_directory_and_file) {
    auto dir = root_ / "state" / "agentd";
    auto token = load_or_create_token(dir);
    EXPECT_EQ(token.size(), 64u);
    EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos) << token;
    EXPECT_EQ(mode_of(dir), 0700u);
    auto file = dir / "token";
    ASSERT_TRUE(fs::is_regular_file(file));
    EXPECT_EQ(mode_of(file), 0600u);
    EXPECT_EQ(read_file(file), token + "\n");
}

TEST_F(token_file_test, file_is_0600_whatever_the_umask) {
    auto old = ::umask(0);
    auto token = load_or_create_token(root_ / "s");
    ::umask(old);
    EXPECT_EQ(mode_of(root_ / "s"), 0700u);
    EXPECT_EQ(mode_of(root_ / "s" / "token"), 0600u);
    EXPECT_FALSE(token.empty());
}

TEST_F(token_file_test, second_call_returns_the_same_token) {
    auto first = load_or_create_token(root_);
    auto second = load_or_create_token(root_);
    EXPECT_EQ(first, second);
    // Another directory gets another random token.
    auto other = load_or_create_token(root_ / "other");
    EXPECT_NE(first, other);
}

TEST_F(token_file_test, existing_token_is_read_not_replaced) {
    std::string const mine = "my-own-token-that-is-long-enough-0123456789";
    {
        std::ofstream out(root_ / "token");
        out << mine << "\n";
    }
    fs::permissions(root_ / "token", fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_EQ(load_or_create_token(root_), mine);
    EXPECT_EQ(read_file(root_ / "token"), mine + "\n");
}

// token_mode 0640 (the system service's group agentd reads the token): a new token gets it
// whatever the umask, and an existing 0600 one is changed to it (a system service upgraded).
TEST_F(token_file_test, token_mode_applies_to_new_and_existing_tokens) {
    auto old = ::umask(0077);
    auto token = load_or_create_token(root_ / "new", 0640);
    ::umask(old);
    EXPECT_EQ(mode_of(root_ / "new" / "token"), 0640u);

    auto first = load_or_create_token(root_ / "old");
    EXPECT_EQ(mode_of(root_ / "old" / "token"), 0600u);
    EXPECT_EQ(load_or_create_token(root_ / "old", 0640), first);
    EXPECT_EQ(mode_of(root_ / "old" / "token"), 0640u);
    EXPECT_NO_THROW(verify_token_file(root_ / "old" / "token", 0640));
    EXPECT_FALSE(token.empty());
}

// A group-readable token is accepted only when asked for (or with group agentd), so the
// default still refuses one somebody loosened.
TEST_F(token_file_test, a_0640_token_is_refused_unless_token_mode_is_0640) {
    load_or_create_token(root_, 0640);
    auto group = ::getgrgid(::getegid());
    if (group && std::string(group->gr_name) == "agentd") GTEST_SKIP() << "runs as group agentd";
    EXPECT_THROW(verify_token_file(root_ / "token"), std::runtime_error);
    EXPECT_THROW(load_or_create_token(root_), std::runtime_error);
    EXPECT_EQ(mode_of(root_ / "token"), 0640u);  // refused, not changed
}

// The checks apply to the file actually read, so a name swapped after verify_token_file (a
// symlink planted, a looser file put in place) is refused by the read itself.
TEST_F(token_file_test, the_token_read_is_checked_on_its_descriptor) {
    std::string const mine = "my-own-token-that-is-long-enough-0123456789";
    {
        std::ofstream out(root_ / "real");
        out << mine << "\n";
    }
    fs::permissions(root_ / "real", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_symlink(root_ / "real", root_ / "token");
    EXPECT_THROW(load_or_create_token(root_), std::runtime_error);
    fs::remove(root_ / "token");
    fs::copy_file(root_ / "real", root_ / "token");
    fs::permissions(root_ / "token",
                    fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    EXPECT_THROW(load_or_create_token(root_), std::runtime_error);
}

TEST_F(token_file_test, too_short_or_empty_file_is_an_error) {
    {
        std::ofstream out(root_ / "token");
        out << "short\n";
    }
    fs::permissions(root_ / "token", fs::perms::owner_read | fs::perms::owner_write);
    EXPECT_THROW(load_or_create_token(root_), std::runtime_error);
    { std::ofstream out(root_ / "token", std::ios::trunc); }
    EXPECT_THROW(load_or_create_token(root_), std::runtime_error);
    // The bad file is left for the operator to fix, not silently replaced.
    EXPECT_EQ(read_file(root_ / "token"), "");
}

TEST_F(token_file_test, unusable_directory_is_an_error) {
    // A path under a regular file can never become a directory, even for root.
    {
        std::ofstream out(root_ / "file");
        out << "x";
    }
    try {
        load_or_create_token(root_ / "file" / "state");
        ADD_FAILURE() << "no exception";
    } catch (std::runtime_error const& e) {
        EXPECT_NE(std::string(e.what()).find((root_ / "file" / "state").string()),
                  std::string::npos)
            << e.what();
    }
    // The state directory path is itself a file.
    EXPECT_THROW(load_or_create_token(root_ / "file"), std::runtime_error);
}

TEST_F(token_file_test, unwritable_directory_is_an_error) {
    // An existing directory the service user cannot write to. Root writes anywhere, so when the
    // tests run as root the call runs in a child process that has dropped to "nobody".
    auto dir = root_ / "ro";
    fs::create_directory(dir);
    fs::permissions(root_, fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec,
                    fs::perm_options::replace);
    fs::permissions(dir,
                    fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                        fs::perms::others_exec,
                    fs::perm_options::replace);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
        try {
            load_or_create_token(dir);
        } catch (std::runtime_error const&) {
            ::_exit(0);
        } catch (...) {
            ::_exit(2);
        }
        ::_exit(1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: another exception, 3: setuid failed";
    EXPECT_FALSE(fs::exists(dir / "token"));
}

}  // namespace
}  // namespace agentd::daemon
