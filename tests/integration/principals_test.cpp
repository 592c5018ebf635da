// Several principals (issue #19 point 3) against the real agentd and the fake upstream: a tokens
// file gives each token its principal, whose jobs, listings, waits and WebSocket events no other
// principal sees; /metrics needs an admin; a principal's max_running queues its own jobs only;
// SIGHUP reloads the file (a revoked token gets 401 and its WebSocket closes; a broken file keeps
// the old set); hostile files stop the start with the key or file named; agentctl token
// add/list/revoke writes only hashes and its printed token authenticates.
#include "agentd_fixture.hpp"
#include "common/tokens_file.hpp"
#include "ws_client.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A fixed token per name (64 characters, like agentd's own).
std::string token_of(std::string const& name) {
    auto t = name + "-";
    while (t.size() < 64) t += "0123456789abcdef";
    return t.substr(0, 64);
}

std::string entry(std::string const& name, bool admin = false, int max_running = 0) {
    auto text = fmt::format("[principals.{}]\nsha256 = \"{}\"\nadmin = {}\n", name,
                            common::sha256_hex(token_of(name)), admin ? "true" : "false");
    if (max_running > 0) text += fmt::format("max_running = {}\n", max_running);
    return text + "\n";
}

// A directory for tokens files, removed at the end.
class tokens_dir {
  public:
    tokens_dir() {
        std::string tmpl = (fs::temp_directory_path() / "agentd-principals-XXXXXX").string();
        EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    ~tokens_dir() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    // Replaces `name` atomically (0600), as an operator's editor or agentctl would.
    fs::path write(std::string const& text, std::string const& name = "tokens.toml") const {
        auto path = dir_ / name;
        EXPECT_FALSE(common::write_file_atomically(path, text).has_value());
        return path;
    }
    fs::path const& path() const { return dir_; }

  private:
    fs::path dir_;
};

http_response post_as(agentd_process& a, std::string const& token, std::string const& method,
                      json::object params) {
    json::object req{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
    http_headers headers{{"Content-Type", "application/json"}};
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    return http_request(static_cast<unsigned short>(a.port()), "POST", "/rpc", json::serialize(req),
                        headers);
}

// One JSON-RPC call as `token` expected to succeed: its result.
json::object call_as(agentd_process& a, std::string const& token, std::string const& method,
                     json::object params) {
    auto res = post_as(a, token, method, std::move(params));
    EXPECT_EQ(res.status, 200) << res.body;
    auto v = json::parse(res.body);
    EXPECT_TRUE(v.as_object().contains("result")) << res.body;
    return v.as_object().contains("result") ? v.at("result").as_object() : json::object{};
}

std::string start_as(agentd_process& a, std::string const& token, std::string const& prompt) {
    auto started = call_as(a, token, "agents_start", {{"tasks", json::array{task(prompt)}}});
    EXPECT_EQ(jobs_of(started).size(), 1u);
    return jobs_of(started).empty() ? std::string() : str(jobs_of(started)[0], "id");
}

std::vector<std::string> ids_listed(agentd_process& a, std::string const& token) {
    std::vector<std::string> ids;
    auto const listed = call_as(a, token, "agents_status", {});  // jobs_of() refers into it
    for (auto const& j : jobs_of(listed)) ids.push_back(str(j, "id"));
    return ids;
}

int metrics_status(agentd_process& a, std::string const& token) {
    http_headers headers;
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
    return http_request(static_cast<unsigned short>(a.port()), "GET", "/metrics", {}, headers)
        .status;
}

// The answer's text with `id` replaced by `by`: a foreign id must answer like an unknown one.
std::string with_id(std::string text, std::string const& id, std::string const& by) {
    for (auto at = text.find(id); at != std::string::npos; at = text.find(id, at + by.size()))
        text.replace(at, id.size(), by);
    return text;
}

std::string state_of(agentd_process& a, std::string const& token, std::string const& id) {
    auto status = call_as(a, token, "agents_status", {{"jobs", json::array{json::value(id)}}});
    return jobs_of(status).empty() ? std::string() : str(jobs_of(status)[0], "state");
}

// Polls a job's state until it is `want`, at most 10 s (a launch follows another job's end).
bool becomes(agentd_process& a, std::string const& token, std::string const& id,
             std::string const& want) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (state_of(a, token, id) == want) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

class principals_test : public ::testing::Test {
  protected:
    void SetUp() override {
        fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH);
        file_ = dir_.write(entry("alice", false, 1) + entry("bob") + entry("ops", true));
        agentd_ = std::make_unique<agentd_process>(
            fake_->url(), std::vector<std::string>{"--tokens-file", file_.string()});
        ASSERT_NE(agentd_->port(), 0);
    }

    std::string const alice = token_of("alice");
    std::string const bob = token_of("bob");
    std::string const ops = token_of("ops");
    tokens_dir dir_;
    fs::path file_;
    std::unique_ptr<fake_upstream> fake_;
    std::unique_ptr<agentd_process> agentd_;
};

TEST_F(principals_test, EachPrincipalSeesOnlyItsOwnJobs) {
    auto& a = *agentd_;
    auto alices = start_as(a, alice, "for alice");
    auto bobs = start_as(a, bob, "for bob");
    EXPECT_EQ(ids_listed(a, alice), std::vector<std::string>{alices});
    EXPECT_EQ(ids_listed(a, bob), std::vector<std::string>{bobs});
    // The local token is principal "local": it works, and sees neither.
    EXPECT_TRUE(ids_listed(a, a.token()).empty());

    // By id, bob's job answers alice exactly as a job that never existed.
    std::string const never = "job_00000000000000000000000000000000";
    for (std::string method : {"agents_status", "agents_wait", "agents_cancel"}) {
        json::object params{{"jobs", json::array{json::value(bobs)}}};
        json::object unknown{{"jobs", json::array{json::value(never)}}};
        if (method == "agents_wait") {
            params["timeout_ms"] = 100;
            unknown["timeout_ms"] = 100;
        }
        auto foreign = post_as(a, alice, method, params);
        auto none = post_as(a, alice, method, unknown);
        EXPECT_EQ(with_id(foreign.body, bobs, never), none.body) << method;
        EXPECT_EQ(foreign.body.find("for bob"), std::string::npos) << foreign.body;
    }
    auto waited = call_as(a, bob, "agents_wait",
                          {{"jobs", json::array{json::value(bobs)}}, {"timeout_ms", 10000}});
    EXPECT_EQ(str(jobs_of(waited).at(0), "state"), "completed");
}

TEST_F(principals_test, WebSocketEventsReachOnlyTheirPrincipal) {
    auto& a = *agentd_;
    // Bob's browser-style connection: the token rides in a subprotocol.
    ws_client bob_ws(static_cast<unsigned short>(a.port()),
                     {{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + bob}});
    ws_client alice_ws(static_cast<unsigned short>(a.port()),
                       {{"Authorization", "Bearer " + alice}});
    EXPECT_EQ(ws_upgrade_status(static_cast<unsigned short>(a.port()),
                                {{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer.nope"}}),
              401);
    auto subscribe = json::serialize(json::object{{"jsonrpc", "2.0"},
                                                  {"id", 1},
                                                  {"method", "agents_subscribe"},
                                                  {"params", {{"all", true}}}});
    alice_ws.send(subscribe);
    bob_ws.send(subscribe);
    auto bobs = start_as(a, bob, "bob's only");
    call_as(a, bob, "agents_wait",
            {{"jobs", json::array{json::value(bobs)}}, {"timeout_ms", 10000}});
    auto alices = start_as(a, alice, "alice's only");
    // Alice's stream, read up to her job's end: bob's job (which ended before hers started)
    // would have come first.
    bool alice_done = false;
    while (!alice_done) {
        auto text = alice_ws.receive(10s);
        ASSERT_TRUE(text) << "alice's job events did not arrive";
        EXPECT_EQ(text->find(bobs), std::string::npos) << *text;
        auto v = json::parse(*text).as_object();
        if (str(v, "method") != "agents_event") continue;
        auto const& job = v.at("params").at("job");
        alice_done = str(job, "id") == alices && str(job, "state") == "completed";
    }
    bool bob_saw_his = false;
    for (;;) {
        auto text = bob_ws.receive(bob_saw_his ? 300ms : 10s);
        if (!text) break;
        EXPECT_EQ(text->find(alices), std::string::npos) << *text;
        bob_saw_his = bob_saw_his || text->find(bobs) != std::string::npos;
    }
    EXPECT_TRUE(bob_saw_his);
}

TEST_F(principals_test, MetricsNeedAnAdminPrincipal) {
    auto& a = *agentd_;
    EXPECT_EQ(metrics_status(a, ""), 401);
    EXPECT_EQ(metrics_status(a, "not-a-token"), 401);
    auto refused = http_request(static_cast<unsigned short>(a.port()), "GET", "/metrics", {},
                                {{"Authorization", "Bearer " + bob}});
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(refused.body, "an admin token is required\n");
    EXPECT_EQ(metrics_status(a, ops), 200);
    EXPECT_EQ(metrics_status(a, a.token()), 200);
}

TEST_F(principals_test, AQuotaQueuesOnlyItsPrincipalsJobs) {
    auto& a = *agentd_;
    std::vector<std::string> mine;
    for (int i = 0; i < 3; ++i) mine.push_back(start_as(a, alice, "hold [[fake fault=hang]]"));
    EXPECT_EQ(state_of(a, alice, mine[0]), "running");
    EXPECT_EQ(state_of(a, alice, mine[1]), "queued");
    EXPECT_EQ(state_of(a, alice, mine[2]), "queued");
    // Bob has no quota: his jobs launch while alice's wait.
    auto b1 = start_as(a, bob, "hold [[fake fault=hang]]");
    auto b2 = start_as(a, bob, "hold [[fake fault=hang]]");
    EXPECT_EQ(state_of(a, bob, b1), "running");
    EXPECT_EQ(state_of(a, bob, b2), "running");
    EXPECT_EQ(state_of(a, alice, mine[1]), "queued");

    // Each of alice's jobs launches when the one before it ends, in order.
    for (std::size_t i = 0; i + 1 < mine.size(); ++i) {
        call_as(a, alice, "agents_cancel", {{"jobs", json::array{json::value(mine[i])}}});
        EXPECT_TRUE(becomes(a, alice, mine[i + 1], "running")) << i;
        if (i + 2 < mine.size()) {
            EXPECT_EQ(state_of(a, alice, mine[i + 2]), "queued");
        }
    }
    call_as(a, alice, "agents_cancel", {{"jobs", json::array{json::value(mine.back())}}});
    call_as(a, bob, "agents_cancel", {{"jobs", json::array{json::value(b1), json::value(b2)}}});
}

TEST_F(principals_test, SighupReloadsTheFileAndRevokedTokensAreRefused) {
    auto& a = *agentd_;
    auto carol = token_of("carol");
    EXPECT_EQ(post_as(a, carol, "agents_status", {}).status, 401);

    dir_.write(entry("alice", false, 1) + entry("bob") + entry("ops", true) + entry("carol"));
    a.process().signal(SIGHUP);
    ASSERT_TRUE(a.process().wait_for_line(std::regex("principals_reloaded count=4"), 10s));
    EXPECT_EQ(post_as(a, carol, "agents_status", {}).status, 200);

    // Revoking alice: her next request gets 401 and her open WebSocket closes.
    ws_client alice_ws(static_cast<unsigned short>(a.port()),
                       {{"Authorization", "Bearer " + alice}});
    dir_.write(entry("bob") + entry("ops", true) + entry("carol"));
    a.process().signal(SIGHUP);
    ASSERT_TRUE(a.process().wait_for_line(std::regex("principals_reloaded count=3"), 10s));
    EXPECT_EQ(post_as(a, alice, "agents_status", {}).status, 401);
    EXPECT_TRUE(alice_ws.drain_until_closed(5s).has_value());
    EXPECT_EQ(post_as(a, bob, "agents_status", {}).status, 200);

    // A broken file: the previous set stays, and the error names the key.
    dir_.write(entry("bob") + "[principals.carol]\nsha256 = \"abc\"\n");
    a.process().signal(SIGHUP);
    ASSERT_TRUE(a.process().wait_for_line(
        std::regex("principals_reload_failed .*principals\\.carol\\.sha256"), 10s));
    EXPECT_EQ(post_as(a, carol, "agents_status", {}).status, 200);
    EXPECT_EQ(post_as(a, a.token(), "agents_status", {}).status, 200);
}

// agentd started on a hostile tokens file: it exits 1, naming the file or key in the error.
std::string refused_start(fs::path const& file) {
    fake_upstream fake(FAKE_OPENCODE_PATH);
    auto state = fs::temp_directory_path() / fmt::format("agentd-principals-st-{}", ::getpid());
    fs::remove_all(state);
    child_process p({AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir", state.string(),
                     "--upstream-url", fake.url(), "--tokens-file", file.string()});
    auto code = p.wait_exit(10s);
    EXPECT_EQ(code, 1) << p.stderr_text();
    fs::remove_all(state);
    return p.stderr_text();
}

TEST(principals_start, HostileTokensFilesStopTheStartNamingTheProblem) {
    tokens_dir dir;
    auto has = [](std::string const& text, std::string const& part) {
        return text.find(part) != std::string::npos;
    };
    auto short_hash = dir.write("[principals.ci]\nsha256 = \"abcd\"\n", "short.toml");
    auto out = refused_start(short_hash);
    EXPECT_TRUE(has(out, "principals.ci.sha256") && has(out, "64 lowercase hex")) << out;

    auto unknown = dir.write(entry("ci") + "[principals.ci2]\nsha256 = \"" +
                                 common::sha256_hex("x") + "\"\nadmn = true\n",
                             "unknown.toml");
    out = refused_start(unknown);
    EXPECT_TRUE(has(out, "principals.ci2.admn: unknown key")) << out;

    auto reserved = dir.write("[principals.local]\nsha256 = \"" + common::sha256_hex("x") + "\"\n",
                              "local.toml");
    out = refused_start(reserved);
    EXPECT_TRUE(has(out, "principals.local") && has(out, "is reserved")) << out;

    auto writable = dir.write(entry("ci"), "writable.toml");
    ::chmod(writable.c_str(), 0620);
    out = refused_start(writable);
    EXPECT_TRUE(has(out, writable.string()) && has(out, "group or others may write it")) << out;

    auto link = dir.path() / "link.toml";
    fs::create_symlink(dir.write(entry("ci"), "target.toml"), link);
    out = refused_start(link);
    EXPECT_TRUE(has(out, link.string()) && has(out, "symbolic link")) << out;

    out = refused_start(dir.path() / "missing.toml");
    EXPECT_TRUE(has(out, "missing.toml") && has(out, "No such file")) << out;
}

struct command_result {
    int exit_code = -1;
    std::string out;
};

command_result agentctl(std::vector<std::string> args) {
    std::string cmd = AGENTCTL_PATH;
    for (auto const& arg : args) cmd += " '" + arg + "'";
    command_result r;
    FILE* pipe = ::popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!pipe) return r;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
    int status = ::pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string file_text(fs::path const& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST_F(principals_test, AgentctlTokenAddListRevoke) {
    auto& a = *agentd_;
    auto file = file_.string();
    auto added = agentctl({"token", "--tokens-file", file, "add", "dave", "--max-running", "2"});
    ASSERT_EQ(added.exit_code, 0);
    auto token = added.out.substr(0, added.out.find('\n'));
    ASSERT_EQ(token.size(), 64u) << added.out;
    auto text = file_text(file_);
    EXPECT_EQ(text.find(token), std::string::npos) << "the file keeps only the hash";
    EXPECT_NE(text.find(common::sha256_hex(token)), std::string::npos) << text;
    EXPECT_NE(text.find(common::sha256_hex(alice)), std::string::npos) << "others kept";
    struct stat st {};
    ASSERT_EQ(::stat(file_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    auto listed = agentctl({"token", "list", "--tokens-file", file});
    EXPECT_EQ(listed.exit_code, 0);
    EXPECT_TRUE(std::regex_search(listed.out, std::regex("\ndave +no +2\n"))) << listed.out;
    EXPECT_TRUE(std::regex_search(listed.out, std::regex("\nops +yes +-\n"))) << listed.out;
    EXPECT_EQ(listed.out.find(common::sha256_hex(token)), std::string::npos) << listed.out;

    a.process().signal(SIGHUP);
    ASSERT_TRUE(a.process().wait_for_line(std::regex("principals_reloaded count=4"), 10s));
    auto davids = start_as(a, token, "dave's");
    EXPECT_EQ(ids_listed(a, token), std::vector<std::string>{davids});

    EXPECT_EQ(agentctl({"token", "revoke", "nobody", "--tokens-file", file}).exit_code, 6);
    EXPECT_EQ(agentctl({"token", "add", "local", "--tokens-file", file}).exit_code, 2);
    EXPECT_EQ(agentctl({"token", "revoke", "dave", "--tokens-file", file}).exit_code, 0);
    a.process().signal(SIGHUP);
    ASSERT_TRUE(a.process().wait_for_line(std::regex("principals_reloaded count=3"), 10s));
    EXPECT_EQ(post_as(a, token, "agents_status", {}).status, 401);
}

}  // namespace
}  // namespace agentd::test
