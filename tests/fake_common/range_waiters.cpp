// range_waiters (see range_waiters.hpp): each waiter is a timer at its deadline that a change
// cancels early.
#include "fake_common/range_waiters.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace fake_common {
namespace asio = boost::asio;

namespace {

asio::awaitable<bool> cancel_requested() {
    auto cs = co_await asio::this_coro::cancellation_state;
    co_return cs.cancelled() != asio::cancellation_type::none;
}

}  // namespace

asio::awaitable<std::pair<bool, std::int64_t>> range_waiters::wait_for(
    std::function<std::int64_t()> read, std::int64_t min, std::int64_t max,
    std::chrono::milliseconds timeout) {
    asio::steady_timer deadline(co_await asio::this_coro::executor, timeout);
    waiters_.push_back(&deadline);
    struct unregister {
        std::vector<asio::steady_timer*>& list;
        asio::steady_timer* self;
        ~unregister() { std::erase(list, self); }
    } guard{waiters_, &deadline};

    auto const satisfied = [&](std::int64_t v) { return v >= min && v <= max; };
    for (;;) {
        auto value = read();
        if (satisfied(value)) co_return std::pair{true, value};
        if (stopping_) co_return std::pair{false, value};
        auto [ec] = co_await deadline.async_wait(asio::as_tuple(asio::use_awaitable));
        if (!ec) {
            value = read();
            co_return std::pair{satisfied(value), value};
        }
        if (co_await cancel_requested()) co_return std::pair{false, value};
    }
}

void range_waiters::wake() {
    for (auto* waiter : waiters_) waiter->cancel();
}

void range_waiters::shutdown() {
    stopping_ = true;
    wake();
}

}  // namespace fake_common
