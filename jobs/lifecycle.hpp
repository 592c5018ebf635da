// The job lifecycle as a pure state machine (DESIGN §3): which events move a job between
// states. No clocks, no I/O; the manager applies it and unit tests check every edge.
#pragma once

#include "protocol/job_view.hpp"

#include <optional>

namespace agentd::jobs {

// ask: a permission or question needs an answer (running → waiting); resume: the last pending
// request was settled (waiting → running).
enum class job_event { admit, ask, resume, complete, fail, cancel, interrupt };

// The state after `e`, or nullopt when `e` is not allowed in `s` (terminal states are final).
std::optional<protocol::job_state> next_state(protocol::job_state s, job_event e);

}  // namespace agentd::jobs
