// Transition table of the job state machine; see lifecycle.hpp.
#include "jobs/lifecycle.hpp"

namespace agentd::jobs {

using protocol::job_state;

std::optional<job_state> next_state(job_state s, job_event e) {
    switch (s) {
        case job_state::queued:
            switch (e) {
                case job_event::admit:
                    return job_state::running;
                case job_event::cancel:
                    return job_state::cancelled;
                case job_event::interrupt:
                    return job_state::interrupted;
                case job_event::fail:
                    // Its deadline counts from creation and passed in the queue (DESIGN §3).
                    return job_state::failed;
                case job_event::complete:
                    return std::nullopt;
            }
            break;
        case job_state::running:
            switch (e) {
                case job_event::complete:
                    return job_state::completed;
                case job_event::fail:
                    return job_state::failed;
                case job_event::cancel:
                    return job_state::cancelled;
                case job_event::interrupt:
                    return job_state::interrupted;
                case job_event::admit:
                    return std::nullopt;
            }
            break;
        case job_state::completed:
        case job_state::failed:
        case job_state::cancelled:
        case job_state::interrupted:
            break;
    }
    return std::nullopt;
}

}  // namespace agentd::jobs
