// The job manager: admission (max_queued), the launch gate (max_running), per-job deadlines,
// cancellation with upstream abort, event-driven waits, peek, and the retention reaper. All on
// one executor, so no locks: nothing is ever held across upstream I/O.
#pragma once

#include "jobs/health.hpp"
#include "jobs/job.hpp"
#include "jobs/upstream/backend.hpp"
#include "protocol/errors.hpp"
#include "protocol/params.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace agentd::jobs {

class store;
class shared_store;

struct limits {
    std::size_t max_tasks_per_call = 8;
    std::size_t max_running = 16;
    std::size_t max_queued = 1024;
    int max_depth = 2;
    std::chrono::milliseconds job_timeout{1'800'000};
    std::size_t max_output_bytes = 1 << 20;
    std::chrono::milliseconds retention{24 * 3'600'000};
    std::size_t max_retained_jobs = 10'000;  // finished jobs kept, whatever the retention
    // DESIGN §3: a running job without upstream progress this long fails (0: off); a request
    // unanswered this long is rejected. DESIGN §2: what happens to requests by default.
    std::chrono::milliseconds idle_timeout{600'000};
    std::chrono::milliseconds input_timeout{600'000};
    protocol::permission_policy permissions = protocol::permission_policy::ask;
    // DESIGN §2 budget: the max_cost of tasks that set no budget (none: unbounded).
    std::optional<double> default_max_cost;
    // The most of an upstream diff read (agents_peek {diff}): limits.max_response_bytes.
    std::size_t max_diff_bytes = 16 << 20;
};

// One requested job in a reply: its view, or nullopt for an id that is unknown or foreign.
struct job_entry {
    std::string id;
    std::optional<protocol::job_view> view;
};

struct wait_outcome {
    bool done = false;
    bool timed_out = false;
    std::vector<job_entry> jobs;
    std::vector<std::string> needs_input;  // the selected jobs that are waiting
};

struct peek_outcome {
    job_entry job;
    std::string partial_output;
    std::vector<protocol::step> steps;
    // With diff: the files the job changed, or why they could not be read.
    std::optional<std::vector<protocol::file_change>> changes;
    std::optional<std::string> diff_error;
};

// A job with the session it belongs to, for listings that span sessions.
struct session_job {
    std::string session;
    protocol::job_view view;
};

struct manager_stats {
    std::size_t jobs = 0;
    std::size_t running = 0;
    std::size_t queued = 0;
    std::array<std::size_t, protocol::enum_names<protocol::job_state>.size()>
        by_state{};  // indexed by protocol::job_state
};

class manager {
  public:
    // `db` (may be null) persists every job and is read back by start(); it must outlive this.
    manager(boost::asio::any_io_executor ex, limits lim, std::unique_ptr<upstream::backend> be,
            store* db = nullptr);
    ~manager();
    manager(manager const&) = delete;
    manager& operator=(manager const&) = delete;

    void start();  // restores stored jobs, starts the event stream and the reaper
    // After start(): settles the restored jobs (DESIGN §7) within `bound` — running ones
    // re-attached live, finished or interrupted; queued ones launch. Listeners accept after it.
    boost::asio::awaitable<void> recover(std::chrono::milliseconds bound);
    void stop();  // stops timers and the backend's background work
    // The graceful path (SIGTERM): no new jobs, queued ones end interrupted, running ones may
    // finish within `grace`, then are stopped, aborted upstream and end interrupted; then stop().
    boost::asio::awaitable<void> drain(std::chrono::milliseconds grace);

    // `connection_id` tags the jobs with the connection that started them (WebSocket push).
    // Awaits the store's commit of the new jobs (durable before acknowledged).
    boost::asio::awaitable<protocol::result<std::vector<job_entry>>> start_jobs(
        owner const& o, protocol::start_params const& p, std::uint64_t connection_id = 0);
    std::vector<job_entry> status(owner const& o, protocol::status_params const& p) const;
    boost::asio::awaitable<wait_outcome> wait(owner const& o, protocol::wait_params const& p) const;
    // Ids reach the jobs of every session of o.principal (DESIGN §2); listings and waits without
    // ids see o's session only. Cancel also cancels the jobs' descendants (nesting).
    boost::asio::awaitable<std::vector<job_entry>> cancel(owner const& o,
                                                          protocol::cancel_params const& p);
    boost::asio::awaitable<peek_outcome> peek(owner const& o, protocol::peek_params const& p) const;
    // Removes the worktree of job `id` upstream (agentctl worktree rm); -32602 on `job` for an
    // unknown or foreign id or a job without a worktree. The job keeps its JobView worktree.
    boost::asio::awaitable<protocol::result<job_entry>> remove_worktree(owner const& o,
                                                                        std::string const& id);
    // Answers a pending request of a waiting job upstream (agents_respond); the job's view
    // after the answer, or -32602 on the field that does not fit.
    boost::asio::awaitable<protocol::result<job_entry>> respond(owner const& o,
                                                                protocol::respond_params const& p);
    // The principal's jobs (of one session when given), newest first, at most `limit`; the
    // snapshot of agents_subscribe. Never another principal's.
    std::vector<session_job> list(std::string const& principal,
                                  std::optional<std::string> const& session,
                                  std::size_t limit) const;

    // Calls `listener` on every job creation and state change until the returned handle is
    // dropped. Listeners run synchronously on the manager's executor and must not block.
    using job_listener = std::function<void(job const&)>;
    std::shared_ptr<void> listen(job_listener listener);

    // Each principal's quota: at most this many of its jobs run at once (a principal not named
    // has only the instance's max_running). Its jobs beyond it stay queued, not refused, while
    // other principals' jobs launch; they launch as its running ones end. Replaces the previous
    // quotas (the daemon's tokens file, at start and on reload); a raised one applies at once.
    void set_quotas(std::unordered_map<std::string, std::size_t> quotas);

    // Several instances on one store (DESIGN §9). The instance holding job `id` of o's
    // principal when another instance runs it (cancel, respond and peek go there), else nullopt.
    std::optional<std::string> holder(owner const& o, std::string const& id) const;
    // Whether every id is known here; a job started on another instance a moment ago may not
    // be mirrored yet: discover() fetches such ids. Always true without a shared store.
    bool knows(owner const& o, std::span<std::string const> ids) const;
    boost::asio::awaitable<void> discover(std::vector<std::string> ids);
    // Whether every change so far is committed to the store; sync_store() waits until it is.
    // A reply shows only committed states (DESIGN §7: what a client saw survives a crash).
    bool committed() const;
    boost::asio::awaitable<void> sync_store();
    // The shared store, or null.
    shared_store* shared() const;

    manager_stats stats() const;
    background_stats background() const;
    // The upstream servers: up, running and started jobs (several servers: pool.hpp).
    std::vector<server_stats> servers() const;
    limits const& config() const;

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace agentd::jobs
