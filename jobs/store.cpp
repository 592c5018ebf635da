// SQLite job store; see store.hpp. One row per job with the JobView fields in columns (so the
// file is inspectable with the sqlite3 CLI) and the task as JSON.
#include "jobs/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace agentd::jobs {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;
using protocol::job_state;

namespace {

constexpr char const* schema = R"(
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, principal TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL,
  started_ms INTEGER, finished_ms INTEGER, depth INTEGER NOT NULL,
  backend TEXT, upstream_session TEXT, output TEXT, truncated INTEGER NOT NULL,
  error_kind TEXT, error_phase TEXT, error_message TEXT, error_http_status INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, cost REAL,
  task TEXT NOT NULL, upstream_parent TEXT
) STRICT;
)";

constexpr char const* upsert = R"(
INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
)";

std::int64_t to_ms(protocol::wall_time t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

protocol::wall_time from_ms(std::int64_t ms) {
    return protocol::wall_time(std::chrono::milliseconds(ms));
}

std::string task_json(protocol::task const& t) {
    json::object o{{"prompt", t.prompt}, {"description", t.description}};
    if (t.agent) o["agent"] = *t.agent;
    if (t.model) o["model"] = *t.model;
    if (t.system) o["system"] = *t.system;
    if (t.directory) o["directory"] = *t.directory;
    if (t.timeout_ms) o["timeout_ms"] = *t.timeout_ms;
    return json::serialize(o);
}

protocol::task task_from(std::string_view text) {
    protocol::task t;
    auto v = json::parse(text).as_object();
    auto opt = [&](char const* key) -> std::optional<std::string> {
        if (auto const* s = v.if_contains(key); s && s->is_string())
            return std::string(s->get_string());
        return std::nullopt;
    };
    t.prompt = opt("prompt").value_or("");
    t.description = opt("description").value_or("");
    t.agent = opt("agent");
    t.model = opt("model");
    t.system = opt("system");
    t.directory = opt("directory");
    if (auto const* n = v.if_contains("timeout_ms"); n && n->is_int64())
        t.timeout_ms = n->get_int64();
    return t;
}

// Binds one column per call, in order; nullopt binds NULL.
class binder {
  public:
    explicit binder(sqlite3_stmt* s) : s_(s) {}
    binder& text(std::string_view v) {
        sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    binder& maybe_text(std::optional<std::string_view> v) { return v ? text(*v) : null(); }
    binder& integer(std::int64_t v) {
        sqlite3_bind_int64(s_, ++i_, v);
        return *this;
    }
    binder& maybe_integer(std::optional<std::int64_t> v) { return v ? integer(*v) : null(); }
    binder& real(std::optional<double> v) {
        if (!v) return null();
        sqlite3_bind_double(s_, ++i_, *v);
        return *this;
    }
    binder& null() {
        sqlite3_bind_null(s_, ++i_);
        return *this;
    }

  private:
    sqlite3_stmt* s_;
    int i_ = 0;
};

std::optional<std::string> column_text(sqlite3_stmt* s, int i) {
    if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
    auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(s, i));
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

std::optional<std::int64_t> column_int(sqlite3_stmt* s, int i) {
    if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
    return sqlite3_column_int64(s, i);
}

struct statement {
    sqlite3_stmt* s = nullptr;
    ~statement() { sqlite3_finalize(s); }
};

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

std::shared_ptr<job const> row_of(job const& j) {
    auto row = std::make_shared<job>();
    row->view = j.view;
    row->own = j.own;
    row->task = j.task;
    row->upstream_parent = j.upstream_parent;
    row->seq = j.seq;
    return row;
}

}  // namespace

// SQLite's own auto-checkpoint would run inside the COMMIT that fills the WAL past 1000 pages,
// on the daemon's thread. Instead the commit only signals this thread, which checkpoints
// (PASSIVE: never blocks the writer) through a second connection to the same file.
struct store::checkpointer {
    static constexpr int wal_pages = 1000;  // SQLite's default auto-checkpoint threshold
    // Under a long burst of writes the background checkpoints can lag behind; past this the
    // daemon's connection checkpoints itself, as SQLite would, so the WAL stays bounded.
    static constexpr int max_wal_pages = 10 * wal_pages;

    sqlite3* db = nullptr;
    std::mutex mutex;
    std::condition_variable wake;
    bool pending = false;
    bool stopping = false;
    std::atomic<std::uint64_t> errors{0};
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
    // The WAL hook of the daemon's connection, called after every commit.
    static int on_commit(void* self, sqlite3* writer, char const*, int pages) {
        if (pages >= max_wal_pages) {
            sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        } else if (pages >= wal_pages) {
            auto& c = *static_cast<checkpointer*>(self);
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

store::store(std::filesystem::path const& file) : file_(file) {
    auto fail = [&](std::string const& why) {
        std::string msg = fmt::format("cannot use state database {}: {}", file_.string(), why);
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
        exec("PRAGMA journal_mode=WAL");
        exec("PRAGMA synchronous=NORMAL");  // with WAL: survives kill -9, fsyncs at checkpoints
        // A burst of big prompts grows the WAL to tens of MB; once checkpointed it is cut back.
        exec("PRAGMA journal_size_limit=4194304");
        exec(schema);
        exec("PRAGMA quick_check");
    } catch (std::runtime_error const& e) {
        fail(e.what());
    }
    if (sqlite3_prepare_v3(db_, upsert, -1, SQLITE_PREPARE_PERSISTENT, &upsert_, nullptr) !=
        SQLITE_OK)
        fail(sqlite3_errmsg(db_));
    try {
        checkpointer_ = std::make_unique<checkpointer>(file);
    } catch (std::runtime_error const& e) {
        sqlite3_finalize(upsert_);
        fail(e.what());
    }
    // Replaces SQLite's auto-checkpoint on this connection (which is itself a WAL hook).
    sqlite3_wal_hook(db_, &checkpointer::on_commit, checkpointer_.get());
}

store::~store() {
    checkpointer_.reset();  // its thread is done before the connections close
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);  // the last connection: SQLite checkpoints the rest here
}

void store::exec(char const* sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(db_);
        sqlite3_free(err);
        throw std::runtime_error(msg);
    }
}

void store::write(job const& j) {
    // Reset even when a bind or the step throws, so the next write starts clean.
    struct reset {
        sqlite3_stmt* s;
        ~reset() {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
        }
    } st{upsert_};
    auto const& v = j.view;
    binder b(st.s);
    b.text(v.id)
        .text(j.own.principal)
        .text(j.own.session)
        .integer(static_cast<std::int64_t>(j.seq));
    b.text(v.description).text(protocol::to_string(v.state)).integer(to_ms(v.created_at));
    b.maybe_integer(v.started_at ? std::optional(to_ms(*v.started_at)) : std::nullopt);
    b.maybe_integer(v.finished_at ? std::optional(to_ms(*v.finished_at)) : std::nullopt);
    b.integer(v.depth);
    b.maybe_text(v.upstream ? std::optional<std::string_view>(v.upstream->backend) : std::nullopt);
    b.maybe_text(v.upstream ? std::optional<std::string_view>(v.upstream->session) : std::nullopt);
    b.maybe_text(v.output ? std::optional<std::string_view>(*v.output) : std::nullopt);
    b.integer(v.truncated ? 1 : 0);
    auto const& e = v.error;
    b.maybe_text(e ? std::optional(protocol::to_string(e->kind)) : std::nullopt);
    b.maybe_text(e && e->phase ? std::optional(protocol::to_string(*e->phase)) : std::nullopt);
    b.maybe_text(e ? std::optional<std::string_view>(e->message) : std::nullopt);
    b.maybe_integer(e && e->http_status ? std::optional<std::int64_t>(*e->http_status)
                                        : std::nullopt);
    auto const& u = v.usage;
    b.maybe_integer(u ? std::optional(u->input_tokens) : std::nullopt);
    b.maybe_integer(u ? std::optional(u->output_tokens) : std::nullopt);
    b.real(u ? std::optional(u->cost) : std::nullopt);
    b.text(task_json(j.task));
    b.maybe_text(j.upstream_parent ? std::optional<std::string_view>(*j.upstream_parent)
                                   : std::nullopt);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database write failed: {}", sqlite3_errmsg(db_)));
}

void store::keep_pending(std::string const& id, std::shared_ptr<job const> row, store_op op,
                         std::exception const& why) {
    ++errors_[static_cast<std::size_t>(op)];
    last_error_ = why.what();
    pending_[id] = std::move(row);
}

void store::save(job const& j) {
    if (!pending_.empty()) {
        pending_[j.view.id] = row_of(j);
        return;
    }
    try {
        write(j);
    } catch (std::exception const& e) {
        keep_pending(j.view.id, row_of(j), store_op::save, e);
    }
}

void store::erase(std::string const& id) {
    if (!pending_.empty()) {
        pending_[id] = nullptr;
        return;
    }
    try {
        remove(id);
    } catch (std::exception const& e) {
        keep_pending(id, nullptr, store_op::erase, e);
    }
}

bool store::flush() {
    if (pending_.empty()) return true;
    try {
        exec("BEGIN IMMEDIATE");
        try {
            for (auto const& [id, row] : pending_) row ? write(*row) : remove(id);
            exec("COMMIT");
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

store_stats store::stats() const {
    store_stats out{errors_, pending_.size()};
    out.errors[static_cast<std::size_t>(store_op::checkpoint)] += checkpointer_->errors.load();
    return out;
}

void store::save_all(std::span<job_ptr const> jobs) {
    try {
        exec("BEGIN IMMEDIATE");
    } catch (std::exception const&) {
        ++errors_[static_cast<std::size_t>(store_op::start)];
        throw;
    }
    try {
        for (auto const& j : jobs) write(*j);
        exec("COMMIT");
    } catch (...) {
        ++errors_[static_cast<std::size_t>(store_op::start)];
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void store::remove(std::string const& id) {
    statement st;
    sqlite3_prepare_v2(db_, "DELETE FROM jobs WHERE id = ?", -1, &st.s, nullptr);
    binder(st.s).text(id);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database delete failed: {}", sqlite3_errmsg(db_)));
}

std::vector<job_ptr> store::load() const {
    statement st;
    if (sqlite3_prepare_v2(db_, "SELECT * FROM jobs ORDER BY seq", -1, &st.s, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("state database: {}", sqlite3_errmsg(db_)));
    std::vector<job_ptr> out;
    int rc = 0;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
        auto j = std::make_shared<job>();
        auto& v = j->view;
        auto s = st.s;
        v.id = *column_text(s, 0);
        j->own = {*column_text(s, 1), *column_text(s, 2)};
        j->seq = static_cast<std::uint64_t>(*column_int(s, 3));
        v.description = *column_text(s, 4);
        v.state =
            protocol::from_string<job_state>(*column_text(s, 5)).value_or(job_state::interrupted);
        v.created_at = from_ms(*column_int(s, 6));
        if (auto t = column_int(s, 7)) v.started_at = from_ms(*t);
        if (auto t = column_int(s, 8)) v.finished_at = from_ms(*t);
        v.depth = static_cast<int>(*column_int(s, 9));
        if (auto b = column_text(s, 10))
            v.upstream = protocol::upstream_ref{*b, column_text(s, 11).value_or("")};
        v.output = column_text(s, 12);
        v.truncated = column_int(s, 13).value_or(0) != 0;
        if (auto kind = column_text(s, 14)) {
            protocol::job_error e;
            e.kind = protocol::from_string<error_kind>(*kind).value_or(error_kind::protocol);
            if (auto p = column_text(s, 15)) e.phase = protocol::from_string<error_phase>(*p);
            e.message = column_text(s, 16).value_or("");
            if (auto h = column_int(s, 17)) e.http_status = static_cast<int>(*h);
            v.error = e;
        }
        if (auto in = column_int(s, 18)) {
            v.usage = protocol::job_usage{*in, column_int(s, 19).value_or(0),
                                          sqlite3_column_double(s, 20)};
        }
        j->task = task_from(*column_text(s, 21));
        j->view.task = preview_of(j->task);
        if (protocol::is_terminal(v.state)) compact_finished(*j);  // rows of an older agentd
        j->upstream_parent = column_text(s, 22);
        out.push_back(std::move(j));
    }
    if (rc != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database read failed: {}", sqlite3_errmsg(db_)));
    return out;
}

}  // namespace agentd::jobs
