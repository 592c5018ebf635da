// A hostile opencode upstream against the real agentd (issue #14 points 3, 7, 11): replies whose
// framing never ends, oversized or malformed session replies, an endless event line, a flood of
// events for sessions agentd does not own, and a reset right after a prompt was read. agentd's
// memory (the child's VmHWM, its peak RSS) stays bounded and no prompt is ever sent twice.
#include "agentd_fixture.hpp"

#include <fstream>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

// The child's "VmRSS" or "VmHWM" (peak) from /proc, in KiB.
std::int64_t proc_kib(int pid, std::string_view field) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':')
            return std::stoll(line.substr(field.size() + 1));
    }
    ADD_FAILURE() << "no " << field << " for pid " << pid;
    return 0;
}

// Peak RSS growth allowed while a flood runs. Sanitizer builds keep freed memory in quarantine,
// so the bound only holds in the normal build.
constexpr std::int64_t max_growth_kib = 32 << 10;
#ifdef __SANITIZE_ADDRESS__
constexpr bool measure_rss = false;
#else
constexpr bool measure_rss = true;
#endif

json::array run_all(agentd_process& a, json::array tasks, std::int64_t timeout_ms = 20000) {
    auto started = a.call("agents_start", json::object{{"tasks", std::move(tasks)}});
    auto done = a.call("agents_wait", json::object{{"jobs", ids_of(jobs_of(started))},
                                                   {"timeout_ms", timeout_ms}});
    EXPECT_TRUE(done.at("done").as_bool()) << json::serialize(done);
    return jobs_of(done);
}

class hostile_upstream : public agentd_test {
  protected:
    // RSS once agentd has served a normal job: the baseline floods are measured against.
    std::int64_t warm_baseline() {
        auto jobs = run_all(*agentd_, json::array{task("warm up")});
        EXPECT_EQ(str(jobs.at(0), "state"), "completed");
        return proc_kib(agentd_->process().pid(), "VmRSS");
    }

    void expect_bounded(std::int64_t baseline_kib, std::string_view what) {
        auto peak = proc_kib(agentd_->process().pid(), "VmHWM");
        std::cerr << "[ rss      ] " << what << ": baseline " << baseline_kib / 1024
                  << " MiB, peak " << peak / 1024 << " MiB\n";
        if (measure_rss) {
            EXPECT_LT(peak - baseline_kib, max_growth_kib) << what;
        }
    }

    void expect_too_large(json::array const& jobs, std::string_view phase) {
        for (auto const& j : jobs) {
            EXPECT_EQ(str(j, "state"), "failed") << json::serialize(j);
            EXPECT_EQ(str(j.at("error"), "kind"), "protocol") << json::serialize(j);
            EXPECT_EQ(str(j.at("error"), "phase"), phase) << json::serialize(j);
            EXPECT_NE(str(j.at("error"), "message").find("upstream response too large"),
                      std::string::npos)
                << json::serialize(j);
        }
    }
};

TEST_F(hostile_upstream, EndlessTrailerOnThePromptReplyFailsTheJobWithBoundedMemory) {
    auto baseline = warm_baseline();
    // timeout_ms ends the jobs on a build without the bound, which then fail on kind and RSS.
    auto evil = [](int i) {
        auto t = task(fmt::format("trailer {} [[fake fault=endless_trailer latency_ms=10]]", i));
        t["timeout_ms"] = 8000;
        return t;
    };
    auto jobs = run_all(*agentd_, json::array{evil(1), evil(2)});
    expect_too_large(jobs, "prompt");
    expect_bounded(baseline, "2 jobs, endless trailers");
    EXPECT_EQ(str(run_all(*agentd_, json::array{task("still fine")}).at(0), "state"), "completed");
}

TEST_F(hostile_upstream, EndlessChunkExtensionFailsTheJobWithBoundedMemory) {
    auto baseline = warm_baseline();
    auto t = task("extension [[fake fault=huge_extension latency_ms=10]]");
    t["timeout_ms"] = 8000;
    expect_too_large(run_all(*agentd_, json::array{t}), "prompt");
    expect_bounded(baseline, "endless chunk extension");
}

TEST_F(hostile_upstream, OversizedSessionReplyFailsAtCreate) {
    auto jobs = run_all(*agentd_, json::array{task("x", "[[fake create_fault=too_big]]")});
    expect_too_large(jobs, "create");
    EXPECT_EQ(fake_->stats().at("prompts_started").as_int64(), 0);
}

TEST_F(hostile_upstream, SessionIdThatIsNotOneNeverReachesARequestPath) {
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, 5s));
    fake_->reset();
    auto jobs = run_all(*agentd_, json::array{task("x", "[[fake create_fault=bad_id]]")});
    auto const& j = jobs.at(0);
    EXPECT_EQ(str(j, "state"), "failed") << json::serialize(j);
    EXPECT_EQ(str(j.at("error"), "kind"), "protocol");
    EXPECT_EQ(str(j.at("error"), "phase"), "create");
    EXPECT_NE(str(j.at("error"), "message").find("invalid session id"), std::string::npos)
        << json::serialize(j);
    // Only the create reached the upstream: no prompt, no abort on the forged path.
    auto stats = fake_->stats();
    EXPECT_EQ(stats.at("requests_total").as_int64(), 1) << json::serialize(stats);
}

TEST_F(hostile_upstream, PromptIsNotResentAfterAResetOnAReusedConnection) {
    fake_->reset();
    // The create leaves its keep-alive connection in the pool; the prompt goes out on it and the
    // upstream resets the connection right after reading it, before any response byte.
    auto jobs = run_all(*agentd_, json::array{task("side effects [[fake fault=early_reset]]")});
    auto const& j = jobs.at(0);
    EXPECT_EQ(str(j, "state"), "failed") << json::serialize(j);
    EXPECT_EQ(str(j.at("error"), "kind"), "transport") << json::serialize(j);
    EXPECT_EQ(fake_->stats().at("prompts_started").as_int64(), 1)
        << "the upstream got the prompt once";
}

TEST_F(hostile_upstream, EventFloodOfOtherSessionsKeepsNoStateAndJobsStillComplete) {
    auto baseline = warm_baseline();
    constexpr std::int64_t flood = 200'000;
    auto res = http_request(fake_->port(), "POST", fmt::format("/_fake/flood?events={}", flood));
    ASSERT_EQ(res.status, 200) << res.body;
    auto jobs = run_all(*agentd_, json::array{task("during the flood")});
    EXPECT_EQ(str(jobs.at(0), "state"), "completed") << json::serialize(jobs.at(0));
    // The flood is paced by agentd's reading, so once it is all published agentd has read
    // all but the last few thousand events.
    ASSERT_TRUE(fake_->wait_counter("flood_events", flood, 60s)) << json::serialize(fake_->stats());
    EXPECT_EQ(fake_->stats().at("event_subscribers").as_int64(), 1) << "the stream kept up";
    expect_bounded(baseline, "200k part events of unknown sessions");
}

class endless_event_line : public hostile_upstream {
  protected:
    void SetUp() override {
        fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH,
                                                std::vector<std::string>{"--endless-event-line"});
        agentd_ = std::make_unique<agentd_process>(fake_->url());
    }
};

TEST_F(endless_event_line, IsDroppedAndJobsStillComplete) {
    auto baseline = warm_baseline();
    // The stream is dropped at its bound and followed again after a backoff: a few rounds.
    auto jobs = run_all(*agentd_, json::array{task("a [[fake latency_ms=3000]]"), task("b")});
    for (auto const& j : jobs) EXPECT_EQ(str(j, "state"), "completed") << json::serialize(j);
    expect_bounded(baseline, "endless event line");
}

}  // namespace
}  // namespace agentd::test
