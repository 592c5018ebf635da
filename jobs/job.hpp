// A job as the manager keeps it: its public view, owner, task, streamed partial text and the
// runtime hooks (call control, waiters). Owned through shared_ptr by the registry and by the
// coroutine that runs it.
#pragma once

#include "jobs/upstream/call_control.hpp"
#include "jobs/upstream/transcript.hpp"
#include "protocol/job_view.hpp"
#include "protocol/params.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace agentd::jobs {

// A job belongs to (principal, session); nobody else can see it.
struct owner {
    std::string principal;
    std::string session;
    bool operator==(owner const&) const = default;
};

// Wakes a blocked agents_wait; the manager calls wake() on every state change it watches.
class waiter_hook {
  public:
    virtual void wake() = 0;

  protected:
    ~waiter_hook() = default;
};

struct job {
    protocol::job_view view;
    owner own;
    protocol::task task;
    protocol::boxed<std::string> upstream_parent;
    // The job whose sub-agent started this one (DESIGN §2 nesting): cancels cascade down to it.
    protocol::boxed<std::string> parent;
    // The follow-up that continues this job (DESIGN §2 `continue`): only the latest job of a
    // chain can be continued. Not stored: restore() derives it from the follow-ups' `continues`.
    protocol::boxed<std::string> continued_by;
    std::vector<waiter_hook*> waiters;
    std::uint64_t seq = 0;            // creation order, for newest-first listings
    std::uint64_t connection_id = 0;  // the connection that started it (0: none), for push events
    // Creation + timeout (DESIGN §3: queue time counts), on the monotonic clock.
    std::chrono::steady_clock::time_point deadline{};

    // What a job has once it is placed on a server, runs or is mirrored, allocated on first
    // write: a queued job is its view, owner, task and queue marks only (~200 B less for each of
    // up to max_queued jobs). A finished job keeps what `continue` and peek need.
    struct runtime_state {
        // The upstream server the job runs on, its URL as configured (several servers: the pool
        // places it at launch; a follow-up gets its job's). Empty until placed.
        std::string upstream_server;
        // Several instances on one store (DESIGN §9): the instance holding the lease of another
        // instance's job, which this one only mirrors (its rows arrive on change notices); empty
        // for this instance's own jobs. A mirrored job that finished keeps it.
        std::string holder;
        // Backends that replay transcripts (openai): the system text and completed turns up to
        // this job's own, kept by the latest job of a chain only (a follow-up takes it over).
        // Each turn is bounded by the prompt's size limit and max_output_bytes.
        upstream::transcript transcript;
        std::string partial;  // text streamed so far (peek), capped at max_output_bytes
        std::unique_ptr<upstream::call_control> control;  // while running
        // When the upstream last showed progress (idle_timeout_ms).
        std::chrono::steady_clock::time_point last_progress{};
        // The upstream's id of the prompt this job sent (opencode: the user message), whose diff
        // agents_peek {diff} and JobView diff_summary show; empty until the turn ended.
        std::string user_message;
    };
    // The state, or an empty one for a job without any; never allocates.
    runtime_state const& runtime() const {
        static runtime_state const none;
        return runtime_ ? *runtime_ : none;
    }
    runtime_state& runtime_mut() {
        if (!runtime_) runtime_ = std::make_unique<runtime_state>();
        return *runtime_;
    }
    bool has_runtime() const { return runtime_ != nullptr; }
    void drop_runtime() { runtime_.reset(); }
    // Sets one of the state's strings, allocating the state only for a non-empty value.
    void set_runtime(std::string runtime_state::*field, std::string value) {
        if (!value.empty() || runtime_) runtime_mut().*field = std::move(value);
    }
    // Takes `from`'s state whole (a mirror updated from its row).
    void take_runtime(job& from) { runtime_ = std::move(from.runtime_); }

    // Agentic state (DESIGN §2: tool steps, requests, per-message usage), on first use: a queued
    // job or a plain prompt never has any, and the containers cost ~180 B inline in every job.
    static constexpr std::size_t steps_kept = 100;
    struct agentic_state {
        // Tool steps, oldest first: the job's are the last steps_kept (kept_steps()). A vector,
        // not a deque (libstdc++'s deque allocates ~570 B even when empty); the steps that left
        // the window are erased steps_slack at a time, since erasing the front moves every step
        // (a tool flood made that a third of agentd's CPU), and their texts freed as they leave.
        std::vector<protocol::step> steps;
        static constexpr std::size_t steps_slack = 25;
        std::span<protocol::step const> kept_steps() const;
        std::span<protocol::step> kept_steps();
        // Appends a new step and returns it.
        protocol::step& add_step(protocol::step s);
        // When each pending request was asked (input_timeout_ms), and the requests whose answer
        // is on its way upstream.
        std::map<std::string, std::chrono::steady_clock::time_point, std::less<>> asked;
        std::map<std::string, protocol::answered_by, std::less<>> answering;
        // The throttle of activity events: a change within activity_gap of the last push is
        // merged into one later.
        std::chrono::steady_clock::time_point activity_pushed{};
        bool activity_due = false;  // a change not pushed yet
        // DESIGN §2 budget: the latest usage of each upstream message of the turn (opencode: one
        // per LLM step), whose sum is the job's usage.
        std::map<std::string, protocol::job_usage, std::less<>> usage_by_message;
    };
    // The state, or an empty one for a job without any; never allocates.
    agentic_state const& agentic() const {
        static agentic_state const none;
        return agentic_ ? *agentic_ : none;
    }
    agentic_state& agentic_mut() {
        if (!agentic_) agentic_ = std::make_unique<agentic_state>();
        return *agentic_;
    }
    bool has_agentic() const { return agentic_ != nullptr; }
    void drop_agentic() { agentic_.reset(); }

  private:
    std::unique_ptr<runtime_state> runtime_;
    std::unique_ptr<agentic_state> agentic_;
};

using job_ptr = std::shared_ptr<job>;

// Adds `u` to `sum`; token counts saturate instead of overflowing on hostile figures.
void add_usage(protocol::job_usage& sum, protocol::job_usage const& u);
// The sum of the job's per-message usage.
protocol::job_usage summed_usage(job const& j);
// "budget exhausted: cost 0.52 > 0.50" (or "tokens N > M") when `usage` is past the job's
// budget, else nullopt. Tokens count input + output.
std::optional<std::string> over_budget(protocol::task_budget const& b,
                                       protocol::job_usage const& usage);

// The pending request `id` of the job, or null (answered, timed out, never asked).
protocol::pending_request const* find_request(job const& j, std::string_view id);

// The directory the job's upstream calls name: its worktree once it has one (DESIGN §5
// Directory), else the task's.
std::optional<std::string> upstream_directory(job const& j);

// The JobView `task` of a task: its prompt cut to 200 characters, agent, model, directory.
protocol::task_preview preview_of(protocol::task const& t);
// A finished job keeps only the preview of its prompt and what `continue` needs (its upstream
// session), never the system text or partial output (DESIGN §3): memory and rows stay small.
void compact_finished(job& j);

}  // namespace agentd::jobs
