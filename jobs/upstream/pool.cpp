// The upstream pool: the choice of a server, the running counts it is made from, and one health
// check coroutine per server (only with several servers: with one there is nothing to choose).
// Per-job calls reach the members through at(); the pool's own per-job calls go to its first
// server, as for a job stored before the pool knew servers.
#include "jobs/upstream/pool.hpp"

#include "common/log.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace agentd::jobs::upstream {

placement choose_server(std::span<server_state const> servers, std::string_view wanted,
                        std::size_t cap) {
    auto full = [cap](server_state const& s) { return cap > 0 && s.running >= cap; };
    auto refuse = [](std::string why) {
        return placement{placement::verdict::refuse,
                         {},
                         upstream_error{protocol::error_kind::transport,
                                        protocol::error_phase::create,
                                        std::move(why),
                                        {}}};
    };
    if (!wanted.empty()) {
        auto it = std::find_if(servers.begin(), servers.end(),
                               [&](server_state const& s) { return s.url == wanted; });
        if (it == servers.end())
            return refuse(fmt::format("the job's upstream server {} is not configured", wanted));
        if (!it->up)
            return refuse(
                fmt::format("the job's upstream server {} is down: {}", wanted, it->why_down));
        if (full(*it)) return {placement::verdict::wait, it->url, {}};
        return {placement::verdict::run, it->url, {}};
    }
    server_state const* best = nullptr;
    bool any_up = false;
    for (auto const& s : servers) {
        if (!s.up) continue;
        any_up = true;
        if (full(s)) continue;
        if (!best || s.running < best->running) best = &s;
    }
    if (best) return {placement::verdict::run, best->url, {}};
    if (any_up) return {placement::verdict::wait, {}, {}};
    std::vector<std::string> why;
    for (auto const& s : servers) why.push_back(s.url + ": " + s.why_down);
    return refuse(fmt::format("no healthy upstream server: {}", fmt::join(why, "; ")));
}

namespace {
namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

// What the health coroutines share with the pool; they may outlive a stop().
struct pool_state {
    asio::any_io_executor ex;
    std::vector<server_state> servers;
    std::vector<std::shared_ptr<backend>> backends;
    std::vector<std::uint64_t> jobs_total;
    std::shared_ptr<event_sink> sink;
    std::vector<asio::steady_timer*> pauses;  // the health coroutines' waits, cut by stop()
    bool checks = false;                      // several servers: health is tracked
    bool stopping = false;

    void mark_down(std::size_t i, std::string why) {
        auto& s = servers[i];
        if (!checks || !s.up) return;
        s.up = false;
        s.why_down = std::move(why);
        log::warn("upstream_down", {{"server", s.url}, {"error", s.why_down}});
    }

    void mark_up(std::size_t i) {
        auto& s = servers[i];
        if (s.up) return;
        s.up = true;
        s.why_down.clear();
        log::info("upstream_up", {{"server", s.url}});
        if (sink) sink->on_capacity();
    }
};

// Checks server `i` every interval; a check may take at most the interval, capped at 1 s, so a
// dead server is noticed within about one interval.
asio::awaitable<void> check_health(std::shared_ptr<pool_state> st, std::size_t i,
                                   std::chrono::milliseconds interval) {
    auto const bound = std::min<std::chrono::milliseconds>(interval, std::chrono::seconds(1));
    asio::steady_timer pause(st->ex);
    st->pauses[i] = &pause;
    struct clear {
        std::shared_ptr<pool_state> st;
        std::size_t i;
        ~clear() { st->pauses[i] = nullptr; }
    } guard{st, i};
    while (!st->stopping) {
        auto checked = co_await st->backends[i]->health(clock::now() + bound);
        if (st->stopping) break;
        if (checked)
            st->mark_up(i);
        else
            st->mark_down(i, fmt::format("health check failed ({})", checked.error().message));
        pause.expires_after(interval);
        [[maybe_unused]] auto [waited] =
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

class pool final : public backend {
  public:
    pool(asio::any_io_executor ex, std::vector<pool_member> members, pool_config cfg)
        : cfg_(cfg), st_(std::make_shared<pool_state>()) {
        st_->ex = std::move(ex);
        for (auto& m : members) {
            st_->servers.push_back({m.url, true, {}, 0});
            st_->backends.push_back(std::move(m.be));
        }
        st_->jobs_total.resize(st_->servers.size());
        st_->pauses.resize(st_->servers.size());
        st_->checks = st_->servers.size() > 1;
    }

    std::string_view name() const override { return first().name(); }
    bool replays_transcript() const override { return first().replays_transcript(); }

    placement place(std::string_view server) override {
        auto p = choose_server(st_->servers, server, cfg_.max_running_per_server);
        if (p.what == placement::verdict::run) {
            hold(p.server);
            ++st_->jobs_total[index(p.server)];
        }
        return p;
    }

    void hold(std::string_view server) override {
        if (auto i = find(server); i < st_->servers.size()) ++st_->servers[i].running;
    }

    void release(std::string_view server) override {
        if (auto i = find(server); i < st_->servers.size() && st_->servers[i].running > 0)
            --st_->servers[i].running;
    }

    void failed(std::string_view server, upstream_error const& e) override {
        if (e.kind != protocol::error_kind::transport) return;
        if (auto i = find(server); i < st_->servers.size())
            st_->mark_down(i, fmt::format("a job's call failed ({})", e.message));
    }

    backend& at(std::string_view server) override { return *st_->backends[index(server)]; }

    std::vector<jobs::server_stats> servers() const override {
        std::vector<jobs::server_stats> out;
        for (std::size_t i = 0; i < st_->servers.size(); ++i) {
            auto const& s = st_->servers[i];
            out.push_back({s.url, s.up, s.running, st_->jobs_total[i]});
        }
        return out;
    }

    // --- a job's calls without a server: the first one's -------------------------------------

    asio::awaitable<up_result<std::string>> create_upstream_session(
        upstream_session_request const& req, call_control& ctl) override {
        auto out = co_await first().create_upstream_session(req, ctl);
        co_return out;
    }
    asio::awaitable<up_result<prompt_outcome>> prompt(std::string const& session,
                                                      prompt_request const& req,
                                                      call_control& ctl) override {
        auto out = co_await first().prompt(session, req, ctl);
        co_return out;
    }
    asio::awaitable<std::optional<bool>> turn_changed_files(std::string const& session,
                                                            prompt_outcome const& out,
                                                            call_control& ctl) override {
        auto changed = co_await first().turn_changed_files(session, out, ctl);
        co_return changed;
    }
    asio::awaitable<up_result<void>> abort(std::string const& session,
                                           std::optional<std::string> const& directory) override {
        auto out = co_await first().abort(session, directory);
        co_return out;
    }
    asio::awaitable<up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const& directory) override {
        auto out = co_await first().read_partial(session, directory);
        co_return out;
    }

    // After a restart: the busy sessions of every server that answers (session ids are the
    // servers' own, unique across them). A server that does not answer lists none: its jobs
    // go to recover() on it, which fails, and they end interrupted as with one server.
    asio::awaitable<up_result<std::optional<std::set<std::string>>>> busy_upstream_sessions(
        std::vector<std::optional<std::string>> const& directories) override {
        std::optional<std::set<std::string>> all;
        std::optional<upstream_error> first_error;
        for (auto const& be : st_->backends) {
            auto busy = co_await be->busy_upstream_sessions(directories);
            if (!busy) {
                if (!first_error) first_error = busy.error();
                continue;
            }
            if (!*busy) continue;
            if (!all) all.emplace();
            all->merge(**busy);
        }
        if (!all && first_error) co_return *first_error;
        co_return all;
    }

    void start(std::shared_ptr<event_sink> sink) override {
        st_->sink = sink;
        for (auto const& be : st_->backends) be->start(sink);
        if (!st_->checks) return;
        for (std::size_t i = 0; i < st_->backends.size(); ++i)
            asio::co_spawn(st_->ex, check_health(st_, i, cfg_.health_interval), asio::detached);
    }

    void stop() override {
        st_->stopping = true;
        for (auto* p : st_->pauses)
            if (p) p->cancel();
        for (auto const& be : st_->backends) be->stop();
    }

  private:
    backend& first() const { return *st_->backends.front(); }

    // The server's index, or size() when it is not configured.
    std::size_t find(std::string_view server) const {
        auto it = std::find_if(st_->servers.begin(), st_->servers.end(),
                               [&](server_state const& s) { return s.url == server; });
        return static_cast<std::size_t>(it - st_->servers.begin());
    }
    // A job stored before its server was (no name, or one no longer configured): the first.
    std::size_t index(std::string_view server) const {
        auto i = find(server);
        return i < st_->servers.size() ? i : 0;
    }

    pool_config cfg_;
    std::shared_ptr<pool_state> st_;
};

}  // namespace

std::unique_ptr<backend> make_pool(asio::any_io_executor ex, std::vector<pool_member> members,
                                   pool_config cfg) {
    return std::make_unique<pool>(std::move(ex), std::move(members), cfg);
}

}  // namespace agentd::jobs::upstream
