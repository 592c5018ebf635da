// task_group on Asio's per-operation cancellation: every child is spawned bound to a
// cancellation_signal of its own, kept in a list until the child's completion handler removes
// it (just after: see spawn()). A child leaves the count as its frame ends, as it did when each
// connection unregistered itself, and join() is woken once none is left.
#include "daemon/task_group.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include <iostream>
#include <list>

namespace agentd::daemon {
namespace asio = boost::asio;

struct task_group::state {
    asio::any_io_executor ex;
    std::string what;
    std::list<asio::cancellation_signal> children;
    std::list<asio::cancellation_signal> ended;  // signals of ended children, until erased
    std::size_t running = 0;                     // children whose coroutine has not ended
    std::stop_source stopping;
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

}  // namespace

void task_group::spawn(asio::awaitable<void> child) {
    auto it = state_->children.emplace(state_->children.end());
    ++state_->running;
    auto done = [s = state_, it](std::exception_ptr e) {
        // Co_spawn calls this from inside the child's coroutine machinery, which still uses the
        // child's cancellation signal: the signal goes once that has unwound.
        s->ended.splice(s->ended.end(), s->children, it);
        asio::post(s->ex, [s, it] { s->ended.erase(it); });
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (std::exception const& x) {
            std::cerr << "agentd: " << s->what << " error: " << x.what() << "\n";
        } catch (...) {
            std::cerr << "agentd: " << s->what << " error\n";
        }
    };
    asio::co_spawn(state_->ex, run_child(state_, std::move(child)),
                   asio::bind_cancellation_slot(it->slot(), std::move(done)));
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

asio::awaitable<void> task_group::join(std::chrono::milliseconds bound) {
    auto s = state_;
    auto const deadline = std::chrono::steady_clock::now() + bound;
    while (s->running > 0 && std::chrono::steady_clock::now() < deadline) {
        [[maybe_unused]] auto woken = co_await s->emptied.wait_until(deadline);
    }
    for (auto& child : s->children) child.emit(asio::cancellation_type::terminal);
}

}  // namespace agentd::daemon
