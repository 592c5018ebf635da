// Unit tests of the SQLite job store against a real file: a write lock held by another connection
// costs at most busy_wait and leaves rows pending (write-behind) until flush() succeeds, a start
// under the lock is refused whole, and the database files are private to the user.
#include "jobs/store.hpp"

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

}  // namespace
}  // namespace agentd::jobs
