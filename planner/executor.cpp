// run_plan: every batch, serial ones included, goes through the same wait_for_all parallel_group,
// so one code path collects responses and exceptions; a serial batch is a group of one.
#include "planner/executor.hpp"

#include <fmt/core.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <span>
#include <stdexcept>
#include <utility>

namespace agentd::planner {
namespace {

namespace asio = boost::asio;
using response = std::optional<boost::json::value>;

std::span<std::size_t const> calls_of(batch const& b) {
    if (auto const* serial = std::get_if<serial_batch>(&b)) return {&serial->call, 1};
    return std::get<parallel_batch>(b).calls;
}

void check_indices(std::vector<batch> const& plan, std::size_t call_count) {
    for (auto const& b : plan) {
        for (auto call : calls_of(b)) {
            if (call >= call_count) {
                throw std::out_of_range(
                    fmt::format("plan names call {} of only {}", call, call_count));
            }
        }
    }
}

// Calling the handler inside a coroutine body makes a throw before its first suspension land in
// co_spawn's exception_ptr, like any later one.
asio::awaitable<response> invoke(call_handler const& handler, std::size_t call) {
    co_return co_await handler(call);
}

asio::awaitable<void> run_batch(std::span<std::size_t const> calls, call_handler const& handler,
                                std::vector<call_outcome>& outcomes) {
    auto ex = co_await asio::this_coro::executor;
    using op = decltype(asio::co_spawn(ex, invoke(handler, 0), asio::deferred));
    std::vector<op> ops;
    ops.reserve(calls.size());
    for (auto call : calls) {
        ops.push_back(asio::co_spawn(ex, invoke(handler, call), asio::deferred));
    }
    auto [order, errors, responses] =
        co_await asio::experimental::make_parallel_group(std::move(ops))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (std::size_t k = 0; k < calls.size(); ++k) {
        outcomes[calls[k]] = {std::move(responses[k]), errors[k]};
    }
}

}  // namespace

asio::awaitable<std::vector<call_outcome>> run_plan(std::vector<batch> plan, std::size_t call_count,
                                                    call_handler handler) {
    check_indices(plan, call_count);
    std::vector<call_outcome> outcomes(call_count);
    for (auto const& b : plan) {
        auto const calls = calls_of(b);
        // An empty ranged parallel_group never completes in Asio 1.26 (see executor_test).
        if (!calls.empty()) co_await run_batch(calls, handler, outcomes);
    }
    co_return outcomes;
}

}  // namespace agentd::planner
