// child_process: runs a program for a test (posix_spawn), captures its stderr line by line and
// lets the test wait for a line or for the exit without sleeping. Only ever signals its own
// child, by PID; the destructor kills and reaps a child that is still running.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace agentd::test {

class child_process {
  public:
    // argv[0] is the program (a path, or a name looked up in PATH). The child gets this
    // process's stdin and stdout, stderr on a pipe, no other descriptor, and this process's
    // environment with `extra_env` entries (name, value) added or replacing same-named ones.
    explicit child_process(std::vector<std::string> argv,
                           std::vector<std::pair<std::string, std::string>> extra_env = {});
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;
    ~child_process();

    int pid() const { return pid_; }

    // First capture group (or the whole match when the regex has none) of the first stderr line,
    // from the start of the output, that matches `pattern`; nullopt after `timeout`, or as soon
    // as stderr closes with no match.
    std::optional<std::string> wait_for_line(std::regex const& pattern,
                                             std::chrono::milliseconds timeout);

    // Sends `sig` to the child, unless it has already been reaped.
    void signal(int sig);

    // Exit status, or -N when killed by signal N; nullopt if still running after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);

    // Everything the child wrote to stderr so far.
    std::string stderr_text() const;

  private:
    void read_stderr(int fd);
    bool try_reap(bool block);

    std::string name_;
    int pid_ = -1;
    int pidfd_ = -1;
    std::optional<int> exit_status_;
    int wake_pipe_[2] = {-1, -1};  // lets the destructor stop the reader thread
    bool verbose_ = false;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::string stderr_;
    std::vector<std::string> lines_;
    std::string partial_line_;
    bool stderr_closed_ = false;
    std::thread reader_;
};

}  // namespace agentd::test
