// plan(): one pass over the traits; a joinable call extends the parallel batch at the back, if
// there is one, and anything else closes it by becoming a serial batch.
#include "planner/plan.hpp"

namespace agentd::planner {

std::vector<batch> plan(std::span<call_traits const> calls) {
    std::vector<batch> batches;
    for (std::size_t i = 0; i < calls.size(); ++i) {
        if (!can_join_parallel(calls[i])) {
            batches.emplace_back(serial_batch{i});
            continue;
        }
        auto* open = batches.empty() ? nullptr : std::get_if<parallel_batch>(&batches.back());
        if (open != nullptr) {
            open->calls.push_back(i);
        } else {
            batches.emplace_back(parallel_batch{{i}});
        }
    }
    return batches;
}

}  // namespace agentd::planner
