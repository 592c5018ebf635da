// The embedded job store (DESIGN §7): every job row lives in SQLite (WAL) at $STATE_DIR/agentd.db
// and is written before the change is acknowledged. Synchronous calls on the daemon's thread: a WAL
// write without fsync costs microseconds; a locked database costs at most `busy_wait`, after which
// the row waits in memory (write-behind) until flush() succeeds.
#pragma once

#include "jobs/store.hpp"
#include "jobs/store_row.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace agentd::jobs {

class sqlite_store final : public store {
  public:
    // How long one write waits for another connection's lock before giving up: short, because
    // the daemon's event loop waits with it.
    static constexpr std::chrono::milliseconds busy_wait{50};
    // The page size of a new database. Each commit writes, and checksums, every page it changed
    // into the WAL, and a job's row is well under a page: 4 KiB pages (SQLite's default) cost
    // ~12 k more instructions per job on the event loop and more on the checkpoint thread
    // (BENCHMARKS.md finding 12).
    static constexpr int page_size = 2048;
    // The page cache of the daemon's connection. agentd reads the database at start-up only;
    // later it finds the rows it updates (recent ones, and the id index). SQLite's default of
    // 2 MB filled up with rows written once: ~170 B of RSS per queued or retained job, with
    // no read saved in a 1 024-job fan-out (BENCHMARKS.md finding 17).
    static constexpr int cache_kib = 512;

    // Opens or creates the database and migrates its schema to the latest version; throws
    // std::runtime_error naming the file and the reason (unwritable directory, not a database,
    // corrupt, written by a newer agentd) so start-up fails loudly, never silently.
    explicit sqlite_store(std::filesystem::path const& file);
    // The schema version this agentd writes (PRAGMA user_version): its number of migrations.
    static std::int64_t schema_version();
    ~sqlite_store() override;
    sqlite_store(sqlite_store const&) = delete;
    sqlite_store& operator=(sqlite_store const&) = delete;

    // Writes the row, or keeps it pending when the write fails or rows are already pending (so
    // an older pending row never overwrites a newer one).
    void save(job const& j) override;
    void erase(std::string const& id) override;
    // Synchronous underneath: the transaction is committed (or refused) before the first
    // suspension, and sync() has nothing to wait for.
    boost::asio::awaitable<void> save_all(std::span<job_ptr const> jobs) override;
    boost::asio::awaitable<void> sync() override;
    boost::asio::awaitable<bool> flush() override;
    bool flush_now();  // flush() without a coroutine
    std::size_t pending() const override { return pending_.size(); }
    store_stats stats() const override;
    std::string last_error() const override { return last_error_; }
    std::vector<job_ptr> load() const override;
    // Checkpoints the background thread has run (tried) so far.
    std::uint64_t checkpoints() const;

  private:
    struct checkpointer;

    void exec(char const* sql) const;
    // Steps a prepared statement without rows (BEGIN, COMMIT) once; throws on failure.
    void run(sqlite3_stmt* statement);
    // Brings the schema to the latest version in one transaction (DESIGN §7); throws when the
    // database is newer than this agentd.
    void migrate();
    void write(store_row const& r);
    // Sets a stored job's changes (a row of row_of(j, false)); false when no row has its id.
    bool update(store_row const& changes);
    void write_all(std::span<job_ptr const> jobs);
    void remove(std::string const& id);
    void keep_pending(std::string const& id, std::optional<store_row> row, store_op op,
                      std::exception const& why);

    sqlite3* db_ = nullptr;
    // Checkpoints the WAL on its own thread and connection: a checkpoint fsyncs, which on a busy
    // disk takes tens to hundreds of ms, and must not stall the daemon's event loop.
    std::unique_ptr<checkpointer> checkpointer_;
    // Prepared once: compiling the SQL on every write cost a quarter of a job's instructions.
    sqlite3_stmt* upsert_ = nullptr;
    sqlite3_stmt* update_ = nullptr;
    // BEGIN IMMEDIATE and COMMIT of a group of rows, prepared once (sqlite3_exec would compile
    // them on every call).
    sqlite3_stmt* begin_ = nullptr;
    sqlite3_stmt* commit_ = nullptr;

    std::filesystem::path file_;
    // Rows whose write failed, by job id, newest content only; empty means "delete this row".
    std::map<std::string, std::optional<store_row>> pending_;
    std::array<std::uint64_t, store_op_names.size()> errors_{};
    std::string last_error_;
};

}  // namespace agentd::jobs
