// PostgreSQL job store; see postgres_store.hpp. The columns are store_row's; the schema has a
// version (table agentd_schema) and numbered migrations run in one transaction under an advisory
// lock. Each commit is ONE statement (a DELETE, an upsert and the NOTIFYs as CTEs), so a batch is
// atomic without a transaction spanning several queries on the shared connection.
#include "jobs/postgres_store.hpp"

#include "common/names.hpp"
#include "jobs/pg/connection.hpp"
#include "jobs/random.hpp"
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
#include <unordered_map>

namespace agentd::jobs {
namespace asio = boost::asio;
using column = store_column;

namespace {

// Numbered migrations: migrations[n] takes the schema from version n to n + 1; shipped ones are
// never edited. v1 has sqlite_store's latest columns plus upstream_server (the upstream pool's);
// v2 the leases of several instances, the table of calls forwarded between them, and a waiting
// job's pending requests (sqlite_store's v7).
constexpr std::array<char const*, 2> migrations{R"(
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
)",
                                                R"(
ALTER TABLE jobs ADD COLUMN lease_owner TEXT, ADD COLUMN lease_until TIMESTAMPTZ,
  ADD COLUMN requests TEXT;
CREATE INDEX jobs_by_lease ON jobs (lease_owner, lease_until);
CREATE TABLE agentd_calls (
  id TEXT PRIMARY KEY, target TEXT NOT NULL, sender TEXT NOT NULL, request TEXT NOT NULL,
  reply TEXT, created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
)"};
constexpr std::int64_t latest_version = migrations.size();
// pg_advisory_xact_lock's key for migrations: "agentd" in ASCII.
constexpr std::int64_t migration_lock = 0x6167656e7464;
// Rows per commit: 33 parameters a row stay far below the protocol's 65535.
constexpr std::size_t max_batch = 1000;
// The channel of calls between instances: "call TARGET ID" and "reply SENDER ID".
constexpr char const* calls_channel = "agentd_calls";
// The states whose job someone must still hold.
constexpr char const* unfinished = "state IN ('queued', 'running', 'waiting')";
// Jobs claimed per take_over() round: their ids fit one NOTIFY.
constexpr int claims_per_round = 100;

std::string interval(std::chrono::milliseconds d) {
    return fmt::format("{} milliseconds", d.count());
}

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

// Each row carries this instance's lease (`me`, until now + `ttl`; none once finished), and
// a row another instance holds is left as it is: its holder's writes win (fenced writes).
batch_statement statement_for(std::vector<std::string> const& gone,
                              std::vector<store_row const*> const& rows, std::string const& me,
                              std::chrono::milliseconds ttl) {
    constexpr auto& names = protocol::enum_names<column>;
    std::vector<std::string> ids = gone;
    for (auto const* r : rows) ids.push_back(*r->text(column::id));
    batch_statement out;
    out.params.emplace_back(array_literal(gone));
    out.params.emplace_back(array_literal(notify_payloads(ids)));
    out.params.emplace_back(me);
    out.params.emplace_back(interval(ttl));
    std::string values;
    for (auto const* r : rows) {
        values += values.empty() ? "(" : ", (";
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto c = static_cast<column>(i);
            out.params.push_back(text_of(r->get(c)));
            values += fmt::format("{}${}::{}", i ? ", " : "", out.params.size(), sql_type(c));
        }
        auto state = r->text(column::state);
        auto parsed = state ? protocol::from_string<protocol::job_state>(*state) : std::nullopt;
        bool finished = parsed && protocol::is_terminal(*parsed);
        values += finished ? ", $3, NULL)" : ", $3, now() + $4::interval)";
    }
    std::string sql = "WITH gone AS (DELETE FROM jobs WHERE id = ANY($1::text[]))";
    if (!rows.empty()) {
        std::vector<std::string> updates;
        for (std::size_t i = 1; i < names.size(); ++i)
            updates.push_back(fmt::format("{0} = EXCLUDED.{0}", names[i]));
        sql += fmt::format(
            ", saved AS (INSERT INTO jobs ({}, lease_owner, lease_until) VALUES {} ON CONFLICT "
            "(id) DO UPDATE SET {}, lease_owner = EXCLUDED.lease_owner, lease_until = "
            "EXCLUDED.lease_until WHERE jobs.lease_owner IS NULL OR jobs.lease_owner = $3)",
            fmt::join(names, ", "), values, fmt::join(updates, ", "));
    }
    // $3 and $4 are typed here too: a batch of finished rows or deletes leaves them unused.
    out.sql = sql + fmt::format(
                        " SELECT pg_notify('{}', p), $3::text, $4::interval FROM "
                        "unnest($2::text[]) AS p",
                        postgres_store::channel);
    return out;
}

// The columns a job is read back from: store_row's, then the lease owner.
std::string selected_columns() {
    return fmt::format("{}, lease_owner", fmt::join(protocol::enum_names<column>, ", "));
}

// The job of one selected row; `holder` is its lease owner when that is another instance (it
// ran or runs the job there).
job_ptr job_of_columns(std::function<std::optional<std::string>(int)> const& cell,
                       std::string const& me) {
    constexpr auto& names = protocol::enum_names<column>;
    store_row values;
    for (std::size_t i = 0; i < names.size(); ++i) {
        auto text = cell(static_cast<int>(i));
        if (text)
            values.set(static_cast<column>(i), value_of(static_cast<column>(i), text->c_str()));
    }
    auto j = job_of(values);
    auto owner = cell(static_cast<int>(names.size()));
    if (owner && *owner != me) j->runtime_mut().holder = *owner;
    return j;
}

std::vector<job_ptr> jobs_of(pg::result const& r, std::string const& me) {
    std::vector<job_ptr> out;
    for (auto const& row : r.rows)
        out.push_back(
            job_of_columns([&](int i) { return row.at(static_cast<std::size_t>(i)); }, me));
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
    // Runs `sql` (several statements may follow each other); returns its result (the caller
    // PQclears it), throws on an error.
    PGresult* exec(std::string const& sql) const { return checked(PQexec(conn, sql.c_str())); }
    void run(std::string const& sql) const { PQclear(exec(sql)); }
    // As exec(), one statement with text parameters $1…
    PGresult* exec(std::string const& sql, std::vector<std::string> const& params) const {
        std::vector<char const*> values;
        for (auto const& p : params) values.push_back(p.c_str());
        return checked(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                    values.data(), nullptr, nullptr, 0));
    }
    PGresult* checked(PGresult* r) const {
        auto status = PQresultStatus(r);
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
        std::string why = PQresultErrorMessage(r);
        PQclear(r);
        while (!why.empty() && why.back() == '\n') why.pop_back();
        throw std::runtime_error(
            fmt::format("cannot use the PostgreSQL store at {}: {}", where, why));
    }

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

    impl(asio::any_io_executor e, std::string u, postgres_options opt)
        : ex(std::move(e)),
          url(std::move(u)),
          instance(std::move(opt.instance)),
          lease_ttl(opt.lease_ttl),
          writer(ex, url),
          reader(ex, url),
          listener(ex, url),
          kick(ex),
          settled(ex) {}

    asio::any_io_executor ex;
    std::string url;
    std::string instance;
    std::chrono::milliseconds lease_ttl;
    pg::connection writer;
    // Fetches, leases and calls: never behind a group commit.
    pg::connection reader;
    // LISTENs on the job and call channels.
    pg::connection listener;
    std::function<void(std::vector<std::string>)> on_change;
    std::function<asio::awaitable<std::string>(std::string)> on_call;
    bool listening = false;
    // Calls sent and not answered yet, by id: the reply once it came.
    struct pending_call {
        std::optional<std::string> reply;
        wake_signal answered;
        explicit pending_call(asio::any_io_executor e) : answered(std::move(e)) {}
    };
    std::unordered_map<std::string, std::shared_ptr<pending_call>> calls;
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
        auto st = statement_for(gone, rows, instance, lease_ttl);
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

    // One LISTEN connection for both channels, once someone needs it.
    void listen() {
        if (listening) return;
        listening = true;
        auto dispatch = [weak = weak_from_this()](pg::notification n) {
            if (auto self = weak.lock()) self->notified(std::move(n));
        };
        for (auto channel : {std::string(postgres_store::channel), std::string(calls_channel)})
            asio::co_spawn(ex, listener.listen(channel, dispatch), asio::detached);
    }

    void notified(pg::notification n) {
        if (n.channel == postgres_store::channel) {
            std::vector<std::string> ids;
            std::string_view rest = n.payload;
            while (!rest.empty()) {
                auto comma = rest.find(',');
                ids.emplace_back(rest.substr(0, comma));
                rest =
                    comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
            }
            if (on_change && !ids.empty()) on_change(std::move(ids));
            return;
        }
        // "call TARGET ID" or "reply SENDER ID"
        auto first = n.payload.find(' ');
        auto second = n.payload.find(' ', first == std::string::npos ? first : first + 1);
        if (second == std::string::npos) return;
        auto kind = n.payload.substr(0, first);
        auto who = n.payload.substr(first + 1, second - first - 1);
        auto id = n.payload.substr(second + 1);
        if (who != instance) return;
        if (kind == "call" && on_call)
            asio::co_spawn(ex, answer(shared_from_this(), id), asio::detached);
        else if (kind == "reply" && calls.contains(id))
            asio::co_spawn(ex, collect(shared_from_this(), id), asio::detached);
    }

    // Runs a call sent to this instance and stores its reply for the sender.
    static asio::awaitable<void> answer(std::shared_ptr<impl> self, std::string id) {
        std::vector<pg::param> key{id};
        auto r = co_await self->reader.query("SELECT request FROM agentd_calls WHERE id = $1",
                                             std::move(key));
        if (!r || r.rows.empty() || !r.rows[0][0]) co_return;
        std::string reply;
        try {
            auto out = co_await self->on_call(std::move(*r.rows[0][0]));
            reply = std::move(out);
        } catch (std::exception const&) {
            co_return;  // the sender's call times out; the handler already logged why
        }
        auto sql = fmt::format(
            "UPDATE agentd_calls SET reply = $2 WHERE id = $1 RETURNING pg_notify('{}', 'reply ' "
            "|| sender || ' ' || id)",
            calls_channel);
        std::vector<pg::param> params{id, std::move(reply)};
        auto stored = co_await self->reader.query(std::move(sql), std::move(params));
        (void)stored;
    }

    // Takes the reply of a call this instance sent.
    static asio::awaitable<void> collect(std::shared_ptr<impl> self, std::string id) {
        std::vector<pg::param> key{id};
        auto r = co_await self->reader.query(
            "DELETE FROM agentd_calls WHERE id = $1 RETURNING reply", std::move(key));
        auto it = self->calls.find(id);
        if (it == self->calls.end()) co_return;
        if (r && !r.rows.empty() && r.rows[0][0]) it->second->reply = std::move(*r.rows[0][0]);
        it->second->answered.notify();
    }

    // Commits what queued; after a failure it retries by itself (100 ms, doubling up to 5 s):
    // a commit fails after save() returned, so nobody else would know to retry it.
    static asio::awaitable<void> write(std::shared_ptr<impl> self) {
        constexpr std::chrono::milliseconds first_retry{100}, last_retry{5000};
        auto retry = first_retry;
        [[maybe_unused]] auto up = co_await self->writer.ready();
        while (!self->closed) {
            if (self->queue.empty() || self->busy) {
                co_await self->kick.wait();
                continue;
            }
            if (self->failing) {
                [[maybe_unused]] auto woken = co_await self->kick.wait_for(retry);
                retry = std::min(retry * 2, last_retry);
                if (self->closed || self->busy || self->queue.empty() || !self->failing) continue;
            }
            co_await self->commit(self->failing ? store_op::flush : store_op::save);
            if (!self->failing) retry = first_retry;
        }
    }
};

postgres_store::postgres_store(asio::any_io_executor ex, std::string url, postgres_options opt) {
    if (opt.instance.empty()) opt.instance = "agentd-" + random_hex(6);
    if (!common::valid_name(opt.instance))
        throw std::runtime_error("store.instance must be 1 to 64 of [A-Za-z0-9._-]");
    {
        blocking_connection db(url);
        migrate(db);
    }
    impl_ = std::make_shared<impl>(std::move(ex), std::move(url), std::move(opt));
    asio::co_spawn(impl_->ex, impl::write(impl_), asio::detached);
}

postgres_store::~postgres_store() {
    impl_->closed = true;
    impl_->kick.fire();
    impl_->settled.fire();
    impl_->writer.close();
    impl_->reader.close();
    impl_->listener.close();
    for (auto& [id, c] : impl_->calls) c->answered.fire();
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
    auto st = statement_for({}, pointers, self->instance, self->lease_ttl);
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

bool postgres_store::committed() const {
    return impl_->failing || (impl_->queue.empty() && !impl_->busy);
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

// First takes back this instance's unfinished jobs (a restart under the same name), any whose
// lease expired (a dead instance's) and any without a lease (written before leases existed).
std::vector<job_ptr> postgres_store::load() const {
    blocking_connection db(impl_->url);
    auto const& me = impl_->instance;
    PQclear(db.exec(fmt::format("UPDATE jobs SET lease_owner = $1, lease_until = now() + "
                                "$2::interval WHERE id IN (SELECT id FROM jobs WHERE {} AND "
                                "(lease_owner IS NULL OR lease_owner = $1 OR lease_until < now()) "
                                "FOR UPDATE SKIP LOCKED)",
                                unfinished),
                    {me, interval(impl_->lease_ttl)}));
    PGresult* r = db.exec(fmt::format("SELECT {} FROM jobs ORDER BY seq", selected_columns()));
    std::vector<job_ptr> out;
    try {
        for (int row = 0; row < PQntuples(r); ++row) {
            out.push_back(job_of_columns(
                [&](int col) -> std::optional<std::string> {
                    if (PQgetisnull(r, row, col)) return std::nullopt;
                    return std::string(PQgetvalue(r, row, col));
                },
                me));
        }
    } catch (...) {
        PQclear(r);
        throw;
    }
    PQclear(r);
    return out;
}

std::string const& postgres_store::instance() const {
    return impl_->instance;
}

std::chrono::milliseconds postgres_store::lease_ttl() const {
    return impl_->lease_ttl;
}

void postgres_store::watch(std::function<void(std::vector<std::string>)> on_change) {
    impl_->on_change = std::move(on_change);
    impl_->listen();
}

void postgres_store::serve(std::function<asio::awaitable<std::string>(std::string)> handler) {
    impl_->on_call = std::move(handler);
    impl_->listen();
}

asio::awaitable<std::vector<job_ptr>> postgres_store::fetch(std::vector<std::string> ids) {
    auto self = impl_;
    auto sql = fmt::format("SELECT {} FROM jobs WHERE id = ANY($1::text[])", selected_columns());
    std::vector<pg::param> params{array_literal(ids)};
    auto r = co_await self->reader.query(std::move(sql), std::move(params));
    if (!r) co_return std::vector<job_ptr>{};
    try {
        auto out = jobs_of(r, self->instance);
        co_return out;
    } catch (std::exception const&) {
        co_return std::vector<job_ptr>{};  // a row this agentd cannot read: as if gone
    }
}

asio::awaitable<std::vector<job_ptr>> postgres_store::take_over() {
    auto self = impl_;
    auto sql = fmt::format(
        "WITH renewed AS (UPDATE jobs SET lease_until = now() + $2::interval WHERE lease_owner = "
        "$1 AND {0}), "
        "swept AS (DELETE FROM agentd_calls WHERE created_at < now() - interval '10 minutes'), "
        "taken AS (UPDATE jobs SET lease_owner = $1, lease_until = now() + $2::interval WHERE id "
        "IN (SELECT id FROM jobs WHERE {0} AND lease_owner <> $1 AND lease_until < now() ORDER "
        "BY seq LIMIT {1} FOR UPDATE SKIP LOCKED) RETURNING {2}), "
        "told AS (SELECT pg_notify('{3}', string_agg(id, ',')) FROM taken HAVING count(*) > 0) "
        "SELECT taken.* FROM taken LEFT JOIN told ON true",
        unfinished, claims_per_round, selected_columns(), postgres_store::channel);
    std::vector<pg::param> params{self->instance, interval(self->lease_ttl)};
    auto r = co_await self->reader.query(std::move(sql), std::move(params));
    if (!r) co_return std::vector<job_ptr>{};
    auto out = jobs_of(r, self->instance);
    co_return out;
}

asio::awaitable<std::optional<std::string>> postgres_store::call(
    std::string to, std::string request, std::chrono::milliseconds timeout) {
    auto self = impl_;
    self->listen();
    auto id = random_hex(12);
    auto slot = std::make_shared<impl::pending_call>(self->ex);
    self->calls.emplace(id, slot);
    auto sql = fmt::format(
        "WITH c AS (INSERT INTO agentd_calls (id, target, sender, request) VALUES ($1, $2, $3, "
        "$4) RETURNING id) SELECT pg_notify('{}', 'call ' || $2 || ' ' || id) FROM c",
        calls_channel);
    std::vector<pg::param> params{id, to, self->instance, std::move(request)};
    auto sent = co_await self->reader.query(std::move(sql), std::move(params));
    if (sent) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!slot->reply && !self->closed && std::chrono::steady_clock::now() < deadline) {
            [[maybe_unused]] auto woken = co_await slot->answered.wait_until(deadline);
        }
    }
    self->calls.erase(id);
    if (!slot->reply && sent) {
        std::vector<pg::param> key{id};
        auto dropped =
            co_await self->reader.query("DELETE FROM agentd_calls WHERE id = $1", std::move(key));
        (void)dropped;
    }
    co_return slot->reply;
}

}  // namespace agentd::jobs
