// Raw loopback sockets for the hostile-client run: connect, stop-aware waits, and a flood that
// writes one head and then a unit forever, reading what the daemon answers, until the daemon
// closes the connection or the run stops. Also VmRSS of a process.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace agentd::test::hostile {

using clock_type = std::chrono::steady_clock;

// An owned socket descriptor, closed on destruction.
class socket_fd {
  public:
    socket_fd() = default;
    explicit socket_fd(int fd) : fd_(fd) {}
    socket_fd(socket_fd&& o) noexcept : fd_(o.release()) {}
    socket_fd& operator=(socket_fd&& o) noexcept;
    socket_fd(socket_fd const&) = delete;
    socket_fd& operator=(socket_fd const&) = delete;
    ~socket_fd() { reset(); }

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    int release();
    void reset();

  private:
    int fd_ = -1;
};

// A non-blocking TCP socket connected to 127.0.0.1:port; invalid when the connect fails or takes
// over 2 s.
socket_fd connect_loopback(int port);

// Writes all of `bytes`, waiting for room in slices so `stop` is honoured; false when the peer
// closed or `stop` was set first.
bool send_all(int fd, std::string_view bytes, std::atomic<bool> const& stop);

// Waits until `stop` is set or `d` has passed, in short slices; true when `stop` is set.
bool wait_stop(std::atomic<bool> const& stop, std::chrono::milliseconds d);

// What one flood connection got the daemon to take.
struct flood_outcome {
    std::size_t bytes = 0;          // bytes the daemon's socket accepted
    bool closed_by_daemon = false;  // false: still open when the run stopped
    std::string reply;              // the first bytes the daemon answered, if any
};

// Writes `unit` `count` times (forever when count < 0) on the non-blocking socket `fd` while
// reading what the peer sends (its first bytes kept in `reply`); stops when the peer closes or
// `stop` is set. `bytes` counts what the peer's socket took.
flood_outcome pump(int fd, std::string_view unit, long count, std::atomic<bool> const& stop);

// Connects, writes `head`, then `unit` over and over until the daemon closes (EOF, reset) or
// `stop` is set; reads and keeps the start of whatever the daemon sends meanwhile.
flood_outcome flood_once(int port, std::string_view head, std::string_view unit,
                         std::atomic<bool> const& stop);

// Lowers the calling thread's CPU priority (nice 10): load generators must not starve the
// daemon under test or the sampler on a small machine.
void lower_thread_priority();

// VmRSS of `pid` in KiB, -1 when unreadable.
long rss_kib(int pid);
// User + system CPU time `pid` has used, in seconds (0 when unreadable).
double cpu_seconds(int pid);

}  // namespace agentd::test::hostile
