// agentd integration fixture implementation; see agentd_fixture.hpp.
#include "agentd_fixture.hpp"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>

namespace agentd::test {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

fs::path fresh_state_dir() {
    static int counter = 0;
    auto dir = fs::temp_directory_path() / fmt::format("agentd-it-{}-{}", ::getpid(), counter++);
    fs::remove_all(dir);
    return dir;
}

}  // namespace

agentd_process::agentd_process(std::string const& upstream_url, std::vector<std::string> extra)
    : upstream_url_(upstream_url), extra_(std::move(extra)), state_dir_(fresh_state_dir()) {
    launch();
}

void agentd_process::kill_and_restart() {
    proc_->signal(SIGKILL);
    proc_->wait_exit(5s);
    launch();
}

void agentd_process::start_again() {
    launch();
}

void agentd_process::launch() {
    std::vector<std::string> argv{AGENTD_PATH,   "--listen",          "127.0.0.1:0",
                                  "--state-dir", state_dir_.string(), "--upstream-url",
                                  upstream_url_};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    proc_ = std::make_unique<child_process>(argv);
    auto port =
        proc_->wait_for_line(std::regex(R"(agentd listening on http://127\.0\.0\.1:(\d+))"), 10s);
    if (!port) {
        ADD_FAILURE() << "agentd did not start: " << proc_->stderr_text();
        return;
    }
    port_ = std::stoi(*port);
    std::ifstream in(state_dir_ / "token");
    std::getline(in, token_);
}

agentd_process::~agentd_process() {
    // The child's stderr is echoed only with AGENTD_TEST_VERBOSE=1 (an info line per request
    // would drown the test logs); a failed test shows it here, as the fake upstream does.
    if (proc_ && ::testing::Test::HasFailure())
        std::fprintf(stderr, "---- agentd stderr ----\n%s-----------------------\n",
                     proc_->stderr_text().c_str());
    proc_.reset();
    std::error_code ec;
    fs::remove_all(state_dir_, ec);
}

http_response agentd_process::post(std::string const& body,
                                   std::vector<std::pair<std::string, std::string>> headers) {
    headers.emplace(headers.begin(), "Authorization", "Bearer " + token_);
    return http_request(port_, "POST", "/rpc", body, headers);
}

json::object agentd_process::rpc(std::string const& method, json::value params) {
    json::object req{{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}};
    if (!params.is_null()) req["params"] = std::move(params);
    auto res = post(json::serialize(req));
    EXPECT_EQ(res.status, 200) << res.body;
    auto v = json::parse(res.body);
    EXPECT_TRUE(v.is_object()) << res.body;
    return v.as_object();
}

json::object agentd_process::call(std::string const& method, json::value params) {
    auto res = rpc(method, std::move(params));
    EXPECT_TRUE(res.contains("result")) << json::serialize(res);
    if (!res.contains("result") || !res["result"].is_object()) return {};
    return res["result"].as_object();
}

json::object agentd_process::error(std::string const& method, json::value params) {
    auto res = rpc(method, std::move(params));
    EXPECT_TRUE(res.contains("error")) << json::serialize(res);
    if (!res.contains("error")) return {};
    return res["error"].as_object();
}

void agentd_test::SetUp() {
    fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH);
    agentd_ = std::make_unique<agentd_process>(fake_->url());
}

void agentd_test::restart_agentd(std::vector<std::string> extra) {
    agentd_.reset();
    agentd_ = std::make_unique<agentd_process>(fake_->url(), std::move(extra));
}

int unused_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

json::array const& jobs_of(json::object const& result) {
    static json::array const empty;
    auto const* jobs = result.if_contains("jobs");
    return jobs && jobs->is_array() ? jobs->get_array() : empty;
}

std::string str(json::value const& v, std::string_view key) {
    auto const* o = v.if_object();
    auto const* s = o ? o->if_contains(key) : nullptr;
    return s && s->is_string() ? std::string(s->get_string()) : std::string{};
}

json::object task(std::string prompt, std::string description) {
    json::object t{{"prompt", std::move(prompt)}};
    if (!description.empty()) t["description"] = std::move(description);
    return t;
}

json::value ids_of(json::array const& jobs) {
    json::array ids;
    for (auto const& j : jobs) ids.push_back(j.at("id"));
    return ids;
}

}  // namespace agentd::test
