// The store interface's contract, run against both backends (sqlite_store on a temp file,
// postgres_store on a fresh database of the test cluster): every column round-trips, erase,
// save_all all or nothing, sync() means committed, schema migration and refusal of a newer one,
// two stores migrating at once, rows kept pending while the database is unavailable and written
// when it comes back; plus the NOTIFY of changed ids (PostgreSQL only).
#include "jobs/pg/connection.hpp"
#include "jobs/postgres_store.hpp"
#include "jobs/sqlite_store.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coroutine.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <boost/asio/io_context.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

namespace agentd::jobs {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::pg_cluster;
using test::run_coroutine;

job_ptr make_job(std::string id, protocol::job_state state = protocol::job_state::queued) {
    auto j = std::make_shared<job>();
    j->view.id = std::move(id);
    j->view.state = state;
    j->own = {"alice", "chat"};
    j->task.prompt = "p";
    return j;
}

// One backend under test, with the raw access a test needs besides the store: SQL run on its own
// connection, and a way to make the database unavailable and bring it back.
class backend {
  public:
    virtual ~backend() = default;
    virtual std::unique_ptr<store> open(asio::io_context& ioc) = 0;
    virtual void exec(std::string const& sql) = 0;
    virtual std::int64_t query_int(std::string const& sql) = 0;
    virtual std::string version_sql() const = 0;  // reads the schema version
    virtual std::string set_version_sql(std::int64_t v) const = 0;
    virtual std::int64_t latest_version() const = 0;
    virtual void go_away() = 0;
    virtual void come_back() = 0;
};

class sqlite_backend final : public backend {
  public:
    sqlite_backend() {
        dir_ = fs::temp_directory_path() /
               fmt::format("agentd-conformance-{}-{}", ::getpid(), ++count_);
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    ~sqlite_backend() override {
        come_back();
        fs::remove_all(dir_);
    }
    std::unique_ptr<store> open(asio::io_context&) override {
        return std::make_unique<sqlite_store>(dir_ / "agentd.db");
    }
    void exec(std::string const& sql) override {
        raw r(dir_ / "agentd.db");
        char* err = nullptr;
        if (sqlite3_exec(r.db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
            std::string why = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error(why);
        }
    }
    std::int64_t query_int(std::string const& sql) override {
        raw r(dir_ / "agentd.db");
        sqlite3_stmt* s = nullptr;
        sqlite3_prepare_v2(r.db, sql.c_str(), -1, &s, nullptr);
        std::int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        sqlite3_finalize(s);
        return v;
    }
    std::string version_sql() const override { return "PRAGMA user_version"; }
    std::string set_version_sql(std::int64_t v) const override {
        return fmt::format("PRAGMA user_version = {}", v);
    }
    std::int64_t latest_version() const override { return sqlite_store::schema_version(); }
    // Another connection holds the write lock.
    void go_away() override {
        lock_ = std::make_unique<raw>(dir_ / "agentd.db");
        sqlite3_busy_timeout(lock_->db, 10'000);
        sqlite3_exec(lock_->db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    }
    void come_back() override {
        if (lock_) sqlite3_exec(lock_->db, "ROLLBACK", nullptr, nullptr, nullptr);
        lock_.reset();
    }

  private:
    struct raw {
        explicit raw(fs::path const& f) { sqlite3_open(f.c_str(), &db); }
        ~raw() { sqlite3_close(db); }
        sqlite3* db = nullptr;
    };
    static inline int count_ = 0;
    fs::path dir_;
    std::unique_ptr<raw> lock_;
};

class postgres_backend final : public backend {
  public:
    postgres_backend() : url_(pg_cluster::shared().create_database()) {}
    ~postgres_backend() override { come_back(); }
    std::unique_ptr<store> open(asio::io_context& ioc) override {
        // One instance name throughout, as agentd restarted on the same state dir: a store of
        // another name could not overwrite the rows this one leased (fenced writes).
        return std::make_unique<postgres_store>(ioc.get_executor(), url_,
                                                postgres_options{.instance = "conformance"});
    }
    void exec(std::string const& sql) override { PQclear(run(sql)); }
    std::int64_t query_int(std::string const& sql) override {
        PGresult* r = run(sql);
        std::int64_t v = PQntuples(r) > 0 ? std::stoll(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        return v;
    }
    std::string version_sql() const override { return "SELECT max(version) FROM agentd_schema"; }
    std::string set_version_sql(std::int64_t v) const override {
        return fmt::format("UPDATE agentd_schema SET version = {}", v);
    }
    std::int64_t latest_version() const override { return postgres_store::schema_version(); }
    void go_away() override { pg_cluster::shared().stop(); }
    void come_back() override {
        if (!pg_cluster::shared().running()) pg_cluster::shared().start();
    }
    std::string const& url() const { return url_; }

  private:
    PGresult* run(std::string const& sql) {
        PGconn* c = PQconnectdb(url_.c_str());
        PGresult* r = PQexec(c, sql.c_str());
        auto status = PQresultStatus(r);
        std::string why = PQresultErrorMessage(r);
        PQfinish(c);
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
            PQclear(r);
            throw std::runtime_error(why);
        }
        return r;
    }
    std::string url_;
};

class store_conformance : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (GetParam() == "sqlite")
            backend_ = std::make_unique<sqlite_backend>();
        else
            backend_ = std::make_unique<postgres_backend>();
    }
    void TearDown() override { backend_.reset(); }

    std::unique_ptr<store> open() { return backend_->open(ioc_); }
    template <class T>
    T run(asio::awaitable<T> a) {
        return run_coroutine(ioc_, std::move(a));
    }
    // Retries flush() every 50 ms until it succeeds or `bound` passes.
    bool flush_within(store& db, std::chrono::milliseconds bound) {
        auto end = std::chrono::steady_clock::now() + bound;
        while (std::chrono::steady_clock::now() < end) {
            if (run(db.flush())) return true;
            ioc_.run_for(50ms);
        }
        return false;
    }

    asio::io_context ioc_;
    std::unique_ptr<backend> backend_;
};

TEST_P(store_conformance, every_column_reads_back_as_saved) {
    auto j = make_job("job_a", protocol::job_state::failed);
    j->seq = 7;
    j->view.description = "d 'quoted' \"too\" ü 漢字";
    j->view.created_at = protocol::wall_time(std::chrono::milliseconds(1'700'000'000'123));
    j->view.started_at = protocol::wall_time(std::chrono::milliseconds(2'000));
    j->view.finished_at = protocol::wall_time(std::chrono::milliseconds(3'000));
    j->view.depth = 2;
    j->view.upstream = protocol::upstream_ref{"opencode", "ses_1", "http://127.0.0.1:4096"};
    j->runtime_mut().upstream_server = "http://127.0.0.1:4096";
    j->view.output = "out\nwith \\ backslash";
    j->view.truncated = true;
    j->view.error = protocol::job_error{protocol::error_kind::upstream,
                                        protocol::error_phase::prompt, "bad gateway", 502};
    j->view.usage = protocol::job_usage{10, 20, 0.1};
    j->view.answered = {{"per_1", protocol::request_kind::question, protocol::decision::answer,
                         protocol::answered_by::policy,
                         protocol::wall_time(std::chrono::milliseconds(2'500))}};
    j->view.worktree = protocol::worktree_ref{"/tmp/wt", "agentd/job_a"};
    j->view.diff_summary = protocol::diff_summary{3, 40, 5};
    j->runtime_mut().user_message = "msg_1";
    j->task.agent = "build";
    j->task.timeout_ms = 60'000;
    j->task.budget = protocol::task_budget{0.25, 5000};
    j->upstream_parent = "ses_0";
    j->view.continues = "job_prev";
    j->runtime_mut().transcript = {"sys", {{"u1", "a1"}, {"u2", "a\"2"}}};
    {
        auto db = open();
        db->save(*j);
        run(db->sync());
        EXPECT_EQ(db->pending(), 0u) << db->last_error();
    }
    auto db = open();
    auto rows = db->load();
    ASSERT_EQ(rows.size(), 1u);
    auto const& r = *rows[0];
    EXPECT_EQ(r.view.id, "job_a");
    EXPECT_EQ(r.own, j->own);
    EXPECT_EQ(r.seq, 7u);
    EXPECT_EQ(r.view.description, j->view.description);
    EXPECT_EQ(r.view.state, protocol::job_state::failed);
    EXPECT_EQ(r.view.created_at, j->view.created_at);
    EXPECT_EQ(r.view.started_at, j->view.started_at);
    EXPECT_EQ(r.view.finished_at, j->view.finished_at);
    EXPECT_EQ(r.view.depth, 2);
    ASSERT_TRUE(r.view.upstream);
    EXPECT_EQ(r.view.upstream->backend, "opencode");
    EXPECT_EQ(r.view.upstream->session, "ses_1");
    EXPECT_EQ(r.view.upstream->server, "http://127.0.0.1:4096");
    EXPECT_EQ(r.runtime().upstream_server, "http://127.0.0.1:4096");
    EXPECT_EQ(r.view.output, "out\nwith \\ backslash");
    EXPECT_TRUE(r.view.truncated);
    ASSERT_TRUE(r.view.error);
    EXPECT_EQ(r.view.error->kind, protocol::error_kind::upstream);
    EXPECT_EQ(r.view.error->phase, protocol::error_phase::prompt);
    EXPECT_EQ(r.view.error->message, "bad gateway");
    EXPECT_EQ(r.view.error->http_status, 502);
    ASSERT_TRUE(r.view.usage);
    EXPECT_EQ(r.view.usage->input_tokens, 10);
    EXPECT_EQ(r.view.usage->output_tokens, 20);
    EXPECT_EQ(r.view.usage->cost, 0.1);  // exactly: the text form round-trips
    ASSERT_EQ(r.view.answered.size(), 1u);
    EXPECT_EQ(r.view.answered[0].id, "per_1");
    EXPECT_EQ(r.view.answered[0].kind, protocol::request_kind::question);
    EXPECT_EQ(r.view.answered[0].how, protocol::decision::answer);
    EXPECT_EQ(r.view.answered[0].by, protocol::answered_by::policy);
    EXPECT_EQ(r.view.answered[0].at, j->view.answered[0].at);
    EXPECT_EQ(r.view.worktree, j->view.worktree);
    EXPECT_EQ(r.view.diff_summary, j->view.diff_summary);
    EXPECT_EQ(r.runtime().user_message, "msg_1");
    EXPECT_EQ(r.task.prompt, "p");
    EXPECT_EQ(r.task.agent, "build");
    EXPECT_EQ(r.task.timeout_ms, 60'000);
    EXPECT_EQ(r.task.budget, (protocol::task_budget{0.25, 5000}));
    EXPECT_EQ(r.upstream_parent, "ses_0");
    EXPECT_EQ(r.view.continues, "job_prev");
    EXPECT_EQ(r.task.continues, "job_prev");
    EXPECT_EQ(r.runtime().transcript.system, "sys");
    ASSERT_EQ(r.runtime().transcript.turns.size(), 2u);
    EXPECT_EQ(r.runtime().transcript.turns[1].user, "u2");
    EXPECT_EQ(r.runtime().transcript.turns[1].assistant, "a\"2");
}

// A waiting job's pending requests are in its row (other instances show them from it).
TEST_P(store_conformance, a_waiting_jobs_requests_read_back) {
    auto j = make_job("job_w", protocol::job_state::waiting);
    protocol::pending_request perm;
    perm.id = "per_1";
    perm.permission = "bash";
    perm.patterns = {"rm -rf build", "ls"};
    perm.asked_at = protocol::wall_time(std::chrono::milliseconds(1'700'000'000'000));
    protocol::pending_request question;
    question.id = "que_1";
    question.kind = protocol::request_kind::question;
    question.questions = {{"Which one?", "Pick", {{"a", "first"}, {"b", ""}}, true, false}};
    question.asked_at = perm.asked_at;
    j->view.requests = {perm, question};
    {
        auto db = open();
        db->save(*j);
        run(db->sync());
    }
    auto rows = open()->load();
    ASSERT_EQ(rows.size(), 1u);
    auto const& got = rows[0]->view.requests;
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].id, "per_1");
    EXPECT_EQ(got[0].permission, "bash");
    EXPECT_EQ(got[0].patterns, perm.patterns);
    EXPECT_EQ(got[0].asked_at, perm.asked_at);
    EXPECT_EQ(got[1].kind, protocol::request_kind::question);
    ASSERT_EQ(got[1].questions.size(), 1u);
    EXPECT_EQ(got[1].questions[0].question, "Which one?");
    EXPECT_EQ(got[1].questions[0].header, "Pick");
    EXPECT_TRUE(got[1].questions[0].multiple);
    EXPECT_FALSE(got[1].questions[0].custom);
    ASSERT_EQ(got[1].questions[0].options.size(), 2u);
    EXPECT_EQ(got[1].questions[0].options[0].description, "first");

    // Once the job runs on, the row keeps none.
    j->view.state = protocol::job_state::running;
    {
        auto db = open();
        db->save(*j);
        run(db->sync());
    }
    EXPECT_TRUE(open()->load().at(0)->view.requests.empty());
}

TEST_P(store_conformance, the_newest_content_wins_and_erase_removes_the_row) {
    auto db = open();
    auto a = make_job("job_a");
    db->save(*a);
    db->save(*make_job("job_b"));
    a->view.state = protocol::job_state::completed;
    db->save(*a);
    db->erase("job_b");
    run(db->sync());
    auto rows = open()->load();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]->view.id, "job_a");
    EXPECT_EQ(rows[0]->view.state, protocol::job_state::completed);
}

TEST_P(store_conformance, sync_returns_once_every_saved_row_is_committed) {
    auto db = open();
    for (int i = 0; i < 300; ++i) db->save(*make_job(fmt::format("job_{:03}", i)));
    run(db->sync());
    // Counted on another connection: committed, not merely sent.
    EXPECT_EQ(backend_->query_int("SELECT count(*) FROM jobs"), 300);
}

TEST_P(store_conformance, save_all_commits_all_rows_or_none) {
    auto db = open();
    std::vector<job_ptr> good{make_job("job_a"), make_job("job_b")};
    run(db->save_all(good));
    EXPECT_EQ(backend_->query_int("SELECT count(*) FROM jobs"), 2);
    // A row the database refuses (a trigger) in the middle of a batch: none of it is kept.
    if (GetParam() == "sqlite")
        backend_->exec(
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN NEW.id = 'job_bad' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END");
    else
        backend_->exec(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.id = 'job_bad' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; "
            "CREATE TRIGGER refuse BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION "
            "refuse()");
    std::vector<job_ptr> mixed{make_job("job_c"), make_job("job_bad"), make_job("job_d")};
    EXPECT_THROW(run(db->save_all(mixed)), std::runtime_error);
    EXPECT_EQ(db->stats().errors[static_cast<int>(store_op::start)], 1u);
    EXPECT_EQ(db->pending(), 0u) << "a refused start leaves nothing behind";
    EXPECT_EQ(backend_->query_int("SELECT count(*) FROM jobs"), 2);
}

TEST_P(store_conformance, an_empty_database_gets_the_latest_schema) {
    open();
    EXPECT_EQ(backend_->query_int(backend_->version_sql()), backend_->latest_version());
}

TEST_P(store_conformance, a_database_of_a_newer_agentd_is_refused_with_a_clear_message) {
    open();
    backend_->exec(backend_->set_version_sql(backend_->latest_version() + 1));
    try {
        open();
        FAIL() << "a newer schema was accepted";
    } catch (std::runtime_error const& e) {
        EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
    }
}

TEST_P(store_conformance, two_stores_migrating_one_database_at_once_both_succeed) {
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < 2; ++i)
        threads.emplace_back([&] {
            asio::io_context ioc;
            try {
                auto db = backend_->open(ioc);
            } catch (std::exception const& e) {
                ADD_FAILURE() << e.what();
                ++failures;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(backend_->query_int(backend_->version_sql()), backend_->latest_version());
}

TEST_P(store_conformance, rows_wait_while_the_database_is_away_and_are_written_when_it_returns) {
    auto db = open();
    db->save(*make_job("job_a"));
    run(db->sync());
    backend_->go_away();
    auto a = make_job("job_a", protocol::job_state::completed);
    db->save(*a);
    db->save(*make_job("job_b"));
    run(db->sync());  // returns: the rows are kept pending, not lost
    EXPECT_EQ(db->pending(), 2u);
    EXPECT_EQ(db->stats().pending_rows, 2u);
    EXPECT_GE(db->stats().errors[static_cast<int>(store_op::save)], 1u);
    EXPECT_FALSE(run(db->flush()));
    EXPECT_FALSE(db->last_error().empty());
    backend_->come_back();
    EXPECT_TRUE(flush_within(*db, 10s)) << db->last_error();
    EXPECT_EQ(db->pending(), 0u);
    auto rows = open()->load();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]->view.state, protocol::job_state::completed);
}

INSTANTIATE_TEST_SUITE_P(backends, store_conformance, ::testing::Values("sqlite", "postgres"),
                         [](auto const& info) { return info.param; });

TEST(postgres_notify, every_commit_announces_the_changed_ids) {
    postgres_backend pg;
    asio::io_context ioc;
    auto db = pg.open(ioc);
    pg::connection listener(ioc.get_executor(), pg.url());
    std::set<std::string> heard;
    auto listening =
        run_coroutine(ioc, listener.listen(postgres_store::channel, [&](pg::notification n) {
            std::stringstream ids(n.payload);
            std::string id;
            while (std::getline(ids, id, ',')) heard.insert(id);
        }));
    ASSERT_TRUE(listening) << listening.error->message;
    db->save(*make_job("job_a"));
    db->save(*make_job("job_b"));
    db->erase("job_c");
    run_coroutine(ioc, db->sync());
    std::vector<job_ptr> started{make_job("job_d")};
    run_coroutine(ioc, db->save_all(started));
    auto end = std::chrono::steady_clock::now() + 5s;
    while (heard.size() < 4 && std::chrono::steady_clock::now() < end) ioc.run_for(10ms);
    EXPECT_EQ(heard, (std::set<std::string>{"job_a", "job_b", "job_c", "job_d"}));
}

TEST(postgres_notify, payloads_stay_under_the_notify_limit_and_carry_every_id) {
    std::vector<std::string> ids;
    for (int i = 0; i < 2000; ++i) ids.push_back(fmt::format("job_{:016x}", i));
    auto payloads = notify_payloads(ids);
    EXPECT_GT(payloads.size(), 1u);
    std::vector<std::string> back;
    for (auto const& p : payloads) {
        EXPECT_LT(p.size(), 8000u);
        std::stringstream s(p);
        std::string id;
        while (std::getline(s, id, ',')) back.push_back(id);
    }
    EXPECT_EQ(back, ids);
}

TEST(postgres_store_start, an_unreachable_database_fails_naming_it_without_the_password) {
    asio::io_context ioc;
    auto port = pg_cluster::shared().port();
    // A port nobody listens on: the cluster's plus one is as good as any here.
    auto url = fmt::format("postgres://agentd:s3cret@127.0.0.1:{}/jobs", port + 1);
    try {
        postgres_store db(ioc.get_executor(), url);
        FAIL() << "opened an unreachable database";
    } catch (std::runtime_error const& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(fmt::format("127.0.0.1:{}/jobs", port + 1)), std::string::npos) << what;
        EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
    }
}

}  // namespace
}  // namespace agentd::jobs
