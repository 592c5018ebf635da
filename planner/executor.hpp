// run_plan: runs a batch plan on the awaiting coroutine's executor — batches in order, the calls
// of a parallel batch concurrently — and collects one outcome per call. Only awaitable.hpp here,
// so that includers do not pay for all of Asio.
#pragma once

#include "planner/plan.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <vector>

namespace agentd::planner {

// What one call produced. `error` holds whatever its handler threw (the caller answers that
// request id with -32603); `response` is then empty. A notification has neither. A call that no
// batch of the plan names has neither as well.
struct call_outcome {
    std::optional<boost::json::value> response;
    std::exception_ptr error;
};

// handler(i) runs call i and yields its response (nullopt for a notification). It may throw,
// also before its first suspension: the exception lands in that call's outcome.
using call_handler =
    std::function<boost::asio::awaitable<std::optional<boost::json::value>>(std::size_t)>;

// Returns outcomes indexed by call (input order, whatever the completion order), sized
// `call_count`. A throwing call neither escapes nor cancels its siblings; cancelling the awaiting
// coroutine is forwarded to the calls in flight. The plan is taken by value because the coroutine
// outlives the caller's expression. Throws std::out_of_range, before running any call, if a batch
// names a call >= call_count.
boost::asio::awaitable<std::vector<call_outcome>> run_plan(std::vector<batch> plan,
                                                           std::size_t call_count,
                                                           call_handler handler);

}  // namespace agentd::planner
