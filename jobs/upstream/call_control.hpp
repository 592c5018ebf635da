// Per-job control of upstream calls in flight: the job's deadline, and a stop token through which
// cancel or the deadline timer aborts the socket a backend is waiting on (closing it completes the
// pending operation at once, which Beast's own per-operation cancellation cannot promise here).
#pragma once

#include <chrono>
#include <stop_token>

namespace agentd::jobs::upstream {

// idle: no progress from the upstream for limits.idle_timeout_ms (DESIGN §3); budget: the
// usage passed the task's budget (DESIGN §2).
enum class stop_reason { none, cancelled, deadline, idle, budget, shutdown };

class call_control {
  public:
    using clock = std::chrono::steady_clock;

    explicit call_control(clock::time_point deadline) : deadline_(deadline) {}

    clock::time_point deadline() const { return deadline_; }
    stop_reason stopped() const { return reason_; }

    // A backend aborts the I/O it waits on from a std::stop_callback on this token, which
    // unregisters itself when the wait is over (and runs at once if the call was stopped already).
    std::stop_token stop_token() const { return source_.get_token(); }

    // First reason wins: a cancel that races the deadline is still reported as one cause.
    void stop(stop_reason r) {
        if (reason_ != stop_reason::none) return;
        reason_ = r;
        source_.request_stop();
    }

  private:
    clock::time_point deadline_;
    stop_reason reason_ = stop_reason::none;
    std::stop_source source_;
};

}  // namespace agentd::jobs::upstream
