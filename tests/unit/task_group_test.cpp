// Unit tests of the connections' task_group on a real io_context: it counts its children while
// they run, request_stop() runs the stop callbacks they registered, join() returns as soon as
// the last child ends, and aborts the ones still running at its bound; nothing is left behind.
#include "daemon/task_group.hpp"

#include "jobs/wake_signal.hpp"
#include "tests/unit/io_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio/this_coro.hpp>

#include <chrono>
#include <stdexcept>
#include <stop_token>

namespace agentd::daemon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

class task_group_test : public test::io_fixture {
  protected:
    // A child that parks until the group asks it to stop (as an idle connection closes).
    asio::awaitable<void> polite_child() {
        jobs::wake_signal stop(co_await asio::this_coro::executor);
        std::stop_callback on_stop(group_.stop_token(), [&stop] { stop.fire(); });
        co_await stop.wait();
        ++stopped_;
    }

    // A child that ignores the stop request (a call that never ends) and ends only when aborted
    // (as a connection whose socket is closed under it).
    asio::awaitable<void> stubborn_child() {
        jobs::wake_signal aborted(co_await asio::this_coro::executor);
        std::stop_callback on_abort(group_.abort_token(), [&aborted] { aborted.fire(); });
        co_await aborted.wait();
        ++aborted_;
    }

    // Asks the children to stop and joins them within `bound`; how long the join took.
    steady::duration stop_and_join(std::chrono::milliseconds bound) {
        return run([&]() -> asio::awaitable<steady::duration> {
            group_.request_stop();
            auto start = steady::now();
            co_await group_.join(bound);
            co_return steady::now() - start;
        }());
    }

    task_group group_{ioc_.get_executor(), "test child"};
    int stopped_ = 0;
    int aborted_ = 0;
};

TEST_F(task_group_test, stop_then_join_ends_at_once_when_children_stop) {
    for (int i = 0; i < 3; ++i) group_.spawn(polite_child());
    EXPECT_EQ(group_.size(), 3u);
    EXPECT_LT(stop_and_join(5s), 1s);
    EXPECT_EQ(stopped_, 3);
    EXPECT_EQ(aborted_, 0);
    EXPECT_EQ(group_.size(), 0u);
}

TEST_F(task_group_test, join_aborts_what_is_left_at_its_bound) {
    group_.spawn(polite_child());
    group_.spawn(stubborn_child());
    auto took = stop_and_join(50ms);
    EXPECT_GE(took, 40ms);
    EXPECT_LT(took, 1s);
    EXPECT_EQ(stopped_, 1);
    EXPECT_EQ(aborted_, 1);
    EXPECT_EQ(group_.size(), 0u);
}

TEST_F(task_group_test, a_child_registered_after_the_stop_stops_at_once) {
    group_.request_stop();
    group_.spawn(polite_child());
    stop_and_join(5s);
    EXPECT_TRUE(group_.stop_requested());
    EXPECT_EQ(stopped_, 1);
}

TEST_F(task_group_test, an_exception_ends_only_its_child) {
    group_.spawn([]() -> asio::awaitable<void> {
        throw std::runtime_error("a bug in one connection");
        co_return;
    }());
    group_.spawn(polite_child());
    stop_and_join(5s);
    EXPECT_EQ(stopped_, 1);
    EXPECT_EQ(group_.size(), 0u);
}

}  // namespace
}  // namespace agentd::daemon
