// The PostgreSQL job store (DESIGN §9): the same rows as sqlite_store in a database several
// instances can share. Writes are asynchronous: save() and erase() queue the row (newest content
// per id) and a writer coroutine commits what queued as one statement (group commit), with one
// NOTIFY agentd_jobs per commit carrying the changed ids; a failed commit keeps the rows pending
// for the manager's flusher. Start-up (migrations, load) uses blocking libpq calls: it runs
// before the listeners accept and the event loop serves anything.
#pragma once

#include "jobs/store.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace agentd::jobs {

struct postgres_options {
    // This instance's name, its jobs' lease owner ([A-Za-z0-9._-], at most 64; empty: a random
    // one). The same name after a restart takes its unfinished jobs back at once.
    std::string instance;
    // A lease not renewed this long lets another instance take the job over (renewed every
    // third of it).
    std::chrono::milliseconds lease_ttl{15'000};
};

class postgres_store final : public store, public shared_store {
  public:
    // The channel of the ids changed by each commit (comma-separated, at most 8000 bytes a
    // NOTIFY: more ids take several).
    static constexpr char const* channel = "agentd_jobs";

    // Connects to `url` (postgres://… or postgresql://…), migrates the schema under an advisory
    // lock (so instances starting together do not race) and starts the writer; throws
    // std::runtime_error naming host:port/db, never the password, when the database is
    // unreachable or its schema is newer than this agentd.
    postgres_store(boost::asio::any_io_executor ex, std::string url, postgres_options opt = {});
    ~postgres_store() override;
    postgres_store(postgres_store const&) = delete;
    postgres_store& operator=(postgres_store const&) = delete;
    static std::int64_t schema_version();

    void save(job const& j) override;
    void erase(std::string const& id) override;
    boost::asio::awaitable<void> save_all(std::span<job_ptr const> jobs) override;
    boost::asio::awaitable<void> sync() override;
    boost::asio::awaitable<bool> flush() override;
    bool committed() const override;
    std::size_t pending() const override;
    store_stats stats() const override;
    std::string last_error() const override;
    std::vector<job_ptr> load() const override;
    shared_store* shared() override { return this; }

    std::string const& instance() const override;
    std::chrono::milliseconds lease_ttl() const override;
    void watch(std::function<void(std::vector<std::string>)> on_change) override;
    boost::asio::awaitable<std::vector<job_ptr>> fetch(std::vector<std::string> ids) override;
    boost::asio::awaitable<std::vector<job_ptr>> take_over() override;
    boost::asio::awaitable<std::optional<std::string>> call(
        std::string to, std::string request, std::chrono::milliseconds timeout) override;
    void serve(std::function<boost::asio::awaitable<std::string>(std::string)> handler) override;

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

// The payloads announcing `ids`: comma-separated, each at most `limit` bytes.
std::vector<std::string> notify_payloads(std::vector<std::string> const& ids,
                                         std::size_t limit = 7999);

// True for the URLs that select the PostgreSQL store.
bool is_postgres_url(std::string_view url);

}  // namespace agentd::jobs
