// The Asio driver of one libpq connection; see connection.hpp. One coroutine (run) owns the
// PGconn: it connects with PQconnectStart/PQconnectPoll, then sends the queued queries one at a
// time and, between them, waits for the socket to become readable (notifications, or the server
// going away) or for new work. Nothing here blocks: every wait is an async_wait on PQsocket.
#include "jobs/pg/connection.hpp"

#include "jobs/wake_signal.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <deque>

namespace agentd::jobs::pg {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr milliseconds first_backoff{100}, most_backoff{5000};
constexpr milliseconds connect_timeout{5000};

std::string trimmed(char const* message) {
    std::string s = message ? message : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string quote_identifier(std::string const& name) {
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace

std::string describe(std::string const& conninfo) {
    char* err = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &err);
    if (!options) {
        PQfreemem(err);
        return "(an unreadable connection string)";
    }
    std::string host, port, db;
    for (auto* o = options; o->keyword; ++o) {
        std::string_view k = o->keyword;
        std::string v = o->val ? o->val : "";
        if (k == "host" && !v.empty()) host = v;
        if (k == "hostaddr" && !v.empty() && host.empty()) host = v;
        if (k == "port") port = v;
        if (k == "dbname") db = v;
    }
    PQconninfoFree(options);
    return fmt::format("{}:{}/{}", host.empty() ? "localhost" : host, port.empty() ? "5432" : port,
                       db);
}

struct connection::impl : std::enable_shared_from_this<impl> {
    struct request {
        explicit request(asio::any_io_executor ex) : done(std::move(ex)) {}
        std::string sql;
        std::vector<param> params;
        pg::result out;
        bool finished = false;
        wake_signal done;
    };

    impl(asio::any_io_executor e, std::string info)
        : ex(std::move(e)),
          conninfo(std::move(info)),
          where(describe(conninfo)),
          work(ex),
          stopping(ex),
          attempted(ex) {}
    ~impl() { drop(); }

    asio::any_io_executor ex;
    std::string conninfo;
    std::string where;
    PGconn* conn = nullptr;
    bool up = false;  // connected and serving queries
    bool closed = false;
    std::optional<asio::posix::stream_descriptor> socket;
    std::deque<std::shared_ptr<request>> queue;
    std::vector<std::string> channels;
    std::function<void(notification)> on_notify;
    wake_signal work;       // a query was queued
    wake_signal stopping;   // fired by close()
    wake_signal attempted;  // fired when the first connection attempt is over
    std::uint64_t connects = 0;
    std::string last_error;

    // The libpq socket as an Asio descriptor, made anew for the current fd. release() keeps the
    // fd open: libpq owns it.
    void watch() {
        if (socket) socket->release();
        socket.reset();
        if (conn && PQsocket(conn) >= 0) socket.emplace(ex, PQsocket(conn));
    }

    void drop() {
        if (socket) socket->release();
        socket.reset();
        if (conn) PQfinish(conn);
        conn = nullptr;
        up = false;
    }

    void fail_queued(std::string const& why) {
        auto pending = std::move(queue);
        queue.clear();
        for (auto const& r : pending) {
            r->out.error = pg::error{why, {}};
            finish(*r);
        }
    }

    static void finish(request& r) {
        r.finished = true;
        r.done.fire();
    }

    void lost(std::string why) {
        last_error = std::move(why);
        drop();
        fail_queued(fmt::format("connection to {} lost: {}", where, last_error));
    }

    // Waits until the socket is ready for `what`, until `deadline`; false when it was not (the
    // deadline passed, the connection was closed, or the wait failed).
    asio::awaitable<bool> wait_socket(asio::posix::stream_descriptor::wait_type what,
                                      steady::time_point deadline) {
        if (!socket) co_return false;
        asio::steady_timer timer(ex, deadline);
        auto outcome = co_await (socket->async_wait(what, use_tuple) ||
                                 timer.async_wait(use_tuple) || stopping.wait());
        if (closed || outcome.index() != 0) co_return false;
        auto [ec] = std::get<0>(outcome);
        co_return !ec;
    }

    asio::awaitable<bool> connect() {
        conn = PQconnectStart(conninfo.c_str());
        if (!conn) {
            last_error = "out of memory";
            co_return false;
        }
        auto const deadline = steady::now() + connect_timeout;
        auto status = PGRES_POLLING_WRITING;
        while (status != PGRES_POLLING_OK) {
            if (PQstatus(conn) == CONNECTION_BAD || status == PGRES_POLLING_FAILED) {
                last_error = trimmed(PQerrorMessage(conn));
                drop();
                co_return false;
            }
            watch();  // libpq may have moved to another address, hence another fd
            auto const what = status == PGRES_POLLING_READING
                                  ? asio::posix::stream_descriptor::wait_read
                                  : asio::posix::stream_descriptor::wait_write;
            auto ready = co_await wait_socket(what, deadline);
            if (closed) co_return false;
            if (!ready) {
                last_error = "timed out connecting";
                drop();
                co_return false;
            }
            status = PQconnectPoll(conn);
        }
        watch();
        if (PQsetnonblocking(conn, 1) != 0) {
            last_error = trimmed(PQerrorMessage(conn));
            drop();
            co_return false;
        }
        co_return true;
    }

    void deliver_notifications() {
        while (PGnotify* n = PQnotifies(conn)) {
            notification note{n->relname, n->extra ? n->extra : ""};
            PQfreemem(n);
            if (on_notify) on_notify(std::move(note));
            if (!conn) return;  // the callback closed the connection
        }
    }

    // Sends one query and reads all its results. A broken connection is dropped (lost()).
    asio::awaitable<void> execute(request& r) {
        constexpr auto forever = steady::time_point::max();
        std::vector<char const*> values;
        values.reserve(r.params.size());
        for (auto const& p : r.params) values.push_back(p ? p->c_str() : nullptr);
        int sent = r.params.empty()
                       ? PQsendQuery(conn, r.sql.c_str())
                       : PQsendQueryParams(conn, r.sql.c_str(), static_cast<int>(values.size()),
                                           nullptr, values.data(), nullptr, nullptr, 0);
        if (!sent) {
            r.out.error = pg::error{trimmed(PQerrorMessage(conn)), {}};
            if (PQstatus(conn) == CONNECTION_BAD) lost(r.out.error->message);
            co_return;
        }
        for (int f = PQflush(conn); f != 0; f = PQflush(conn)) {
            bool ready = f > 0 && (co_await wait_socket(asio::posix::stream_descriptor::wait_write,
                                                        forever));
            if (closed) co_return;
            if (!ready) {
                r.out.error = pg::error{trimmed(PQerrorMessage(conn)), {}};
                lost(r.out.error->message);
                co_return;
            }
        }
        for (;;) {
            while (PQisBusy(conn)) {
                auto ready =
                    co_await wait_socket(asio::posix::stream_descriptor::wait_read, forever);
                if (closed) co_return;
                if (!ready || !PQconsumeInput(conn)) {
                    r.out.error = pg::error{trimmed(PQerrorMessage(conn)), {}};
                    lost(r.out.error->message);
                    co_return;
                }
            }
            PGresult* res = PQgetResult(conn);
            if (!res) break;
            auto const status = PQresultStatus(res);
            if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) {
                if (!r.out.error) {
                    char const* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                    r.out.error = pg::error{trimmed(PQresultErrorMessage(res)), state ? state : ""};
                }
            } else if (status == PGRES_TUPLES_OK) {
                r.out.rows.clear();
                for (int row = 0; row < PQntuples(res); ++row) {
                    auto& out = r.out.rows.emplace_back();
                    for (int col = 0; col < PQnfields(res); ++col)
                        out.push_back(
                            PQgetisnull(res, row, col)
                                ? std::nullopt
                                : std::optional<std::string>(std::string(
                                      PQgetvalue(res, row, col), PQgetlength(res, row, col))));
                }
            }
            PQclear(res);
        }
        if (PQstatus(conn) == CONNECTION_BAD) {
            lost(r.out.error ? r.out.error->message : "the server closed the connection");
            co_return;
        }
        deliver_notifications();
    }

    // Between queries: true when the socket became readable, false when work arrived.
    asio::awaitable<bool> idle() {
        auto outcome =
            co_await (socket->async_wait(asio::posix::stream_descriptor::wait_read, use_tuple) ||
                      work.wait() || stopping.wait());
        co_return outcome.index() == 0;
    }

    static asio::awaitable<void> run(std::shared_ptr<impl> self) {
        auto backoff = first_backoff;
        while (!self->closed) {
            auto connected = co_await self->connect();
            if (self->closed) break;
            if (connected) {
                ++self->connects;
                backoff = first_backoff;
                for (auto const& channel : std::vector<std::string>(self->channels)) {
                    request listen(self->ex);
                    listen.sql = "LISTEN " + quote_identifier(channel);
                    co_await self->execute(listen);
                    if (!self->conn) break;
                }
                // Up (queries accepted) only once listening again: nothing is missed after.
                self->up = self->conn != nullptr;
            }
            if (!self->attempted.fired()) self->attempted.fire();
            while (self->conn && self->up && !self->closed) {
                if (!self->queue.empty()) {
                    auto r = self->queue.front();
                    self->queue.pop_front();
                    co_await self->execute(*r);
                    finish(*r);
                    continue;
                }
                auto readable = co_await self->idle();
                if (self->closed || !readable) continue;
                if (!PQconsumeInput(self->conn)) {
                    self->lost(trimmed(PQerrorMessage(self->conn)));
                    break;
                }
                self->deliver_notifications();
            }
            if (self->closed) break;
            self->up = false;
            // Down: queries fail fast meanwhile; try again after the backoff.
            self->fail_queued(
                fmt::format("not connected to {}: {}", self->where, self->last_error));
            [[maybe_unused]] auto woken = co_await self->stopping.wait_for(backoff);
            backoff = std::min(backoff * 2, most_backoff);
        }
        self->fail_queued("connection closed");
        self->drop();
    }
};

connection::connection(asio::any_io_executor ex, std::string conninfo)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(conninfo))) {
    asio::co_spawn(impl_->ex, impl::run(impl_), asio::detached);
}

connection::~connection() {
    close();
}

asio::awaitable<bool> connection::ready() {
    auto self = impl_;
    if (!self->attempted.fired()) co_await self->attempted.wait();
    co_return self->up;
}

bool connection::connected() const {
    return impl_->up;
}

std::uint64_t connection::reconnects() const {
    return impl_->connects > 0 ? impl_->connects - 1 : 0;
}

std::string const& connection::last_error() const {
    return impl_->last_error;
}

asio::awaitable<result> connection::query(std::string sql, std::vector<param> params) {
    auto self = impl_;
    if (self->closed || !self->up) {
        result down;
        down.error =
            pg::error{fmt::format("not connected to {}: {}", self->where,
                                  self->last_error.empty() ? "connecting" : self->last_error),
                      {}};
        co_return down;
    }
    auto r = std::make_shared<impl::request>(self->ex);
    r->sql = std::move(sql);
    r->params = std::move(params);
    self->queue.push_back(r);
    self->work.notify();
    while (!r->finished) co_await r->done.wait();
    co_return std::move(r->out);
}

asio::awaitable<result> connection::listen(std::string channel,
                                           std::function<void(notification)> on_notify) {
    impl_->on_notify = std::move(on_notify);
    impl_->channels.push_back(channel);
    // After the first connection attempt: a connection made later LISTENs by itself.
    [[maybe_unused]] auto up = co_await ready();
    auto r = co_await query("LISTEN " + quote_identifier(channel));
    co_return r;
}

void connection::close() {
    if (impl_->closed) return;
    impl_->closed = true;
    impl_->stopping.fire();
    impl_->fail_queued("connection closed");
    impl_->drop();
}

}  // namespace agentd::jobs::pg
