// Per-job control of upstream calls in flight: the job's deadline, and a way for cancel or the
// deadline timer to abort the socket a backend is waiting on (closing it completes the pending
// operation at once, which Beast's own per-operation cancellation cannot promise here).
#pragma once

#include <chrono>
#include <functional>
#include <utility>

namespace agentd::jobs::upstream {

enum class stop_reason { none, cancelled, deadline, shutdown };

class call_control {
  public:
    using clock = std::chrono::steady_clock;

    explicit call_control(clock::time_point deadline) : deadline_(deadline) {}

    clock::time_point deadline() const { return deadline_; }
    stop_reason stopped() const { return reason_; }

    // A backend registers how to abort the I/O it is about to wait on; cleared when done.
    void on_stop(std::function<void()> f) { hook_ = std::move(f); }
    void clear() { hook_ = nullptr; }

    // First reason wins: a cancel that races the deadline is still reported as one cause.
    void stop(stop_reason r) {
        if (reason_ != stop_reason::none) return;
        reason_ = r;
        if (auto h = std::exchange(hook_, nullptr)) h();
    }

  private:
    clock::time_point deadline_;
    stop_reason reason_ = stop_reason::none;
    std::function<void()> hook_;
};

}  // namespace agentd::jobs::upstream
