// PostgreSQL job store; see postgres_store.hpp. The columns are store_row's; the schema has a
// version (table agentd_schema) and numbered migrations run in one transaction under an advisory
// lock. Each commit is ONE statement (a DELETE, an upsert and the NOTIFYs as CTEs), so a batch is
// atomic without a transaction spanning several queries on the shared connection.
#include "jobs/postgres_store.hpp"

#include "jobs/pg/connection.hpp"
#include "jobs/store_row.hpp"
#include "jobs/wake_signal.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <stdexcept>

namespace agentd::jobs {
namespace asio = boost::asio;
using column = store_column;

namespace {

// Numbered migrations: migrations[n] takes the schema from version n to n + 1; shipped ones are
// never edited. v1 has sqlite_store's latest columns plus upstream_server (the upstream pool's).
constexpr std::array<char const*, 1> migrations{R"(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY, principal TEXT NOT NULL, session TEXT NOT NULL, seq BIGINT NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, created_ms BIGINT NOT NULL,
  started_ms BIGINT, finished_ms BIGINT, depth BIGINT NOT NULL,
  backend TEXT, upstream_session TEXT, output TEXT, truncated BIGINT NOT NULL,
  error_kind TEXT, error_phase TEXT, error_message TEXT, error_http_status BIGINT,
  input_tokens BIGINT, output_tokens BIGINT, cost DOUBLE PRECISION,
  task TEXT NOT NULL, upstream_parent TEXT, answered TEXT,
  worktree_directory TEXT, worktree_branch TEXT, user_message TEXT, diff_files BIGINT,
  diff_additions BIGINT, diff_deletions BIGINT, continues TEXT, transcript TEXT,
  upstream_server TEXT
);
CREATE INDEX jobs_by_seq ON jobs (seq);
)"};
constexpr std::int64_t latest_version = migrations.size();
// pg_advisory_xact_lock's key for migrations: "agentd" in ASCII.
constexpr std::int64_t migration_lock = 0x6167656e7464;
// Rows per commit: 33 parameters a row stay far below the protocol's 65535.
constexpr std::size_t max_batch = 1000;

std::string sql_type(column c) {
    switch (type_of(c)) {
        case column_type::integer:
            return "bigint";
        case column_type::real:
            return "double precision";
        default:
            return "text";
    }
}

// A PostgreSQL array literal of `items` (each quoted, so commas and quotes are data).
std::string array_literal(std::vector<std::string> const& items) {
    std::string out = "{";
    for (auto const& item : items) {
        if (out.size() > 1) out += ',';
        out += '"';
        for (char c : item) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::optional<std::string> text_of(store_row::value const& v) {
    if (auto const* s = std::get_if<std::string>(&v)) return *s;
    if (auto const* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (auto const* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    return std::nullopt;
}

store_row::value value_of(column c, char const* text) {
    switch (type_of(c)) {
        case column_type::integer:
            return static_cast<std::int64_t>(std::stoll(text));
        case column_type::real:
            return std::strtod(text, nullptr);
        default:
            return std::string(text);
    }
}

// One statement: deletes `gone`, upserts `rows`, and announces every id on the channel.
struct batch_statement {
    std::string sql;
    std::vector<pg::param> params;
};

batch_statement statement_for(std::vector<std::string> const& gone,
                              std::vector<store_row const*> const& rows) {
    constexpr auto& names = protocol::enum_names<column>;
    std::vector<std::string> ids = gone;
    for (auto const* r : rows) ids.push_back(*r->text(column::id));
    batch_statement out;
    out.params.emplace_back(array_literal(gone));
    out.params.emplace_back(array_literal(notify_payloads(ids)));
    std::string values;
    for (auto const* r : rows) {
        values += values.empty() ? "(" : ", (";
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto c = static_cast<column>(i);
            out.params.push_back(text_of(r->get(c)));
            values += fmt::format("{}${}::{}", i ? ", " : "", out.params.size(), sql_type(c));
        }
        values += ")";
    }
    std::string sql = "WITH gone AS (DELETE FROM jobs WHERE id = ANY($1::text[]))";
    if (!rows.empty()) {
        std::vector<std::string> updates;
        for (std::size_t i = 1; i < names.size(); ++i)
            updates.push_back(fmt::format("{0} = EXCLUDED.{0}", names[i]));
        sql += fmt::format(
            ", saved AS (INSERT INTO jobs ({}) VALUES {} ON CONFLICT (id) DO UPDATE SET {})",
            fmt::join(names, ", "), values, fmt::join(updates, ", "));
    }
    out.sql = sql + fmt::format(" SELECT pg_notify('{}', p) FROM unnest($2::text[]) AS p",
                                postgres_store::channel);
    return out;
}

// A blocking connection for start-up; closed when it goes out of scope.
struct blocking_connection {
    explicit blocking_connection(std::string const& url) : where(pg::describe(url)) {
        conn = PQconnectdb(url.c_str());
        if (PQstatus(conn) != CONNECTION_OK) fail("cannot connect");
    }
    ~blocking_connection() { PQfinish(conn); }
    blocking_connection(blocking_connection const&) = delete;
    blocking_connection& operator=(blocking_connection const&) = delete;

    [[noreturn]] void fail(std::string_view what) const {
        std::string why = conn ? PQerrorMessage(conn) : "out of memory";
        while (!why.empty() && why.back() == '\n') why.pop_back();
        throw std::runtime_error(
            fmt::format("cannot use the PostgreSQL store at {}: {}: {}", where, what, why));
    }
    // Runs `sql`; returns its result (the caller PQclears it), throws on an error.
    PGresult* exec(std::string const& sql) const {
        PGresult* r = PQexec(conn, sql.c_str());
        auto status = PQresultStatus(r);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            std::string why = PQresultErrorMessage(r);
            PQclear(r);
            while (!why.empty() && why.back() == '\n') why.pop_back();
            throw std::runtime_error(
                fmt::format("cannot use the PostgreSQL store at {}: {}", where, why));
        }
        return r;
    }
    void run(std::string const& sql) const { PQclear(exec(sql)); }

    std::string where;
    PGconn* conn = nullptr;
};

void migrate(blocking_connection const& db) {
    db.run("BEGIN");
    try {
        db.run(fmt::format("SELECT pg_advisory_xact_lock({})", migration_lock));
        db.run("CREATE TABLE IF NOT EXISTS agentd_schema (version integer NOT NULL)");
        PGresult* r = db.exec("SELECT coalesce(max(version), 0) FROM agentd_schema");
        std::int64_t version = std::stoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (version > latest_version)
            throw std::runtime_error(fmt::format(
                "cannot use the PostgreSQL store at {}: its schema is version {}, newer than the "
                "{} this agentd knows: it was written by a newer agentd (run that one, or use "
                "another database)",
                db.where, version, latest_version));
        for (auto v = version; v < latest_version; ++v) db.run(migrations[v]);
        if (version != latest_version)
            db.run(fmt::format("DELETE FROM agentd_schema; INSERT INTO agentd_schema VALUES ({})",
                               latest_version));
        db.run("COMMIT");
    } catch (...) {
        PQclear(PQexec(db.conn, "ROLLBACK"));
        throw;
    }
}

}  // namespace

bool is_postgres_url(std::string_view url) {
    return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

std::vector<std::string> notify_payloads(std::vector<std::string> const& ids, std::size_t limit) {
    std::vector<std::string> out;
    std::string current;
    for (auto const& id : ids) {
        if (!current.empty() && current.size() + 1 + id.size() > limit) {
            out.push_back(std::move(current));
            current.clear();
        }
        if (!current.empty()) current += ',';
        current += id;
    }
    if (!current.empty()) out.push_back(std::move(current));
    return out;
}

struct postgres_store::impl : std::enable_shared_from_this<impl> {
    struct queued {
        std::optional<store_row> row;  // empty: delete the row
        std::uint64_t seq = 0;         // the save() that queued this content
    };

    impl(asio::any_io_executor e, std::string u)
        : ex(std::move(e)), url(std::move(u)), writer(ex, url), kick(ex), settled(ex) {}

    asio::any_io_executor ex;
    std::string url;
    pg::connection writer;
    std::map<std::string, queued> queue;  // newest content per id, not yet committed
    std::uint64_t saved = 0;              // the number of save() and erase() calls
    // The oldest seq in the commit in flight (max when none).
    std::uint64_t in_flight = std::numeric_limits<std::uint64_t>::max();
    std::size_t in_flight_rows = 0;
    bool busy = false;     // a commit is in flight
    bool failing = false;  // the last commit failed: rows wait for flush()
    bool closed = false;
    wake_signal kick;     // rows were queued
    wake_signal settled;  // a commit ended
    std::array<std::uint64_t, store_op_names.size()> errors{};
    std::string last_error;

    void enqueue(std::string const& id, std::optional<store_row> row) {
        queue[id] = {std::move(row), ++saved};
        if (!failing) kick.notify();
    }

    // True when nothing saved up to `seq` is still unwritten (or it was kept after a failure).
    bool done_up_to(std::uint64_t seq) const {
        if (failing) return true;
        if (in_flight <= seq) return false;
        return std::none_of(queue.begin(), queue.end(),
                            [&](auto const& e) { return e.second.seq <= seq; });
    }

    // Commits up to max_batch queued rows as one statement; a failure puts them back (unless a
    // newer content was queued meanwhile) and sets `failing`.
    asio::awaitable<void> commit(store_op op) {
        busy = true;
        std::map<std::string, queued> batch;
        while (!queue.empty() && batch.size() < max_batch) {
            auto node = queue.extract(queue.begin());
            batch.insert(std::move(node));
        }
        in_flight = std::numeric_limits<std::uint64_t>::max();
        for (auto const& [id, q] : batch) in_flight = std::min(in_flight, q.seq);
        in_flight_rows = batch.size();
        std::vector<std::string> gone;
        std::vector<store_row const*> rows;
        for (auto const& [id, q] : batch) {
            if (q.row)
                rows.push_back(&*q.row);
            else
                gone.push_back(id);
        }
        auto st = statement_for(gone, rows);
        auto r = co_await writer.query(std::move(st.sql), std::move(st.params));
        if (!r) {
            ++errors[static_cast<std::size_t>(op)];
            last_error = r.error->message;
            failing = true;
            for (auto& [id, q] : batch) queue.try_emplace(id, std::move(q));
        } else {
            failing = false;
        }
        busy = false;
        in_flight = std::numeric_limits<std::uint64_t>::max();
        in_flight_rows = 0;
        settled.notify();
    }

    static asio::awaitable<void> write(std::shared_ptr<impl> self) {
        [[maybe_unused]] auto up = co_await self->writer.ready();
        while (!self->closed) {
            if (self->queue.empty() || self->failing || self->busy) {
                co_await self->kick.wait();
                continue;
            }
            co_await self->commit(store_op::save);
        }
    }
};

postgres_store::postgres_store(asio::any_io_executor ex, std::string url) {
    {
        blocking_connection db(url);
        migrate(db);
    }
    impl_ = std::make_shared<impl>(std::move(ex), std::move(url));
    asio::co_spawn(impl_->ex, impl::write(impl_), asio::detached);
}

postgres_store::~postgres_store() {
    impl_->closed = true;
    impl_->kick.fire();
    impl_->settled.fire();
    impl_->writer.close();
}

std::int64_t postgres_store::schema_version() {
    return latest_version;
}

void postgres_store::save(job const& j) {
    impl_->enqueue(j.view.id, row_of(j));
}

void postgres_store::erase(std::string const& id) {
    impl_->enqueue(id, std::nullopt);
}

asio::awaitable<void> postgres_store::save_all(std::span<job_ptr const> jobs) {
    auto self = impl_;
    [[maybe_unused]] auto up = co_await self->writer.ready();
    std::vector<store_row> rows;
    rows.reserve(jobs.size());
    for (auto const& j : jobs) rows.push_back(row_of(*j));
    std::vector<store_row const*> pointers;
    for (auto const& r : rows) pointers.push_back(&r);
    auto st = statement_for({}, pointers);
    auto r = co_await self->writer.query(std::move(st.sql), std::move(st.params));
    if (!r) {
        ++self->errors[static_cast<std::size_t>(store_op::start)];
        self->last_error = r.error->message;
        throw std::runtime_error(r.error->message);
    }
}

asio::awaitable<void> postgres_store::sync() {
    auto self = impl_;
    auto const target = self->saved;
    while (!self->closed && !self->done_up_to(target)) co_await self->settled.wait();
}

asio::awaitable<bool> postgres_store::flush() {
    auto self = impl_;
    while (self->busy && !self->closed) co_await self->settled.wait();
    if (self->closed) co_return false;
    if (self->queue.empty()) co_return !self->failing;
    co_await self->commit(store_op::flush);
    if (!self->failing) self->kick.notify();  // the writer takes any rest
    co_return !self->failing;
}

std::size_t postgres_store::pending() const {
    return impl_->failing ? impl_->queue.size() + impl_->in_flight_rows : 0;
}

store_stats postgres_store::stats() const {
    return {impl_->errors, pending()};
}

std::string postgres_store::last_error() const {
    return impl_->last_error;
}

std::vector<job_ptr> postgres_store::load() const {
    constexpr auto& names = protocol::enum_names<column>;
    blocking_connection db(impl_->url);
    PGresult* r = db.exec(fmt::format("SELECT {} FROM jobs ORDER BY seq", fmt::join(names, ", ")));
    std::vector<job_ptr> out;
    try {
        for (int row = 0; row < PQntuples(r); ++row) {
            store_row values;
            for (std::size_t i = 0; i < names.size(); ++i) {
                auto col = static_cast<int>(i);
                if (!PQgetisnull(r, row, col))
                    values.set(static_cast<column>(i),
                               value_of(static_cast<column>(i), PQgetvalue(r, row, col)));
            }
            out.push_back(job_of(values));
        }
    } catch (...) {
        PQclear(r);
        throw;
    }
    PQclear(r);
    return out;
}

}  // namespace agentd::jobs
