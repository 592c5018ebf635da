// The job store interface (DESIGN §7, §9): the seam between the manager and a backend
// (sqlite_store, embedded default; postgres_store, shared by several instances). Neither backend
// leaks into the manager: it sees rows saved, erased, committed in batches and loaded at start.
#pragma once

#include "jobs/health.hpp"
#include "jobs/job.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace agentd::jobs {

struct store_stats {
    std::array<std::uint64_t, store_op_names.size()> errors{};  // indexed by store_op
    std::size_t pending_rows = 0;
};

class store {
  public:
    virtual ~store() = default;

    // Writes the row, now or later (an asynchronous backend queues it and commits queued rows
    // in groups), or keeps it pending after a failure; the newest content per id wins. Never
    // throws.
    virtual void save(job const& j) = 0;
    virtual void erase(std::string const& id) = 0;  // likewise
    // New jobs in one transaction, now or never: throws std::runtime_error when they could not
    // be committed, so the call that creates them is refused (durable before acknowledged).
    virtual boost::asio::awaitable<void> save_all(std::span<job_ptr const> jobs) = 0;
    // Completes when everything saved or erased before the call is committed, or kept pending
    // after a failure (then pending() > 0 and the flusher retries it).
    virtual boost::asio::awaitable<void> sync() = 0;
    // Writes the pending rows in one transaction; true when none are left. Never throws.
    virtual boost::asio::awaitable<bool> flush() = 0;
    // Rows kept after a failed write, waiting for flush().
    virtual std::size_t pending() const = 0;
    virtual store_stats stats() const = 0;
    virtual std::string last_error() const = 0;
    // Every stored job, oldest first; views, owners, tasks and sequence numbers as saved.
    // Synchronous: it runs once at start-up, before the listeners accept.
    virtual std::vector<job_ptr> load() const = 0;
};

}  // namespace agentd::jobs
