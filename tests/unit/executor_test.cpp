// Unit tests of run_plan on a real io_context: parallel calls overlap, serial batches are
// barriers, outcomes come back in input order, a throwing call is contained, notifications stay
// empty, cancellation reaches the calls in flight, and no work is ever left behind.
#include "planner/executor.hpp"
#include "planner/plan.hpp"

#include "tests/unit/io_fixture.hpp"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace agentd::planner {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using response = std::optional<json::value>;
using ms = std::chrono::milliseconds;

class executor_test : public test::io_fixture {
  protected:
    // A call that takes `delay` and answers with its own index, recording when it starts and ends.
    asio::awaitable<response> answer_after(std::size_t call, ms delay) {
        events_.push_back(fmt::format("start {}", call));
        asio::steady_timer timer(co_await asio::this_coro::executor, delay);
        co_await timer.async_wait(asio::use_awaitable);
        events_.push_back(fmt::format("end {}", call));
        co_return json::value(call);
    }

    asio::awaitable<response> fail_after(std::size_t call, ms delay) {
        co_await answer_after(call, delay);
        throw std::runtime_error(fmt::format("call {} failed", call));
    }

    call_handler delays_of(std::vector<ms> delays) {
        return [this, delays](std::size_t call) { return answer_after(call, delays.at(call)); };
    }

    std::size_t position(std::string const& event) const {
        auto const it = std::find(events_.begin(), events_.end(), event);
        EXPECT_NE(it, events_.end()) << event;
        return static_cast<std::size_t>(it - events_.begin());
    }

    std::vector<std::string> events_;
};

std::string what(std::exception_ptr error) {
    if (!error) return "no error";
    try {
        std::rethrow_exception(error);
    } catch (std::exception const& e) {
        return e.what();
    }
}

TEST_F(executor_test, calls_of_a_parallel_batch_overlap) {
    auto const outcomes =
        run(run_plan({parallel_batch{{0, 1, 2}}}, 3, delays_of({50ms, 50ms, 50ms})));
    ASSERT_EQ(events_.size(), 6u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(events_[i].starts_with("start")) << events_[i];
    EXPECT_EQ(outcomes.size(), 3u);
}

TEST_F(executor_test, serial_batches_do_not_overlap_and_keep_order) {
    run(run_plan({serial_batch{0}, serial_batch{1}, serial_batch{2}}, 3,
                 delays_of({30ms, 5ms, 15ms})));
    EXPECT_EQ(events_, (std::vector<std::string>{"start 0", "end 0", "start 1", "end 1", "start 2",
                                                 "end 2"}));
}

TEST_F(executor_test, a_serial_batch_is_a_barrier_between_parallel_batches) {
    run(run_plan({parallel_batch{{0, 1}}, serial_batch{2}, parallel_batch{{3, 4}}}, 5,
                 delays_of({30ms, 5ms, 10ms, 20ms, 5ms})));
    ASSERT_EQ(events_.size(), 10u);
    EXPECT_LT(position("start 1"), position("end 0"));
    EXPECT_LT(std::max(position("end 0"), position("end 1")), position("start 2"));
    EXPECT_EQ(position("end 2"), position("start 2") + 1);
    EXPECT_LT(position("end 2"), std::min(position("start 3"), position("start 4")));
    EXPECT_LT(position("start 4"), position("end 3"));
}

TEST_F(executor_test, outcomes_come_back_in_input_order) {
    auto const outcomes =
        run(run_plan({parallel_batch{{0, 1, 2}}}, 3, delays_of({80ms, 5ms, 40ms})));
    EXPECT_LT(position("end 1"), position("end 0"));  // completion order differs from input order
    ASSERT_EQ(outcomes.size(), 3u);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        EXPECT_EQ(outcomes[i].response, json::value(i));
        EXPECT_FALSE(outcomes[i].error);
    }
}

TEST_F(executor_test, a_throwing_call_is_contained_and_siblings_complete) {
    call_handler const handler = [this](std::size_t call) -> asio::awaitable<response> {
        if (call == 1) return fail_after(call, 5ms);
        if (call == 2) throw std::runtime_error("call 2 refused");  // before any coroutine exists
        return answer_after(call, 40ms);
    };
    auto const outcomes = run(run_plan({parallel_batch{{0, 1, 2, 3}}}, 4, handler));
    ASSERT_EQ(outcomes.size(), 4u);
    EXPECT_EQ(what(outcomes[1].error), "call 1 failed");
    EXPECT_EQ(what(outcomes[2].error), "call 2 refused");
    EXPECT_FALSE(outcomes[1].response);
    EXPECT_FALSE(outcomes[2].response);
    for (std::size_t call : {0u, 3u}) {
        EXPECT_EQ(outcomes[call].response, json::value(call));
        EXPECT_FALSE(outcomes[call].error);
    }
    EXPECT_LT(position("end 1"), position("end 0"));  // the failure came first, cancelled nothing
}

TEST_F(executor_test, a_failed_serial_call_does_not_stop_later_batches) {
    call_handler const handler = [this](std::size_t call) {
        return call == 0 ? fail_after(call, 5ms) : answer_after(call, 5ms);
    };
    auto const outcomes = run(run_plan({serial_batch{0}, parallel_batch{{1, 2}}}, 3, handler));
    EXPECT_EQ(what(outcomes.at(0).error), "call 0 failed");
    EXPECT_EQ(outcomes.at(1).response, json::value(1));
    EXPECT_EQ(outcomes.at(2).response, json::value(2));
}

TEST_F(executor_test, notifications_stay_empty) {
    call_handler const handler = [this](std::size_t call) -> asio::awaitable<response> {
        co_await answer_after(call, 5ms);
        if (call % 2 == 1) co_return std::nullopt;
        co_return json::value(call);
    };
    auto const outcomes =
        run(run_plan({parallel_batch{{0, 1}}, serial_batch{2}, serial_batch{3}}, 4, handler));
    ASSERT_EQ(outcomes.size(), 4u);
    for (std::size_t call = 0; call < 4; ++call) {
        EXPECT_FALSE(outcomes[call].error);
        EXPECT_EQ(outcomes[call].response.has_value(), call % 2 == 0) << call;
    }
}

TEST_F(executor_test, an_empty_plan_runs_nothing) {
    EXPECT_TRUE(run(run_plan({}, 0, delays_of({}))).empty());
    EXPECT_TRUE(events_.empty());
}

TEST_F(executor_test, an_empty_parallel_batch_completes) {
    EXPECT_TRUE(run(run_plan({parallel_batch{}, parallel_batch{}}, 0, delays_of({}))).empty());
}

TEST_F(executor_test, calls_the_plan_does_not_name_stay_empty) {
    auto const outcomes = run(run_plan({serial_batch{1}}, 3, delays_of({5ms, 5ms, 5ms})));
    EXPECT_EQ(events_, (std::vector<std::string>{"start 1", "end 1"}));
    ASSERT_EQ(outcomes.size(), 3u);
    for (std::size_t call : {0u, 2u}) {
        EXPECT_FALSE(outcomes[call].response);
        EXPECT_FALSE(outcomes[call].error);
    }
}

TEST_F(executor_test, an_out_of_range_call_fails_before_anything_runs) {
    EXPECT_THROW(run(run_plan({serial_batch{0}, parallel_batch{{1, 5}}}, 2, delays_of({5ms, 5ms}))),
                 std::out_of_range);
    EXPECT_TRUE(events_.empty());
}

TEST_F(executor_test, cancellation_reaches_the_calls_in_flight) {
    auto const race = [](asio::awaitable<std::vector<call_outcome>> work) -> asio::awaitable<bool> {
        asio::steady_timer deadline(co_await asio::this_coro::executor, 20ms);
        auto const first = co_await (std::move(work) || deadline.async_wait(asio::use_awaitable));
        co_return first.index() == 1;
    };
    EXPECT_TRUE(run(
        race(run_plan({serial_batch{0}, parallel_batch{{1, 2}}}, 3, delays_of({5ms, 1h, 1h})))));
    EXPECT_EQ(events_, (std::vector<std::string>{"start 0", "end 0", "start 1", "start 2"}));
}

}  // namespace
}  // namespace agentd::planner
