// A short-lived cache of upstream lists looked up before a launch (opencode's agents and
// providers, an OpenAI server's models; DESIGN §5 checks before launch): callers within `ttl` of
// a fetch share its answer, and callers that come while a fetch is in flight wait for it instead
// of asking again, so a fan-out of 64 tasks costs one fetch. Failures are handed to the callers
// that waited on them but not kept. Include from .cpp only (wake_signal).
#pragma once

#include "jobs/upstream/backend.hpp"
#include "jobs/wake_signal.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace agentd::jobs::upstream {

template <class T>
class shared_lookup {
  public:
    using clock = std::chrono::steady_clock;
    using value_ptr = std::shared_ptr<T const>;

    shared_lookup(boost::asio::any_io_executor ex, clock::duration ttl, std::size_t max_keys)
        : ex_(std::move(ex)), ttl_(ttl), max_keys_(max_keys) {}

    // The value for `key`: the cached one while fresh, else the answer of the fetch in flight,
    // else that of `fetch()` (an awaitable<up_result<T>>) run now. Waiting ends with the
    // caller's stop (cancelled) or at `deadline` (timeout). A fetch whose caller was stopped
    // answers nobody else: one of its waiters fetches again.
    template <class Fetch>
    boost::asio::awaitable<up_result<value_ptr>> get(std::string const& key, call_control& ctl,
                                                     clock::time_point deadline, Fetch fetch) {
        for (;;) {
            auto& e = entry_for(key);
            if (e.value && clock::now() - e.fetched < ttl_) co_return e.value;
            if (!e.loading) break;
            auto waited = co_await wait(e, ctl, deadline);
            if (waited) co_return std::move(*waited);
            if (ctl.stopped() != stop_reason::none) co_return stopped();
            if (clock::now() >= deadline) co_return timed_out();
        }
        auto& e = entries_.at(key);  // a loading entry is never evicted
        e.loading = true;
        auto got = co_await fetch();
        std::optional<up_result<value_ptr>> answer;
        if (got) {
            e.value = std::make_shared<T const>(std::move(*got));
            e.fetched = clock::now();
            answer = e.value;
        } else if (ctl.stopped() == stop_reason::none) {
            answer = got.error();
        }
        e.loading = false;
        for (auto* w : std::exchange(e.waiters, {})) {
            w->released = true;
            w->answer = answer;
            w->signal.notify();
        }
        if (!answer) co_return stopped();
        co_return std::move(*answer);
    }

  private:
    struct waiter {
        explicit waiter(boost::asio::any_io_executor ex) : signal(std::move(ex)) {}
        wake_signal signal;
        bool released = false;  // taken off the entry's list by the fetch that ended
        std::optional<up_result<value_ptr>> answer;
    };

    struct entry {
        value_ptr value;
        clock::time_point fetched;
        bool loading = false;
        std::vector<waiter*> waiters;
    };

    static upstream_error stopped() {
        return {protocol::error_kind::cancelled, protocol::error_phase::create, "stopped", {}};
    }
    static upstream_error timed_out() {
        return {protocol::error_kind::timeout,
                protocol::error_phase::create,
                "upstream did not answer before the deadline",
                {}};
    }

    // The fetch's answer, or nullopt when this caller stopped, its deadline passed or the fetch
    // answered nobody.
    boost::asio::awaitable<std::optional<up_result<value_ptr>>> wait(entry& e, call_control& ctl,
                                                                     clock::time_point deadline) {
        waiter w(ex_);
        std::stop_callback hook(ctl.stop_token(), [&w] { w.signal.fire(); });
        e.waiters.push_back(&w);
        while (!w.released && ctl.stopped() == stop_reason::none) {
            auto woken = co_await w.signal.wait_until(deadline);
            if (!woken) break;
        }
        if (!w.released) std::erase(e.waiters, &w);  // e still loads, so it still exists
        co_return std::move(w.answer);
    }

    // The entry of `key`, made room for: past max_keys (callers name directories) entries not
    // loading are dropped, stale ones first.
    entry& entry_for(std::string const& key) {
        if (auto it = entries_.find(key); it != entries_.end()) return it->second;
        auto const now = clock::now();
        for (bool stale_only : {true, false}) {
            for (auto it = entries_.begin();
                 it != entries_.end() && entries_.size() >= max_keys_;) {
                bool stale = now - it->second.fetched >= ttl_;
                it = !it->second.loading && (stale || !stale_only) ? entries_.erase(it)
                                                                   : std::next(it);
            }
        }
        return entries_[key];
    }

    boost::asio::any_io_executor ex_;
    clock::duration ttl_;
    std::size_t max_keys_;
    std::map<std::string, entry> entries_;
};

}  // namespace agentd::jobs::upstream
