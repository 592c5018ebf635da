// child_process implementation: posix_spawn with stderr on a pipe, a reader thread that splits
// it into lines under a mutex, and pidfd-based exit waits so nothing polls with sleeps.
#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

extern char** environ;

namespace agentd::test {
namespace {

[[noreturn]] void throw_errno(char const* what, int err = errno) {
    throw std::system_error(err, std::generic_category(), what);
}

std::vector<std::string> merged_environment(
    std::vector<std::pair<std::string, std::string>> const& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string entry(*e);
        auto name = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (auto const& [key, value] : extra) replaced = replaced || key == name;
        if (!replaced) env.push_back(std::move(entry));
    }
    for (auto const& [key, value] : extra) env.push_back(key + "=" + value);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

}  // namespace

child_process::child_process(std::vector<std::string> argv,
                             std::vector<std::pair<std::string, std::string>> extra_env) {
    if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
    auto slash = argv[0].rfind('/');
    name_ = slash == std::string::npos ? argv[0] : argv[0].substr(slash + 1);
    char const* verbose = std::getenv("AGENTD_TEST_VERBOSE");
    verbose_ = verbose && std::string_view(verbose) == "1";

    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
    if (pipe2(wake_pipe_, O_CLOEXEC) != 0) {
        int err = errno;
        ::close(err_pipe[0]);
        ::close(err_pipe[1]);
        throw_errno("pipe2", err);
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    // Sockets the test holds (Asio does not mark them close-on-exec) must not leak into the
    // child, or closing a connection in the test would not close it for the server.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    // The test runner may block or ignore signals; the child starts from a clean slate so that
    // SIGTERM means what the test expects.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    auto env = merged_environment(extra_env);
    auto env_ptrs = c_strings(env);
    auto argv_ptrs = c_strings(argv);
    int rc =
        posix_spawnp(&pid_, argv[0].c_str(), &actions, &attr, argv_ptrs.data(), env_ptrs.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(err_pipe[1]);
    if (rc != 0) {
        ::close(err_pipe[0]);
        ::close(wake_pipe_[0]);
        ::close(wake_pipe_[1]);
        throw std::system_error(rc, std::generic_category(), "posix_spawn " + argv[0]);
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));  // -1: fall back to waitpid
    reader_ = std::thread([this, fd = err_pipe[0]] { read_stderr(fd); });
}

child_process::~child_process() {
    if (!exit_status_) {
        ::kill(pid_, SIGKILL);
        try_reap(true);
    }
    char byte = 1;
    [[maybe_unused]] auto n = ::write(wake_pipe_[1], &byte, 1);
    reader_.join();
    ::close(wake_pipe_[0]);
    ::close(wake_pipe_[1]);
    if (pidfd_ >= 0) ::close(pidfd_);
}

void child_process::read_stderr(int fd) {
    char buf[4096];
    for (;;) {
        pollfd fds[2] = {{fd, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        // Drain what the child wrote before honouring a stop request.
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && fds[1].revents) break;
        auto n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        std::vector<std::string> complete;
        {
            std::lock_guard lock(mutex_);
            stderr_.append(buf, static_cast<std::size_t>(n));
            partial_line_.append(buf, static_cast<std::size_t>(n));
            std::size_t pos;
            while ((pos = partial_line_.find('\n')) != std::string::npos) {
                lines_.push_back(partial_line_.substr(0, pos));
                if (verbose_) complete.push_back(lines_.back());
                partial_line_.erase(0, pos + 1);
            }
        }
        changed_.notify_all();
        for (auto const& line : complete)
            std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
    }
    {
        std::lock_guard lock(mutex_);
        if (!partial_line_.empty()) lines_.push_back(std::exchange(partial_line_, {}));
        stderr_closed_ = true;
    }
    changed_.notify_all();
    ::close(fd);
}

std::optional<std::string> child_process::wait_for_line(std::regex const& pattern,
                                                        std::chrono::milliseconds timeout) {
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mutex_);
    std::size_t checked = 0;
    for (;;) {
        for (; checked < lines_.size(); ++checked) {
            std::smatch m;
            if (std::regex_search(lines_[checked], m, pattern)) {
                return m.size() > 1 ? m[1].str() : m[0].str();
            }
        }
        if (stderr_closed_) return std::nullopt;
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
            checked == lines_.size()) {
            return std::nullopt;
        }
    }
}

void child_process::signal(int sig) {
    // Once reaped, the PID may belong to someone else: never signal it again.
    if (!exit_status_) ::kill(pid_, sig);
}

bool child_process::try_reap(bool block) {
    if (exit_status_) return true;
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != pid_) return false;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return true;
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
    if (try_reap(false)) return exit_status_;
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) left = std::chrono::milliseconds(0);
        if (pidfd_ >= 0) {
            pollfd fd{pidfd_, POLLIN, 0};
            int r = ::poll(&fd, 1, static_cast<int>(left.count()));
            if (r < 0 && errno == EINTR) continue;
        } else {
            // No pidfd (old kernel): a short nap is the only portable wait for one child.
            ::usleep(static_cast<useconds_t>(std::min<long>(left.count(), 5) * 1000));
        }
        if (try_reap(false)) return exit_status_;
        if (left.count() == 0) return std::nullopt;
    }
}

std::string child_process::stderr_text() const {
    std::lock_guard lock(mutex_);
    return stderr_;
}

}  // namespace agentd::test
