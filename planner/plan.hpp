// The batch planner (DESIGN §4): splits the calls of one request batch into parallel batches of
// consecutive joinable calls and serial batches (barriers) for everything else. Pure logic.
#pragma once

#include "planner/traits.hpp"

#include <cstddef>
#include <span>
#include <variant>
#include <vector>

namespace agentd::planner {

// Calls that run concurrently; indices into the planned input, ascending, never empty.
struct parallel_batch {
    std::vector<std::size_t> calls;

    bool operator==(parallel_batch const&) const = default;
};

// One call that runs alone, after everything before it and before everything after it.
struct serial_batch {
    std::size_t call;

    bool operator==(serial_batch const&) const = default;
};

using batch = std::variant<parallel_batch, serial_batch>;

// Consecutive calls that can_join_parallel form one parallel_batch (even a single one); any other
// call is its own serial_batch. Every input index appears exactly once, in order.
std::vector<batch> plan(std::span<call_traits const> calls);

}  // namespace agentd::planner
