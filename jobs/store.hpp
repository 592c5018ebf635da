// The job store interface (DESIGN §7, §9): the seam between the manager and a backend
// (sqlite_store, embedded default; postgres_store, shared by several instances). Neither backend
// leaks into the manager: it sees rows saved, erased, committed in batches and loaded at start.
#pragma once

#include "jobs/health.hpp"
#include "jobs/job.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace agentd::jobs {

struct store_stats {
    std::array<std::uint64_t, store_op_names.size()> errors{};  // indexed by store_op
    std::size_t pending_rows = 0;
};

class shared_store;

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
    // True when nothing saved or erased waits for a commit (a synchronous backend: always).
    // Lets a reply skip sync() at the cost of one test.
    virtual bool committed() const { return true; }
    // Writes the pending rows in one transaction; true when none are left. Never throws.
    virtual boost::asio::awaitable<bool> flush() = 0;
    // Rows kept after a failed write, waiting for flush().
    virtual std::size_t pending() const = 0;
    virtual store_stats stats() const = 0;
    virtual std::string last_error() const = 0;
    // Every stored job, oldest first; views, owners, tasks and sequence numbers as saved.
    // Synchronous: it runs once at start-up, before the listeners accept.
    // Several instances on one database: a running job's lease names its instance, and job
    // rows loaded or fetched of another instance's jobs name it in job::holder.
    virtual std::vector<job_ptr> load() const = 0;
    // Null for a store one instance owns alone (SQLite).
    virtual shared_store* shared() { return nullptr; }
};

// What several instances sharing one store need beyond rows (DESIGN §9): change notices, rows
// fetched on demand, leases taken over from dead instances, and calls to the instance that
// holds a job. Saved rows carry this instance's lease; a row another instance holds is never
// overwritten by this one (fenced writes).
class shared_store {
  public:
    virtual ~shared_store() = default;
    // This instance's name, the lease owner of its jobs.
    virtual std::string const& instance() const = 0;
    virtual std::chrono::milliseconds lease_ttl() const = 0;
    // Calls `on_change(ids)` with the ids of every committed change, this instance's included,
    // within milliseconds of its commit (LISTEN/NOTIFY, no polling).
    virtual void watch(std::function<void(std::vector<std::string>)> on_change) = 0;
    // The rows of `ids` as committed now; a missing one is gone. Empty on an error.
    virtual boost::asio::awaitable<std::vector<job_ptr>> fetch(std::vector<std::string> ids) = 0;
    // Renews this instance's leases, then claims unfinished jobs whose lease expired (their
    // instance died), each by exactly one instance (FOR UPDATE SKIP LOCKED): the claimed rows.
    virtual boost::asio::awaitable<std::vector<job_ptr>> take_over() = 0;
    // Sends `request` to instance `to` (a command row and a NOTIFY); its reply, or nullopt when
    // none came within `timeout`.
    virtual boost::asio::awaitable<std::optional<std::string>> call(
        std::string to, std::string request, std::chrono::milliseconds timeout) = 0;
    // Answers the calls other instances send to this one.
    virtual void serve(std::function<boost::asio::awaitable<std::string>(std::string)> handler) = 0;
};

}  // namespace agentd::jobs
