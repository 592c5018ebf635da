// task_group: the coroutines of the open connections, owned as one group. Shutdown asks them to
// stop (each registers how on stop_token(): an idle connection closes, a busy one answers first),
// waits for them to end, and aborts the ones still running (each registers on abort_token():
// its socket closes at once, whatever it was doing).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>

namespace agentd::daemon {

class task_group {
  public:
    // `what` names a child in the log line of an exception that ends it.
    task_group(boost::asio::any_io_executor ex, std::string what);

    // Runs `child` until it ends; it counts in size() from now on. An exception ends only it.
    void spawn(boost::asio::awaitable<void> child);
    std::size_t size() const;

    // Children register how they stop (std::stop_callback); request_stop() runs them all.
    std::stop_token stop_token() const;
    void request_stop();
    bool stop_requested() const;

    // Children register how they abort (close their socket: every pending operation then
    // completes with an error); join() runs them for the children left at its bound.
    std::stop_token abort_token() const;

    // Until every child has ended, or at most `bound`; then the ones left are aborted and
    // waited for, again at most `bound`.
    boost::asio::awaitable<void> join(std::chrono::milliseconds bound);

    struct state;  // public only for the coroutine that runs a child (task_group.cpp)

  private:
    std::shared_ptr<state> state_;
};

}  // namespace agentd::daemon
