// SQLite job store; see store.hpp. One row per job with the JobView fields in named columns (so
// the file is inspectable with the sqlite3 CLI) and the task as JSON; the schema has a version
// (PRAGMA user_version) and numbered migrations (DESIGN §7).
#include "jobs/store.hpp"

#include "protocol/enum_names.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <boost/describe/enum.hpp>
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

// Numbered migrations: migrations[n] takes the schema from version n to n + 1. Shipped ones are
// never edited, since a database may be at any version; a new column is a new entry here
// (ALTER TABLE jobs ADD COLUMN …) and its name in `column`. Version 1 is the schema of the first
// agentd, which set no user_version.
constexpr std::array<char const*, 6> migrations{
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
    "ALTER TABLE jobs ADD COLUMN upstream_server TEXT"};
constexpr std::int64_t latest_version = migrations.size();

// The columns of the latest schema, by their SQL names (Boost.Describe gives the names): the one
// list that the INSERT binds and the SELECT reads, each value by its column, never by position.
BOOST_DEFINE_ENUM_CLASS(column, id, principal, session, seq, description, state, created_ms,
                        started_ms, finished_ms, depth, backend, upstream_session, output,
                        truncated, error_kind, error_phase, error_message, error_http_status,
                        input_tokens, output_tokens, cost, task, upstream_parent, answered,
                        worktree_directory, worktree_branch, user_message, diff_files,
                        diff_additions, diff_deletions, continues, transcript, upstream_server)

std::string upsert_sql() {
    constexpr auto& names = protocol::enum_names<column>;
    std::string marks;
    for (std::size_t i = 0; i < names.size(); ++i) marks += i == 0 ? "?" : ", ?";
    return fmt::format("INSERT OR REPLACE INTO jobs ({}) VALUES ({})", fmt::join(names, ", "),
                       marks);
}

std::string select_sql() {
    return fmt::format("SELECT {} FROM jobs ORDER BY seq",
                       fmt::join(protocol::enum_names<column>, ", "));
}

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
    if (t.permissions) o["permissions"] = protocol::to_string(*t.permissions);
    if (t.isolation) o["isolation"] = protocol::to_string(*t.isolation);
    if (t.budget) {
        json::object b;
        if (t.budget->max_cost) b["max_cost"] = *t.budget->max_cost;
        if (t.budget->max_tokens) b["max_tokens"] = *t.budget->max_tokens;
        o["budget"] = std::move(b);
    }
    return json::serialize(o);
}

std::optional<std::string> answered_json(std::vector<protocol::answered_request> const& list) {
    if (list.empty()) return std::nullopt;
    json::array out;
    for (auto const& a : list)
        out.push_back(json::object{{"id", a.id},
                                   {"kind", protocol::to_string(a.kind)},
                                   {"decision", protocol::to_string(a.how)},
                                   {"by", protocol::to_string(a.by)},
                                   {"at_ms", to_ms(a.at)}});
    return json::serialize(out);
}

// {system?, turns: [[user, assistant], …]}, or NULL when there is none (opencode jobs).
std::optional<std::string> transcript_json(upstream::transcript const& t) {
    if (!t.system && t.turns.empty()) return std::nullopt;
    json::object out;
    if (t.system) out["system"] = *t.system;
    json::array turns;
    for (auto const& turn : t.turns) turns.push_back(json::array{turn.user, turn.assistant});
    out["turns"] = std::move(turns);
    return json::serialize(out);
}

upstream::transcript transcript_from(std::string_view text) {
    upstream::transcript out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    auto const* o = ec ? nullptr : v.if_object();
    if (!o) return out;
    if (auto const* s = o->if_contains("system"); s && s->is_string())
        out.system = std::string(s->get_string());
    auto const* turns = o->if_contains("turns");
    if (!turns || !turns->is_array()) return out;
    for (auto const& turn : turns->get_array()) {
        auto const* pair = turn.if_array();
        if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string())
            continue;
        out.turns.push_back(
            {std::string((*pair)[0].get_string()), std::string((*pair)[1].get_string())});
    }
    return out;
}

// Rows written by this agentd; anything unreadable in one entry drops that entry only.
std::vector<protocol::answered_request> answered_from(std::string_view text) {
    std::vector<protocol::answered_request> out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    for (auto const& e : v.get_array()) {
        auto const* o = e.if_object();
        if (!o) continue;
        auto str = [&](char const* key) -> std::string_view {
            auto const* s = o->if_contains(key);
            return s && s->is_string() ? std::string_view(s->get_string()) : std::string_view{};
        };
        auto kind = protocol::from_string<protocol::request_kind>(str("kind"));
        auto how = protocol::from_string<protocol::decision>(str("decision"));
        auto by = protocol::from_string<protocol::answered_by>(str("by"));
        auto const* at = o->if_contains("at_ms");
        if (!kind || !how || !by || !at || !at->is_int64()) continue;
        out.push_back({std::string(str("id")), *kind, *how, *by, from_ms(at->get_int64())});
    }
    return out;
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
    if (auto p = opt("permissions"))
        t.permissions = protocol::from_string<protocol::permission_policy>(*p);
    if (auto i = opt("isolation"))
        t.isolation = protocol::from_string<protocol::isolation_mode>(*i);
    if (auto const* b = v.if_contains("budget"); b && b->is_object()) {
        protocol::task_budget budget;
        if (auto const* c = b->get_object().if_contains("max_cost"); c && c->is_number())
            budget.max_cost = c->to_number<double>();
        if (auto const* n = b->get_object().if_contains("max_tokens"); n && n->is_int64())
            budget.max_tokens = n->get_int64();
        t.budget = budget;
    }
    return t;
}

// Parameter `i` (from 1) of a statement; nullopt binds NULL.
void bind_text(sqlite3_stmt* s, int i, std::optional<std::string_view> v) {
    if (!v) {
        sqlite3_bind_null(s, i);
        return;
    }
    sqlite3_bind_text(s, i, v->data(), static_cast<int>(v->size()), SQLITE_TRANSIENT);
}

// Binds the upsert's parameters by column: parameter n + 1 is column n (upsert_sql's order).
class row_binder {
  public:
    explicit row_binder(sqlite3_stmt* s) : s_(s) {}
    void text(column c, std::optional<std::string_view> v) { bind_text(s_, at(c), v); }
    void integer(column c, std::optional<std::int64_t> v) {
        if (v)
            sqlite3_bind_int64(s_, at(c), *v);
        else
            sqlite3_bind_null(s_, at(c));
    }
    void real(column c, std::optional<double> v) {
        if (v)
            sqlite3_bind_double(s_, at(c), *v);
        else
            sqlite3_bind_null(s_, at(c));
    }

  private:
    static int at(column c) { return static_cast<int>(c) + 1; }
    sqlite3_stmt* s_;
};

// Reads the current row of select_sql() by column (result column n is column n); NULL reads as
// nullopt.
class row_reader {
  public:
    explicit row_reader(sqlite3_stmt* s) : s_(s) {}
    std::optional<std::string> text(column c) const {
        if (null(c)) return std::nullopt;
        auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(s_, at(c)));
        return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, at(c))));
    }
    std::optional<std::int64_t> integer(column c) const {
        if (null(c)) return std::nullopt;
        return sqlite3_column_int64(s_, at(c));
    }
    std::optional<double> real(column c) const {
        if (null(c)) return std::nullopt;
        return sqlite3_column_double(s_, at(c));
    }

  private:
    static int at(column c) { return static_cast<int>(c); }
    bool null(column c) const { return sqlite3_column_type(s_, at(c)) == SQLITE_NULL; }
    sqlite3_stmt* s_;
};

// The worktree, diff totals and user message id of a job (DESIGN §2 isolation, agents_peek).
void write_changes(row_binder& b, job const& j) {
    auto const& w = j.view.worktree;
    auto const& d = j.view.diff_summary;
    b.text(column::worktree_directory,
           w ? std::optional<std::string_view>(w->directory) : std::nullopt);
    b.text(column::worktree_branch, w ? w->branch : std::nullopt);
    b.text(column::user_message,
           j.user_message.empty() ? std::nullopt : std::optional<std::string_view>(j.user_message));
    b.integer(column::diff_files, d ? std::optional(d->files) : std::nullopt);
    b.integer(column::diff_additions, d ? std::optional(d->additions) : std::nullopt);
    b.integer(column::diff_deletions, d ? std::optional(d->deletions) : std::nullopt);
}

void read_changes(row_reader const& r, job& j) {
    if (auto dir = r.text(column::worktree_directory))
        j.view.worktree = protocol::worktree_ref{*dir, r.text(column::worktree_branch)};
    j.user_message = r.text(column::user_message).value_or("");
    if (auto files = r.integer(column::diff_files))
        j.view.diff_summary =
            protocol::diff_summary{*files, r.integer(column::diff_additions).value_or(0),
                                   r.integer(column::diff_deletions).value_or(0)};
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

std::shared_ptr<job const> row_of(job const& j) {
    auto row = std::make_shared<job>();
    row->view = j.view;
    row->own = j.own;
    row->task = j.task;
    row->upstream_parent = j.upstream_parent;
    row->upstream_server = j.upstream_server;
    row->seq = j.seq;
    row->user_message = j.user_message;
    row->transcript = j.transcript;
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
        migrate();
        exec("PRAGMA quick_check");
    } catch (std::runtime_error const& e) {
        fail(e.what());
    }
    if (sqlite3_prepare_v3(db_, upsert_sql().c_str(), -1, SQLITE_PREPARE_PERSISTENT, &upsert_,
                           nullptr) != SQLITE_OK)
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

std::int64_t store::schema_version() {
    return latest_version;
}

void store::migrate() {
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
    auto const& e = v.error;
    auto const& u = v.usage;
    auto ms = [](std::optional<protocol::wall_time> t) {
        return t ? std::optional(to_ms(*t)) : std::nullopt;
    };
    row_binder b(st.s);
    b.text(column::id, v.id);
    b.text(column::principal, j.own.principal);
    b.text(column::session, j.own.session);
    b.integer(column::seq, static_cast<std::int64_t>(j.seq));
    b.text(column::description, v.description);
    b.text(column::state, protocol::to_string(v.state));
    b.integer(column::created_ms, to_ms(v.created_at));
    b.integer(column::started_ms, ms(v.started_at));
    b.integer(column::finished_ms, ms(v.finished_at));
    b.integer(column::depth, v.depth);
    if (v.upstream) {
        b.text(column::backend, v.upstream->backend);
        b.text(column::upstream_session, v.upstream->session);
    } else {
        b.text(column::backend, std::nullopt);
        b.text(column::upstream_session, std::nullopt);
    }
    b.text(column::output, v.output ? std::optional<std::string_view>(*v.output) : std::nullopt);
    b.integer(column::truncated, v.truncated ? 1 : 0);
    b.text(column::error_kind, e ? std::optional(protocol::to_string(e->kind)) : std::nullopt);
    b.text(column::error_phase,
           e && e->phase ? std::optional(protocol::to_string(*e->phase)) : std::nullopt);
    b.text(column::error_message, e ? std::optional<std::string_view>(e->message) : std::nullopt);
    b.integer(column::error_http_status,
              e && e->http_status ? std::optional<std::int64_t>(*e->http_status) : std::nullopt);
    b.integer(column::input_tokens, u ? std::optional(u->input_tokens) : std::nullopt);
    b.integer(column::output_tokens, u ? std::optional(u->output_tokens) : std::nullopt);
    b.real(column::cost, u ? std::optional(u->cost) : std::nullopt);
    b.text(column::task, task_json(j.task));
    b.text(column::upstream_parent, j.upstream_parent);
    b.text(column::answered, answered_json(v.answered));
    write_changes(b, j);
    b.text(column::continues, v.continues);
    b.text(column::transcript, transcript_json(j.transcript));
    b.text(column::upstream_server, j.upstream_server.empty()
                                        ? std::nullopt
                                        : std::optional<std::string_view>(j.upstream_server));
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
    bind_text(st.s, 1, id);
    if (sqlite3_step(st.s) != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database delete failed: {}", sqlite3_errmsg(db_)));
}

std::vector<job_ptr> store::load() const {
    statement st;
    if (sqlite3_prepare_v2(db_, select_sql().c_str(), -1, &st.s, nullptr) != SQLITE_OK)
        throw std::runtime_error(fmt::format("state database: {}", sqlite3_errmsg(db_)));
    std::vector<job_ptr> out;
    int rc = 0;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
        auto j = std::make_shared<job>();
        auto& v = j->view;
        row_reader r(st.s);
        v.id = *r.text(column::id);
        j->own = {*r.text(column::principal), *r.text(column::session)};
        v.session = j->own.session;
        j->seq = static_cast<std::uint64_t>(*r.integer(column::seq));
        v.description = *r.text(column::description);
        v.state = protocol::from_string<job_state>(*r.text(column::state))
                      .value_or(job_state::interrupted);
        v.created_at = from_ms(*r.integer(column::created_ms));
        if (auto t = r.integer(column::started_ms)) v.started_at = from_ms(*t);
        if (auto t = r.integer(column::finished_ms)) v.finished_at = from_ms(*t);
        v.depth = static_cast<int>(*r.integer(column::depth));
        if (auto b = r.text(column::backend))
            v.upstream = protocol::upstream_ref{*b, r.text(column::upstream_session).value_or("")};
        v.output = r.text(column::output);
        v.truncated = r.integer(column::truncated).value_or(0) != 0;
        if (auto kind = r.text(column::error_kind)) {
            protocol::job_error e;
            e.kind = protocol::from_string<error_kind>(*kind).value_or(error_kind::protocol);
            if (auto p = r.text(column::error_phase))
                e.phase = protocol::from_string<error_phase>(*p);
            e.message = r.text(column::error_message).value_or("");
            if (auto h = r.integer(column::error_http_status)) e.http_status = static_cast<int>(*h);
            v.error = e;
        }
        if (auto in = r.integer(column::input_tokens)) {
            v.usage = protocol::job_usage{*in, r.integer(column::output_tokens).value_or(0),
                                          r.real(column::cost).value_or(0.0)};
        }
        j->task = task_from(*r.text(column::task));
        j->view.task = preview_of(j->task);
        if (protocol::is_terminal(v.state)) compact_finished(*j);  // rows of an older agentd
        j->upstream_parent = r.text(column::upstream_parent);
        if (auto a = r.text(column::answered)) v.answered = answered_from(*a);
        read_changes(r, *j);
        v.continues = r.text(column::continues);
        j->task.continues = v.continues;
        if (auto t = r.text(column::transcript)) j->transcript = transcript_from(*t);
        j->upstream_server = r.text(column::upstream_server).value_or("");
        if (v.upstream && !j->upstream_server.empty()) v.upstream->server = j->upstream_server;
        out.push_back(std::move(j));
    }
    if (rc != SQLITE_DONE)
        throw std::runtime_error(
            fmt::format("state database read failed: {}", sqlite3_errmsg(db_)));
    return out;
}

}  // namespace agentd::jobs
