// Unit tests of the SQLite job store against a real file: a write lock held by another connection
// costs at most busy_wait and leaves rows pending (write-behind) until flush() succeeds, a start
// under the lock is refused whole, the database files are private to the user, and the schema
// version: old databases upgraded, newer ones refused.
#include "jobs/sqlite_store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace agentd::jobs {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A second connection to the same file that holds the write lock while it lives.
class write_lock {
  public:
    explicit write_lock(fs::path const& file) {
        EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK);
        sqlite3_busy_timeout(db_, 10'000);  // the store's checkpoint may hold the lock a moment
        EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    ~write_lock() {
        release();
        sqlite3_close(db_);
    }
    void release() {
        if (held_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        held_ = false;
    }

  private:
    sqlite3* db_ = nullptr;
    bool held_ = true;
};

// save_all() to its end on a context of its own (SQLite's completes without suspending).
void save_all_now(sqlite_store& db, std::vector<job_ptr> const& jobs) {
    boost::asio::io_context ioc;
    auto done = boost::asio::co_spawn(ioc, db.save_all(jobs), boost::asio::use_future);
    ioc.run();
    done.get();
}

class store_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("agentd-store-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        file_ = dir_ / "agentd.db";
    }
    void TearDown() override { fs::remove_all(dir_); }

    static job_ptr make_job(std::string id, protocol::job_state state) {
        auto j = std::make_shared<job>();
        j->view.id = std::move(id);
        j->view.state = state;
        j->own = {"alice", "chat"};
        j->task.prompt = "p";
        return j;
    }

    fs::path dir_;
    fs::path file_;
};

TEST_F(store_test, a_locked_database_costs_one_short_wait_then_rows_wait_in_memory) {
    sqlite_store db(file_);
    auto a = make_job("job_a", protocol::job_state::running);
    auto b = make_job("job_b", protocol::job_state::running);
    db.save(*a);
    write_lock lock(file_);
    auto t0 = steady::now();
    a->view.state = protocol::job_state::completed;
    db.save(*a);  // waits busy_wait, then pending
    db.save(*b);  // rows already pending: no wait at all
    db.erase("job_a");
    db.save(*a);  // the newest content wins over the erase
    auto took = steady::now() - t0;
    EXPECT_LT(took, sqlite_store::busy_wait * 4) << "the lock cost more than a short wait";
    EXPECT_EQ(db.pending(), 2u);
    EXPECT_FALSE(db.flush_now());
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::save)], 1u);
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::flush)], 1u);
    EXPECT_EQ(db.stats().pending_rows, 2u);

    lock.release();
    EXPECT_TRUE(db.flush_now());
    EXPECT_EQ(db.pending(), 0u);
    auto rows = db.load();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]->view.id, "job_a");
    EXPECT_EQ(rows[0]->view.state, protocol::job_state::completed);
}

// A stored job's later rows set only what changes: its owner, sequence and task stay as
// first written, a running job's task is not rewritten, a finished one's compacted task is.
TEST_F(store_test, later_saves_update_the_changes_and_the_finished_task) {
    sqlite_store db(file_);
    auto j = make_job("job_a", protocol::job_state::queued);
    j->seq = 7;
    j->view.description = "first";
    j->task.prompt = std::string(1000, 'p');
    save_all_now(db, {j});
    j->view.state = protocol::job_state::running;
    j->view.upstream = protocol::upstream_ref{"opencode", "ses_1"};
    db.save(*j);
    auto running = db.load();
    ASSERT_EQ(running.size(), 1u);
    EXPECT_EQ(running[0]->view.state, protocol::job_state::running);
    EXPECT_EQ(running[0]->view.upstream->session, "ses_1");
    EXPECT_EQ(running[0]->task.prompt.size(), 1000u);
    EXPECT_EQ(running[0]->seq, 7u);
    EXPECT_EQ(running[0]->own.principal, "alice");
    EXPECT_EQ(running[0]->view.description, "first");

    j->view.state = protocol::job_state::completed;
    j->view.output = "done";
    compact_finished(*j);
    db.save(*j);
    auto done = db.load();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0]->view.output, "done");
    EXPECT_EQ(done[0]->task.prompt, j->task.prompt);
    EXPECT_EQ(done[0]->task.prompt.size(), protocol::task_preview::prompt_chars);
    EXPECT_EQ(done[0]->own.session, "chat");
    EXPECT_EQ(done[0]->seq, 7u);
}

// A job saved before any row of it was written (no save_all) gets its whole row.
TEST_F(store_test, a_first_save_writes_the_whole_row) {
    {
        sqlite_store db(file_);
        auto j = make_job("job_a", protocol::job_state::running);
        j->seq = 3;
        db.save(*j);
    }
    sqlite_store db(file_);
    auto rows = db.load();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]->seq, 3u);
    EXPECT_EQ(rows[0]->task.prompt, "p");
    EXPECT_EQ(rows[0]->own.principal, "alice");
}

TEST_F(store_test, a_pending_erase_is_written_by_flush) {
    sqlite_store db(file_);
    db.save(*make_job("job_a", protocol::job_state::completed));
    {
        write_lock lock(file_);
        db.erase("job_a");
        EXPECT_EQ(db.pending(), 1u);
    }
    EXPECT_TRUE(db.flush_now());
    EXPECT_TRUE(db.load().empty());
}

TEST_F(store_test, new_jobs_under_a_lock_are_refused_whole_and_quickly) {
    sqlite_store db(file_);
    write_lock lock(file_);
    std::vector<job_ptr> jobs{make_job("job_a", protocol::job_state::queued),
                              make_job("job_b", protocol::job_state::queued)};
    auto t0 = steady::now();
    EXPECT_THROW(save_all_now(db, jobs), std::runtime_error);
    EXPECT_LT(steady::now() - t0, sqlite_store::busy_wait * 4);
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::start)], 1u);
    EXPECT_EQ(db.pending(), 0u) << "a refused start leaves nothing behind";
    lock.release();
    EXPECT_TRUE(db.load().empty());
}

TEST_F(store_test, database_files_are_private_even_under_a_permissive_umask) {
    auto old = ::umask(0);
    {
        sqlite_store db(file_);
        db.save(*make_job("job_a", protocol::job_state::queued));
        for (char const* suffix : {"", "-wal", "-shm"}) {
            auto path = file_.string() + suffix;
            ASSERT_TRUE(fs::exists(path)) << path;
            struct stat st {};
            ASSERT_EQ(::stat(path.c_str(), &st), 0);
            EXPECT_EQ(st.st_mode & 0777, 0600u) << path;
        }
    }
    ::umask(old);
}

TEST_F(store_test, a_database_left_readable_by_others_is_tightened) {
    { sqlite_store db(file_); }
    fs::permissions(file_, fs::perms::all, fs::perm_options::replace);
    sqlite_store db(file_);
    struct stat st {};
    ASSERT_EQ(::stat(file_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A second connection for setting a database up as another agentd (or none) left it.
class raw_db {
  public:
    explicit raw_db(fs::path const& file) {
        EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK);
    }
    ~raw_db() { sqlite3_close(db_); }
    void exec(char const* sql) {
        char* err = nullptr;
        EXPECT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
        sqlite3_free(err);
    }
    std::int64_t user_version() { return query("PRAGMA user_version"); }
    std::int64_t page_size() { return query("PRAGMA page_size"); }
    std::int64_t query(char const* sql) {
        sqlite3_stmt* s = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db_, sql, -1, &s, nullptr), SQLITE_OK);
        EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
        auto v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    }

  private:
    sqlite3* db_ = nullptr;
};

TEST_F(store_test, a_new_database_gets_the_latest_schema_version) {
    { sqlite_store db(file_); }
    EXPECT_EQ(raw_db(file_).user_version(), sqlite_store::schema_version());
}

// A new database gets the smaller page; one made with SQLite's default keeps it and works.
TEST_F(store_test, a_new_database_gets_small_pages_and_an_old_one_keeps_its_own) {
    {
        sqlite_store db(file_);
        db.save(*make_job("job_a", protocol::job_state::queued));
    }
    EXPECT_EQ(raw_db(file_).page_size(), sqlite_store::page_size);
    auto old_file = dir_ / "old.db";
    {
        raw_db old(old_file);
        old.exec("PRAGMA page_size=4096; CREATE TABLE t (x); DROP TABLE t;");
    }
    {
        sqlite_store db(old_file);
        db.save(*make_job("job_b", protocol::job_state::queued));
    }
    EXPECT_EQ(raw_db(old_file).page_size(), 4096);
    sqlite_store db(old_file);
    ASSERT_EQ(db.load().size(), 1u);
    EXPECT_EQ(db.load()[0]->view.id, "job_b");
}

// The first agentd set no user_version: its database (version 0 with a jobs table) is version 1,
// upgraded in place with its jobs. The table is created with that agentd's own text, a frozen
// copy on purpose: migration 1 in store.cpp must keep reading what it wrote.
TEST_F(store_test, a_database_from_before_schema_versions_is_upgraded_with_its_jobs) {
    {
        raw_db old(file_);
        old.exec(R"(
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, principal TEXT NOT NULL, session TEXT NOT NULL, seq INTEGER NOT NULL,
  description TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL,
  started_ms INTEGER, finished_ms INTEGER, depth INTEGER NOT NULL,
  backend TEXT, upstream_session TEXT, output TEXT, truncated INTEGER NOT NULL,
  error_kind TEXT, error_phase TEXT, error_message TEXT, error_http_status INTEGER,
  input_tokens INTEGER, output_tokens INTEGER, cost REAL,
  task TEXT NOT NULL, upstream_parent TEXT
) STRICT;
INSERT INTO jobs VALUES ('job_old', 'alice', 'chat', 3, 'old job', 'completed', 1000, 2000, 3000,
  1, 'opencode', 'ses_9', 'the answer', 0, NULL, NULL, NULL, NULL, 5, 6, 0.25,
  '{"prompt":"question","description":"old job"}', NULL);
)");
        EXPECT_EQ(old.user_version(), 0);
    }
    {
        sqlite_store db(file_);
        auto rows = db.load();
        ASSERT_EQ(rows.size(), 1u);
        auto const& r = *rows[0];
        EXPECT_EQ(r.view.id, "job_old");
        EXPECT_EQ(r.own, (owner{"alice", "chat"}));
        EXPECT_EQ(r.seq, 3u);
        EXPECT_EQ(r.view.state, protocol::job_state::completed);
        EXPECT_EQ(r.view.output, "the answer");
        ASSERT_TRUE(r.view.upstream);
        EXPECT_EQ(r.view.upstream->session, "ses_9");
        EXPECT_FALSE(r.view.upstream->server) << "an older row names no server";
        EXPECT_EQ(r.runtime().upstream_server, "");
        EXPECT_FALSE(r.has_runtime()) << "nothing run-time in the row: none allocated";
        ASSERT_TRUE(r.view.usage);
        EXPECT_EQ(r.view.usage->output_tokens, 6);
        EXPECT_EQ(r.task.prompt, "question");
        db.save(*make_job("job_new", protocol::job_state::queued));
    }
    EXPECT_EQ(raw_db(file_).user_version(), sqlite_store::schema_version());
    sqlite_store db(file_);
    EXPECT_EQ(db.load().size(), 2u);
}

TEST_F(store_test, a_database_of_a_newer_agentd_is_refused_untouched) {
    {
        sqlite_store db(file_);
        db.save(*make_job("job_a", protocol::job_state::queued));
    }
    auto newer = sqlite_store::schema_version() + 1;
    raw_db(file_).exec(fmt::format("PRAGMA user_version = {}", newer).c_str());
    try {
        sqlite_store db(file_);
        ADD_FAILURE() << "a newer database was opened";
    } catch (std::runtime_error const& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(file_.string()), std::string::npos) << what;
        EXPECT_NE(what.find(fmt::format("version {}", newer)), std::string::npos) << what;
        EXPECT_NE(what.find("newer agentd"), std::string::npos) << what;
    }
    EXPECT_EQ(raw_db(file_).user_version(), newer);
}

// A burst of commits past the WAL threshold signals the checkpoint thread once per 1 000 frames
// appended, not on every commit: each checkpoint costs two fsyncs and a thread wake-up. 2 000
// new rows append ~5 000 frames; signalling on every commit past 1 000 frames ran dozens.
TEST_F(store_test, a_burst_of_commits_checkpoints_once_per_thousand_wal_frames) {
    sqlite_store db(file_);
    constexpr int rows = 2000;
    for (int i = 0; i < rows; ++i)
        db.save(*make_job(fmt::format("job_{:05}", i), protocol::job_state::queued));
    auto const deadline = steady::now() + 10s;
    while (db.checkpoints() == 0 && steady::now() < deadline) std::this_thread::sleep_for(5ms);
    auto const wal_bytes = fs::file_size(fs::path(file_.string() + "-wal"));
    EXPECT_GE(db.checkpoints(), 1u);
    EXPECT_LE(db.checkpoints(), 8u) << "WAL file: " << wal_bytes << " B";
    EXPECT_EQ(db.load().size(), static_cast<std::size_t>(rows));
}

// SQLite's page cache is capped at sqlite_store::cache_kib: agentd never reads the database
// after start-up but to find the rows it updates, and SQLite's default 2 MB cache filled with
// rows written once (~170 B per queued or retained job, BENCHMARKS.md finding 17). 5 000 rows
// take ~3 MB of pages; all of SQLite's memory in this process stays near the cap.
TEST_F(store_test, the_page_cache_stays_under_its_cap) {
    sqlite_store db(file_);
    for (int i = 0; i < 5000; ++i) {
        auto j = make_job(fmt::format("job_{:05}", i), protocol::job_state::queued);
        j->task.prompt = std::string(400, 'p');
        db.save(*j);
    }
    EXPECT_LT(sqlite3_memory_used(), (sqlite_store::cache_kib + 512) * 1024)
        << "SQLite holds " << sqlite3_memory_used() / 1024 << " KiB";
}

}  // namespace
}  // namespace agentd::jobs
