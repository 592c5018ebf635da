// agentctl's live commands against the real agentd: `watch` with its output on a pipe (plain
// lines per change, only the watched session, exit code of --until-idle, --once's table), and the
// progress display of `start --wait` on a pseudo-terminal (forkpty): ANSI redraws in place with a
// spinner, final marks per job, then the outputs and the exit code scripts rely on.
#include "agentd_fixture.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

// agentctl as a child whose stdout is a pipe or a pty, read with deadlines (never a blind sleep).
class agentctl_child {
  public:
    agentctl_child(agentd_process& a, std::vector<std::string> args, bool pty) {
        std::vector<std::string> argv{AGENTCTL_PATH, "--url",
                                      fmt::format("http://127.0.0.1:{}", a.port()), "--state-dir",
                                      a.state_dir().string()};
        argv.insert(argv.end(), args.begin(), args.end());
        int out[2] = {-1, -1};
        if (pty) {
            winsize size{40, 120, 0, 0};
            pid_ = ::forkpty(&fd_, nullptr, nullptr, &size);
        } else if (::pipe(out) == 0) {
            pid_ = ::fork();
            fd_ = out[0];
        }
        if (pid_ == 0) {
            if (!pty) {
                ::dup2(out[1], STDOUT_FILENO);
                ::close(out[0]);
                ::close(out[1]);
            }
            std::vector<char*> cargv;
            for (auto& s : argv) cargv.push_back(s.data());
            cargv.push_back(nullptr);
            ::execv(cargv[0], cargv.data());
            ::_exit(127);
        }
        if (!pty) ::close(out[1]);
    }
    ~agentctl_child() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);  // only our own child, by pid
            ::waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) ::close(fd_);
    }

    // Reads until `text` has appeared in the output; false after `timeout` or at end of output.
    bool read_until(std::string const& text, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (output_.find(text) == std::string::npos) {
            if (!read_some(deadline)) return false;
        }
        return true;
    }
    // Reads to the end of output and reaps the child; its exit code, or -1 on timeout.
    int finish(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (read_some(deadline)) {
        }
        if (std::chrono::steady_clock::now() >= deadline) return -1;
        int status = 0;
        ::waitpid(pid_, &status, 0);
        status_ = status;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::string const& output() const { return output_; }
    // The output's lines without the pty's carriage returns.
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::string line;
        for (char c : output_) {
            if (c == '\r') continue;
            if (c != '\n') {
                line += c;
                continue;
            }
            out.push_back(line);
            line.clear();
        }
        return out;
    }

  private:
    bool read_some(std::chrono::steady_clock::time_point deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
        char buf[4096];
        auto n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return false;  // EOF, or EIO once a pty's child has exited
        output_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    int pid_ = -1;
    int fd_ = -1;
    std::optional<int> status_;
    std::string output_;
};

std::string job_id(json::object const& started, std::size_t i) {
    return str(jobs_of(started).at(i), "id");
}

// The line of `id` that reports `state`, or "" when there is none.
std::string line_of(std::vector<std::string> const& lines, std::string const& id,
                    std::string const& state) {
    for (auto const& line : lines)
        if (line.find(id) != std::string::npos && line.find(" " + state) != std::string::npos)
            return line;
    return {};
}

TEST_F(agentd_test, AgentctlWatchPrintsEveryChangeOfTheSessionUntilIdle) {
    auto held = agentd_->call(
        "agents_start",
        {{"session", "watched"}, {"tasks", json::array{task("hold [[fake latency_ms=20000]]")}}});
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentctl_child watch(*agentd_, {"--session", "watched", "watch", "--until-idle"}, false);
    auto held_id = job_id(held, 0);
    ASSERT_TRUE(watch.read_until(held_id + "  running", 5s)) << watch.output();  // the snapshot

    auto more = agentd_->call(
        "agents_start",
        {{"session", "watched"},
         {"tasks", json::array{task("quick", "the quick one"), task("boom [[fake fault=500]]")}}});
    auto other = agentd_->call("agents_start",
                               {{"session", "elsewhere"}, {"tasks", json::array{task("x")}}});
    ASSERT_TRUE(watch.read_until(job_id(more, 1) + "  failed", 5s)) << watch.output();
    ASSERT_TRUE(watch.read_until(job_id(more, 0) + "  completed", 5s)) << watch.output();
    agentd_->call("agents_cancel", {{"session", "watched"}, {"jobs", json::array{held_id}}});

    EXPECT_EQ(watch.finish(10s), 1) << watch.output();  // one failed, one cancelled
    auto lines = watch.lines();
    EXPECT_NE(line_of(lines, held_id, "cancelled"), "") << watch.output();
    EXPECT_NE(line_of(lines, job_id(more, 0), "completed").find("the quick one"), std::string::npos)
        << watch.output();
    EXPECT_NE(line_of(lines, job_id(more, 1), "failed").find("upstream/prompt"), std::string::npos)
        << watch.output();
    EXPECT_EQ(watch.output().find(job_id(other, 0)), std::string::npos) << "another session's job";
    EXPECT_EQ(watch.output().find('\x1b'), std::string::npos) << "no ANSI on a pipe";
}

TEST_F(agentd_test, AgentctlWatchOncePrintsTheTable) {
    auto started = agentd_->call("agents_start", {{"tasks", json::array{task("alpha", "first")}}});
    agentd_->call("agents_wait", {{"timeout_ms", 5000}});
    agentctl_child watch(*agentd_, {"watch", "--once"}, false);
    EXPECT_EQ(watch.finish(10s), 0);
    auto lines = watch.lines();
    ASSERT_EQ(lines.size(), 2u) << watch.output();
    EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
    EXPECT_NE(line_of(lines, job_id(started, 0), "completed").find("first"), std::string::npos);
}

TEST_F(agentd_test, AgentctlStartWaitDrawsLiveProgressOnATerminal) {
    agentctl_child tty(*agentd_,
                       {"--session", "tty", "start", "--wait", "--timeout", "20s",
                        "slow [[fake latency_ms=800]]", "boom [[fake fault=500]]"},
                       true);
    EXPECT_EQ(tty.finish(20s), 1) << tty.output();  // the failed job decides
    auto const& out = tty.output();
    // Redrawn in place: back over the two progress lines, each line erased before it is drawn.
    EXPECT_NE(out.find("\x1b[2F"), std::string::npos) << out;
    EXPECT_NE(out.find("\x1b[2K"), std::string::npos) << out;
    auto status = agentd_->call("agents_status", {{"session", "tty"}});
    ASSERT_EQ(jobs_of(status).size(), 2u);
    std::string slow_id, boom_id;
    for (auto const& j : jobs_of(status))
        (str(j, "state") == "completed" ? slow_id : boom_id) = str(j, "id");
    ASSERT_FALSE(slow_id.empty() || boom_id.empty()) << json::serialize(status);
    // A spinner frame while it ran, then the final marks; then the outputs like a plain wait.
    EXPECT_NE(out.find(" " + slow_id + "  running"), std::string::npos) << out;
    EXPECT_NE(out.find("+ " + slow_id + "  completed"), std::string::npos) << out;
    EXPECT_NE(out.find("x " + boom_id + "  failed"), std::string::npos) << out;
    EXPECT_NE(out.find("== " + slow_id + " (completed"), std::string::npos) << out;
    EXPECT_NE(out.find("echo: slow"), std::string::npos) << out;
}

TEST_F(agentd_test, AgentctlWaitOnAPipeStaysPlain) {
    auto started = agentd_->call("agents_start", {{"tasks", json::array{task("alpha")}}});
    agentctl_child wait(*agentd_, {"wait", "--timeout", "10s", job_id(started, 0)}, false);
    EXPECT_EQ(wait.finish(15s), 0);
    EXPECT_EQ(wait.output().find('\x1b'), std::string::npos) << wait.output();
    EXPECT_NE(wait.output().find("echo: alpha"), std::string::npos) << wait.output();
}

}  // namespace
}  // namespace agentd::test
