// Transition table of the job state machine; see lifecycle.hpp.
#include "jobs/lifecycle.hpp"

namespace agentd::jobs {

using protocol::job_state;

namespace {

// Where an active job (running or waiting) goes when its turn ends or it is stopped.
std::optional<job_state> end_of_active(job_event e) {
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
        case job_event::ask:
        case job_event::resume:
            break;
    }
    return std::nullopt;
}

}  // namespace

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
                case job_event::ask:
                case job_event::resume:
                    return std::nullopt;
            }
            break;
        case job_state::running:
            if (e == job_event::ask) return job_state::waiting;
            return end_of_active(e);
        case job_state::waiting:
            // A turn can end while a request is pending (an abort, the upstream's own end).
            if (e == job_event::resume) return job_state::running;
            return end_of_active(e);
        case job_state::completed:
        case job_state::failed:
        case job_state::cancelled:
        case job_state::interrupted:
            break;
    }
    return std::nullopt;
}

}  // namespace agentd::jobs
