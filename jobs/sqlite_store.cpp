// SQLite job store; see sqlite_store.hpp. One row per job with the JobView fields in named columns
// (so the file is inspectable with the sqlite3 CLI) and the task as JSON; the schema has a version
// (PRAGMA user_version) and numbered migrations (DESIGN §7).
#include "jobs/sqlite_store.hpp"

#include "jobs/store_row.hpp"

#include "protocol/enum_names.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace agentd::jobs {
using column = store_column;

namespace {

// Numbered migrations: migrations[n] takes the schema from version n to n + 1. Shipped ones are
// never edited, since a database may be at any version; a new column is a new entry here
// (ALTER TABLE jobs ADD COLUMN …) and its name in `column`. Version 1 is the schema of the first
// agentd, which set no user_version.
constexpr std::array<char const*, 7> migrations{
    R"(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY, principal TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL,
  started_ms INTEGER, finished_ms INTEGER, depth INTEGER NOT NULL,
  backend TEXT, upstream_session TEXT, output TEXT, truncated INTEGER NOT NULL,
  error_kind TEXT, error_phase TEXT, error_message TEXT, error_http_status INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, cost REAL,
  task TEXT NOT NULL, upstream_parent TEXT
) STRICT;
)",
    // v2: JobView `answered` (issue #16), as JSON.
    "ALTER TABLE jobs ADD COLUMN answered TEXT",
    // v3: JobView worktree and diff_summary, and the user message whose diff they are (#17
    // point 2).
    R"(
ALTER TABLE jobs ADD COLUMN worktree_directory TEXT;
ALTER TABLE jobs ADD COLUMN worktree_branch TEXT;
ALTER TABLE jobs ADD COLUMN user_message TEXT;
ALTER TABLE jobs ADD COLUMN diff_files INTEGER;
ALTER TABLE jobs ADD COLUMN diff_additions INTEGER;
ALTER TABLE jobs ADD COLUMN diff_deletions INTEGER;
)",
    // v4: JobView `continues` (issue #17).
    "ALTER TABLE jobs ADD COLUMN continues TEXT",
    // v5: the transcript a follow-up replays (openai), as JSON.
    "ALTER TABLE jobs ADD COLUMN transcript TEXT",
    // v6: the upstream server a job runs on, of several (issue #19).
    "ALTER TABLE jobs ADD COLUMN upstream_server TEXT",
    // v7: a waiting job's pending requests (several instances show them from the row)
    "ALTER TABLE jobs ADD COLUMN requests TEXT"};
constexpr std::int64_t latest_version = migrations.size();

// An upsert that updates a known row in place: INSERT OR REPLACE would delete it and insert it
// again under a new rowid, touching the id index twice on every transition.
std::string upsert_sql() {
    constexpr auto& names = protocol::enum_names<column>;
    std::string marks;
    std::string sets;
    for (std::size_t i = 0; i < names.size(); ++i) {
        marks += i == 0 ? "?" : ", ?";
        if (i > 0)
            sets += fmt::format("{}{} = excluded.{}", i == 1 ? "" : ", ", names[i], names[i]);
    }
    return fmt::format("INSERT INTO jobs ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
                       fmt::join(names, ", "), marks, sets);
}

std::string select_sql() {
    return fmt::format("SELECT {} FROM jobs ORDER BY seq",
                       fmt::join(protocol::enum_names<column>, ", "));
}

// The columns a later write of a stored job sets (every one but the id and the fixed ones),
// then the id: the parameters of update_sql() in order.
std::vector<column> const& update_columns() {
    static std::vector<column> const columns = [] {
        std::vector<column> out;
        for (std::size_t i = 0; i < store_row::size; ++i) {
            auto c = static_cast<column>(i);
            if (c != column::id && !fixed_column(c)) out.push_back(c);
        }
        out.push_back(column::id);
        return out;
    }();
    return columns;
}

// A stored job's changes: what a transition can change, without rebuilding its task's JSON
// (a NULL task keeps the stored one; see row_of).
std::string update_sql() {
    auto const& columns = update_columns();
    std::string sets;
    for (std::size_t i = 0; i + 1 < columns.size(); ++i) {
        auto name = protocol::to_string(columns[i]);
        if (i > 0) sets += ", ";
        sets += columns[i] == column::task ? fmt::format("{0} = coalesce(?, {0})", name)
                                           : fmt::format("{} = ?", name);
    }
    return fmt::format("UPDATE jobs SET {} WHERE id = ?", sets);
}

// Binds parameter k + 1 to the row's column columns[k] (every column in order when empty);
// NULL when the value is empty.
void bind_row(sqlite3_stmt* s, store_row const& r, std::span<column const> columns = {}) {
    auto const count = columns.empty() ? store_row::size : columns.size();
    for (std::size_t i = 0; i < count; ++i) {
        auto c = columns.empty() ? static_cast<column>(i) : columns[i];
        int at = static_cast<int>(i) + 1;
        std::visit(
            [&](auto const& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::string>)
                    sqlite3_bind_text(s, at, v.data(), static_cast<int>(v.size()),
                                      SQLITE_TRANSIENT);
                else if constexpr (std::is_same_v<T, std::int64_t>)
                    sqlite3_bind_int64(s, at, v);
                else if constexpr (std::is_same_v<T, double>)
                    sqlite3_bind_double(s, at, v);
                else
                    sqlite3_bind_null(s, at);
            },
            r.get(c));
    }
}

// The current row of select_sql() (result column n is column n), each value as stored.
store_row read_row(sqlite3_stmt* s) {
    store_row r;
    for (std::size_t i = 0; i < store_row::size; ++i) {
        auto c = static_cast<column>(i);
        int at = static_cast<int>(i);
        switch (sqlite3_column_type(s, at)) {
            case SQLITE_INTEGER:
                r.set(c, static_cast<std::int64_t>(sqlite3_column_int64(s, at)));
                break;
            case SQLITE_FLOAT:
                r.set(c, sqlite3_column_double(s, at));
                break;
            case SQLITE_NULL:
                break;
            default: {
                auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(s, at));
                r.set(c, std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, at))));
            }
        }
    }
    return r;
}

struct statement {
    sqlite3_stmt* s = nullptr;
    ~statement() { sqlite3_finalize(s); }
};

// The first column of the first row `sql` returns (0 when none): a pragma's value, a count.
std::int64_t query_int(sqlite3* db, char const* sql) {
    statement st;
    if (sqlite3_prepare_v2(db, sql, -1, &st.s, nullptr) != SQLITE_OK)
        throw std::runtime_error(sqlite3_errmsg(db));
    int rc = sqlite3_step(st.s);
    if (rc == SQLITE_ROW) return sqlite3_column_int64(st.s, 0);
    if (rc != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
    return 0;
}

// The database holds every prompt and output: readable by the service user only. SQLite gives the
// -wal and -shm files the mode of the database file, so creating that one 0600 covers all three;
// files left looser by an older agentd are tightened.
void make_private(std::filesystem::path const& file) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;  // sqlite3_open_v2 reports the reason
    ::close(fd);
    for (char const* suffix : {"", "-wal", "-shm"}) {
        auto path = file.string() + suffix;
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(path.c_str(), 0600);
    }
}

}  // namespace

// SQLite's own auto-checkpoint would run inside the COMMIT that fills the WAL past 1000 pages,
// on the daemon's thread. Instead the commit only signals this thread, which checkpoints
// (PASSIVE: never blocks the writer) through a second connection to the same file.
struct sqlite_store::checkpointer {
    static constexpr int wal_pages = 1000;  // SQLite's default auto-checkpoint threshold
    // Under a long burst of writes the background checkpoints can lag behind; past this the
    // daemon's connection checkpoints itself, as SQLite would, so the WAL stays bounded.
    static constexpr int max_wal_pages = 10 * wal_pages;

    sqlite3* db = nullptr;
    std::mutex mutex;
    std::condition_variable wake;
    bool pending = false;
    bool stopping = false;
    int signalled_at = 0;  // the WAL's size at the last signal; the writer's thread only
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> runs{0};
    std::thread thread;

    explicit checkpointer(std::filesystem::path const& file) {
        // The pragma makes this connection read the file, so it knows the database is in WAL
        // mode; until it has, a checkpoint through it does nothing.
        if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK ||
            sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
            std::string why = db ? sqlite3_errmsg(db) : "out of memory";
            sqlite3_close(db);
            throw std::runtime_error(why);
        }
        thread = std::thread([this] { run(); });
    }
    ~checkpointer() {
        {
            std::lock_guard lock(mutex);
            stopping = true;
        }
        wake.notify_one();
        thread.join();
        sqlite3_close(db);
    }
    // The WAL hook of the daemon's connection, called after every commit. It signals once per
    // wal_pages frames appended: a PASSIVE checkpoint cannot restart a WAL that a burst keeps
    // appending to, so signalling on every commit past the threshold ran a checkpoint (two
    // fsyncs and a thread wake-up) every few commits until the burst ended (BENCHMARKS.md
    // finding 14: 290 checkpoints in one 1 024-job fan-out).
    static int on_commit(void* self, sqlite3* writer, char const*, int pages) {
        auto& c = *static_cast<checkpointer*>(self);
        if (pages < c.signalled_at) c.signalled_at = 0;  // the WAL restarted from its start
        if (pages >= max_wal_pages) {
            sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        } else if (pages >= c.signalled_at + wal_pages) {
            c.signalled_at = pages;
            {
                std::lock_guard lock(c.mutex);
                c.pending = true;
            }
            c.wake.notify_one();
        }
        return SQLITE_OK;
    }
    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            wake.wait(lock, [&] { return pending || stopping; });
            if (stopping) return;
            pending = false;
            lock.unlock();
            int rc =
                sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            ++runs;
            lock.lock();
            if (rc != SQLITE_OK) {
                // Counted and tried again in a second, not left for the next commit (which may
                // never come) nor for the daemon's thread.
                ++errors;
                wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
                pending = true;
            }
        }
    }
};

sqlite_store::sqlite_store(std::filesystem::path const& file) : file_(file) {
    auto fail = [&](std::string const& why) {
        std::string msg = fmt::format("cannot use state database {}: {}", file_.string(), why);
        for (auto* st : {upsert_, update_, begin_, commit_})
            sqlite3_finalize(st);  // some may be prepared already; null is a no-op
        sqlite3_close(db_);
        db_ = nullptr;
        throw std::runtime_error(msg);
    };
    make_private(file);
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
        fail(db_ ? sqlite3_errmsg(db_) : "out of memory");
    sqlite3_busy_timeout(db_, static_cast<int>(busy_wait.count()));
    try {
        // A new database only (an existing one keeps its size): see page_size in the header.
        exec(fmt::format("PRAGMA page_size={}", page_size).c_str());
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");  // with WAL: survives kill -9, fsyncs at checkpoints
        // A burst of big prompts grows the WAL to tens of MB; once checkpointed it is cut back.
        exec("PRAGMA journal_size_limit=4194304");
        exec(fmt::format("PRAGMA cache_size=-{}", cache_kib).c_str());
        migrate();
        exec("PRAGMA quick_check");
    } catch (std::runtime_error const& e) {
        fail(e.what());
    }
    for (auto [sql, statement] : {std::pair{upsert_sql(), &upsert_},
                                  {update_sql(), &update_},
                                  {std::string("BEGIN IMMEDIATE"), &begin_},
                                  {std::string("COMMIT"), &commit_}})
        if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, statement,
                               nullptr) != SQLITE_OK)
            fail(sqlite3_errmsg(db_));
    try {
        checkpointer_ = std::make_unique<checkpointer>(file);
    } catch (std::runtime_error const& e) {
        fail(e.what());
    }
    // Replaces SQLite's auto-checkpoint on this connection (which is itself a WAL hook).
    sqlite3_wal_hook(db_, &checkpointer::on_commit, checkpointer_.get());
}

sqlite_store::~sqlite_store() {
    checkpointer_.reset();  // its thread is done before the connections close
    for (auto* st : {upsert_, update_, begin_, commit_}) sqlite3_finalize(st);
    sqlite3_close(db_);  // the last connection: SQLite checkpoints the rest here
}

void sqlite_store::exec(char const* sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw std::runtime_error(msg);
    }
}

std::int64_t sqlite_store::schema_version() {
    return latest_version;
}

void sqlite_store::migrate() {
    if (query_int(db_, "PRAGMA user_version") == latest_version) return;  // no lock taken
    exec("BEGIN IMMEDIATE");
    try {
        // Read again under the lock: another agentd on the same file may have migrated it.
        auto version = query_int(db_, "PRAGMA user_version");
        if (version == 0 &&
            query_int(db_,
                      "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                      "'jobs'") == 1)
            version = 1;  // written by an agentd from before schema versions: version 1's schema
        if (version > latest_version)
            throw std::runtime_error(fmt::format(
                "its schema is version {}, newer than the {} this agentd knows: it was written by "
                "a newer agentd (run that one, or use another state directory)",
                version, latest_version));
        for (auto v = version; v < latest_version; ++v) exec(migrations[v]);
        exec(fmt::format("PRAGMA user_version = {}", latest_version).c_str());
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

namespace {

// Resets a prepared statement even when its step throws, so the next use starts clean.
struct reset_after {
    sqlite3_stmt* s;
    ~reset_after() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
};

}  // namespace

void sqlite_store::run(sqlite3_stmt* statement) {
    reset_after st{statement};
    if (sqlite3_step(st.s) != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db_));
}

void sqlite_store::write(store_row const& r) {
    reset_after st{upsert_};
    bind_row(st.s, r);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database write failed: {}", sqlite3_errmsg(db_)));
}

bool sqlite_store::update(store_row const& changes) {
    reset_after st{update_};
    bind_row(st.s, changes, update_columns());
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database write failed: {}", sqlite3_errmsg(db_)));
    return sqlite3_changes(db_) > 0;
}

void sqlite_store::keep_pending(std::string const& id, std::optional<store_row> row, store_op op,
                                std::exception const& why) {
    ++errors_[static_cast<std::size_t>(op)];
    last_error_ = why.what();
    pending_[id] = std::move(row);
}

void sqlite_store::save(job const& j) {
    if (!pending_.empty()) {
        pending_[j.view.id] = row_of(j);
        return;
    }
    try {
        // A job's first row is written whole (by save_all, mostly); later ones set its changes.
        if (!update(row_of(j, false))) write(row_of(j));
    } catch (std::exception const& e) {
        keep_pending(j.view.id, row_of(j), store_op::save, e);
    }
}

void sqlite_store::erase(std::string const& id) {
    if (!pending_.empty()) {
        pending_[id] = std::nullopt;
        return;
    }
    try {
        remove(id);
    } catch (std::exception const& e) {
        keep_pending(id, std::nullopt, store_op::erase, e);
    }
}

bool sqlite_store::flush_now() {
    if (pending_.empty()) return true;
    try {
        run(begin_);
        try {
            for (auto const& [id, row] : pending_) row ? write(*row) : remove(id);
            run(commit_);
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    } catch (std::exception const& e) {
        ++errors_[static_cast<std::size_t>(store_op::flush)];
        last_error_ = e.what();
        return false;
    }
    pending_.clear();
    return true;
}

store_stats sqlite_store::stats() const {
    store_stats out{errors_, pending_.size()};
    out.errors[static_cast<std::size_t>(store_op::checkpoint)] += checkpointer_->errors.load();
    return out;
}

std::uint64_t sqlite_store::checkpoints() const {
    return checkpointer_->runs.load();
}

void sqlite_store::write_all(std::span<job_ptr const> jobs) {
    try {
        run(begin_);
    } catch (std::exception const&) {
        ++errors_[static_cast<std::size_t>(store_op::start)];
        throw;
    }
    try {
        for (auto const& j : jobs) write(row_of(*j));
        run(commit_);
    } catch (...) {
        ++errors_[static_cast<std::size_t>(store_op::start)];
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void sqlite_store::remove(std::string const& id) {
    statement st;
    sqlite3_prepare_v2(db_, "DELETE FROM jobs WHERE id = ?", -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database delete failed: {}", sqlite3_errmsg(db_)));
}

std::vector<job_ptr> sqlite_store::load() const {
    statement st;
    if (sqlite3_prepare_v2(db_, select_sql().c_str(), -1, &st.s, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("state database: {}", sqlite3_errmsg(db_)));
    std::vector<job_ptr> out;
    int rc = 0;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) out.push_back(job_of(read_row(st.s)));
    if (rc != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database read failed: {}", sqlite3_errmsg(db_)));
    return out;
}

boost::asio::awaitable<void> sqlite_store::save_all(std::span<job_ptr const> jobs) {
    write_all(jobs);
    co_return;
}

boost::asio::awaitable<void> sqlite_store::sync() {
    co_return;  // every save() has been written, or kept pending, before it returned
}

boost::asio::awaitable<bool> sqlite_store::flush() {
    co_return flush_now();
}

}  // namespace agentd::jobs
