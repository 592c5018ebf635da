// wake_signal: the one way a coroutine here parks until something happens. notify() wakes the
// coroutines waiting now, fire() wakes them and every later wait for good, and a timed wait also
// ends at its deadline. Built on a steady_timer kept at max and cancelled. Include from .cpp only.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace agentd::jobs {

class wake_signal {
  public:
    using clock = std::chrono::steady_clock;

    explicit wake_signal(boost::asio::any_io_executor ex);

    // Wakes the waits pending now; a notify with nobody waiting is not remembered (waiters
    // check their condition before they wait).
    void notify();
    // Wakes every pending and later wait at once, for good.
    void fire();
    bool fired() const { return fired_; }

    // Until notify() or fire(), or until the enclosing operation is cancelled (a losing branch
    // of `||`). Any number of coroutines may wait at once.
    boost::asio::awaitable<void> wait();
    // As wait(), but ends at `deadline` too. The deadline is the timer's, so a timed wait is the
    // only wait on its signal. True when woken (or fired) before the deadline.
    boost::asio::awaitable<bool> wait_until(clock::time_point deadline);
    boost::asio::awaitable<bool> wait_for(clock::duration d) {
        return wait_until(clock::now() + d);
    }

  private:
    boost::asio::steady_timer timer_;
    bool fired_ = false;
};

}  // namespace agentd::jobs
