// Unit tests of wake_signal on a real io_context: notify wakes the waits pending now and is not
// remembered, fire wakes every wait for good, timed waits end at their deadline or earlier when
// woken, a losing branch of `||` is cancelled, and no work is ever left behind.
#include "jobs/wake_signal.hpp"
#include "tests/unit/io_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <optional>
#include <variant>

namespace agentd::jobs {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using steady = std::chrono::steady_clock;

class wake_signal_test : public test::io_fixture {
  protected:
    // Calls `f` after `delay`, from a coroutine of its own.
    void after(std::chrono::milliseconds delay, std::function<void()> f) {
        auto later = [](asio::io_context& ioc, std::chrono::milliseconds d,
                        std::function<void()> g) -> asio::awaitable<void> {
            asio::steady_timer t(ioc, d);
            co_await t.async_wait(asio::use_awaitable);
            g();
        };
        asio::co_spawn(ioc_, later(ioc_, delay, std::move(f)), asio::detached);
    }

    // How long `wait` took, in whole milliseconds.
    asio::awaitable<long> timed(asio::awaitable<void> wait) {
        auto start = steady::now();
        co_await std::move(wait);
        co_return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start)
            .count();
    }

    wake_signal signal_{ioc_.get_executor()};
};

TEST_F(wake_signal_test, notify_wakes_every_pending_wait) {
    auto took = run([&]() -> asio::awaitable<long> {
        after(50ms, [&] { signal_.notify(); });
        auto both = co_await (timed(signal_.wait()) && timed(signal_.wait()));
        co_return std::max(std::get<0>(both), std::get<1>(both));
    }());
    EXPECT_GE(took, 40);
    EXPECT_LT(took, 2000);
    EXPECT_FALSE(signal_.fired());
}

TEST_F(wake_signal_test, notify_without_a_waiter_is_not_remembered) {
    auto woken = run([&]() -> asio::awaitable<bool> {
        signal_.notify();
        auto early = co_await signal_.wait_for(50ms);
        co_return early;
    }());
    EXPECT_FALSE(woken);
}

TEST_F(wake_signal_test, fire_wakes_pending_and_later_waits) {
    auto took = run([&]() -> asio::awaitable<long> {
        after(30ms, [&] { signal_.fire(); });
        auto first = co_await timed(signal_.wait());
        auto again = co_await timed(signal_.wait());
        auto woken = co_await signal_.wait_for(10s);
        EXPECT_TRUE(woken);
        EXPECT_LT(again, 20);
        co_return first;
    }());
    EXPECT_GE(took, 20);
    EXPECT_TRUE(signal_.fired());
}

TEST_F(wake_signal_test, timed_wait_ends_at_its_deadline) {
    auto woken = run([&]() -> asio::awaitable<bool> {
        auto start = steady::now();
        auto early = co_await signal_.wait_until(start + 40ms);
        EXPECT_GE(steady::now() - start, 40ms);
        co_return early;
    }());
    EXPECT_FALSE(woken);
}

TEST_F(wake_signal_test, timed_wait_ends_early_when_notified) {
    auto woken = run([&]() -> asio::awaitable<bool> {
        after(20ms, [&] { signal_.notify(); });
        auto woken_early = co_await signal_.wait_for(10s);
        co_return woken_early;
    }());
    EXPECT_TRUE(woken);
}

TEST_F(wake_signal_test, waits_after_a_timed_one_wait_for_a_wake) {
    // The timer is back at max for plain waits once a timed wait has run out, and the second of
    // two plain waits does not end the first.
    auto took = run([&]() -> asio::awaitable<long> {
        auto early = co_await signal_.wait_for(10ms);
        EXPECT_FALSE(early);
        after(60ms, [&] { signal_.notify(); });
        auto both = co_await (timed(signal_.wait()) && timed(signal_.wait()));
        co_return std::min(std::get<0>(both), std::get<1>(both));
    }());
    EXPECT_GE(took, 50);
}

TEST_F(wake_signal_test, losing_branch_of_a_race_is_cancelled) {
    auto winner = run([&]() -> asio::awaitable<std::size_t> {
        asio::steady_timer t(ioc_, 20ms);
        auto raced = co_await (signal_.wait() || t.async_wait(asio::use_awaitable));
        co_return raced.index();
    }());
    EXPECT_EQ(winner, 1u);
    EXPECT_FALSE(signal_.fired());
}

}  // namespace
}  // namespace agentd::jobs
