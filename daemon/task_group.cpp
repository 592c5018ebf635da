// task_group: a count of running children, two stop sources (stop, abort) they register on, and
// a wake_signal for join(). Not Asio's per-operation cancellation: a cancellation slot bound to
// co_spawn's handler outlived its signal in Boost 1.81 (UBSan saw a member call on a destroyed
// cancellation handler when connections ended in a flood), so children stop by closing their
// own sockets, which every pending operation of theirs observes.
#include "daemon/task_group.hpp"

#include "common/log.hpp"
#include "jobs/wake_signal.hpp"

#include <boost/asio/co_spawn.hpp>

namespace agentd::daemon {
namespace asio = boost::asio;

struct task_group::state {
    asio::any_io_executor ex;
    std::string what;
    std::size_t running = 0;  // children whose coroutine has not ended
    std::stop_source stopping;
    std::stop_source aborting;
    jobs::wake_signal emptied;

    state(asio::any_io_executor e, std::string w)
        : ex(std::move(e)), what(std::move(w)), emptied(ex) {}
};

task_group::task_group(asio::any_io_executor ex, std::string what)
    : state_(std::make_shared<state>(std::move(ex), std::move(what))) {}

namespace {

asio::awaitable<void> run_child(std::shared_ptr<task_group::state> s, asio::awaitable<void> child) {
    struct leave {
        task_group::state& s;
        ~leave() {
            if (--s.running == 0) s.emptied.notify();
        }
    } counted{*s};
    co_await std::move(child);
}

// Waits until no child runs or `deadline` passes.
asio::awaitable<void> until_empty(std::shared_ptr<task_group::state> s,
                                  std::chrono::steady_clock::time_point deadline) {
    while (s->running > 0 && std::chrono::steady_clock::now() < deadline) {
        [[maybe_unused]] auto woken = co_await s->emptied.wait_until(deadline);
    }
}

}  // namespace

void task_group::spawn(asio::awaitable<void> child) {
    ++state_->running;
    asio::co_spawn(state_->ex, run_child(state_, std::move(child)),
                   [s = state_](std::exception_ptr e) {
                       if (!e) return;
                       try {
                           std::rethrow_exception(e);
                       } catch (std::exception const& x) {
                           log::error("task_failed", {{"task", s->what}, {"error", x.what()}});
                       } catch (...) {
                           log::error("task_failed", {{"task", s->what}});
                       }
                   });
}

std::size_t task_group::size() const {
    return state_->running;
}

std::stop_token task_group::stop_token() const {
    return state_->stopping.get_token();
}

void task_group::request_stop() {
    state_->stopping.request_stop();
}

bool task_group::stop_requested() const {
    return state_->stopping.stop_requested();
}

std::stop_token task_group::abort_token() const {
    return state_->aborting.get_token();
}

asio::awaitable<void> task_group::join(std::chrono::milliseconds bound) {
    auto s = state_;
    co_await until_empty(s, std::chrono::steady_clock::now() + bound);
    if (s->running == 0) co_return;
    s->aborting.request_stop();
    co_await until_empty(s, std::chrono::steady_clock::now() + bound);
}

}  // namespace agentd::daemon
