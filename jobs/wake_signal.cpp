// wake_signal on a steady_timer: the timer stays at max while nobody needs a deadline, so a
// wait ends only when the timer is cancelled; an untimed wait never moves the expiry, since
// moving it would cancel the other coroutines waiting on the same timer.
#include "jobs/wake_signal.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace agentd::jobs {
namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

wake_signal::wake_signal(asio::any_io_executor ex)
    : timer_(std::move(ex), clock::time_point::max()) {}

void wake_signal::notify() {
    timer_.cancel();
}

void wake_signal::fire() {
    fired_ = true;
    timer_.cancel();
}

asio::awaitable<void> wake_signal::wait() {
    if (fired_) co_return;
    if (timer_.expiry() != clock::time_point::max()) timer_.expires_at(clock::time_point::max());
    [[maybe_unused]] auto [ec] = co_await timer_.async_wait(use_tuple);
}

asio::awaitable<bool> wake_signal::wait_until(clock::time_point deadline) {
    if (fired_) co_return true;
    timer_.expires_at(deadline);
    auto [ec] = co_await timer_.async_wait(use_tuple);
    co_return ec == asio::error::operation_aborted || fired_;
}

}  // namespace agentd::jobs
