// The openai backend end to end: the real agentd binary against the fake OpenAI-compatible
// server (tests/fake_openai) over loopback. Streaming output and usage, peek mid-stream, cancel
// closing the stream, every fault, 429 retries, deadlines, API keys, and https with a CA file.
#include "agentd_fixture.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The fake OpenAI server as a child process on a free loopback port.
class fake_openai {
  public:
    explicit fake_openai(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{FAKE_OPENAI_PATH, "--listen", "127.0.0.1:0"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        process_ = std::make_unique<child_process>(argv);
        static std::regex const listening(
            R"(fake_openai listening on https?://127\.0\.0\.1:(\d+))");
        auto port = process_->wait_for_line(listening, 5s);
        if (!port)
            throw std::runtime_error("fake_openai did not start: " + process_->stderr_text());
        port_ = static_cast<unsigned short>(std::stoi(*port));
    }
    ~fake_openai() {
        process_->signal(SIGTERM);
        process_->wait_exit(5s);
    }

    // Base URL as agentd takes it.
    std::string url(std::string_view scheme = "http", std::string_view host = "127.0.0.1") const {
        return fmt::format("{}://{}:{}/v1", scheme, host, port_);
    }
    json::object stats() const {
        return json::parse(http_request(port_, "GET", "/_fake/stats").body).as_object();
    }
    std::int64_t counter(std::string const& name) const { return stats().at(name).as_int64(); }
    // True as soon as `name` is within [min, max] (the fake's event-driven /_fake/wait).
    bool wait_counter(std::string const& name, std::int64_t min, std::chrono::milliseconds timeout,
                      std::int64_t max = std::numeric_limits<std::int64_t>::max()) const {
        auto target = fmt::format("/_fake/wait?counter={}&min={}&max={}&timeout_ms={}", name, min,
                                  max, timeout.count());
        auto res = http_request(port_, "GET", target, {}, {}, timeout + 5s);
        return json::parse(res.body).at("ok").as_bool();
    }

  private:
    std::unique_ptr<child_process> process_;
    unsigned short port_ = 0;
};

std::vector<std::string> openai_flags(std::vector<std::string> extra = {}) {
    std::vector<std::string> flags{
        "--upstream-backend",    "openai", "--upstream-model",     "fake-model",
        "--upstream-timeout-ms", "1000",   "--max-tasks-per-call", "16"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    return flags;
}

json::array start(agentd_process& a, json::array tasks) {
    return jobs_of(a.call("agents_start", json::object{{"tasks", std::move(tasks)}}));
}

json::array wait_all(agentd_process& a, json::array const& jobs) {
    auto done = a.call("agents_wait", json::object{{"jobs", ids_of(jobs)}, {"timeout_ms", 15000}});
    EXPECT_TRUE(done.at("done").as_bool()) << json::serialize(done);
    return jobs_of(done);
}

json::object run_one(agentd_process& a, json::object t) {
    auto jobs = wait_all(a, start(a, json::array{std::move(t)}));
    return jobs.empty() ? json::object{} : jobs.at(0).as_object();
}

void expect_failed(json::value const& job, std::string_view kind, std::string_view message,
                   std::optional<int> http_status = std::nullopt) {
    SCOPED_TRACE(json::serialize(job));
    EXPECT_EQ(str(job, "state"), "failed");
    ASSERT_TRUE(job.as_object().contains("error"));
    auto const& e = job.at("error");
    EXPECT_EQ(str(e, "kind"), kind);
    EXPECT_EQ(str(e, "phase"), "prompt");
    EXPECT_NE(str(e, "message").find(message), std::string::npos);
    if (http_status)
        EXPECT_EQ(e.at("http_status").as_int64(), *http_status);
    else
        EXPECT_FALSE(e.as_object().contains("http_status"));
}

class openai_test : public ::testing::Test {
  protected:
    void SetUp() override {
        fake_ = std::make_unique<fake_openai>();
        agentd_ = std::make_unique<agentd_process>(fake_->url(), openai_flags());
    }

    std::unique_ptr<fake_openai> fake_;
    std::unique_ptr<agentd_process> agentd_;
};

TEST_F(openai_test, StreamsTheCompletionWithUsage) {
    auto t = task("hello wide world [[fake chunks=3]]", "greet");
    t["system"] = "be brief";
    t["agent"] = "explore";     // ignored by this backend
    t["directory"] = "/tmp/x";  // ignored by this backend
    auto job = run_one(*agentd_, t);
    SCOPED_TRACE(json::serialize(job));
    EXPECT_EQ(str(job, "state"), "completed");
    EXPECT_EQ(str(job, "output"), "echo: hello wide world");
    EXPECT_FALSE(job.at("truncated").as_bool());
    EXPECT_EQ(str(job.at("upstream"), "backend"), "openai");
    EXPECT_EQ(str(job.at("upstream"), "session").substr(0, 5), "chat_");
    EXPECT_EQ(job.at("usage").at("input_tokens").as_int64(), 5);  // "be brief" + 3 words
    EXPECT_GT(job.at("usage").at("output_tokens").as_int64(), 0);

    auto body = fake_->stats().at("last_request_body").as_object();
    EXPECT_EQ(body.size(), 4u) << json::serialize(body);  // no agent, directory or extras
    EXPECT_EQ(body.at("model"), "fake-model");
    EXPECT_EQ(body.at("stream"), true);
    EXPECT_EQ(body.at("stream_options").at("include_usage"), true);
    auto const& messages = body.at("messages").as_array();
    ASSERT_EQ(messages.size(), 2u);
    EXPECT_EQ(messages[0].at("role"), "system");
    EXPECT_EQ(messages[0].at("content"), "be brief");
    EXPECT_EQ(messages[1].at("role"), "user");
    EXPECT_EQ(fake_->counter("streams_completed"), 1);
}

// DESIGN §2 isolation is opencode's: such a job fails at create, before any stream.
TEST_F(openai_test, WorktreeIsolationFailsAtCreate) {
    auto t = task("hello");
    t["isolation"] = "worktree";
    auto job = run_one(*agentd_, t);
    SCOPED_TRACE(json::serialize(job));
    EXPECT_EQ(str(job, "state"), "failed");
    EXPECT_EQ(str(job.at("error"), "kind"), "upstream");
    EXPECT_EQ(str(job.at("error"), "phase"), "create");
    EXPECT_EQ(str(job.at("error"), "message"), "isolation: worktree needs the opencode upstream");
    EXPECT_FALSE(job.contains("worktree"));
}

// DESIGN §2 budget: the stream's usage (its last chunk here) is checked as it arrives.
TEST_F(openai_test, UsagePastTheTokenBudgetFailsTheJob) {
    auto over = task("hello [[fake output_bytes=400]]");
    over["budget"] = json::object{{"max_tokens", 50}};
    auto failed = run_one(*agentd_, over);
    SCOPED_TRACE(json::serialize(failed));
    EXPECT_EQ(str(failed, "state"), "failed");
    EXPECT_EQ(str(failed.at("error"), "kind"), "limit");
    // 1 prompt word, 400 bytes at 4 per token.
    EXPECT_EQ(str(failed.at("error"), "message"), "budget exhausted: tokens 101 > 50");
    EXPECT_EQ(failed.at("usage").at("output_tokens").as_int64(), 100);
    EXPECT_FALSE(failed.contains("output"));

    auto under = task("hello [[fake output_bytes=400]]");
    under["budget"] = json::object{{"max_tokens", 101}, {"max_cost", 0}};
    auto done = run_one(*agentd_, under);
    EXPECT_EQ(str(done, "state"), "completed") << json::serialize(done);
}

// DESIGN §3: idle_timeout_ms applies to the stream; every chunk is progress.
TEST_F(openai_test, AStreamThatGoesQuietFailsAtTheIdleTimeout) {
    agentd_ =
        std::make_unique<agentd_process>(fake_->url(), openai_flags({"--idle-timeout-ms", "500"}));
    auto jobs =
        wait_all(*agentd_, start(*agentd_, json::array{
                                               task("steady [[fake chunks=8 latency_ms=1600]]"),
                                               task("quiet [[fake chunks=2 latency_ms=3000]]"),
                                           }));
    ASSERT_EQ(jobs.size(), 2u);
    EXPECT_EQ(str(jobs[0], "state"), "completed") << json::serialize(jobs[0]);
    expect_failed(jobs[1], "timeout", "no progress from the upstream for 0.5 s");
}

TEST_F(openai_test, TaskModelIsSentVerbatim) {
    auto t = task("which model");
    t["model"] = "openrouter/some-model";
    EXPECT_EQ(str(run_one(*agentd_, t), "state"), "completed");
    EXPECT_EQ(fake_->stats().at("last_request_body").at("model"), "openrouter/some-model");
}

TEST_F(openai_test, AServerThatIgnoresStreamingStillWorks) {
    auto job = run_one(*agentd_, task("whole body [[fake fault=ignore_stream]]"));
    EXPECT_EQ(str(job, "state"), "completed") << json::serialize(job);
    EXPECT_EQ(str(job, "output"), "echo: whole body");
    EXPECT_GT(job.at("usage").at("output_tokens").as_int64(), 0);
    EXPECT_EQ(fake_->counter("completions"), 1);
}

TEST_F(openai_test, PeekMidStreamShowsAPrefixOfTheFinalText) {
    auto jobs = start(*agentd_, json::array{task("one two three four five six seven eight nine ten "
                                                 "[[fake chunks=10 latency_ms=1500]]")});
    ASSERT_TRUE(fake_->wait_counter("chunks_sent", 3, 5s));
    std::string partial;
    auto until = std::chrono::steady_clock::now() + 2s;
    while (partial.empty() && std::chrono::steady_clock::now() < until) {
        auto peek = agentd_->call("agents_peek", json::object{{"job", str(jobs.at(0), "id")}});
        partial = str(peek, "partial_output");
        EXPECT_EQ(str(peek.at("job"), "state"), "running");
    }
    auto done = wait_all(*agentd_, jobs);
    auto output = str(done.at(0), "output");
    EXPECT_EQ(output, "echo: one two three four five six seven eight nine ten");
    EXPECT_FALSE(partial.empty());
    EXPECT_LT(partial.size(), output.size());
    EXPECT_EQ(output.substr(0, partial.size()), partial);
}

TEST_F(openai_test, CancelMidStreamClosesTheStream) {
    auto jobs = start(*agentd_, json::array{task("long story [[fake chunks=40 latency_ms=8000]]")});
    ASSERT_TRUE(fake_->wait_counter("chunks_sent", 2, 5s));
    auto cancelled = agentd_->call("agents_cancel", json::object{{"jobs", ids_of(jobs)}});
    EXPECT_EQ(str(jobs_of(cancelled).at(0), "state"), "cancelled");
    // The upstream notices at once, long before the 8 s the reply would have taken.
    EXPECT_TRUE(fake_->wait_counter("client_disconnects", 1, 3s));
    EXPECT_TRUE(fake_->wait_counter("streams_in_flight", 0, 3s, 0));
    EXPECT_EQ(fake_->counter("streams_completed"), 0);
    auto after = wait_all(*agentd_, jobs);
    EXPECT_EQ(str(after.at(0), "state"), "cancelled");
}

TEST_F(openai_test, EveryFaultFailsItsJobWithAClearError) {
    struct fault_case {
        std::string fault;
        std::string kind;
        std::string message;
        std::optional<int> http_status;
    };
    std::vector<fault_case> const cases{
        {"500", "upstream", "HTTP 500: fake internal error", 500},
        {"400", "upstream", "HTTP 400: fake bad request", 400},
        {"close", "transport", "before answering", {}},
        {"reset", "transport", "before answering", {}},
        {"garbage", "protocol", "not an event stream", {}},
        {"bad_chunk", "protocol", "malformed stream chunk", {}},
        {"no_done", "protocol", "stream ended early", {}},
        {"stream_error", "upstream", "fake stream error", {}},
        {"mid_reset", "transport", "mid-stream", {}},
    };
    json::array tasks;
    for (auto const& c : cases) tasks.push_back(task(fmt::format("f [[fake fault={}]]", c.fault)));
    auto jobs = wait_all(*agentd_, start(*agentd_, tasks));
    ASSERT_EQ(jobs.size(), cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].fault);
        expect_failed(jobs[i], cases[i].kind, cases[i].message, cases[i].http_status);
    }
}

// Framing that never ends (issue #14.3): the job fails at the read bound, long before its
// deadline, and agentd's peak RSS stays near where it was.
TEST_F(openai_test, EndlessStreamFramingFailsAtTheBoundWithBoundedMemory) {
    auto pid = agentd_->process().pid();
    auto kib = [pid](std::string_view field) {
        std::ifstream in(fmt::format("/proc/{}/status", pid));
        std::string line;
        while (std::getline(in, line))
            if (line.starts_with(field)) return std::stoll(line.substr(field.size() + 1));
        return 0ll;
    };
    auto baseline = kib("VmRSS:");
    json::array tasks;
    for (auto const* fault : {"endless_line", "huge_extension"}) {
        auto t = task(fmt::format("f [[fake fault={}]]", fault));
        t["timeout_ms"] = 10000;
        tasks.push_back(std::move(t));
    }
    auto jobs = wait_all(*agentd_, start(*agentd_, tasks));
    ASSERT_EQ(jobs.size(), 2u);
    for (auto const& j : jobs) expect_failed(j, "protocol", "upstream response too large");
    auto peak = kib("VmHWM:");
    std::cerr << "[ rss      ] openai endless line + extension: baseline " << baseline / 1024
              << " MiB, peak " << peak / 1024 << " MiB\n";
#ifndef __SANITIZE_ADDRESS__
    EXPECT_LT(peak - baseline, 32 << 10);
#endif
}

TEST_F(openai_test, RateLimitIsRetriedAfterRetryAfter) {
    auto quick = run_one(*agentd_, task("twice limited [[fake fault=429 times=2 retry_after=0]]"));
    EXPECT_EQ(str(quick, "state"), "completed") << json::serialize(quick);
    EXPECT_EQ(str(quick, "output"), "echo: twice limited");
    EXPECT_EQ(fake_->counter("rate_limited"), 2);

    auto slow = run_one(*agentd_, task("once limited [[fake fault=429 times=1 retry_after=1]]"));
    EXPECT_EQ(str(slow, "state"), "completed") << json::serialize(slow);
    EXPECT_GE(slow.at("elapsed_ms").as_int64(), 900);  // Retry-After: 1 was honoured
    EXPECT_EQ(fake_->counter("rate_limited"), 3);
}

TEST_F(openai_test, PersistentRateLimitFailsAfterTwoRetries) {
    auto job = run_one(*agentd_, task("always limited [[fake fault=429 retry_after=0]]"));
    expect_failed(job, "upstream", "HTTP 429: Rate limit reached", 429);
    EXPECT_EQ(fake_->counter("rate_limited"), 3);
    EXPECT_EQ(fake_->counter("requests_total"), 3);
}

TEST_F(openai_test, RetryAfterBeyondTheJobDeadlineFailsAtOnce) {
    auto t = task("limited long [[fake fault=429 retry_after=3]]");
    t["timeout_ms"] = 2000;
    auto job = run_one(*agentd_, t);
    expect_failed(job, "upstream", "HTTP 429", 429);
    EXPECT_LT(job.at("elapsed_ms").as_int64(), 1500);
    EXPECT_EQ(fake_->counter("rate_limited"), 1);
}

TEST_F(openai_test, HangEndsAtTheJobDeadlineOrTheHeadersDeadline) {
    auto by_job = task("hang one [[fake fault=hang]]");
    by_job["timeout_ms"] = 400;
    auto jobs = wait_all(
        *agentd_, start(*agentd_, json::array{by_job, task("hang two [[fake fault=hang]]")}));
    expect_failed(jobs.at(0), "timeout", "job exceeded its timeout of 400 ms");
    EXPECT_LT(jobs.at(0).at("elapsed_ms").as_int64(), 1000);
    // --upstream-timeout-ms 1000 bounds connect + response headers.
    expect_failed(jobs.at(1), "timeout", "upstream timed out before answering");
    EXPECT_LT(jobs.at(1).at("elapsed_ms").as_int64(), 3000);
    EXPECT_TRUE(fake_->wait_counter("client_disconnects", 2, 3s));
}

TEST_F(openai_test, OutputIsCappedAndAMissingModelFails) {
    agentd_.reset();
    fake_ = std::make_unique<fake_openai>(std::vector<std::string>{"--models", ""});
    agentd_ = std::make_unique<agentd_process>(
        fake_->url(),
        std::vector<std::string>{"--upstream-backend", "openai", "--max-output-bytes", "100"});
    auto big = task("big [[fake output_bytes=5000 chunks=50]]");
    big["model"] = "any/model";
    auto jobs = wait_all(*agentd_, start(*agentd_, json::array{big, task("no model anywhere")}));
    SCOPED_TRACE(json::serialize(jobs));
    EXPECT_EQ(str(jobs.at(0), "state"), "completed");
    EXPECT_EQ(str(jobs.at(0), "output").size(), 100u);
    EXPECT_TRUE(jobs.at(0).at("truncated").as_bool());
    // Without a model anywhere, GET /models is asked; it lists none: the job fails at create.
    EXPECT_EQ(str(jobs.at(1), "state"), "failed");
    EXPECT_EQ(str(jobs.at(1).at("error"), "kind"), "upstream");
    EXPECT_EQ(str(jobs.at(1).at("error"), "phase"), "create");
    EXPECT_NE(str(jobs.at(1).at("error"), "message").find("GET /models lists none"),
              std::string::npos);
    EXPECT_EQ(fake_->counter("requests_total"), 2);  // GET /models and the capped job only
    EXPECT_EQ(fake_->counter("model_lists"), 1);
}

// A task without a model runs on the only one the server lists, asked once for a fan-out; with
// several, it fails at create naming them.
TEST_F(openai_test, TheOnlyServedModelIsPickedAndSeveralAreListed) {
    agentd_ = std::make_unique<agentd_process>(
        fake_->url(), std::vector<std::string>{"--upstream-backend", "openai"});
    auto jobs = wait_all(*agentd_, start(*agentd_, json::array{task("a"), task("b"), task("c")}));
    for (auto const& j : jobs) EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    EXPECT_EQ(fake_->stats().at("last_request_body").at("model"), "fake-model");
    EXPECT_EQ(fake_->counter("model_lists"), 1);

    agentd_.reset();
    fake_ = std::make_unique<fake_openai>(std::vector<std::string>{"--models", "m1,m2"});
    agentd_ = std::make_unique<agentd_process>(
        fake_->url(), std::vector<std::string>{"--upstream-backend", "openai"});
    auto failed = run_one(*agentd_, task("which"));
    SCOPED_TRACE(json::serialize(failed));
    EXPECT_EQ(str(failed, "state"), "failed");
    EXPECT_EQ(str(failed.at("error"), "phase"), "create");
    EXPECT_NE(str(failed.at("error"), "message").find("serves 2 models, name one: m1, m2"),
              std::string::npos);
    EXPECT_EQ(fake_->counter("completions"), 0);
}

TEST_F(openai_test, RefusedConnectionIsATransportFailure) {
    agentd_ = std::make_unique<agentd_process>(fmt::format("http://127.0.0.1:{}/v1", unused_port()),
                                               openai_flags());
    expect_failed(run_one(*agentd_, task("anyone there")), "transport", "while connecting");
}

class openai_key_test : public ::testing::Test {
  protected:
    void SetUp() override {
        fake_ = std::make_unique<fake_openai>(std::vector<std::string>{"--api-key", "sk-fake-123"});
        dir_ = fs::temp_directory_path() / fmt::format("agentd-openai-key-{}", ::getpid());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path key_file(std::string const& name, std::string const& content) {
        auto path = dir_ / name;
        std::ofstream(path) << content;
        return path;
    }

    std::unique_ptr<fake_openai> fake_;
    fs::path dir_;
};

TEST_F(openai_key_test, KeyFromEnvironmentOrFileAndNeverLogged) {
    ::setenv("AGENTD_TEST_OPENAI_KEY", "sk-fake-123", 1);
    agentd_process by_env(fake_->url(),
                          openai_flags({"--upstream-api-key-env", "AGENTD_TEST_OPENAI_KEY"}));
    ::unsetenv("AGENTD_TEST_OPENAI_KEY");
    EXPECT_EQ(str(run_one(by_env, task("env key")), "state"), "completed");

    agentd_process by_file(
        fake_->url(),
        openai_flags({"--upstream-api-key-file", key_file("good", "sk-fake-123\n").string()}));
    EXPECT_EQ(str(run_one(by_file, task("file key")), "state"), "completed");

    agentd_process wrong(fake_->url(), openai_flags({"--upstream-api-key-file",
                                                     key_file("bad", "sk-wrong").string()}));
    expect_failed(run_one(wrong, task("wrong key")), "upstream", "HTTP 401: Incorrect API key",
                  401);

    agentd_process none(fake_->url(), openai_flags());
    expect_failed(run_one(none, task("no key")), "upstream", "HTTP 401", 401);

    for (auto* a : {&by_env, &by_file, &wrong})
        EXPECT_EQ(a->process().stderr_text().find("sk-"), std::string::npos);
}

TEST_F(openai_key_test, MissingKeyIsAStartUpError) {
    auto run = [&](std::vector<std::string> flags) {
        std::vector<std::string> argv{
            AGENTD_PATH,      "--listen",  "127.0.0.1:0", "--state-dir", (dir_ / "state").string(),
            "--upstream-url", fake_->url()};
        auto all = openai_flags(std::move(flags));
        argv.insert(argv.end(), all.begin(), all.end());
        child_process p(argv);
        // The message line, waited for: the exit may be seen before stderr is drained.
        auto message = p.wait_for_line(std::regex("agentd: (.*)"), 10s);
        auto status = p.wait_exit(10s);
        return std::pair{status, message.value_or(p.stderr_text())};
    };
    ::unsetenv("AGENTD_TEST_NO_SUCH_KEY");
    auto [env_status, env_err] = run({"--upstream-api-key-env", "AGENTD_TEST_NO_SUCH_KEY"});
    EXPECT_EQ(env_status, 2);
    EXPECT_NE(env_err.find("$AGENTD_TEST_NO_SUCH_KEY is not set"), std::string::npos) << env_err;

    auto [file_status, file_err] = run({"--upstream-api-key-file", (dir_ / "missing").string()});
    EXPECT_EQ(file_status, 2);
    EXPECT_NE(file_err.find("cannot read"), std::string::npos) << file_err;

    auto [empty_status, empty_err] =
        run({"--upstream-api-key-file", key_file("empty", "\n").string()});
    EXPECT_EQ(empty_status, 2);
    EXPECT_NE(empty_err.find("empty"), std::string::npos) << empty_err;
}

// https: a self-signed certificate for 127.0.0.1 made by the openssl CLI for this test.
class openai_tls_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / fmt::format("agentd-openai-tls-{}", ::getpid());
        fs::create_directories(dir_);
        cert_ = (dir_ / "cert.pem").string();
        auto key = (dir_ / "key.pem").string();
        child_process openssl({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
                               cert_, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                               "subjectAltName=IP:127.0.0.1"});
        if (openssl.wait_exit(20s) != 0) GTEST_SKIP() << "openssl CLI unavailable";
        fake_ = std::make_unique<fake_openai>(
            std::vector<std::string>{"--tls-cert", cert_, "--tls-key", key});
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path dir_;
    std::string cert_;
    std::unique_ptr<fake_openai> fake_;
};

TEST_F(openai_tls_test, VerifiesTheCertificateAndTheHostName) {
    agentd_process trusted(fake_->url("https"), openai_flags({"--upstream-ca-file", cert_}));
    auto ok = run_one(trusted, task("over tls [[fake chunks=2]]"));
    EXPECT_EQ(str(ok, "state"), "completed") << json::serialize(ok);
    EXPECT_EQ(str(ok, "output"), "echo: over tls");

    agentd_process untrusted(fake_->url("https"), openai_flags());
    expect_failed(run_one(untrusted, task("no ca")), "transport", "certificate verify failed");

    // The certificate names 127.0.0.1 only.
    agentd_process wrong_name(fake_->url("https", "localhost"),
                              openai_flags({"--upstream-ca-file", cert_}));
    expect_failed(run_one(wrong_name, task("wrong name")), "transport", "hostname mismatch");
}

// Follow-ups (DESIGN §5): agentd keeps the transcript and replays it, with the new user message,
// in the follow-up's request; a follow-up's system replaces the chain's; it survives a restart.
TEST_F(openai_test, FollowUpReplaysTheTranscriptEvenAfterARestart) {
    auto first = task("first question");
    first["system"] = "be brief";
    auto a = run_one(*agentd_, first);
    ASSERT_EQ(str(a, "state"), "completed") << json::serialize(a);
    auto follow = [](std::string prompt, json::value const& id) {
        auto t = task(std::move(prompt));
        t["continue"] = id;
        return t;
    };
    // The messages the fake received last, as "role: content" lines.
    auto received = [&] {
        std::vector<std::string> out;
        auto const stats = fake_->stats();  // the loop below reads into it: keep it alive
        for (auto const& m : stats.at("last_request_body").at("messages").as_array())
            out.push_back(str(m, "role") + ": " + str(m, "content"));
        return out;
    };
    auto b = run_one(*agentd_, follow("second question", a.at("id")));
    EXPECT_EQ(str(b, "output"), "echo: second question") << json::serialize(b);
    EXPECT_EQ(str(b, "continues"), str(a, "id"));
    EXPECT_EQ(str(b.at("upstream"), "session"), str(a.at("upstream"), "session"));
    EXPECT_EQ(received(), (std::vector<std::string>{"system: be brief", "user: first question",
                                                    "assistant: echo: first question",
                                                    "user: second question"}));

    agentd_->kill_and_restart();
    auto again = follow("third question", b.at("id"));
    again["system"] = "be thorough";
    auto c = run_one(*agentd_, again);
    EXPECT_EQ(str(c, "output"), "echo: third question") << json::serialize(c);
    EXPECT_EQ(received(), (std::vector<std::string>{
                              "system: be thorough", "user: first question",
                              "assistant: echo: first question", "user: second question",
                              "assistant: echo: second question", "user: third question"}));
    // A failed turn is not replayed: the chain goes on from the turns that completed.
    auto failed = run_one(*agentd_, follow("broken [[fake fault=500]]", c.at("id")));
    ASSERT_EQ(str(failed, "state"), "failed") << json::serialize(failed);
    auto d = run_one(*agentd_, follow("fourth", failed.at("id")));
    EXPECT_EQ(str(d, "output"), "echo: fourth");
    auto last = received();
    ASSERT_EQ(last.size(), 8u);
    EXPECT_EQ(last[0], "system: be thorough");
    EXPECT_EQ(last[6], "assistant: echo: third question");
    EXPECT_EQ(last[7], "user: fourth");
}

}  // namespace
}  // namespace agentd::test
