// Start-up checks and shutdown of the real agentd: a state dir others can write to, a token
// that is loose, foreign or a symlink are refused with a clear message and a non-zero exit; the
// database files are private; a hung upstream neither stretches SIGTERM's drain past the grace
// by its request timeout nor leaves an agents_cancel unanswered.
#include "agentd_fixture.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

// A state dir of the test's own making, removed afterwards.
struct scratch_dir {
    fs::path path = fs::temp_directory_path() /
                    fmt::format("agentd-state-{}-{}", ::getpid(),
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    scratch_dir() {
        fs::remove_all(path);
        fs::create_directories(path / "state");
        fs::permissions(path / "state", fs::perms::owner_all, fs::perm_options::replace);
    }
    ~scratch_dir() { fs::remove_all(path); }
    fs::path state() const { return path / "state"; }
};

void write_token(fs::path const& file, fs::perms mode) {
    std::ofstream(file) << std::string(64, 'a') << "\n";
    fs::permissions(file, mode, fs::perm_options::replace);
}

// Runs agentd on `state_dir` and expects it to refuse: its exit status and stderr.
std::pair<int, std::string> refused_start(fs::path const& state_dir) {
    child_process p({AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir", state_dir.string(),
                     "--upstream-url", fmt::format("http://127.0.0.1:{}", unused_port())});
    // The refusal's line first: stderr is read on a thread of its own, which may lag the exit.
    p.wait_for_line(std::regex("ERROR fatal error=\"(token file|state directory)"), 10s);
    auto status = p.wait_exit(10s);
    EXPECT_TRUE(status.has_value()) << "agentd started: " << p.stderr_text();
    if (!status) p.signal(SIGKILL);
    return {status.value_or(0), p.stderr_text()};
}

TEST(state_dir, WritableByOthersIsRefused) {
    scratch_dir d;
    fs::permissions(d.state(), fs::perms::all, fs::perm_options::replace);
    auto [status, err] = refused_start(d.state());
    EXPECT_NE(status, 0);
    EXPECT_NE(err.find("writable by group or others (mode 0777)"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(d.state() / "agentd.db")) << "nothing is created there";
}

TEST(state_dir, LooseTokenIsRefused) {
    scratch_dir d;
    write_token(d.state() / "token", fs::perms::owner_read | fs::perms::owner_write |
                                         fs::perms::group_read | fs::perms::others_read);
    auto [status, err] = refused_start(d.state());
    EXPECT_NE(status, 0);
    EXPECT_NE(err.find("has mode 0644"), std::string::npos) << err;
}

TEST(state_dir, GroupReadableTokenNeedsTheAgentdGroup) {
    auto const* g = ::getgrgid(::getegid());
    if (g && std::string(g->gr_name) == "agentd") GTEST_SKIP() << "the test runs as group agentd";
    scratch_dir d;
    write_token(d.state() / "token",
                fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    auto [status, err] = refused_start(d.state());
    EXPECT_NE(status, 0);
    EXPECT_NE(err.find("has mode 0640 (want 0600, or 0640 with group agentd)"), std::string::npos)
        << err;
}

TEST(state_dir, SymlinkedOrIrregularTokenIsRefused) {
    scratch_dir d;
    write_token(d.path / "elsewhere", fs::perms::owner_read | fs::perms::owner_write);
    fs::create_symlink(d.path / "elsewhere", d.state() / "token");
    auto [status, err] = refused_start(d.state());
    EXPECT_NE(status, 0);
    EXPECT_NE(err.find("is a symbolic link"), std::string::npos) << err;

    fs::remove(d.state() / "token");
    fs::create_directory(d.state() / "token");
    auto [status2, err2] = refused_start(d.state());
    EXPECT_NE(status2, 0);
    EXPECT_NE(err2.find("is not a regular file"), std::string::npos) << err2;
}

TEST(state_dir, DatabaseFilesArePrivateWhateverTheUmask) {
    auto old = ::umask(0);
    std::unique_ptr<agentd_process> a;
    {
        a = std::make_unique<agentd_process>(fmt::format("http://127.0.0.1:{}", unused_port()));
        ::umask(old);
    }
    a->call("agents_start", json::object{{"tasks", json::array{task("x")}}});
    for (char const* name : {"agentd.db", "agentd.db-wal", "agentd.db-shm", "token"}) {
        struct stat st {};
        ASSERT_EQ(::stat((a->state_dir() / name).c_str(), &st), 0) << name;
        EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    }
}

// Stops the fake upstream (SIGSTOP) so that every request to it hangs: connections are accepted
// by the kernel, nothing answers. Continued when the guard ends.
struct frozen_upstream {
    fake_upstream& fake;
    explicit frozen_upstream(fake_upstream& f) : fake(f) { fake.process().signal(SIGSTOP); }
    ~frozen_upstream() { fake.process().signal(SIGCONT); }
};

TEST_F(agentd_test, SigtermWithAHungUpstreamEndsSoonAfterTheGrace) {
    restart_agentd({"--shutdown-grace-ms", "200"});
    auto ids = ids_of(jobs_of(
        agentd_->call("agents_start",
                      json::object{{"tasks", json::array{task("t [[fake latency_ms=60000]]")}}})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    frozen_upstream frozen(*fake_);
    auto t0 = steady::now();
    agentd_->process().signal(SIGTERM);
    auto status = agentd_->process().wait_exit(10s);
    auto took = steady::now() - t0;
    ASSERT_TRUE(status.has_value()) << "the drain waited for the upstream's timeout";
    EXPECT_EQ(*status, 0);
    std::cerr << "shutdown with a hung upstream took "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
    EXPECT_LT(took, 4s);
    agentd_->start_again();
    auto s = agentd_->call("agents_status", json::object{{"jobs", ids}});
    EXPECT_EQ(str(jobs_of(s).at(0), "state"), "interrupted");
}

TEST_F(agentd_test, CancelIsAnsweredWhenTheAbortHangsEvenAcrossSigterm) {
    restart_agentd({"--shutdown-grace-ms", "200"});
    auto ids = ids_of(jobs_of(
        agentd_->call("agents_start",
                      json::object{{"tasks", json::array{task("a [[fake latency_ms=60000]]"),
                                                         task("b [[fake latency_ms=60000]]")}}})));
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 2, 5s));
    frozen_upstream frozen(*fake_);

    // Alone: answered within about a second although the abort never returns.
    auto t0 = steady::now();
    auto first =
        agentd_->call("agents_cancel", json::object{{"jobs", json::array{ids.as_array()[0]}}});
    auto took = steady::now() - t0;
    EXPECT_EQ(str(jobs_of(first).at(0), "state"), "cancelled");
    EXPECT_LT(took, 2500ms);

    // In flight when SIGTERM comes: the job reads cancelled as soon as the call has ended it and
    // is waiting on the abort. Still answered before the daemon exits.
    auto body = json::serialize(
        json::object{{"jsonrpc", "2.0"},
                     {"id", 7},
                     {"method", "agents_cancel"},
                     {"params", json::object{{"jobs", json::array{ids.as_array()[1]}}}}});
    http_response second;
    std::thread caller([&] {
        second = http_request(agentd_->port(), "POST", "/rpc", body,
                              {{"Authorization", "Bearer " + agentd_->token()}}, 10s);
    });
    auto deadline = steady::now() + 5s;
    auto status_of_b = [&] {
        auto s =
            agentd_->call("agents_status", json::object{{"jobs", json::array{ids.as_array()[1]}}});
        return str(jobs_of(s).at(0), "state");
    };
    while (status_of_b() != "cancelled" && steady::now() < deadline)
        std::this_thread::sleep_for(5ms);  // polls a condition, bounded by the deadline
    agentd_->process().signal(SIGTERM);
    caller.join();
    EXPECT_EQ(second.status, 200) << "no answer before exit";
    auto answer = json::parse(second.body.empty() ? "{}" : second.body).as_object();
    ASSERT_TRUE(answer.contains("result")) << second.body;
    EXPECT_EQ(str(answer.at("result").at("jobs").at(0), "state"), "cancelled");
    auto status = agentd_->process().wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
}

}  // namespace
}  // namespace agentd::test
