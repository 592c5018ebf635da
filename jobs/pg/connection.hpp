// One PostgreSQL connection driven by Asio (DESIGN §9): libpq in non-blocking mode, its socket
// watched by the event loop, one query in flight at a time (the rest wait in order), LISTEN with
// a callback per notification, and a lost connection re-opened with backoff (100 ms → 5 s) and
// its channels LISTENed again. Failures are values (message + SQLSTATE), never exceptions.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agentd::jobs::pg {

struct error {
    std::string message;   // libpq's, without a trailing newline
    std::string sqlstate;  // empty when the server gave none (connection lost, not connected)
};

// The rows of the last statement of a query (text format; NULL is nullopt), or the error.
struct result {
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::optional<pg::error> error;
    explicit operator bool() const { return !error; }
};

struct notification {
    std::string channel;
    std::string payload;
};

using param = std::optional<std::string>;  // nullopt binds NULL

// `conninfo` is a libpq connection string or URL. Reports "host:port/dbname" for messages:
// never the password.
std::string describe(std::string const& conninfo);

class connection {
  public:
    // Connects in the background at once (see connected()); queries fail fast with an error
    // while the connection is down, so the caller's rows stay pending rather than wait.
    connection(boost::asio::any_io_executor ex, std::string conninfo);
    ~connection();
    connection(connection const&) = delete;
    connection& operator=(connection const&) = delete;

    // Completes when the first connection attempt is over: true when connected.
    boost::asio::awaitable<bool> ready();
    bool connected() const;
    // Sends `sql` (one statement when params are given; several otherwise) after the queries
    // queued before it, and completes with its result.
    boost::asio::awaitable<result> query(std::string sql, std::vector<param> params = {});
    // LISTENs on `channel` once the first connection attempt is over, and after every reconnect;
    // `on_notify` runs on the executor for each notification. Use a connection of its own: a long
    // query would delay the callbacks.
    boost::asio::awaitable<result> listen(std::string channel,
                                          std::function<void(notification)> on_notify);
    std::uint64_t reconnects() const;  // successful connections after the first
    std::string const& last_error() const;
    // Fails the queued queries and closes the connection for good.
    void close();

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace agentd::jobs::pg
