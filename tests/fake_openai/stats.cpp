// The fake OpenAI server's counters (see stats.hpp): a map of named numbers and timer-based
// waiters that every change cancels so they re-check.
#include "stats.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace fake_openai {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Gauges go up and down with live work; reset leaves them alone.
bool is_gauge(std::string const& name) {
    return name.ends_with("_in_flight") && !name.starts_with("max_");
}

asio::awaitable<bool> cancel_requested() {
    auto cs = co_await asio::this_coro::cancellation_state;
    co_return cs.cancelled() != asio::cancellation_type::none;
}

}  // namespace

stats::stats() {
    for (auto const* name : {"requests_total", "streams_in_flight", "max_streams_in_flight",
                             "streams_completed", "completions", "client_disconnects",
                             "rate_limited", "chunks_sent", "tls_handshake_failures"})
        values_[name] = 0;
}

void stats::add(std::string const& name, std::int64_t delta) {
    values_[name] += delta;
    wake();
}

std::shared_ptr<void> stats::hold(std::string const& name) {
    auto& peak = values_["max_" + name];
    peak = std::max(peak, ++values_[name]);
    wake();
    return std::shared_ptr<void>(nullptr, [this, name](void*) { add(name, -1); });
}

std::int64_t stats::get(std::string const& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? 0 : it->second;
}

boost::json::object stats::to_json() const {
    boost::json::object out;
    for (auto const& [name, value] : values_) out[name] = value;
    out["last_request_body"] = last_body_;
    return out;
}

void stats::reset() {
    for (auto& [name, value] : values_)
        if (!is_gauge(name)) value = 0;
    for (auto& [name, value] : values_)
        if (name.starts_with("max_")) value = get(name.substr(4));
    last_body_ = nullptr;
    wake();
}

void stats::wake() {
    for (auto* t : waiters_) t->cancel();
}

void stats::shutdown() {
    stopping_ = true;
    wake();
}

asio::awaitable<std::pair<bool, std::int64_t>> stats::wait_for(std::string name, std::int64_t min,
                                                               std::int64_t max,
                                                               std::chrono::milliseconds timeout) {
    asio::steady_timer deadline(co_await asio::this_coro::executor, timeout);
    waiters_.push_back(&deadline);
    struct unregister {
        std::vector<asio::steady_timer*>& list;
        asio::steady_timer* self;
        ~unregister() { std::erase(list, self); }
    } guard{waiters_, &deadline};

    for (;;) {
        auto value = get(name);
        if (value >= min && value <= max) co_return std::pair{true, value};
        if (stopping_) co_return std::pair{false, value};
        auto [ec] = co_await deadline.async_wait(use_tuple);
        if (!ec) {
            value = get(name);
            co_return std::pair{value >= min && value <= max, value};
        }
        if (co_await cancel_requested()) co_return std::pair{false, value};
    }
}

}  // namespace fake_openai
