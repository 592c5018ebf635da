// agentctl's live commands against the real agentd: `watch` with its output on a pipe (plain
// lines per change, only the watched session, exit code of --until-idle, --once's table), and the
// progress display of `start --wait` on a pseudo-terminal (forkpty): ANSI redraws in place with a
// spinner, final marks per job, then the outputs and the exit code scripts rely on. Jobs that
// need input (issue #16): the inline prompt on a terminal, exit 5 on a pipe, --on-input ignore,
// and the current tool step beside each job. Ctrl-C ends a wait but not its jobs; a failed job's
// error is on lines of its own on an 80-column terminal.
#include "agentd_fixture.hpp"

#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

// agentctl as a child whose stdout is a pipe or a pty, read with deadlines (never a blind sleep).
class agentctl_child {
  public:
    agentctl_child(agentd_process& a, std::vector<std::string> args, bool pty,
                   unsigned short columns = 120) {
        std::vector<std::string> argv{AGENTCTL_PATH, "--url",
                                      fmt::format("http://127.0.0.1:{}", a.port()), "--state-dir",
                                      a.state_dir().string()};
        argv.insert(argv.end(), args.begin(), args.end());
        int out[2] = {-1, -1};
        if (pty) {
            winsize size{40, columns, 0, 0};
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
        if (!ended_) return -1;  // the deadline came first (poll may wake a hair before it)
        int status = 0;
        ::waitpid(pid_, &status, 0);
        status_ = status;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    // Types `text` (on a pty: at the terminal the child reads from).
    void write(std::string const& text) {
        ASSERT_EQ(::write(fd_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    }
    std::string const& output() const { return output_; }
    // True once the child has a handler for SIGINT (the SigCgt mask of /proc/PID/status), so a
    // signal sent then is one agentctl handles; false after `timeout`.
    bool catches_sigint(std::chrono::milliseconds timeout) const {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        do {
            std::ifstream status(fmt::format("/proc/{}/status", pid_));
            for (std::string line; std::getline(status, line);)
                if (line.rfind("SigCgt:", 0) == 0 &&
                    (std::stoull(line.substr(7), nullptr, 16) >> (SIGINT - 1) & 1) != 0)
                    return true;
            std::this_thread::sleep_for(10ms);  // polls a condition, bounded by the deadline
        } while (std::chrono::steady_clock::now() < deadline);
        return false;
    }
    void interrupt() const { ::kill(pid_, SIGINT); }  // our own child, by pid
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
        int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) return true;
        if (ready <= 0) return false;
        char buf[4096];
        auto n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) return true;
        if (n <= 0) {  // EOF, or EIO once a pty's child has exited
            ended_ = true;
            return false;
        }
        output_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    int pid_ = -1;
    int fd_ = -1;
    std::optional<int> status_;
    bool ended_ = false;  // the output reached its end
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

TEST_F(agentd_test, AgentctlWaitAsksInlineOnATerminal) {
    agentctl_child tty(*agentd_,
                       {"--session", "ask", "start", "--wait", "--timeout", "20s",
                        "clean [[fake permission=bash patterns=rm_-rf_build tool_output=gone]]"},
                       true);
    ASSERT_TRUE(tty.read_until("[d]eny", 10s)) << tty.output();
    auto const& out = tty.output();
    EXPECT_NE(out.find("wants to run bash `rm -rf build`"), std::string::npos) << out;
    EXPECT_NE(out.find("waiting"), std::string::npos) << out;  // drawn distinctly first
    tty.write("a\n");
    EXPECT_EQ(tty.finish(20s), 0) << tty.output();
    EXPECT_NE(tty.output().find("answered;"), std::string::npos) << tty.output();
    EXPECT_NE(tty.output().find("permission once: gone"), std::string::npos) << tty.output();

    // A question: its options numbered; a number picks one.
    agentctl_child asked(*agentd_,
                         {"--session", "ask", "start", "--wait", "--timeout", "20s",
                          "pick [[fake question=red|green|blue]]"},
                         true);
    ASSERT_TRUE(asked.read_until("to dismiss: ", 10s)) << asked.output();
    EXPECT_NE(asked.output().find("  2) green"), std::string::npos) << asked.output();
    asked.write("7\n");  // no such option: asked again
    ASSERT_TRUE(asked.read_until("pick options 1 to 3", 10s)) << asked.output();
    asked.write("2\n");
    EXPECT_EQ(asked.finish(20s), 0) << asked.output();
    EXPECT_NE(asked.output().find("answered: green"), std::string::npos) << asked.output();
}

TEST_F(agentd_test, AgentctlWaitOnAPipeNeedsInputUnlessIgnored) {
    auto started = agentd_->call(
        "agents_start",
        {{"tasks", json::array{task("[[fake permission=edit patterns=src/a.cpp|src/b.cpp]]")}}});
    auto id = job_id(started, 0);
    auto waited = agentd_->call("agents_wait",
                                {{"jobs", json::array{json::string(id)}}, {"timeout_ms", 10'000}});
    ASSERT_EQ(waited.at("needs_input"), (json::array{json::string(id)})) << waited;
    auto request = str(jobs_of(waited).at(0).at("requests").at(0), "id");

    // On a pipe: the request's line for scripts, exit 5.
    agentctl_child plain(*agentd_, {"wait", "--timeout", "10s", id}, false);
    EXPECT_EQ(plain.finish(15s), 5) << plain.output();
    EXPECT_NE(
        plain.output().find(id + "  " + request + "  permission  edit  src/a.cpp | src/b.cpp"),
        std::string::npos)
        << plain.output();
    // watch too: the waiting line, the request, exit 5.
    agentctl_child watch(*agentd_, {"watch"}, false);
    EXPECT_EQ(watch.finish(15s), 5) << watch.output();
    EXPECT_NE(watch.output().find(id + "  waiting"), std::string::npos) << watch.output();
    EXPECT_NE(watch.output().find("needs input: edit `src/a.cpp`, `src/b.cpp`"), std::string::npos)
        << watch.output();
    EXPECT_NE(watch.output().find(id + "  " + request + "  permission"), std::string::npos)
        << watch.output();

    // --on-input ignore waits through it; another client answers; the wait then ends with 0.
    agentctl_child ignoring(*agentd_, {"wait", "--on-input", "ignore", "--timeout", "20s", id},
                            false);
    EXPECT_EQ(ignoring.finish(300ms), -1) << "still waiting: " << ignoring.output();
    agentd_->call("agents_respond", {{"job", id}, {"request", request}, {"decision", "allow"}});
    EXPECT_EQ(ignoring.finish(15s), 0) << ignoring.output();
    EXPECT_NE(ignoring.output().find("permission once: ok"), std::string::npos)
        << ignoring.output();
}

TEST_F(agentd_test, AgentctlShowsTheCurrentToolStep) {
    // On a terminal, beside the spinner.
    agentctl_child tty(*agentd_,
                       {"--session", "steps", "start", "--wait", "--timeout", "20s",
                        "build [[fake tool=bash tool_title=npm_test tool_ms=1500]]"},
                       true);
    ASSERT_TRUE(tty.read_until("bash: npm test", 10s)) << tty.output();
    EXPECT_EQ(tty.finish(20s), 0) << tty.output();
    EXPECT_NE(tty.output().find("tool said: ok"), std::string::npos) << tty.output();

    // On a pipe, a watch line per step change; peek lists the steps before the output.
    auto started = agentd_->call(
        "agents_start",
        {{"session", "steps"},
         {"tasks", json::array{task("[[fake tool=bash tool_title=make_check tool_ms=1500]]")}}});
    auto id = job_id(started, 0);
    agentctl_child watch(*agentd_, {"--session", "steps", "watch", "--until-idle"}, false);
    ASSERT_TRUE(watch.read_until("bash: make check", 10s)) << watch.output();
    EXPECT_EQ(watch.finish(15s), 0) << watch.output();
    auto lines = watch.lines();
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](std::string const& line) {
        return line.rfind(id + "  running", 0) == 0 && line.ends_with("  bash: make check");
    })) << watch.output();
    agentctl_child peek(*agentd_, {"--session", "steps", "peek", id}, false);
    EXPECT_EQ(peek.finish(10s), 0);
    EXPECT_EQ(peek.output().rfind("completed  bash: make check\n\n", 0), 0u) << peek.output();
}

// Ctrl-C stops waiting, not the jobs: exit 130 with a note, and the job is still running.
TEST_F(agentd_test, AgentctlCtrlCStopsTheWaitNotTheJobs) {
    auto started = agentd_->call("agents_start",
                                 {{"tasks", json::array{task("hold [[fake latency_ms=20000]]")}}});
    auto id = job_id(started, 0);
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));

    // On a terminal: the live display is up (so the wait is under way), then Ctrl-C.
    agentctl_child tty(*agentd_, {"wait", id}, true);
    ASSERT_TRUE(tty.read_until(id + "  running", 10s)) << tty.output();
    ASSERT_TRUE(tty.catches_sigint(5s));
    tty.interrupt();
    EXPECT_EQ(tty.finish(10s), 130) << tty.output();
    EXPECT_NE(tty.output().find("stopped waiting; the jobs go on"), std::string::npos)
        << tty.output();

    // On a pipe (plain agents_wait requests), the same.
    agentctl_child plain(*agentd_, {"wait"}, false);
    ASSERT_TRUE(plain.catches_sigint(5s));
    EXPECT_EQ(plain.finish(300ms), -1) << "still waiting: " << plain.output();
    plain.interrupt();
    EXPECT_EQ(plain.finish(10s), 130) << plain.output();

    auto status = agentd_->call("agents_status", {{"jobs", json::array{json::string(id)}}});
    EXPECT_EQ(str(jobs_of(status).at(0), "state"), "running") << status;
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 0) << "the upstream prompt goes on";
}

// A failed job's error is never cut away at 80 columns: it goes under the job's line, wrapped.
TEST_F(agentd_test, AgentctlLiveDisplayKeepsTheErrorAtEightyColumns) {
    std::string const description(40, 'd');  // the job's line alone nearly fills the width
    agentctl_child tty(*agentd_,
                       {"--session", "narrow", "start", "--wait", "--description", description,
                        "boom [[fake fault=500]]"},
                       true, 80);
    EXPECT_EQ(tty.finish(20s), 1) << tty.output();
    auto lines = tty.lines();
    auto error = std::find_if(lines.begin(), lines.end(), [](std::string const& line) {
        return line.find("\x1b[2K    error: upstream/prompt: ") != std::string::npos;
    });
    ASSERT_NE(error, lines.end()) << tty.output();
    for (auto const& line : lines) {
        auto erase = line.rfind("\x1b[2K");
        if (erase == std::string::npos) continue;  // the plain wait blocks after the display
        EXPECT_LT(line.size() - erase - 4, 80u) << line;
    }
}

}  // namespace
}  // namespace agentd::test
