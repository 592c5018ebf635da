// Unit tests of the SQLite job store against a real file: a write lock held by another connection
// costs at most busy_wait and leaves rows pending (write-behind) until flush() succeeds, a start
// under the lock is refused whole, the database files are private to the user, every column reads
// back as written, and the schema version: old databases upgraded, newer ones refused.
#include "jobs/store.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

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
    store db(file_);
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
    EXPECT_LT(took, store::busy_wait * 4) << "the lock cost more than a short wait";
    EXPECT_EQ(db.pending(), 2u);
    EXPECT_FALSE(db.flush());
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::save)], 1u);
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::flush)], 1u);
    EXPECT_EQ(db.stats().pending_rows, 2u);

    lock.release();
    EXPECT_TRUE(db.flush());
    EXPECT_EQ(db.pending(), 0u);
    auto rows = db.load();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]->view.id, "job_a");
    EXPECT_EQ(rows[0]->view.state, protocol::job_state::completed);
}

TEST_F(store_test, a_pending_erase_is_written_by_flush) {
    store db(file_);
    db.save(*make_job("job_a", protocol::job_state::completed));
    {
        write_lock lock(file_);
        db.erase("job_a");
        EXPECT_EQ(db.pending(), 1u);
    }
    EXPECT_TRUE(db.flush());
    EXPECT_TRUE(db.load().empty());
}

TEST_F(store_test, new_jobs_under_a_lock_are_refused_whole_and_quickly) {
    store db(file_);
    write_lock lock(file_);
    std::vector<job_ptr> jobs{make_job("job_a", protocol::job_state::queued),
                              make_job("job_b", protocol::job_state::queued)};
    auto t0 = steady::now();
    EXPECT_THROW(db.save_all(jobs), std::runtime_error);
    EXPECT_LT(steady::now() - t0, store::busy_wait * 4);
    EXPECT_EQ(db.stats().errors[static_cast<int>(store_op::start)], 1u);
    EXPECT_EQ(db.pending(), 0u) << "a refused start leaves nothing behind";
    lock.release();
    EXPECT_TRUE(db.load().empty());
}

TEST_F(store_test, database_files_are_private_even_under_a_permissive_umask) {
    auto old = ::umask(0);
    {
        store db(file_);
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
    { store db(file_); }
    fs::permissions(file_, fs::perms::all, fs::perm_options::replace);
    store db(file_);
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
    std::int64_t user_version() {
        sqlite3_stmt* s = nullptr;
        EXPECT_EQ(sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &s, nullptr), SQLITE_OK);
        EXPECT_EQ(sqlite3_step(s), SQLITE_ROW);
        auto v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
    }

  private:
    sqlite3* db_ = nullptr;
};

TEST_F(store_test, every_field_of_a_job_reads_back_as_saved) {
    auto j = make_job("job_a", protocol::job_state::failed);
    j->seq = 7;
    j->view.description = "d";
    j->view.created_at = protocol::wall_time(std::chrono::milliseconds(1'000));
    j->view.started_at = protocol::wall_time(std::chrono::milliseconds(2'000));
    j->view.finished_at = protocol::wall_time(std::chrono::milliseconds(3'000));
    j->view.depth = 2;
    j->view.upstream = protocol::upstream_ref{"opencode", "ses_1", "http://127.0.0.1:4096"};
    j->upstream_server = "http://127.0.0.1:4096";
    j->view.output = "out";
    j->view.truncated = true;
    j->view.error = protocol::job_error{protocol::error_kind::upstream,
                                        protocol::error_phase::prompt, "bad gateway", 502};
    j->view.usage = protocol::job_usage{10, 20, 0.5};
    j->task.agent = "build";
    j->task.timeout_ms = 60'000;
    j->task.budget = protocol::task_budget{0.25, 5000};
    j->upstream_parent = "ses_0";
    j->view.continues = "job_prev";
    j->transcript = {"sys", {{"u1", "a1"}, {"u2", "a\"2"}}};
    {
        store db(file_);
        db.save(*j);
    }
    store db(file_);
    auto rows = db.load();
    ASSERT_EQ(rows.size(), 1u);
    auto const& r = *rows[0];
    EXPECT_EQ(r.view.id, "job_a");
    EXPECT_EQ(r.own, j->own);
    EXPECT_EQ(r.seq, 7u);
    EXPECT_EQ(r.view.description, "d");
    EXPECT_EQ(r.view.state, protocol::job_state::failed);
    EXPECT_EQ(r.view.created_at, j->view.created_at);
    EXPECT_EQ(r.view.started_at, j->view.started_at);
    EXPECT_EQ(r.view.finished_at, j->view.finished_at);
    EXPECT_EQ(r.view.depth, 2);
    ASSERT_TRUE(r.view.upstream);
    EXPECT_EQ(r.view.upstream->backend, "opencode");
    EXPECT_EQ(r.view.upstream->session, "ses_1");
    EXPECT_EQ(r.view.upstream->server, "http://127.0.0.1:4096");
    EXPECT_EQ(r.upstream_server, "http://127.0.0.1:4096");
    EXPECT_EQ(r.view.output, "out");
    EXPECT_TRUE(r.view.truncated);
    ASSERT_TRUE(r.view.error);
    EXPECT_EQ(r.view.error->kind, protocol::error_kind::upstream);
    EXPECT_EQ(r.view.error->phase, protocol::error_phase::prompt);
    EXPECT_EQ(r.view.error->message, "bad gateway");
    EXPECT_EQ(r.view.error->http_status, 502);
    ASSERT_TRUE(r.view.usage);
    EXPECT_EQ(r.view.usage->input_tokens, 10);
    EXPECT_EQ(r.view.usage->output_tokens, 20);
    EXPECT_EQ(r.view.usage->cost, 0.5);
    EXPECT_EQ(r.task.prompt, "p");
    EXPECT_EQ(r.task.agent, "build");
    EXPECT_EQ(r.task.timeout_ms, 60'000);
    EXPECT_EQ(r.task.budget, (protocol::task_budget{0.25, 5000}));
    EXPECT_EQ(r.upstream_parent, "ses_0");
    EXPECT_EQ(r.view.continues, "job_prev");
    EXPECT_EQ(r.task.continues, "job_prev");
    EXPECT_EQ(r.transcript.system, "sys");
    ASSERT_EQ(r.transcript.turns.size(), 2u);
    EXPECT_EQ(r.transcript.turns[1].user, "u2");
    EXPECT_EQ(r.transcript.turns[1].assistant, "a\"2");
}

TEST_F(store_test, a_new_database_gets_the_latest_schema_version) {
    { store db(file_); }
    EXPECT_EQ(raw_db(file_).user_version(), store::schema_version());
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
        store db(file_);
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
        EXPECT_EQ(r.upstream_server, "");
        ASSERT_TRUE(r.view.usage);
        EXPECT_EQ(r.view.usage->output_tokens, 6);
        EXPECT_EQ(r.task.prompt, "question");
        db.save(*make_job("job_new", protocol::job_state::queued));
    }
    EXPECT_EQ(raw_db(file_).user_version(), store::schema_version());
    store db(file_);
    EXPECT_EQ(db.load().size(), 2u);
}

TEST_F(store_test, a_database_of_a_newer_agentd_is_refused_untouched) {
    {
        store db(file_);
        db.save(*make_job("job_a", protocol::job_state::queued));
    }
    auto newer = store::schema_version() + 1;
    raw_db(file_).exec(fmt::format("PRAGMA user_version = {}", newer).c_str());
    try {
        store db(file_);
        ADD_FAILURE() << "a newer database was opened";
    } catch (std::runtime_error const& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(file_.string()), std::string::npos) << what;
        EXPECT_NE(what.find(fmt::format("version {}", newer)), std::string::npos) << what;
        EXPECT_NE(what.find("newer agentd"), std::string::npos) << what;
    }
    EXPECT_EQ(raw_db(file_).user_version(), newer);
}

}  // namespace
}  // namespace agentd::jobs
