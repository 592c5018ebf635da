// The HTTP and JSON-RPC surface of the real agentd binary: health, auth, Host/Origin guards,
// status codes (401/403/404/405/413/415/204), JSON-RPC framing (batches, notifications, errors)
// and -32602 field reporting for bad params. Nothing of a rejected call is launched.
#include "agentd_fixture.hpp"

namespace agentd::test {
namespace {

std::vector<std::pair<std::string, std::string>> bearer(agentd_process& a) {
    return {{"Authorization", "Bearer " + a.token()}};
}

json::value parse(http_response const& r) {
    return json::parse(r.body);
}

TEST_F(agentd_test, HealthzNeedsNoToken) {
    auto r = http_request(agentd_->port(), "GET", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok\n");
    EXPECT_EQ(http_request(agentd_->port(), "POST", "/healthz", "{}").status, 405);
}

TEST_F(agentd_test, TokenFileIsPrivate) {
    struct stat st {};
    ASSERT_EQ(::stat((agentd_->state_dir() / "token").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600);
    EXPECT_EQ(agentd_->token().size(), 64u);
}

TEST_F(agentd_test, MissingOrWrongTokenIs401) {
    std::string body = R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})";
    auto none = http_request(agentd_->port(), "POST", "/rpc", body);
    EXPECT_EQ(none.status, 401);
    EXPECT_EQ(none.headers["www-authenticate"], "Bearer");
    auto wrong = http_request(agentd_->port(), "POST", "/rpc", body,
                              {{"Authorization", "Bearer " + std::string(64, 'a')}});
    EXPECT_EQ(wrong.status, 401);
    auto basic = http_request(agentd_->port(), "POST", "/rpc", body,
                              {{"Authorization", "Basic " + agentd_->token()}});
    EXPECT_EQ(basic.status, 401);
}

TEST_F(agentd_test, ForeignHostOrOriginIs403) {
    std::string body = R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})";
    auto host = agentd_->post(body, {{"Host", "evil.example:7077"}});
    EXPECT_EQ(host.status, 403);
    auto origin = agentd_->post(body, {{"Origin", "https://evil.example"}});
    EXPECT_EQ(origin.status, 403);
    auto local_origin = agentd_->post(body, {{"Origin", "http://localhost:3000"}});
    EXPECT_EQ(local_origin.status, 200);
    auto localhost = agentd_->post(body, {{"Host", "localhost:1234"}});
    EXPECT_EQ(localhost.status, 200);
}

TEST_F(agentd_test, WrongMethodPathOrContentType) {
    auto get = http_request(agentd_->port(), "GET", "/rpc", "", bearer(*agentd_));
    EXPECT_EQ(get.status, 405);
    EXPECT_EQ(get.headers["allow"], "POST");
    auto missing = http_request(agentd_->port(), "GET", "/nope", "", bearer(*agentd_));
    EXPECT_EQ(missing.status, 404);
    auto text = agentd_->post(R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})",
                              {{"Content-Type", "text/plain"}});
    EXPECT_EQ(text.status, 415);
    auto charset = agentd_->post(R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})",
                                 {{"Content-Type", "application/json; charset=utf-8"}});
    EXPECT_EQ(charset.status, 200);
}

TEST_F(agentd_test, OversizedBodyIs413AndLaunchesNothing) {
    std::string prompt(2 << 20, 'x');
    auto r = agentd_->post(
        R"({"jsonrpc":"2.0","id":1,"method":"agents_start","params":{"tasks":[{"prompt":")" +
        prompt + R"("}]}})");
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(fake_->stats().at("creates_started").as_int64(), 0);
    // The daemon still serves.
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/healthz").status, 200);
}

TEST_F(agentd_test, ParseErrorAndInvalidRequests) {
    auto bad = parse(agentd_->post("{not json"));
    EXPECT_EQ(bad.at("error").at("code").as_int64(), -32700);
    EXPECT_TRUE(bad.at("id").is_null());

    auto empty = parse(agentd_->post("[]"));
    EXPECT_EQ(empty.at("error").at("code").as_int64(), -32600);

    auto no_version = parse(agentd_->post(R"({"id":7,"method":"agents_status"})"));
    EXPECT_EQ(no_version.at("error").at("code").as_int64(), -32600);
    EXPECT_EQ(no_version.at("id").as_int64(), 7);

    auto unknown = agentd_->error("agents_explode", json::object{});
    EXPECT_EQ(unknown.at("code").as_int64(), -32601);
}

TEST_F(agentd_test, BatchAnswersEachRequestInOrder) {
    auto r = agentd_->post(R"([
        {"jsonrpc":"2.0","id":"a","method":"agents_status"},
        {"jsonrpc":"2.0","method":"agents_status"},
        {"jsonrpc":"2.0","id":2,"method":"nope"},
        42,
        {"jsonrpc":"2.0","id":3,"method":"agents_status","params":{"session":"bad session"}}
    ])");
    ASSERT_EQ(r.status, 200);
    auto v = parse(r).as_array();
    ASSERT_EQ(v.size(), 4u);  // the notification gets none
    EXPECT_EQ(v[0].at("id").as_string(), "a");
    EXPECT_TRUE(v[0].as_object().contains("result"));
    EXPECT_EQ(v[1].at("error").at("code").as_int64(), -32601);
    EXPECT_TRUE(v[2].at("id").is_null());
    EXPECT_EQ(v[2].at("error").at("code").as_int64(), -32600);
    EXPECT_EQ(v[3].at("id").as_int64(), 3);
    EXPECT_EQ(v[3].at("error").at("data").at("field").as_string(), "session");
}

TEST_F(agentd_test, NotificationsOnlyGet204) {
    auto one = agentd_->post(R"({"jsonrpc":"2.0","method":"agents_status"})");
    EXPECT_EQ(one.status, 204);
    EXPECT_TRUE(one.body.empty());
    auto batch = agentd_->post(
        R"([{"jsonrpc":"2.0","method":"agents_status"},{"jsonrpc":"2.0","method":"agents_status"}])");
    EXPECT_EQ(batch.status, 204);
}

struct bad_params {
    std::string method;
    std::string params;
    std::int64_t code;
    std::string field;
};

void PrintTo(bad_params const& c, std::ostream* os) {
    *os << c.method << " " << c.params;
}

class invalid_params : public agentd_test, public ::testing::WithParamInterface<bad_params> {};

std::string bad_params_name(::testing::TestParamInfo<bad_params> const& info) {
    std::string name = info.param.method.substr(7) + "_" + std::to_string(info.index);
    return name;
}

TEST_P(invalid_params, AreRejectedNamingTheField) {
    auto const& c = GetParam();
    auto err = agentd_->error(c.method, json::parse(c.params));
    EXPECT_EQ(err.at("code").as_int64(), c.code) << json::serialize(err);
    if (!c.field.empty()) {
        EXPECT_EQ(str(err.at("data"), "field"), c.field) << json::serialize(err);
    }
    EXPECT_EQ(fake_->stats().at("creates_started").as_int64(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Params, invalid_params,
    ::testing::Values(
        bad_params{"agents_start", "{}", -32602, "tasks"},
        bad_params{"agents_start", R"({"tasks":"do it"})", -32602, "tasks"},
        bad_params{"agents_start", R"({"tasks":[]})", -32602, "tasks"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":""}]})", -32602, "tasks[0].prompt"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok"},{"prompt":5}]})", -32602,
                   "tasks[1].prompt"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok","model":"gpt"}]})", -32602,
                   "tasks[0].model"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok","timeout_ms":-1}]})", -32602,
                   "tasks[0].timeout_ms"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok","timeout_ms":"5"}]})", -32602,
                   "tasks[0].timeout_ms"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok","promt":"typo"}]})", -32602,
                   "tasks[0].promt"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok"}],"session":""})", -32602,
                   "session"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok"}],"session":7})", -32602, "session"},
        bad_params{"agents_start", R"({"tasks":[{"prompt":"ok"}],"upstream_parent":"x"})", -32602,
                   "upstream_parent"},
        bad_params{"agents_start", R"([{"prompt":"ok"}])", -32602, "params"},
        bad_params{
            "agents_start",
            R"({"tasks":[{"prompt":"1"},{"prompt":"2"},{"prompt":"3"},{"prompt":"4"},{"prompt":"5"},{"prompt":"6"},{"prompt":"7"},{"prompt":"8"},{"prompt":"9"}]})",
            -32001, ""},
        bad_params{"agents_status", R"({"jobs":"job_1"})", -32602, "jobs"},
        bad_params{"agents_status", R"({"jobs":["job_1",2]})", -32602, "jobs[1]"},
        bad_params{"agents_wait", R"({"mode":"some"})", -32602, "mode"},
        bad_params{"agents_wait", R"({"timeout_ms":3600001})", -32602, "timeout_ms"},
        bad_params{"agents_wait", R"({"timeout_ms":1.5})", -32602, "timeout_ms"},
        bad_params{"agents_cancel", "{}", -32602, "jobs"},
        bad_params{"agents_peek", "{}", -32602, "job"},
        bad_params{"agents_peek", R"({"job":["job_1"]})", -32602, "job"}),
    bad_params_name);

TEST_F(agentd_test, TooManyTasksNamesTheLimit) {
    json::array tasks;
    for (int i = 0; i < 9; ++i) tasks.push_back(task("x"));
    auto err = agentd_->error("agents_start", json::object{{"tasks", tasks}});
    EXPECT_EQ(err.at("code").as_int64(), -32001);
    EXPECT_EQ(str(err, "message"), "Limit exceeded: 9 tasks > max_tasks_per_call 8");
    EXPECT_EQ(str(err.at("data"), "limit"), "max_tasks");
    EXPECT_EQ(err.at("data").at("max").as_int64(), 8);
    EXPECT_EQ(err.at("data").at("value").as_int64(), 9);
    restart_agentd({"--max-tasks-per-call", "9"});
    auto ok = agentd_->call("agents_start", json::object{{"tasks", tasks}});
    EXPECT_EQ(jobs_of(ok).size(), 9u);
}

TEST_F(agentd_test, KeepAliveServesManyRequestsOnOneConnection) {
    http_connection conn(agentd_->port());
    for (int i = 0; i < 20; ++i) {
        auto r =
            conn.request("POST", "/rpc", R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})",
                         bearer(*agentd_));
        ASSERT_EQ(r.status, 200);
    }
    EXPECT_TRUE(conn.is_open());
}

TEST_F(agentd_test, SlowClientIsCutOffByTheReadDeadline) {
    restart_agentd({"--read-timeout-ms", "300"});
    // Half a request line, then silence: the server must close within its deadline.
    auto t0 = std::chrono::steady_clock::now();
    auto reply = raw_exchange(agentd_->port(), "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                              std::chrono::seconds(5));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    EXPECT_TRUE(reply.empty()) << reply;
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/healthz").status, 200);
}

TEST_F(agentd_test, RefusesNonLoopbackListenWithoutAuth) {
    child_process p({AGENTD_PATH, "--listen", "0.0.0.0:0", "--auth", "none", "--state-dir",
                     (agentd_->state_dir() / "x").string()});
    auto status = p.wait_exit(std::chrono::seconds(5));
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 0);
    // Read through the pipe to its end: the exit can be seen before the last stderr bytes.
    EXPECT_TRUE(p.wait_for_line(std::regex("non-loopback"), std::chrono::seconds(5)).has_value())
        << p.stderr_text();
}

TEST_F(agentd_test, AuthNoneOnLoopbackNeedsNoToken) {
    restart_agentd({"--auth", "none"});
    auto r = http_request(agentd_->port(), "POST", "/rpc",
                          R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})");
    EXPECT_EQ(r.status, 200);
}

}  // namespace
}  // namespace agentd::test
