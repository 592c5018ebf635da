// jobs/pg/connection against the test cluster: rows and NULLs, text parameters (quotes, UTF-8,
// backslashes), errors as values with their SQLSTATE, queries queued behind each other in order,
// LISTEN/NOTIFY wake-up latency, and a reconnect (with LISTEN again) after the server restarts.
#include "jobs/pg/connection.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coroutine.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <vector>

namespace agentd::jobs::pg {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using test::pg_cluster;
using test::run_coroutine;

class pg_connection_test : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!pg_cluster::shared().running()) pg_cluster::shared().start();
        url_ = pg_cluster::shared().create_database();
    }
    template <class T>
    T run(asio::awaitable<T> a) {
        return run_coroutine(ioc_, std::move(a));
    }
    // Runs the context until `done` or `bound`; false at the bound.
    template <class F>
    bool run_until(F done, std::chrono::milliseconds bound) {
        auto end = steady::now() + bound;
        while (!done()) {
            if (steady::now() > end) return false;
            if (ioc_.stopped()) ioc_.restart();
            ioc_.run_one_for(5ms);
        }
        return true;
    }

    asio::io_context ioc_;
    std::string url_;
};

TEST_F(pg_connection_test, a_query_returns_its_rows_and_nulls) {
    connection c(ioc_.get_executor(), url_);
    ASSERT_TRUE(run(c.ready())) << c.last_error();
    auto r = run(c.query("SELECT 1, NULL::text UNION ALL SELECT 2, 'two' ORDER BY 1"));
    ASSERT_TRUE(r) << r.error->message;
    ASSERT_EQ(r.rows.size(), 2u);
    EXPECT_EQ(r.rows[0][0], "1");
    EXPECT_EQ(r.rows[0][1], std::nullopt);
    EXPECT_EQ(r.rows[1][1], "two");
}

TEST_F(pg_connection_test, text_parameters_arrive_byte_for_byte) {
    connection c(ioc_.get_executor(), url_);
    ASSERT_TRUE(run(c.ready()));
    std::string tricky =
        "it's \"quoted\" \\ back\\slash; DROP TABLE x; -- ü 漢字 😀 \t\n{\"a\":[1]}";
    auto r =
        run(c.query("SELECT $1::text, $2::text IS NULL, length($1::text)", {tricky, std::nullopt}));
    ASSERT_TRUE(r) << r.error->message;
    EXPECT_EQ(r.rows.at(0).at(0), tricky);
    EXPECT_EQ(r.rows.at(0).at(1), "t");
}

TEST_F(pg_connection_test, errors_are_values_with_their_sqlstate_and_the_connection_goes_on) {
    connection c(ioc_.get_executor(), url_);
    ASSERT_TRUE(run(c.ready()));
    auto zero = run(c.query("SELECT 1 / 0"));
    ASSERT_FALSE(zero);
    EXPECT_EQ(zero.error->sqlstate, "22012");
    EXPECT_NE(zero.error->message.find("division by zero"), std::string::npos);
    auto syntax = run(c.query("SELEC nothing"));
    ASSERT_FALSE(syntax);
    EXPECT_EQ(syntax.error->sqlstate, "42601");
    auto fine = run(c.query("SELECT 'still here'"));
    ASSERT_TRUE(fine);
    EXPECT_EQ(fine.rows.at(0).at(0), "still here");
}

TEST_F(pg_connection_test, queries_queued_together_each_get_their_own_result_in_order) {
    connection c(ioc_.get_executor(), url_);
    ASSERT_TRUE(run(c.ready()));
    constexpr int n = 20;
    std::vector<std::optional<std::string>> got(n);
    std::vector<int> order;
    for (int i = 0; i < n; ++i)
        asio::co_spawn(
            ioc_,
            [&, i]() -> asio::awaitable<void> {
                // pg_sleep makes the early ones slow: the later ones must wait their turn.
                std::vector<param> params{std::to_string(i)};
                auto r = co_await c.query("SELECT $1::int, pg_sleep(0.002)", std::move(params));
                if (r) got[i] = r.rows.at(0).at(0);
                order.push_back(i);
            },
            asio::detached);
    ASSERT_TRUE(run_until([&] { return order.size() == n; }, 10s));
    for (int i = 0; i < n; ++i) {
        EXPECT_EQ(got[i], std::to_string(i));
        EXPECT_EQ(order[i], i);
    }
}

TEST_F(pg_connection_test, a_notify_wakes_the_listener_within_milliseconds) {
    connection listener(ioc_.get_executor(), url_);
    connection sender(ioc_.get_executor(), url_);
    std::vector<std::string> payloads;
    steady::time_point heard_at;
    auto ok = run(listener.listen("agentd_test", [&](notification n) {
        EXPECT_EQ(n.channel, "agentd_test");
        payloads.push_back(n.payload);
        heard_at = steady::now();
    }));
    ASSERT_TRUE(ok) << ok.error->message;
    ASSERT_TRUE(run(sender.ready()));
    std::vector<std::chrono::microseconds> latencies;
    for (int i = 0; i < 20; ++i) {
        auto sent_at = steady::now();
        auto sent = run(sender.query("SELECT pg_notify('agentd_test', $1)", {std::to_string(i)}));
        ASSERT_TRUE(sent) << sent.error->message;
        ASSERT_TRUE(run_until([&] { return payloads.size() == std::size_t(i + 1); }, 2s));
        latencies.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(heard_at - sent_at));
        EXPECT_EQ(payloads.back(), std::to_string(i));
    }
    // The 19th of 20 (p95): one stall of a CI machine shared by parallel builds is not the
    // wrapper's latency, which is well under a millisecond on loopback.
    std::sort(latencies.begin(), latencies.end());
    RecordProperty("p95_notify_latency_us", static_cast<int>(latencies[18].count()));
    EXPECT_LT(latencies[18], 50ms) << "p95 of 20 wake-ups";
}

TEST_F(pg_connection_test, a_restarted_server_is_reconnected_and_listened_to_again) {
    connection c(ioc_.get_executor(), url_);
    connection listener(ioc_.get_executor(), url_);
    int heard = 0;
    auto ok = run(listener.listen("agentd_restart", [&](notification) { ++heard; }));
    ASSERT_TRUE(ok);
    ASSERT_TRUE(run(c.ready()));
    pg_cluster::shared().stop();
    auto down = run(c.query("SELECT 1"));
    EXPECT_FALSE(down) << "a query on a stopped server succeeded";
    EXPECT_FALSE(c.connected());
    pg_cluster::shared().start();
    // Back within the backoff (at most 5 s between attempts).
    ASSERT_TRUE(run_until([&] { return c.connected() && listener.connected(); }, 12s))
        << c.last_error();
    EXPECT_GE(c.reconnects(), 1u);
    auto up = run(c.query("SELECT 'back'"));
    ASSERT_TRUE(up) << up.error->message;
    auto sent = run(c.query("NOTIFY agentd_restart"));
    ASSERT_TRUE(sent);
    EXPECT_TRUE(run_until([&] { return heard == 1; }, 2s)) << "the LISTEN was not renewed";
}

}  // namespace
}  // namespace agentd::jobs::pg
