// Durable job state (DESIGN §7): every job row lives in SQLite (WAL) at $STATE_DIR/agentd.db and
// is written before the change is acknowledged. Synchronous calls on the daemon's thread: a WAL
// write without fsync costs microseconds; a locked database costs at most `busy_wait`, after which
// the row waits in memory (write-behind) until flush() succeeds.
#pragma once

#include "jobs/health.hpp"
#include "jobs/job.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace agentd::jobs {

struct store_stats {
    std::array<std::uint64_t, store_op_names.size()> errors{};  // indexed by store_op
    std::size_t pending_rows = 0;
};

class store {
  public:
    // How long one write waits for another connection's lock before giving up: short, because
    // the daemon's event loop waits with it.
    static constexpr std::chrono::milliseconds busy_wait{50};

    // Opens or creates the database and migrates its schema to the latest version; throws
    // std::runtime_error naming the file and the reason (unwritable directory, not a database,
    // corrupt, written by a newer agentd) so start-up fails loudly, never silently.
    explicit store(std::filesystem::path const& file);
    // The schema version this agentd writes (PRAGMA user_version): its number of migrations.
    static std::int64_t schema_version();
    ~store();
    store(store const&) = delete;
    store& operator=(store const&) = delete;

    // Writes the row, or keeps it pending when the write fails or rows are already pending (so
    // an older pending row never overwrites a newer one). Never throws.
    void save(job const& j);
    void erase(std::string const& id);  // likewise
    // New jobs in one transaction, now or never: throws std::runtime_error when it fails, so the
    // call that creates them is refused (durable before acknowledged).
    void save_all(std::span<job_ptr const> jobs);
    // Writes the pending rows in one transaction; true when none are left. Never throws.
    bool flush();
    std::size_t pending() const { return pending_.size(); }
    store_stats stats() const;
    std::string const& last_error() const { return last_error_; }
    // Every stored job, oldest first; views, owners, tasks and sequence numbers as saved.
    std::vector<job_ptr> load() const;

  private:
    struct checkpointer;

    void exec(char const* sql) const;
    // Brings the schema to the latest version in one transaction (DESIGN §7); throws when the
    // database is newer than this agentd.
    void migrate();
    void write(job const& j);
    void remove(std::string const& id);
    void keep_pending(std::string const& id, std::shared_ptr<job const> row, store_op op,
                      std::exception const& why);

    sqlite3* db_ = nullptr;
    // Checkpoints the WAL on its own thread and connection: a checkpoint fsyncs, which on a busy
    // disk takes tens to hundreds of ms, and must not stall the daemon's event loop.
    std::unique_ptr<checkpointer> checkpointer_;
    // Prepared once: compiling the SQL on every write cost a quarter of a job's instructions.
    sqlite3_stmt* upsert_ = nullptr;
    std::filesystem::path file_;
    // Rows whose write failed, by job id, newest content only; null means "delete this row".
    std::map<std::string, std::shared_ptr<job const>> pending_;
    std::array<std::uint64_t, store_op_names.size()> errors_{};
    std::string last_error_;
};

}  // namespace agentd::jobs
