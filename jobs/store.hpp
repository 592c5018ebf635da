// Durable job state (DESIGN §7): every job row lives in SQLite (WAL) at $STATE_DIR/agentd.db and
// is written before the change is acknowledged. Synchronous calls on the daemon's thread: a WAL
// write without fsync costs microseconds, far below one upstream round trip.
#pragma once

#include "jobs/job.hpp"

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace agentd::jobs {

class store {
  public:
    // Opens or creates the database; throws std::runtime_error naming the file and the reason
    // (unwritable directory, not a database, corrupt) so start-up fails loudly, never silently.
    explicit store(std::filesystem::path const& file);
    ~store();
    store(store const&) = delete;
    store& operator=(store const&) = delete;

    void save(job const& j);
    void save_all(std::span<job_ptr const> jobs);  // one transaction
    void erase(std::string const& id);
    // Every stored job, oldest first; views, owners, tasks and sequence numbers as saved.
    std::vector<job_ptr> load() const;

  private:
    struct checkpointer;

    void exec(char const* sql) const;
    void write(job const& j);

    sqlite3* db_ = nullptr;
    // Checkpoints the WAL on its own thread and connection: a checkpoint fsyncs, which on a busy
    // disk takes tens to hundreds of ms, and must not stall the daemon's event loop.
    std::unique_ptr<checkpointer> checkpointer_;
    // Prepared once: compiling the SQL on every write cost a quarter of a job's instructions.
    sqlite3_stmt* upsert_ = nullptr;
    std::filesystem::path file_;
};

}  // namespace agentd::jobs
