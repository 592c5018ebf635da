// The io_context fixture of the async unit tests: runs a coroutine to completion and checks that
// it left no work behind (no timer, no operation, nothing ready), so a test that forgets to
// cancel something fails instead of hanging or leaking into the next one.
#pragma once

#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <utility>

namespace agentd::test {

// run_for returning with the context stopped means no outstanding work, and nothing is ready
// afterwards either. Rethrows what `work` threw.
template <class T>
T run_to_completion(boost::asio::io_context& ioc, boost::asio::awaitable<T> work) {
    std::optional<T> result;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, std::move(work), [&](std::exception_ptr e, T r) {
        error = e;
        result = std::move(r);
    });
    ioc.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(ioc.stopped()) << "work left behind";
    ioc.restart();
    EXPECT_EQ(ioc.poll(), 0u);
    if (error) std::rethrow_exception(error);
    EXPECT_TRUE(result.has_value());
    return std::move(result).value_or(T{});
}

// A test fixture with its own io_context; run(work) is run_to_completion on it.
class io_fixture : public ::testing::Test {
  protected:
    template <class T>
    T run(boost::asio::awaitable<T> work) {
        return run_to_completion(ioc_, std::move(work));
    }

    boost::asio::io_context ioc_;
};

}  // namespace agentd::test
