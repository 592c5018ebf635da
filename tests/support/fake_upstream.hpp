// fake_upstream: runs the fake OpenCode server (tests/fake_upstream) as a child process on a free
// loopback port for one test, and wraps its /_fake/ control endpoints (stats, reset, and
// event-driven counter waits) so tests never sleep to observe upstream traffic.
#pragma once

#include "process.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agentd::test {

class fake_upstream {
  public:
    // Starts `binary` with `--listen 127.0.0.1:0` followed by `extra_args` (later flags win) and
    // waits up to 5 s for its listening line; throws std::runtime_error, with the child's
    // stderr, if it does not come.
    explicit fake_upstream(std::string binary);
    fake_upstream(std::string binary, std::vector<std::string> extra_args);
    fake_upstream(fake_upstream const&) = delete;
    fake_upstream& operator=(fake_upstream const&) = delete;
    // Stops the server with SIGTERM (SIGKILL if it has not exited after 5 s).
    ~fake_upstream();

    unsigned short port() const { return port_; }
    std::string url() const;  // "http://127.0.0.1:PORT"

    // GET /_fake/stats: counters, aborted_sessions, directories, last_create_body,
    // last_prompt_body.
    boost::json::object stats() const;
    // True as soon as counter `name` >= `min`, false once `timeout` passes (GET /_fake/wait).
    bool wait_counter(std::string const& name, std::int64_t min,
                      std::chrono::milliseconds timeout) const;
    // True as soon as counter `name` <= `max`: for gauges such as prompts_in_flight going down.
    bool wait_counter_at_most(std::string const& name, std::int64_t max,
                              std::chrono::milliseconds timeout) const;
    // POST /_fake/reset: zeroes counters and lists; sessions stay.
    void reset() const;

    // SIGTERM and wait; the exit status, or nullopt if it did not exit within `timeout`.
    std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    child_process& process() { return *process_; }

  private:
    bool wait_on(std::string const& condition, std::chrono::milliseconds timeout) const;

    std::unique_ptr<child_process> process_;
    unsigned short port_ = 0;
    bool stopped_ = false;
};

}  // namespace agentd::test
