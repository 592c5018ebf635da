// The upstream pool's choice of a server (jobs/upstream/pool.hpp), without sockets: the fewest
// running jobs, ties to the lowest index, the per-server cap, unhealthy servers skipped, and a
// follow-up held to its own server.
#include "jobs/upstream/pool.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace agentd::jobs::upstream {
namespace {

using verdict = placement::verdict;

std::vector<server_state> three(std::size_t a, std::size_t b, std::size_t c) {
    return {{"http://a", true, {}, a}, {"http://b", true, {}, b}, {"http://c", true, {}, c}};
}

TEST(PoolChoice, NewJobGoesToTheServerWithTheFewestRunning) {
    auto s = three(2, 1, 3);
    auto p = choose_server(s, "", 0);
    EXPECT_EQ(p.what, verdict::run);
    EXPECT_EQ(p.server, "http://b");
}

TEST(PoolChoice, TiesGoToTheLowestIndex) {
    auto s = three(1, 0, 0);
    EXPECT_EQ(choose_server(s, "", 0).server, "http://b");
    s = three(0, 0, 0);
    EXPECT_EQ(choose_server(s, "", 0).server, "http://a");
}

TEST(PoolChoice, CapSkipsFullServersAndWaitsWhenAllAreFull) {
    auto s = three(2, 2, 1);
    auto p = choose_server(s, "", 2);
    EXPECT_EQ(p.what, verdict::run);
    EXPECT_EQ(p.server, "http://c");
    s[2].running = 2;
    p = choose_server(s, "", 2);
    EXPECT_EQ(p.what, verdict::wait);
    EXPECT_FALSE(p.refused);
    EXPECT_EQ(choose_server(s, "", 0).what, verdict::run) << "0 means no cap";
}

TEST(PoolChoice, UnhealthyServersAreSkipped) {
    auto s = three(5, 0, 3);
    s[1].up = false;
    s[1].why_down = "health check failed (connection refused)";
    auto p = choose_server(s, "", 0);
    EXPECT_EQ(p.server, "http://c");
    // Full healthy servers wait even when a down one has room.
    p = choose_server(s, "", 3);
    EXPECT_EQ(p.what, verdict::wait);
}

TEST(PoolChoice, NoHealthyServerRefusesNamingEachAndWhy) {
    auto s = three(0, 0, 0);
    for (auto& x : s) {
        x.up = false;
        x.why_down = "health check failed (connection refused)";
    }
    auto p = choose_server(s, "", 0);
    ASSERT_EQ(p.what, verdict::refuse);
    ASSERT_TRUE(p.refused);
    EXPECT_EQ(p.refused->kind, protocol::error_kind::transport);
    EXPECT_EQ(p.refused->phase, protocol::error_phase::create);
    EXPECT_EQ(p.refused->message,
              "no healthy upstream server: http://a: health check failed (connection refused); "
              "http://b: health check failed (connection refused); http://c: health check "
              "failed (connection refused)");
}

TEST(PoolChoice, FollowUpStaysOnItsServer) {
    auto s = three(4, 0, 0);
    auto p = choose_server(s, "http://a", 0);
    EXPECT_EQ(p.what, verdict::run);
    EXPECT_EQ(p.server, "http://a") << "not the least busy: its own";
    EXPECT_EQ(choose_server(s, "http://a", 4).what, verdict::wait) << "full: it waits";
    s[0].up = false;
    s[0].why_down = "a job's call failed (reset)";
    p = choose_server(s, "http://a", 0);
    ASSERT_EQ(p.what, verdict::refuse);
    EXPECT_EQ(p.refused->message,
              "the job's upstream server http://a is down: a job's call failed (reset)");
    p = choose_server(s, "http://gone", 0);
    ASSERT_EQ(p.what, verdict::refuse);
    EXPECT_EQ(p.refused->message, "the job's upstream server http://gone is not configured");
}

}  // namespace
}  // namespace agentd::jobs::upstream
