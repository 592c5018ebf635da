// Coroutines of /_fake/wait blocked until a counter enters a range: every change of the
// counters wakes them all to re-check, so tests block on "prompts_in_flight >= 8" without
// polling. Both fakes' stats keep one.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace fake_common {

class range_waiters {
  public:
    // {true, value} as soon as min <= read() <= max; {false, value} once `timeout` passes, after
    // shutdown() or when the waiting coroutine is cancelled.
    boost::asio::awaitable<std::pair<bool, std::int64_t>> wait_for(
        std::function<std::int64_t()> read, std::int64_t min, std::int64_t max,
        std::chrono::milliseconds timeout);
    // A counter changed: every waiter re-checks.
    void wake();
    // Every waiter returns, and later ones return at once.
    void shutdown();

  private:
    std::vector<boost::asio::steady_timer*> waiters_;
    bool stopping_ = false;
};

}  // namespace fake_common
