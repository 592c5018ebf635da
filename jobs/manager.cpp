// Job manager implementation. Every job runs as one coroutine (create session, prompt) raced
// against its deadline and cancel through call_control; state changes wake waiters through
// their wake_signals, so waiting costs nothing while idle.
#include "jobs/manager.hpp"

#include "common/log.hpp"
#include "jobs/lifecycle.hpp"
#include "jobs/random.hpp"
#include "jobs/registry.hpp"
#include "jobs/store.hpp"
#include "jobs/wake_signal.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <unordered_set>

namespace agentd::jobs {
namespace asio = boost::asio;
using protocol::error_kind;
using protocol::error_phase;
using protocol::job_state;
using upstream::stop_reason;
using steady = std::chrono::steady_clock;
using wall = std::chrono::system_clock;

// "600", or "0.05" for a limit under a second (tests use short ones).
std::string seconds_text(std::chrono::milliseconds d) {
    return fmt::format("{:g}", static_cast<double>(d.count()) / 1000.0);
}

// Job times at the precision they are shown and stored, so a restored job reads the same.
protocol::wall_time now_ms() {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(wall::now());
}

std::uint64_t micros_since_epoch() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(wall::now().time_since_epoch())
            .count());
}

struct manager::impl : std::enable_shared_from_this<manager::impl> {
    asio::any_io_executor ex;
    limits lim;
    std::unique_ptr<upstream::backend> backend;
    registry jobs;
    std::deque<job_ptr> queue;  // FIFO of jobs waiting for the launch gate
    std::size_t running = 0;
    // The principals' quotas (set_quotas) and their running jobs, for the launch gate.
    std::unordered_map<std::string, std::size_t> quotas;
    std::unordered_map<std::string, std::size_t> running_of;
    std::unordered_set<job_ptr> active;  // launched and not yet ended
    std::uint64_t next_seq = 0;
    std::deque<std::pair<steady::time_point, std::string>> finished;  // retention order
    wake_signal reaper;
    wake_signal flusher;       // retries the store's pending rows with backoff
    wake_signal queue_expiry;  // wakes expire_queued() for a deadline earlier than it waits for
    steady::time_point next_queue_expiry = steady::time_point::max();
    std::size_t aborting = 0;  // upstream aborts in flight
    std::uint64_t reaper_errors = 0;
    std::uint64_t task_errors = 0;
    std::list<job_listener> listeners;
    store* db = nullptr;  // null: nothing is persisted (unit tests)
    // Several instances on one store (DESIGN §9): other instances' jobs are mirrored from their
    // change notices; ids noticed and not fetched yet wait in `to_fetch`.
    shared_store* shared = nullptr;
    std::unordered_set<std::string> to_fetch;
    bool fetching = false;
    // Unsettled jobs taken over from a dead instance (not restored after this one's restart).
    std::unordered_set<job_ptr> taken_over;
    wake_signal leases;     // hold_leases() sleeps on it between rounds
    bool draining = false;  // no new jobs; running ones may finish
    wake_signal idle;       // drain() waits on it: nothing running, nothing aborting
    bool stopped = false;
    // Restored or taken-over running jobs whose fate (re-attached, finished, interrupted) is not
    // decided yet.
    std::unordered_set<job_ptr> unsettled;
    // watch(): deadlines, idle jobs, unanswered requests and merged activity events, woken for a
    // time earlier than the one it sleeps until.
    wake_signal watcher;
    steady::time_point watch_next = steady::time_point::max();
    static constexpr std::chrono::milliseconds activity_gap{250};

    impl(asio::any_io_executor e, limits l, std::unique_ptr<upstream::backend> b, store* s)
        : ex(std::move(e)),
          lim(l),
          backend(std::move(b)),
          reaper(ex),
          flusher(ex),
          queue_expiry(ex),
          db(s),
          shared(s ? s->shared() : nullptr),
          leases(ex),
          idle(ex),
          watcher(ex) {}

    // Writes the job's row before the change is acknowledged. A failed write stays pending in
    // the store (write-behind) and the flusher retries it: the daemon keeps serving from memory
    // rather than wedging the job or the event loop (the disk or the lock may come back).
    void persist(job const& j) {
        if (!db) return;
        db->save(j);
        if (db->pending() > 0) flusher.notify();  // wakes an idle flusher
    }

    void forget(std::string const& id) {
        if (!db) return;
        db->erase(id);
        if (db->pending() > 0) flusher.notify();
    }

    // Retries the pending rows: 100 ms, doubling up to 5 s, until they are written. Logs when
    // the store starts failing and when it recovers, not every attempt.
    static asio::awaitable<void> flush(std::shared_ptr<impl> self) {
        constexpr std::chrono::milliseconds first{100}, most{5000};
        auto backoff = first;
        bool failing = false;
        while (!self->stopped) {
            auto const pending = self->db->pending();
            auto const flushed = pending > 0 && (co_await self->db->flush());
            if (flushed) {
                log::info("store_recovered", {{"rows_written", pending}});
                failing = false;
                backoff = first;
            } else if (pending > 0) {
                if (!failing)
                    log::error("store_failing", {{"error", self->db->last_error()},
                                                 {"rows_in_memory", pending},
                                                 {"action", "retrying"}});
                failing = true;
            }
            if (self->db->pending() > 0) {
                auto const pause = backoff;
                backoff = std::min(backoff * 2, most);
                [[maybe_unused]] auto woken = co_await self->flusher.wait_for(pause);
            } else {
                co_await self->flusher.wait();
            }
        }
    }

    // A detached background task's completion: an exception is logged and counted, never lost.
    auto report_failure(std::string what) {
        return [self = shared_from_this(), what = std::move(what)](std::exception_ptr e) {
            if (!e) return;
            ++self->task_errors;
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& x) {
                log::error("task_failed", {{"task", what}, {"error", x.what()}});
            } catch (...) {
                log::error("task_failed", {{"task", what}});
            }
        };
    }

    // --- state changes -----------------------------------------------------------------

    // Moves `j` by `e`; `fill` completes the view (output, error) before anybody is told.
    bool transition(job& j, job_event e, std::function<void(job&)> const& fill = {}) {
        auto next = next_state(j.view.state, e);
        if (!next) return false;
        j.view.state = *next;
        if (fill) fill(j);
        auto now = now_ms();
        if (*next == job_state::running && !j.view.started_at) j.view.started_at = now;
        if (*next == job_state::running) {
            auto& r = j.runtime_mut();
            r.last_progress = steady::now();  // admitted or resumed: the idle clock starts over
            if (lim.idle_timeout.count() > 0) arm(r.last_progress + lim.idle_timeout);
        }
        if (protocol::is_terminal(*next)) {
            j.view.finished_at = now;
            compact_finished(j);
            retain(j.view.id, steady::now());
        }
        persist(j);
        log_state(j);
        for (auto* w : std::vector<waiter_hook*>(j.waiters)) w->wake();
        notify(j);
        return true;
    }

    // DESIGN §8: one line per job state, and a warning when the job hit a limit or the upstream
    // failed. `restored` says how a restart brought the job back.
    void log_state(job const& j, std::string_view restored = {}) const {
        if (!log::enabled(log::level::info)) return;
        auto const elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 j.view.finished_at.value_or(now_ms()) - j.view.created_at)
                                 .count();
        std::vector<log::field> f{{"job", j.view.id},
                                  {"session", j.view.session},
                                  {"state", protocol::to_string(j.view.state)},
                                  {"elapsed_ms", elapsed}};
        if (j.view.depth > 1) f.emplace_back("depth", j.view.depth);
        if (j.view.continues) f.emplace_back("continues", *j.view.continues);
        if (!restored.empty()) f.emplace_back("restored", restored);
        auto const& e = j.view.error;
        std::string_view reason;
        if (e && protocol::is_terminal(j.view.state)) {
            reason = std::string_view(e->message).substr(0, protocol::utf8_prefix(e->message, 200));
            f.emplace_back("error.kind", protocol::to_string(e->kind));
            f.emplace_back("error", reason);
        }
        log::write(log::level::info, "job", f);
        if (e && j.view.state == job_state::failed) warn_failure(j, *e, reason);
    }

    static void warn_failure(job const& j, protocol::job_error const& e, std::string_view reason) {
        if (e.kind == error_kind::timeout || e.kind == error_kind::limit) {
            log::warn("limit", {{"limit", e.kind == error_kind::timeout ? "timeout" : "budget"},
                                {"job", j.view.id},
                                {"session", j.view.session},
                                {"error", reason}});
        } else if (e.kind != error_kind::cancelled && e.kind != error_kind::interrupted) {
            std::vector<log::field> f{{"job", j.view.id}, {"error.kind", to_string(e.kind)}};
            if (e.phase) f.emplace_back("phase", to_string(*e.phase));
            if (e.http_status) f.emplace_back("http_status", *e.http_status);
            f.emplace_back("error", reason);
            log::write(log::level::warn, "upstream", f);
        }
    }

    // `finished` is in finish order; past max_retained_jobs the oldest go at once (memory and
    // database stay bounded whatever the retention time).
    void retain(std::string const& id, steady::time_point finished_at) {
        finished.emplace_back(finished_at, id);
        if (finished.size() == 1) reaper.notify();  // re-arm for the new front
        while (finished.size() > std::max<std::size_t>(lim.max_retained_jobs, 1)) {
            auto oldest = std::move(finished.front().second);
            finished.pop_front();
            jobs.erase(oldest);
            forget(oldest);
        }
    }

    void notify(job const& j) {
        for (auto it = listeners.begin(); it != listeners.end();) (*it++)(j);
    }

    void fail(job& j, upstream::upstream_error const& e) {
        transition(j, job_event::fail, [&](job& f) {
            f.view.error = protocol::job_error{e.kind, e.phase, e.message, e.http_status};
        });
    }

    // Ends `j` as `e` (cancel, interrupt) with an error saying why.
    bool end_with(job& j, job_event e, error_kind kind, std::optional<error_phase> phase,
                  std::string message) {
        return transition(j, e, [&](job& f) {
            f.view.error = protocol::job_error{kind, phase, std::move(message), std::nullopt};
        });
    }

    // --- launch gate ---------------------------------------------------------------------

    // Queues a job for the launch gate; its deadline counts from its creation: `created` on the
    // monotonic clock for a new job, else from created_at (a job restored after a restart keeps
    // the time it already spent; created_at is cut to milliseconds, so not for new jobs).
    void enqueue(job_ptr j, std::optional<steady::time_point> created = std::nullopt) {
        auto timeout =
            j->task.timeout_ms ? std::chrono::milliseconds(*j->task.timeout_ms) : lim.job_timeout;
        if (!created)
            created = steady::now() - std::chrono::duration_cast<steady::duration>(
                                          wall::now() - j->view.created_at);
        j->deadline = *created + timeout;
        if (j->deadline < next_queue_expiry) queue_expiry.notify();  // re-arm earlier
        queue.push_back(std::move(j));
    }

    // How many more jobs of `principal` its quota lets run beside `going` about to launch
    // (no quota: no bound).
    std::size_t quota_left(std::string const& principal, std::size_t going = 0) const {
        auto q = quotas.find(principal);
        if (q == quotas.end()) return std::numeric_limits<std::size_t>::max();
        auto r = running_of.find(principal);
        auto used = (r == running_of.end() ? 0 : r->second) + going;
        return q->second - std::min(q->second, used);
    }

    // How many more jobs of `principal` may run now: its quota, at most the instance's room.
    std::size_t room_of(std::string const& principal) const {
        return std::min(lim.max_running - std::min(lim.max_running, running),
                        quota_left(principal));
    }

    // Launches queued jobs, in order, while the gate has room, each on the server the backend
    // places it on (several servers: pool.hpp). A job whose server is full stays queued until a
    // slot frees (run() pumps again) or a server comes back (on_capacity); one that no server
    // can take fails at create. A job whose principal is at its quota is passed over: it
    // launches when one of that principal's jobs ends and pumps. Launched after the scan: a
    // launch may end and pump again.
    void pump() {
        std::vector<job_ptr> go, refused;
        std::vector<upstream::upstream_error> why;
        std::unordered_map<std::string, std::size_t> going;  // of `go`, by principal
        auto room = lim.max_running - std::min(lim.max_running, running);
        bool any_full = false;  // a new job waited: every new job after it would too
        for (auto it = queue.begin(); !stopped && go.size() < room && it != queue.end();) {
            auto& j = **it;
            if (any_full && j.runtime().upstream_server.empty()) {
                ++it;
                continue;
            }
            if (quota_left(j.own.principal, going[j.own.principal]) == 0) {
                ++it;
                continue;
            }
            auto p = backend->place(j.runtime().upstream_server);
            if (p.what == upstream::placement::verdict::wait) {
                any_full = any_full || j.runtime().upstream_server.empty();
                ++it;
                continue;
            }
            if (p.what == upstream::placement::verdict::refuse) {
                refused.push_back(*it);
                why.push_back(std::move(*p.refused));
            } else {
                j.runtime_mut().upstream_server = std::move(p.server);
                ++going[j.own.principal];
                go.push_back(*it);
            }
            it = queue.erase(it);
        }
        for (std::size_t i = 0; i < refused.size(); ++i) fail(*refused[i], why[i]);
        for (auto& j : go) launch(std::move(j));
    }

    // The backend of the job's server (several servers: pool.hpp).
    upstream::backend& server_of(job const& j) const {
        return backend->at(j.runtime().upstream_server);
    }
    static std::optional<std::string> server_name(job const& j) {
        if (j.runtime().upstream_server.empty()) return std::nullopt;
        return j.runtime().upstream_server;
    }

    // A create or prompt failed by itself (not stopped): a pool marks a server it cannot reach
    // as down at once.
    void note_failure(job const& j, upstream::upstream_error const& e) const {
        if (j.runtime().control && j.runtime().control->stopped() == stop_reason::none)
            backend->failed(j.runtime().upstream_server, e);
    }

    void count_running(job const& j, bool up) {
        auto& n = running_of[j.own.principal];
        n = up ? n + 1 : n - 1;
        if (n == 0) running_of.erase(j.own.principal);
    }

    // Wakes watch() for `t` when it sleeps longer.
    void arm(steady::time_point t) {
        if (t < watch_next) {
            watch_next = t;
            watcher.notify();
        }
    }

    void launch(job_ptr j) {
        j->runtime_mut().control = std::make_unique<upstream::call_control>(j->deadline);
        transition(*j, job_event::admit);
        ++running;
        count_running(*j, true);
        active.insert(j);
        arm(j->deadline);
        start(j, run_job(j));
    }

    // Fails the queued jobs whose deadline passed before the gate let them in.
    static asio::awaitable<void> expire_queued(std::shared_ptr<impl> self) {
        while (!self->stopped) {
            auto now = steady::now();
            auto next = steady::time_point::max();
            for (auto const& j : std::vector<job_ptr>(self->queue.begin(), self->queue.end())) {
                if (j->deadline > now) {
                    next = std::min(next, j->deadline);
                    continue;
                }
                std::erase(self->queue, j);
                self->transition(*j, job_event::fail, [&](job& f) {
                    f.view.error = protocol::job_error{error_kind::timeout, std::nullopt,
                                                       self->timeout_message(f), std::nullopt};
                });
            }
            self->next_queue_expiry = next;
            [[maybe_unused]] auto woken = co_await self->queue_expiry.wait_until(next);
        }
    }

    std::string timeout_message(job const& j) const {
        return fmt::format("job exceeded its timeout of {} ms",
                           j.task.timeout_ms.value_or(lim.job_timeout.count()));
    }

    // Runs a job's turn (run_job, or follow_job for one restored while its turn still runs) and
    // frees its slot when it ends. The end is co_spawn's completion handler, not a wrapping
    // coroutine: one frame less for each of up to max_running jobs.
    void start(job_ptr j, asio::awaitable<std::optional<std::string>> turn) {
        asio::co_spawn(ex, std::move(turn),
                       [self = shared_from_this(), j](std::exception_ptr e,
                                                      std::optional<std::string> to_abort) {
                           try {
                               self->end_run(j, e, std::move(to_abort));
                           } catch (...) {  // a handler must not throw into the event loop
                               self->report_failure("end_run")(std::current_exception());
                           }
                       });
    }

    void end_run(job_ptr const& j, std::exception_ptr e, std::optional<std::string> to_abort) {
        if (e) {  // a bug in one job must not take the daemon down, nor leave the job "running"
            report_failure("run_job")(e);
            fail(*j, {error_kind::protocol, error_phase::prompt,
                      "internal error while running the job", std::nullopt});
        }
        j->runtime_mut().control.reset();
        active.erase(j);
        --running;
        count_running(*j, false);
        backend->release(j->runtime().upstream_server);
        // The slot is free before the abort goes out: a hung upstream must not hold the gate.
        if (to_abort) spawn_abort(j->runtime().upstream_server, *to_abort, upstream_directory(*j));
        wake_if_idle();
        pump();
    }

    // --- aborts --------------------------------------------------------------------------

    // Aborts in flight, shared by the calls that wait for them (bounded) and drain().
    struct abort_batch {
        std::size_t left = 0;
        wake_signal done;
        explicit abort_batch(asio::any_io_executor e) : done(std::move(e)) {}
    };

    void spawn_abort(std::string const& server, std::string upstream_session,
                     std::optional<std::string> directory,
                     std::shared_ptr<abort_batch> batch = nullptr) {
        ++aborting;
        if (batch) ++batch->left;
        auto call = [](std::shared_ptr<impl> self, std::string server, std::string s,
                       std::optional<std::string> d) -> asio::awaitable<void> {
            [[maybe_unused]] auto aborted = co_await self->backend->at(server).abort(s, d);
        };
        asio::co_spawn(
            ex, call(shared_from_this(), server, std::move(upstream_session), std::move(directory)),
            [self = shared_from_this(), batch](std::exception_ptr) {
                --self->aborting;
                if (batch && --batch->left == 0) batch->done.fire();
                self->wake_if_idle();
            });
    }

    // Sends the aborts concurrently (N hung sessions must not cost N timeouts) and waits for
    // them at most `bound`: a caller is answered even when the upstream hangs.
    asio::awaitable<void> abort_bounded(std::vector<job_ptr> const& jobs,
                                        std::chrono::milliseconds bound) {
        auto batch = std::make_shared<abort_batch>(ex);
        for (auto const& j : jobs)
            spawn_abort(j->runtime().upstream_server, j->view.upstream->session,
                        upstream_directory(*j), batch);
        if (batch->left == 0) co_return;
        [[maybe_unused]] auto woken = co_await batch->done.wait_for(bound);
    }

    // How long agents_cancel waits for its aborts, and drain() for every abort after the grace:
    // longer than a cancel's wait, so a cancel in flight is answered before the daemon exits.
    static constexpr std::chrono::milliseconds abort_wait_cancel{1000};
    static constexpr std::chrono::milliseconds abort_wait_drain{1500};

    void wake_if_idle() {
        if (running == 0 && aborting == 0) idle.notify();
    }

    // The job's upstream session to abort afterwards, if any.
    asio::awaitable<std::optional<std::string>> run_job(job_ptr j) {
        auto& ctl = *j->runtime().control;  // watch_round() stops it at the job's deadline

        // A follow-up prompts the session of the job it continues (DESIGN §2 `continue`).
        if (!j->view.continues) {
            auto created = co_await create_session(j);
            if (!created) co_return std::nullopt;
        }
        auto const upstream_session = j->view.upstream->session;
        jobs.bind_upstream(j, upstream_session);

        // An upstream without sessions gets the earlier turns and the chain's system text.
        auto const replay = backend->replays_transcript();
        upstream::prompt_request preq{
            j->task.prompt,
            j->task.agent.optional(),
            j->task.model.optional(),
            replay ? j->runtime().transcript.system : j->task.system.optional(),
            upstream_directory(*j),
            replay ? &j->runtime().transcript.turns : nullptr};
        // The running row and its upstream session are committed before the prompt leaves (an
        // async store commits later): after a crash the job is re-attached, never prompted twice.
        if (db) co_await db->sync();
        auto out = co_await server_of(*j).prompt(upstream_session, preq, ctl);
        if (!out) note_failure(*j, out.error());
        std::optional<bool> changed;
        if (out) {  // within the job's deadline: opencode may still be summing up the diff
            auto known = co_await server_of(*j).turn_changed_files(upstream_session, *out, ctl);
            changed = known;
        }
        if (out) co_await summarize_diff(*j, upstream_session, out->user_message_id, changed);
        co_return end_turn(j, std::move(out));
    }

    // Creates the job's upstream session and binds it; false when the job ended meanwhile
    // (failed at create, cancelled, stopped).
    asio::awaitable<bool> create_session(job_ptr j) {
        auto& ctl = *j->runtime().control;
        if (j->task.isolation) {
            auto tree = co_await server_of(*j).create_worktree(j->task.directory.optional(), ctl);
            if (!tree) {
                note_failure(*j, tree.error());
                end_failed(*j, tree.error(), error_phase::create);
                co_return false;
            }
            if (j->view.state != job_state::running) co_return false;  // cancelled
            j->view.worktree = std::move(*tree);
            persist(*j);
        }
        upstream::upstream_session_request sreq{j->view.description, j->upstream_parent.optional(),
                                                upstream_directory(*j), j->task.agent.optional(),
                                                j->task.model.optional()};
        auto upstream_session = co_await server_of(*j).create_upstream_session(sreq, ctl);
        if (!upstream_session) {
            note_failure(*j, upstream_session.error());
            end_failed(*j, upstream_session.error(), error_phase::create);
            co_return false;
        }
        if (j->view.state != job_state::running) co_return false;  // cancelled: final
        j->view.upstream = protocol::upstream_ref{std::string(backend->name()), *upstream_session,
                                                  server_name(*j)};
        persist(*j);
        if (ctl.stopped() != stop_reason::none) {
            end_failed(*j, {error_kind::cancelled, error_phase::create, "stopped", {}},
                       error_phase::create);
            co_return false;
        }
        co_return true;
    }

    // JobView diff_summary, read once as the turn ends (DESIGN §2): the files its prompt
    // changed, unless the backend knows none changed (`changed`: turn_changed_files()). A failed
    // read leaves it out; it never fails the job.
    asio::awaitable<void> summarize_diff(job& j, std::string const& upstream_session,
                                         std::string user_message, std::optional<bool> changed) {
        if (user_message.empty()) co_return;
        j.set_runtime(&job::runtime_state::user_message, std::move(user_message));
        if (changed == false) co_return;
        auto changes = co_await server_of(j).session_diff(
            upstream_session, upstream_directory(j), j.runtime().user_message, lim.max_diff_bytes);
        if (changes && !changes->empty()) j.view.diff_summary = protocol::summarize(*changes);
    }

    // Ends a running job with its turn's outcome. A failure other than the upstream's own
    // leaves the upstream possibly still working: the upstream session to abort once the slot is
    // free. A turn that ended past the budget (its last usage came with the reply, or the budget
    // stop raced the end) fails all the same, with nothing left to abort.
    std::optional<std::string> end_turn(job_ptr const& j,
                                        upstream::up_result<upstream::prompt_outcome> out) {
        if (out) {
            if (protocol::is_active(j->view.state)) record_usage(*j, out->message_id, out->usage);
            if (auto over = exhausted(*j)) {
                fail(*j, {error_kind::limit, error_phase::prompt, std::move(*over), std::nullopt});
                return std::nullopt;
            }
            transition(*j, job_event::complete, [&](job& f) {
                // Before the prompt is cut to its preview: a follow-up replays the whole turn.
                if (backend->replays_transcript())
                    f.runtime_mut().transcript.turns.push_back({f.task.prompt, out->output});
                f.view.output = std::move(out->output);
                f.view.truncated = out->truncated;
            });
            return std::nullopt;
        }
        end_failed(*j, out.error(), error_phase::prompt);
        // A job cancelled by the caller was aborted by agents_cancel already.
        if (out.error().kind != error_kind::upstream && j->view.state != job_state::cancelled)
            return j->view.upstream->session;
        return std::nullopt;
    }

    // Ends a job whose upstream call failed, attributing a stop to its real cause.
    void end_failed(job& j, upstream::upstream_error e, error_phase phase) {
        switch (j.runtime().control->stopped()) {
            case stop_reason::cancelled:
                return;  // already cancelled by the caller
            case stop_reason::deadline:
                e = {error_kind::timeout, phase, timeout_message(j), std::nullopt};
                break;
            case stop_reason::idle:
                e = {error_kind::timeout, phase,
                     fmt::format("no progress from the upstream for {} s",
                                 seconds_text(lim.idle_timeout)),
                     std::nullopt};
                break;
            case stop_reason::budget:
                e = {error_kind::limit, phase, exhausted(j).value_or("budget exhausted"),
                     std::nullopt};
                break;
            case stop_reason::shutdown:
                end_with(j, job_event::interrupt, error_kind::interrupted, phase,
                         "agentd shut down");
                return;
            case stop_reason::none:
                e.phase = phase;
                break;
        }
        fail(j, e);
    }

    // --- reaper --------------------------------------------------------------------------

    // Never ends before stop(): an error in one round is logged, counted and retried a second
    // later (a reaper that died would let jobs and the database grow for good).
    static asio::awaitable<void> reap(std::shared_ptr<impl> self) {
        while (!self->stopped) {
            auto next = steady::time_point::max();
            try {
                self->reap_due();
                if (!self->finished.empty())
                    next = self->finished.front().first + self->lim.retention;
            } catch (std::exception const& e) {
                ++self->reaper_errors;
                log::error("reaper_failed", {{"error", e.what()}, {"action", "retrying in 1 s"}});
                next = steady::now() + std::chrono::seconds(1);
            }
            [[maybe_unused]] auto woken = co_await self->reaper.wait_until(next);
        }
    }

    void reap_due() {
        auto now = steady::now();
        while (!finished.empty() && finished.front().first + lim.retention <= now) {
            auto id = finished.front().second;
            jobs.erase(id);
            forget(id);
            finished.pop_front();
        }
    }

    // --- several instances on one store (DESIGN §9) ----------------------------------------

    // A change notice: every id that is not this instance's own job is (re)fetched.
    void noticed(std::vector<std::string> ids) {
        for (auto& id : ids) {
            auto j = jobs.find_any(id);
            if (j && j->runtime().holder.empty()) continue;
            to_fetch.insert(std::move(id));
        }
        if (!to_fetch.empty() && !fetching && !stopped)
            asio::co_spawn(ex, refresh(shared_from_this()), report_failure("the job mirror"));
    }

    // Fetches the noticed ids in rounds (notices arriving meanwhile join the next round).
    static asio::awaitable<void> refresh(std::shared_ptr<impl> self) {
        self->fetching = true;
        while (!self->to_fetch.empty() && !self->stopped) {
            std::vector<std::string> ids(self->to_fetch.begin(), self->to_fetch.end());
            self->to_fetch.clear();
            auto rows = co_await self->shared->fetch(ids);
            self->mirror(ids, std::move(rows));
        }
        self->fetching = false;
    }

    // Applies fetched rows of `ids` to the mirrors: new jobs appear, changed ones wake their
    // waiters and listeners, gone ones disappear. This instance's own jobs are left alone.
    void mirror(std::vector<std::string> const& ids, std::vector<job_ptr> rows) {
        std::unordered_set<std::string> seen;
        for (auto& row : rows) {
            seen.insert(row->view.id);
            auto j = jobs.find_any(row->view.id);
            if (j && j->runtime().holder.empty()) continue;
            // This instance's by its lease: take_over() has it.
            if (row->runtime().holder.empty()) continue;
            if (j)
                update_mirror(j, *row);
            else
                add_mirror(std::move(row));
        }
        for (auto const& id : ids) {
            auto j = jobs.find_any(id);
            if (!seen.contains(id) && j && !j->runtime().holder.empty()) jobs.erase(id);
        }
    }

    void add_mirror(job_ptr j) {
        next_seq = std::max(next_seq, j->seq + 1);
        jobs.insert(j);
        if (j->view.upstream) jobs.bind_upstream(j, j->view.upstream->session);
        if (auto parent = jobs.find_by_upstream(j->own.principal, j->own.session);
            parent && parent != j)
            jobs.adopt(j, parent->view.id);
        if (j->view.continues)
            if (auto c = jobs.find(j->own.principal, *j->view.continues))
                c->continued_by = j->view.id;
        if (protocol::is_terminal(j->view.state)) retain(j->view.id, steady::now());
        notify(*j);
    }

    // The row's content into the mirror `j` (its waiters keep their hooks on it).
    void update_mirror(job_ptr const& j, job& row) {
        bool was_finished = protocol::is_terminal(j->view.state);
        bool rebind = row.view.upstream && (!j->view.upstream || j->view.upstream->session !=
                                                                     row.view.upstream->session);
        j->view = std::move(row.view);
        j->task = std::move(row.task);
        j->take_runtime(row);  // its holder, transcript, server and user message; never runs here
        if (rebind) jobs.bind_upstream(j, j->view.upstream->session);
        if (!was_finished && protocol::is_terminal(j->view.state))
            retain(j->view.id, steady::now());
        for (auto* w : std::vector<waiter_hook*>(j->waiters)) w->wake();
        notify(*j);
    }

    // Renews this instance's leases every third of the lease time and takes over the jobs of
    // instances whose leases expired; the mirrors of unfinished jobs are re-read each round too,
    // in case a notice was lost with a connection.
    static asio::awaitable<void> hold_leases(std::shared_ptr<impl> self) {
        auto const period = self->shared->lease_ttl() / 3;
        while (!self->stopped) {
            auto taken = co_await self->shared->take_over();
            if (!taken.empty() && !self->stopped) self->take(std::move(taken));
            std::vector<std::string> unfinished;
            self->jobs.for_each([&](job const& j) {
                if (!j.runtime().holder.empty() && !protocol::is_terminal(j.view.state))
                    unfinished.push_back(j.view.id);
            });
            if (!unfinished.empty()) self->noticed(std::move(unfinished));
            [[maybe_unused]] auto woken = co_await self->leases.wait_for(period);
        }
    }

    // Jobs claimed from a dead instance: the restart rules (DESIGN §7) apply as after a restart.
    void take(std::vector<job_ptr> rows) {
        std::map<std::string, std::size_t> from;  // jobs taken, by the instance they were on
        std::vector<job_ptr> batch;               // running ones, to settle
        for (auto& row : rows) {
            auto j = jobs.find_any(row->view.id);
            if (j && j->runtime().holder.empty()) continue;
            ++from[j ? j->runtime().holder : std::string("unknown")];
            if (j) {
                update_mirror(j, *row);
                j->set_runtime(&job::runtime_state::holder, {});
            } else {
                j = row;
                j->set_runtime(&job::runtime_state::holder, {});
                add_mirror(j);
            }
            if (j->view.state == job_state::queued) {
                enqueue(j);
            } else if (protocol::is_active(j->view.state) && j->view.upstream) {
                unsettled.insert(j);
                taken_over.insert(j);
                batch.push_back(j);
            } else if (!protocol::is_terminal(j->view.state)) {
                interrupt(*j, "its agentd instance stopped while the job started");
            }
        }
        for (auto const& [instance, count] : from)
            log::info("jobs_taken_over", {{"count", count}, {"from", instance}});
        if (!batch.empty())
            asio::co_spawn(ex, settle_within(shared_from_this(), batch, std::chrono::seconds(5)),
                           report_failure("taking over jobs"));
        pump();
    }

    // Settles `batch` (restored or taken-over running jobs, in `unsettled`) within `bound`; the
    // rest of it is interrupted then. Batches may overlap in time (a take-over while recovering):
    // each has its own signal, so neither cuts the other's time short.
    static asio::awaitable<void> settle_within(std::shared_ptr<impl> self,
                                               std::vector<job_ptr> batch,
                                               std::chrono::milliseconds bound) {
        if (batch.empty()) co_return;
        auto done = std::make_shared<wake_signal>(self->ex);
        // A failure to settle leaves the rest to the bound below.
        asio::co_spawn(self->ex, settle(self, batch), [done](std::exception_ptr) { done->fire(); });
        [[maybe_unused]] auto woken = co_await done->wait_for(bound);
        for (auto const& j : batch)
            if (self->unsettled.erase(j) > 0) self->interrupt_restored(j);
    }

    // --- restart -------------------------------------------------------------------------

    // Jobs from the store: finished ones as they were (retention counts from their finish),
    // queued ones back in the queue, running ones left to settle() (DESIGN §7).
    void restore() {
        if (!db) return;
        auto wall_now = wall::now();
        auto steady_now = steady::now();
        auto loaded = db->load();
        // Finished jobs in finish order (retention and the cap follow it), then the others.
        auto finish_key = [](job_ptr const& j) {
            return protocol::is_terminal(j->view.state)
                       ? j->view.finished_at.value_or(protocol::wall_time{})
                       : protocol::wall_time::max();
        };
        std::stable_sort(loaded.begin(), loaded.end(), [&](job_ptr const& a, job_ptr const& b) {
            return finish_key(a) < finish_key(b);
        });
        for (auto& j : loaded) {
            next_seq = std::max(next_seq, j->seq + 1);
            jobs.insert(j);
            if (j->view.upstream) jobs.bind_upstream(j, j->view.upstream->session);
            if (!j->runtime().holder.empty() && !protocol::is_terminal(j->view.state)) {
                continue;  // another instance runs it: mirrored only
            } else if (protocol::is_terminal(j->view.state)) {
                auto age = wall_now - j->view.finished_at.value_or(wall_now);
                retain(j->view.id, steady_now - std::chrono::duration_cast<steady::duration>(age));
            } else if (j->view.state == job_state::queued) {
                enqueue(j);  // it never started: it runs after the restart
                log_state(*j, "queued");
            } else if (protocol::is_active(j->view.state) && j->view.upstream) {
                unsettled.insert(j);
            } else {
                interrupt(*j, "agentd restarted before the job ran");
            }
        }
        // The store keeps no parent: a job started from an older job's upstream session is its
        // child, as at creation (DESIGN §2 nesting). Nor who continued a job: its follow-up says.
        for (auto const& j : loaded) {
            auto parent = jobs.find_by_upstream(j->own.principal, j->own.session);
            if (parent && parent->seq < j->seq) jobs.adopt(j, parent->view.id);
            if (!j->view.continues) continue;
            if (auto c = jobs.find(j->own.principal, *j->view.continues))
                c->continued_by = j->view.id;
        }
    }

    // Cancels `j` unless it has ended: a queued job leaves the queue, an active one is stopped
    // and, once it has an upstream session, joins `to_abort`.
    void cancel_one(job_ptr const& j, std::string why, std::vector<job_ptr>& to_abort) {
        if (j->view.state == job_state::queued) {
            end_with(*j, job_event::cancel, error_kind::cancelled, std::nullopt, std::move(why));
            std::erase(queue, j);
        } else if (protocol::is_active(j->view.state)) {
            end_with(*j, job_event::cancel, error_kind::cancelled, std::nullopt, std::move(why));
            if (j->runtime().control) j->runtime().control->stop(stop_reason::cancelled);
            if (j->view.upstream) to_abort.push_back(j);
        }
    }

    void interrupt(job& j, std::string why) {
        end_with(j, job_event::interrupt, error_kind::interrupted, std::nullopt, std::move(why));
    }

    // --- shutdown (drain() and stop()) ---------------------------------------------------

    void interrupt_queued() {
        for (auto const& j : queue) interrupt(*j, "agentd shut down before the job started");
        queue.clear();
    }

    // Stops every running job's upstream call; each ends interrupted through its own coroutine.
    void stop_running() {
        for (auto const& j : std::vector<job_ptr>(active.begin(), active.end()))
            if (j->runtime().control) j->runtime().control->stop(stop_reason::shutdown);
    }

    // Decides every restored running job: still busy upstream → followed live; finished
    // meanwhile → its result; anything else → interrupted and aborted upstream.
    static asio::awaitable<void> settle(std::shared_ptr<impl> self, std::vector<job_ptr> batch) {
        auto busy = co_await self->backend->busy_upstream_sessions(directories_of(batch));
        for (auto const& j : batch) {
            if (!self->unsettled.contains(j)) continue;  // the bound passed meanwhile
            auto const upstream_session = j->view.upstream->session;
            if (busy && *busy && (*busy)->contains(upstream_session)) {
                self->settle_one(j);
                self->taken_over.erase(j);
                self->log_state(*j, "reattached");
                self->attach(j);
                co_await self->restore_requests(j);
                continue;
            }
            auto outcome = co_await self->server_of(*j).recover(
                upstream_session, upstream_directory(*j), own_prompt(*j));
            if (!self->unsettled.contains(j)) continue;
            self->settle_one(j);
            if (outcome && *outcome) {
                self->transition(*j, job_event::complete, [&](job& f) {
                    f.view.output = std::move((*outcome)->output);
                    f.view.truncated = (*outcome)->truncated;
                    f.view.usage = (*outcome)->usage;
                });
            } else if (!outcome && outcome.error().kind == error_kind::upstream) {
                self->fail(*j, outcome.error());
            } else {
                self->interrupt_restored(j);
            }
            self->taken_over.erase(j);
        }
    }

    // What tells a follow-up's turn from the earlier ones in its upstream session after a
    // restart: its prompt (a first turn's session holds no other).
    static std::string own_prompt(job const& j) {
        return j.view.continues ? j.task.prompt : std::string();
    }

    static std::vector<std::optional<std::string>> directories_of(std::vector<job_ptr> const& js) {
        std::set<std::optional<std::string>> dirs;
        for (auto const& j : js) dirs.insert(upstream_directory(*j));
        return {dirs.begin(), dirs.end()};
    }

    void settle_one(job_ptr const& j) { unsettled.erase(j); }

    // Nobody would collect the turn: stop it upstream too.
    void interrupt_restored(job_ptr const& j) {
        bool const taken = taken_over.erase(j) > 0;
        interrupt(*j, taken ? "its agentd instance stopped while the job ran"
                            : "agentd restarted while the job ran");
        spawn_abort(j->runtime().upstream_server, j->view.upstream->session,
                    upstream_directory(*j));
    }

    // Runs a restored job again as a running one that follows its upstream turn; its deadline
    // still counts from its creation (DESIGN §3).
    void attach(job_ptr const& j) {
        auto timeout =
            j->task.timeout_ms ? std::chrono::milliseconds(*j->task.timeout_ms) : lim.job_timeout;
        auto created = steady::now() - std::chrono::duration_cast<steady::duration>(
                                           wall::now() - j->view.created_at);
        j->deadline = created + timeout;
        j->runtime_mut().control = std::make_unique<upstream::call_control>(j->deadline);
        // The idle clock starts over, as at admission: a restored job's last progress is unknown
        // (the next watch round would otherwise find it idle since the clock's epoch).
        j->runtime_mut().last_progress = steady::now();
        ++running;
        count_running(*j, true);
        backend->hold(j->runtime().upstream_server);
        active.insert(j);
        arm(j->deadline);
        start(j, follow_job(j));
    }

    // The upstream session to abort afterwards, if any (as run_job).
    asio::awaitable<std::optional<std::string>> follow_job(job_ptr j) {
        auto& ctl = *j->runtime().control;
        auto out = co_await server_of(*j).follow(j->view.upstream->session, upstream_directory(*j),
                                                 own_prompt(*j), ctl);
        if (out)
            co_await summarize_diff(*j, j->view.upstream->session, out->user_message_id,
                                    std::nullopt);
        co_return end_turn(j, std::move(out));
    }

    // --- peek text from the event stream ------------------------------------------------

    // Whether `upstream_session` is the upstream session of a running job (the event stream keeps
    // state only for those).
    bool is_live(std::string_view upstream_session) const {
        return active_job(upstream_session) != nullptr;
    }

    job_ptr active_job(std::string_view upstream_session) const {
        auto j = jobs.find_by_upstream(upstream_session);
        // Another instance's job: its events are that instance's to follow.
        return j && j->runtime().holder.empty() && protocol::is_active(j->view.state) ? j : nullptr;
    }

    void on_delta(std::string_view upstream_session, std::string_view delta) {
        auto j = active_job(upstream_session);
        if (!j) return;
        j->runtime_mut().last_progress = steady::now();
        auto room =
            lim.max_output_bytes - std::min(lim.max_output_bytes, j->runtime().partial.size());
        j->runtime_mut().partial.append(delta.substr(0, protocol::utf8_prefix(delta, room)));
    }

    // --- usage and budget (DESIGN §2) -------------------------------------------------

    // Distinct messages one job tracks; past it a hostile upstream's new ids add to one entry,
    // which can only over-count (the safe side of a budget).
    static constexpr std::size_t max_usage_messages = 4096;

    void record_usage(job& j, std::string_view message_id, protocol::job_usage const& u) {
        auto& by_message = j.agentic_mut().usage_by_message;
        auto it = by_message.find(message_id);
        if (it != by_message.end()) {
            it->second = u;
        } else if (by_message.size() < max_usage_messages) {
            by_message.emplace(message_id, u);
        } else {
            add_usage(by_message["~more"], u);
        }
        j.view.usage = summed_usage(j);
    }

    // Why the job's usage is past its budget, if it is.
    static std::optional<std::string> exhausted(job const& j) {
        if (!j.task.budget || !j.view.usage) return std::nullopt;
        return over_budget(*j.task.budget, *j.view.usage);
    }

    // Past the budget the call is stopped; the job then fails `limit` and is aborted upstream
    // (end_failed, end_turn), as an idle one is.
    void on_usage(std::string_view upstream_session, std::string_view message_id,
                  protocol::job_usage const& u) {
        auto j = active_job(upstream_session);
        if (!j) return;
        record_usage(*j, message_id, u);
        if (j->runtime().control && exhausted(*j)) j->runtime().control->stop(stop_reason::budget);
    }

    // --- tool steps and requests (DESIGN §2) --------------------------------------------

    void on_progress(std::string_view upstream_session) {
        if (auto j = active_job(upstream_session)) j->runtime_mut().last_progress = steady::now();
    }

    void on_tool(std::string_view upstream_session, upstream::tool_update const& u) {
        auto j = active_job(upstream_session);
        if (!j) return;
        j->runtime_mut().last_progress = steady::now();
        auto& agentic = j->agentic_mut();
        auto kept = agentic.kept_steps();
        auto it = std::find_if(kept.rbegin(), kept.rend(),
                               [&](protocol::step const& s) { return s.call_id == u.call_id; });
        bool const is_new = it == kept.rend();
        protocol::step* s =
            is_new ? &agentic.add_step({u.call_id, u.tool, u.status, {}, {}, {}, {}}) : &*it;
        s->status = u.status;
        if (!u.title.empty()) s->title = u.title;
        if (u.started_at) s->started_at = u.started_at;
        if (u.finished_at) s->finished_at = u.finished_at;
        if (!u.output_tail.empty()) s->output_tail = u.output_tail;

        protocol::activity_view a;
        a.steps = (j->view.activity ? j->view.activity->steps : 0) + (is_new ? 1 : 0);
        a.tool = s->tool;
        a.title = s->title;
        a.since = s->started_at.value_or(now_ms());
        if (j->view.activity && *j->view.activity == a) return;
        j->view.activity = std::move(a);
        activity_changed(*j);
    }

    // Pushes the new activity at once when the last push is older than activity_gap, else once
    // at last push + activity_gap with whatever it is then (≤ 4 events/s per job, DESIGN §6).
    void activity_changed(job& j) {
        auto now = steady::now();
        auto& a = j.agentic_mut();
        if (now - a.activity_pushed >= activity_gap) {
            a.activity_pushed = now;
            a.activity_due = false;
            notify(j);
        } else if (!a.activity_due) {
            a.activity_due = true;
            arm(a.activity_pushed + activity_gap);
        }
    }

    void on_request(std::string_view upstream_session, protocol::pending_request r) {
        auto j = active_job(upstream_session);
        if (!j) return;
        j->runtime_mut().last_progress = steady::now();
        auto known = [&](auto const& list) {
            return std::any_of(list.begin(), list.end(),
                               [&](auto const& x) { return x.id == r.id; });
        };
        if (known(j->view.requests) || known(j->view.answered) ||
            j->agentic().answering.contains(r.id))
            return;  // told twice (event and restore)
        r.asked_at = now_ms();
        auto policy = j->task.permissions.value_or(lim.permissions);
        if (policy != protocol::permission_policy::ask) {
            spawn_answer(j, policy_reply(r, policy), protocol::answered_by::policy);
            return;
        }
        j->agentic_mut().asked[r.id] = steady::now();
        if (lim.input_timeout.count() > 0) arm(steady::now() + lim.input_timeout);
        j->view.requests.push_back(std::move(r));
        requests_changed(*j);
    }

    // A request the upstream settled: by us (send_answer records it), or elsewhere.
    void on_settled(std::string_view upstream_session, upstream::request_settled const& s) {
        auto j = active_job(upstream_session);
        if (!j || j->agentic().answering.contains(s.request_id)) return;
        auto const* r = find_request(*j, s.request_id);
        if (!r) return;
        auto kind = r->kind;
        drop_request(*j, s.request_id);
        record(*j, s.request_id, kind, s.how, protocol::answered_by::upstream);
    }

    // Waiting while anything is pending, running otherwise; every change is pushed and wakes
    // waits (agents_wait returns on `waiting`).
    void requests_changed(job& j) {
        if (!j.view.requests.empty() && j.view.state == job_state::running) {
            transition(j, job_event::ask);
        } else if (j.view.requests.empty() && j.view.state == job_state::waiting) {
            transition(j, job_event::resume);
        } else {
            persist(j);  // the row shows them too (other instances read it)
            for (auto* w : std::vector<waiter_hook*>(j.waiters)) w->wake();
            notify(j);
        }
    }

    void drop_request(job& j, std::string const& id) {
        if (j.has_agentic()) j.agentic_mut().asked.erase(id);
        auto before = j.view.requests.size();
        std::erase_if(j.view.requests, [&](auto const& r) { return r.id == id; });
        if (j.view.requests.size() != before) requests_changed(j);
    }

    void record(job& j, std::string const& id, protocol::request_kind kind, protocol::decision how,
                protocol::answered_by by) {
        j.view.answered.push_back({id, kind, how, by, now_ms()});
        if (j.view.answered.size() > protocol::answered_request::kept)
            j.view.answered.erase(j.view.answered.begin());
        log::info("answer", {{"job", j.view.id},
                             {"session", j.view.session},
                             {"request", id},
                             {"kind", protocol::to_string(kind)},
                             {"decision", protocol::to_string(how)},
                             {"by", protocol::to_string(by)}});
        persist(j);
        // A terminal job's end was announced once already (listeners count terminal states).
        if (protocol::is_active(j.view.state)) notify(j);
    }

    // What policy `allow`/`deny` answers (DESIGN §2): a permission once or rejected; a question
    // with "decide yourself" where free text is allowed, else rejected.
    static upstream::request_reply policy_reply(protocol::pending_request const& r,
                                                protocol::permission_policy policy) {
        upstream::request_reply reply{r.id, r.kind, protocol::decision::deny, std::nullopt, {}};
        if (r.kind == protocol::request_kind::permission) {
            if (policy == protocol::permission_policy::allow)
                reply.how = protocol::decision::allow;
            else
                reply.message = "denied by agentd policy";
            return reply;
        }
        bool free_text = std::all_of(r.questions.begin(), r.questions.end(),
                                     [](auto const& q) { return q.custom; });
        if (free_text && !r.questions.empty()) {
            reply.how = protocol::decision::answer;
            for (std::size_t i = 0; i < r.questions.size(); ++i)
                reply.answers.push_back({"No user is available; decide yourself."});
        }
        return reply;
    }

    // Sends an answer upstream and settles the request: recorded on success, dropped when the
    // upstream no longer has it (404), left pending on any other failure.
    asio::awaitable<upstream::up_result<void>> send_answer(job_ptr j, upstream::request_reply reply,
                                                           protocol::answered_by by) {
        if (!j->view.upstream)
            co_return upstream::upstream_error{error_kind::protocol, error_phase::prompt,
                                               "the job has no upstream session", std::nullopt};
        j->agentic_mut().answering[reply.request_id] = by;
        auto out = co_await server_of(*j).respond(j->view.upstream->session, upstream_directory(*j),
                                                  reply);
        j->agentic_mut().answering.erase(reply.request_id);
        if (out) {
            drop_request(*j, reply.request_id);
            record(*j, reply.request_id, reply.kind, reply.how, by);
        } else if (out.error().http_status == 404) {
            drop_request(*j, reply.request_id);
        } else {
            log::warn("answer_failed", {{"job", j->view.id},
                                        {"request", reply.request_id},
                                        {"by", protocol::to_string(by)},
                                        {"error", out.error().message}});
        }
        co_return out;
    }

    void spawn_answer(job_ptr j, upstream::request_reply reply, protocol::answered_by by) {
        auto call = [](std::shared_ptr<impl> self, job_ptr j, upstream::request_reply r,
                       protocol::answered_by by) -> asio::awaitable<void> {
            auto id = r.request_id;
            auto sent = co_await self->send_answer(j, std::move(r), by);
            // Not taken (upstream down): try again after another input timeout.
            if (!sent && j->agentic().asked.contains(id)) {
                j->agentic_mut().asked[id] = steady::now();
                self->arm(steady::now() +
                          std::max(self->lim.input_timeout, std::chrono::milliseconds(1000)));
            }
        };
        asio::co_spawn(ex, call(shared_from_this(), std::move(j), std::move(reply), by),
                       report_failure("answering a request"));
    }

    // After a re-attach: the requests the upstream still waits on come back (DESIGN §7).
    asio::awaitable<void> restore_requests(job_ptr j) {
        // The row's requests are what was pending then: the upstream says what still is (and
        // each gets its input timeout from now).
        j->view.requests.clear();
        auto pending = co_await server_of(*j).pending_requests(j->view.upstream->session,
                                                               upstream_directory(*j));
        if (pending)
            for (auto& r : *pending) on_request(j->view.upstream->session, std::move(r));
        if (j->view.state == job_state::waiting && j->view.requests.empty())
            transition(*j, job_event::resume);
    }

    // Jobs past their deadline or idle stop, unanswered requests are rejected, merged activity is
    // pushed; then sleeps until the earliest of the next ones (arm() wakes it for an earlier one).
    static asio::awaitable<void> watch(std::shared_ptr<impl> self) {
        while (!self->stopped) {
            self->watch_next = steady::time_point::max();
            auto next = self->watch_round(steady::now());
            self->watch_next = std::min(self->watch_next, next);
            [[maybe_unused]] auto woken = co_await self->watcher.wait_until(self->watch_next);
        }
    }

    steady::time_point watch_round(steady::time_point now) {
        auto next = steady::time_point::max();
        auto const idle_on = lim.idle_timeout.count() > 0;
        auto const input_on = lim.input_timeout.count() > 0;
        for (auto const& j : std::vector<job_ptr>(active.begin(), active.end())) {
            // Its deadline (DESIGN §3): one watch for every running job, not a timer each.
            if (auto const& c = j->runtime().control; c && c->stopped() == stop_reason::none) {
                if (c->deadline() <= now)
                    c->stop(stop_reason::deadline);
                else
                    next = std::min(next, c->deadline());
            }
            if (idle_on && j->view.state == job_state::running && j->runtime().control &&
                j->runtime().control->stopped() == stop_reason::none) {
                auto due = j->runtime().last_progress + lim.idle_timeout;
                if (due <= now)
                    j->runtime().control->stop(stop_reason::idle);
                else
                    next = std::min(next, due);
            }
            if (input_on && j->view.state == job_state::waiting && j->has_agentic()) {
                // timeout_request only spawns the answer: the map is not changed under us.
                for (auto& [id, asked] : j->agentic_mut().asked) {
                    if (asked == steady::time_point::max()) continue;  // its answer is on its way
                    auto due = asked + lim.input_timeout;
                    if (due > now) {
                        next = std::min(next, due);
                    } else if (!j->agentic().answering.contains(id)) {
                        asked = steady::time_point::max();  // until the answer settles
                        timeout_request(j, id);
                    }
                }
            }
            if (j->agentic().activity_due) {
                auto& a = j->agentic_mut();
                auto due = a.activity_pushed + activity_gap;
                if (due <= now) {
                    a.activity_due = false;
                    a.activity_pushed = now;
                    notify(*j);
                } else {
                    next = std::min(next, due);
                }
            }
        }
        return next;
    }

    void timeout_request(job_ptr const& j, std::string const& id) {
        auto const* r = find_request(*j, id);
        if (!r) return;
        upstream::request_reply reply{id, r->kind, protocol::decision::deny, std::nullopt, {}};
        if (r->kind == protocol::request_kind::permission)
            reply.message = fmt::format("no answer within {} s", seconds_text(lim.input_timeout));
        spawn_answer(j, std::move(reply), protocol::answered_by::timeout);
    }

    // --- follow-ups (DESIGN §2 `continue`) -------------------------------------------------

    // The job each task continues (null for a fresh task), or -32602 on `tasks[i].continue`
    // when it cannot be continued: unknown to the principal, not finished, continued already
    // (also by an earlier task of this call), or without an upstream session.
    protocol::result<std::vector<job_ptr>> continued_jobs(owner const& o,
                                                          protocol::start_params const& p) const {
        std::vector<job_ptr> out;
        for (std::size_t i = 0; i < p.tasks.size(); ++i) {
            auto const& id = p.tasks[i].continues;
            if (!id) {
                out.emplace_back();
                continue;
            }
            auto c = jobs.find(o.principal, *id);
            auto field = fmt::format("tasks[{}].continue", i);
            if (!c) return protocol::invalid_params(field, "unknown job");
            if (auto why = not_continuable(*c, out)) return protocol::invalid_params(field, *why);
            out.push_back(std::move(c));
        }
        return out;
    }

    // Why `c` cannot be continued by one more task, given those of the call before it.
    std::optional<std::string> not_continuable(job const& c,
                                               std::vector<job_ptr> const& earlier) const {
        auto const& id = c.view.id;
        if (!protocol::is_terminal(c.view.state)) return fmt::format("job {} is not finished", id);
        if (c.continued_by)
            return fmt::format("job {} was already continued by {}", id, *c.continued_by);
        for (std::size_t k = 0; k < earlier.size(); ++k)
            if (earlier[k].get() == &c)
                return fmt::format("job {} is already continued by tasks[{}] of this call", id, k);
        if (!c.view.upstream || c.view.upstream->session.empty())
            return fmt::format("job {} has no upstream session to continue", id);
        if (c.view.upstream->backend != backend->name())
            return fmt::format("job {} ran on the {} backend, not this one", id,
                               c.view.upstream->backend);
        return std::nullopt;
    }

    // Makes `j` the next turn of `c`: its upstream session, where it ran (its worktree too) and,
    // unless the task names its own, its agent and model; its transcript, whose system text the
    // task's own replaces. An upstream parent is moot (the session exists).
    static void follow_up(job& j, job const& c) {
        j.view.continues = c.view.id;
        j.view.depth = c.view.depth;
        j.view.upstream = c.view.upstream;
        j.set_runtime(&job::runtime_state::upstream_server,
                      c.runtime().upstream_server);  // a follow-up returns to its job's server
        j.task.directory = c.task.directory;
        j.view.worktree = c.view.worktree;
        if (!j.task.agent) j.task.agent = c.task.agent;
        if (!j.task.model) j.task.model = c.task.model;
        j.upstream_parent.reset();
        auto system = j.runtime().transcript.system;
        j.runtime_mut().transcript = c.runtime().transcript;
        if (j.task.system) j.runtime_mut().transcript.system = std::move(system);
    }

    // --- views ---------------------------------------------------------------------------

    job_entry entry(owner const& o, std::string const& id) const {
        auto j = jobs.find(o.principal, id);
        return {id, j ? std::optional(j->view) : std::nullopt};
    }

    // What the backend reports, applied to the manager while it lives (a background stream may
    // outlast it by a moment).
    class sink_adapter final : public upstream::event_sink {
      public:
        explicit sink_adapter(std::weak_ptr<impl> m) : m_(std::move(m)) {}
        bool live(std::string_view s) const override {
            auto m = m_.lock();
            return m && m->is_live(s);
        }
        void on_text(std::string_view s, std::string_view delta) override {
            if (auto m = m_.lock()) m->on_delta(s, delta);
        }
        void on_tool(std::string_view s, upstream::tool_update const& u) override {
            if (auto m = m_.lock()) m->on_tool(s, u);
        }
        void on_request(std::string_view s, protocol::pending_request r) override {
            if (auto m = m_.lock()) m->on_request(s, std::move(r));
        }
        void on_settled(std::string_view s, upstream::request_settled const& settled) override {
            if (auto m = m_.lock()) m->on_settled(s, settled);
        }
        void on_progress(std::string_view s) override {
            if (auto m = m_.lock()) m->on_progress(s);
        }
        void on_usage(std::string_view s, std::string_view message_id,
                      protocol::job_usage const& u) override {
            if (auto m = m_.lock()) m->on_usage(s, message_id, u);
        }
        void on_capacity() override {
            if (auto m = m_.lock()) m->pump();
        }

      private:
        std::weak_ptr<impl> m_;
    };
};

manager::manager(asio::any_io_executor ex, limits lim, std::unique_ptr<upstream::backend> be,
                 store* db)
    : impl_(std::make_shared<impl>(std::move(ex), lim, std::move(be), db)) {}

manager::~manager() {
    stop();
}

limits const& manager::config() const {
    return impl_->lim;
}

void manager::start() {
    impl_->backend->start(std::make_shared<impl::sink_adapter>(impl_));
    impl_->restore();
    asio::co_spawn(impl_->ex, impl::watch(impl_), impl_->report_failure("the job watcher"));
    asio::co_spawn(impl_->ex, impl::reap(impl_), impl_->report_failure("the reaper"));
    asio::co_spawn(impl_->ex, impl::expire_queued(impl_), impl_->report_failure("queue expiry"));
    if (impl_->db)
        asio::co_spawn(impl_->ex, impl::flush(impl_), impl_->report_failure("the store flusher"));
    if (impl_->shared) {
        impl_->shared->watch([weak = std::weak_ptr<impl>(impl_)](std::vector<std::string> ids) {
            if (auto self = weak.lock()) self->noticed(std::move(ids));
        });
        asio::co_spawn(impl_->ex, impl::hold_leases(impl_), impl_->report_failure("the leases"));
    }
}

asio::awaitable<void> manager::recover(std::chrono::milliseconds bound) {
    auto self = impl_;
    std::vector<job_ptr> restored(self->unsettled.begin(), self->unsettled.end());
    co_await impl::settle_within(self, std::move(restored), bound);
    self->pump();  // restored queued jobs
}

asio::awaitable<void> manager::drain(std::chrono::milliseconds grace) {
    auto self = impl_;
    self->draining = true;
    self->interrupt_queued();
    // Running jobs may finish within the grace period; then they are stopped and end
    // interrupted, and their aborts get a short moment (a hung upstream must not add its request
    // timeout to the grace), as do the aborts of agents_cancel calls, which are answered by then.
    for (auto deadline : {steady::now() + grace, steady::now() + grace + impl::abort_wait_drain}) {
        while ((self->running > 0 || self->aborting > 0) && steady::now() < deadline) {
            [[maybe_unused]] auto woken = co_await self->idle.wait_until(deadline);
        }
        self->stop_running();
    }
    // Every row is committed before the daemon exits; a last try for rows the store held back.
    if (self->db) {
        co_await self->db->sync();
        [[maybe_unused]] auto flushed = co_await self->db->flush();
    }
    stop();
}

void manager::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->reaper.fire();
    impl_->flusher.fire();
    impl_->queue_expiry.fire();
    impl_->watcher.fire();
    impl_->leases.fire();
    impl_->interrupt_queued();
    // Running jobs end through their own coroutines once their sockets are closed.
    impl_->stop_running();
    impl_->backend->stop();
}

asio::awaitable<protocol::result<std::vector<job_entry>>> manager::start_jobs(
    owner const& o, protocol::start_params const& p, std::uint64_t connection_id) {
    auto self = impl_;  // the manager may go while the store commits
    auto& m = *self;
    if (m.stopped || m.draining) co_return protocol::shutting_down();
    auto parent = m.jobs.find_by_upstream(o.principal, o.session);
    int depth = parent ? parent->view.depth + 1 : 1;
    if (depth > m.lim.max_depth) co_return protocol::too_deep(depth, m.lim.max_depth);
    auto continued = m.continued_jobs(o, p);
    if (!continued) co_return continued.error();

    // Jobs that cannot launch at once (instance limit, or the principal's quota) wait in the
    // queue; the call is all or nothing.
    auto free = m.room_of(o.principal);
    auto overflow =
        !m.queue.empty() ? p.tasks.size() : p.tasks.size() - std::min(free, p.tasks.size());
    if (m.queue.size() + overflow > m.lim.max_queued)
        co_return protocol::queue_full(static_cast<std::int64_t>(m.queue.size() + overflow),
                                       static_cast<std::int64_t>(m.lim.max_queued));

    auto created_at = steady::now();
    std::vector<job_ptr> created;
    created.reserve(p.tasks.size());
    for (auto const& t : p.tasks) {
        auto j = std::make_shared<job>();
        j->view.id = "job_" + random_hex(16);
        j->view.description = t.description;
        j->view.created_at = now_ms();
        j->view.depth = depth;
        j->own = o;
        j->view.session = o.session;
        j->task = t;
        if (!j->task.budget && m.lim.default_max_cost)
            j->task.budget = protocol::task_budget{m.lim.default_max_cost, std::nullopt};
        j->upstream_parent = p.upstream_parent;
        if (m.backend->replays_transcript() && t.system)
            j->runtime_mut().transcript.system = *t.system;
        if (auto const& c = (*continued)[created.size()]) impl::follow_up(*j, *c);
        j->view.task = preview_of(j->task);
        if (parent) j->parent = parent->view.id;
        // Instances sharing a store number jobs by creation time, so listings interleave them.
        if (m.shared) m.next_seq = std::max(m.next_seq, micros_since_epoch());
        j->seq = m.next_seq++;
        j->connection_id = connection_id;
        created.push_back(std::move(j));
    }
    // Durable before acknowledged; a failed write rejects the call with nothing created.
    if (m.db) {
        std::optional<std::string> failed;
        try {
            co_await m.db->save_all(created);
        } catch (std::exception const& e) {
            failed = e.what();
        }
        if (failed) {
            log::error("store_failed", {{"method", "agents_start"}, {"error", *failed}});
            co_return protocol::rpc_error{protocol::error_code::internal_error,
                                          "the job store is unavailable", nullptr};
        }
        // The commit may have suspended: a stop meanwhile refuses the call, as it would have
        // before (the rows of jobs that never ran are erased).
        if (m.stopped || m.draining) {
            for (auto const& j : created) m.forget(j->view.id);
            co_return protocol::shutting_down();
        }
    }
    // The follow-up holds the transcript from now on: a chain keeps one copy.
    for (std::size_t i = 0; i < created.size(); ++i) {
        auto const& c = (*continued)[i];
        if (!c) continue;
        c->continued_by = created[i]->view.id;
        if (c->runtime().transcript.turns.empty() && !c->runtime().transcript.system) continue;
        c->runtime_mut().transcript = {};
        m.persist(*c);
    }
    for (auto const& j : created) {
        m.jobs.insert(j);
        m.log_state(*j);
        m.notify(*j);
        m.enqueue(j, created_at);
    }
    m.pump();
    std::vector<job_entry> out;
    for (auto const& j : created) out.push_back({j->view.id, j->view});
    co_return out;
}

std::vector<job_entry> manager::status(owner const& o, protocol::status_params const& p) const {
    std::vector<job_entry> out;
    if (p.jobs) {
        for (auto const& id : *p.jobs) out.push_back(impl_->entry(o, id));
    } else {
        for (auto const& j : impl_->jobs.list(o)) out.push_back({j->view.id, j->view});
    }
    return out;
}

namespace {

// A blocked agents_wait: job state changes notify its signal to wake it.
class signal_waiter final : public waiter_hook {
  public:
    explicit signal_waiter(asio::any_io_executor ex) : signal_(std::move(ex)) {}
    void wake() override { signal_.notify(); }
    wake_signal& signal() { return signal_; }

  private:
    wake_signal signal_;
};

// Registers a waiter with jobs for the duration of a wait.
class waiter_registration {
  public:
    waiter_registration(std::vector<job_ptr> const& jobs, waiter_hook* w) : jobs_(jobs), w_(w) {
        for (auto const& j : jobs_) j->waiters.push_back(w_);
    }
    ~waiter_registration() {
        for (auto const& j : jobs_) std::erase(j->waiters, w_);
    }
    waiter_registration(waiter_registration const&) = delete;
    waiter_registration& operator=(waiter_registration const&) = delete;

  private:
    std::vector<job_ptr> jobs_;
    waiter_hook* w_;
};

}  // namespace

asio::awaitable<wait_outcome> manager::wait(owner const& o, protocol::wait_params const& p) const {
    std::shared_ptr<impl const> self = impl_;
    std::vector<std::string> ids;
    std::vector<job_ptr> selected;  // null where not found
    if (p.jobs) {
        for (auto const& id : *p.jobs) {
            ids.push_back(id);
            selected.push_back(self->jobs.find(o.principal, id));
        }
    } else {
        for (auto const& j : self->jobs.list(o)) {
            if (protocol::is_terminal(j->view.state)) continue;
            ids.push_back(j->view.id);
            selected.push_back(j);
        }
    }
    std::vector<job_ptr> live;
    for (auto const& j : selected)
        if (j && !protocol::is_terminal(j->view.state)) live.push_back(j);

    auto check = [&] {
        auto is_done = [](job_ptr const& j) { return !j || protocol::is_terminal(j->view.state); };
        if (selected.empty()) return true;
        return p.mode == protocol::wait_mode::all
                   ? std::all_of(selected.begin(), selected.end(), is_done)
                   : std::any_of(selected.begin(), selected.end(), is_done);
    };
    // A job blocked on the caller ends the wait (DESIGN §2), unless it said on_input: ignore.
    auto needs_input = [&] {
        return !p.ignore_input && std::any_of(selected.begin(), selected.end(), [](auto const& j) {
            return j && j->view.state == job_state::waiting;
        });
    };

    signal_waiter w(self->ex);
    waiter_registration reg(live, &w);
    auto deadline = steady::now() + std::chrono::milliseconds(p.timeout_ms);
    // stop() ends every job promptly (interrupted), so shutdown needs no special case here.
    bool done = check();
    while (!done && !needs_input() && steady::now() < deadline) {
        [[maybe_unused]] auto woken = co_await w.signal().wait_until(deadline);
        done = check();
    }
    wait_outcome out{done, !done && !needs_input() && steady::now() >= deadline, {}, {}};
    for (std::size_t i = 0; i < ids.size(); ++i) {
        out.jobs.push_back({ids[i], selected[i] ? std::optional(selected[i]->view) : std::nullopt});
        if (selected[i] && selected[i]->view.state == job_state::waiting)
            out.needs_input.push_back(ids[i]);
    }
    co_return out;
}

asio::awaitable<std::vector<job_entry>> manager::cancel(owner const& o,
                                                        protocol::cancel_params const& p) {
    auto self = impl_;
    std::vector<job_entry> out;
    std::vector<job_ptr> to_abort;
    for (auto const& id : p.jobs) {
        auto j = self->jobs.find(o.principal, id);
        if (j) {
            self->cancel_one(j, "cancelled by the caller", to_abort);
            // Its whole tree stops with it (DESIGN §2), even when the job itself had ended.
            for (auto const& d : self->jobs.descendants(j->view.id))
                self->cancel_one(d, fmt::format("cancelled with its ancestor {}", id), to_abort);
        }
        out.push_back({id, j ? std::optional(j->view) : std::nullopt});
    }
    // Answered after the aborts, or after abort_wait_cancel when the upstream hangs.
    if (!to_abort.empty()) co_await self->abort_bounded(to_abort, impl::abort_wait_cancel);
    if (self->db) co_await self->db->sync();  // the cancellation is committed before the reply
    co_return out;
}

asio::awaitable<peek_outcome> manager::peek(owner const& o, protocol::peek_params const& p) const {
    std::shared_ptr<impl const> self = impl_;
    auto j = self->jobs.find(o.principal, p.job);
    if (!j) co_return peek_outcome{{p.job, std::nullopt}, {}, {}, {}, {}};
    std::string text = j->view.output ? *j->view.output : j->runtime().partial;
    // No streamed text yet (event stream down or a proxy in between): ask the upstream.
    if (text.empty() && protocol::is_active(j->view.state) && j->view.upstream) {
        auto read = co_await self->server_of(*j).read_partial(j->view.upstream->session,
                                                              upstream_directory(*j));
        if (read) text = std::move(*read);
    }
    auto kept = j->agentic().kept_steps();
    std::vector<protocol::step> steps(kept.begin(), kept.end());
    peek_outcome out{{j->view.id, j->view}, std::move(text), std::move(steps), {}, {}};
    if (p.diff && j->view.upstream) {
        auto changes = co_await self->server_of(*j).session_diff(
            j->view.upstream->session, upstream_directory(*j), j->runtime().user_message,
            self->lim.max_diff_bytes);
        if (changes)
            out.changes = std::move(*changes);
        else
            out.diff_error = changes.error().message;
    } else if (p.diff) {
        out.changes.emplace();  // not started upstream: nothing changed yet
    }
    co_return out;
}

asio::awaitable<protocol::result<job_entry>> manager::remove_worktree(owner const& o,
                                                                      std::string const& id) {
    std::shared_ptr<impl> self = impl_;
    auto j = self->jobs.find(o.principal, id);
    if (!j) co_return protocol::invalid_params("job", "no such job");
    if (!j->view.worktree) co_return protocol::invalid_params("job", "the job has no worktree");
    auto removed = co_await self->server_of(*j).remove_worktree(j->task.directory.optional(),
                                                                j->view.worktree->directory);
    if (!removed)
        co_return protocol::rpc_error{protocol::error_code::internal_error,
                                      "worktree not removed: " + removed.error().message, nullptr};
    co_return job_entry{j->view.id, j->view};
}

namespace {

// The reply agents_respond's params give for request `r`, or the field that does not fit it.
protocol::result<upstream::request_reply> reply_for(protocol::pending_request const& r,
                                                    protocol::respond_params const& p) {
    using protocol::respond_decision;
    upstream::request_reply reply{r.id, r.kind, protocol::decision::deny, p.message, {}};
    if (r.kind == protocol::request_kind::permission) {
        if (!p.decision)
            return protocol::invalid_params("decision",
                                            "a permission takes allow, allow_always or deny");
        reply.how = *p.decision == respond_decision::allow ? protocol::decision::allow
                    : *p.decision == respond_decision::allow_always
                        ? protocol::decision::allow_always
                        : protocol::decision::deny;
        return reply;
    }
    if (p.decision) {
        if (*p.decision != respond_decision::deny)
            return protocol::invalid_params("decision", "a question takes answers or deny");
        if (p.message)
            return protocol::invalid_params("message", "a question's deny carries no message");
        return reply;
    }
    if (p.answers->size() != r.questions.size())
        return protocol::invalid_params(
            "answers", fmt::format("give one array per question ({})", r.questions.size()));
    for (std::size_t i = 0; i < r.questions.size(); ++i) {
        auto const& q = r.questions[i];
        auto const& labels = (*p.answers)[i];
        if (labels.empty() || (!q.multiple && labels.size() > 1))
            return protocol::invalid_params(
                "answers", fmt::format("question {} takes {}", i + 1,
                                       q.multiple ? "one or more labels" : "exactly one label"));
        for (auto const& label : labels) {
            bool listed = std::any_of(q.options.begin(), q.options.end(),
                                      [&](auto const& o) { return o.label == label; });
            if (!listed && !q.custom)
                return protocol::invalid_params(
                    "answers", fmt::format("\"{}\" is not an option of question {}", label, i + 1));
        }
    }
    reply.how = protocol::decision::answer;
    reply.answers = *p.answers;
    return reply;
}

}  // namespace

asio::awaitable<protocol::result<job_entry>> manager::respond(owner const& o,
                                                              protocol::respond_params const& p) {
    auto self = impl_;
    auto j = self->jobs.find(o.principal, p.job);
    if (!j) co_return protocol::invalid_params("job", "no such job");
    auto const* pending = find_request(*j, p.request);
    if (!pending || j->agentic().answering.contains(p.request))
        co_return protocol::invalid_params(
            "request", "is not pending (answered, timed out or answered in OpenCode's own UI)");
    auto reply = reply_for(*pending, p);
    if (!reply) co_return reply.error();
    auto sent = co_await self->send_answer(j, std::move(*reply), protocol::answered_by::caller);
    if (!sent && sent.error().http_status == 404)
        co_return protocol::invalid_params("request", "is no longer pending upstream");
    if (!sent)
        co_return protocol::rpc_error{
            protocol::error_code::internal_error,
            "the upstream did not take the answer: " + sent.error().message, nullptr};
    if (self->db) co_await self->db->sync();  // the answer is committed before the reply
    co_return job_entry{j->view.id, j->view};
}

std::vector<session_job> manager::list(std::string const& principal,
                                       std::optional<std::string> const& session,
                                       std::size_t limit) const {
    auto jobs = session ? impl_->jobs.list(owner{principal, *session})
                        : impl_->jobs.list_principal(principal);
    std::vector<session_job> out;
    for (std::size_t i = 0; i < jobs.size() && i < limit; ++i)
        out.push_back({jobs[i]->own.session, jobs[i]->view});
    return out;
}

std::shared_ptr<void> manager::listen(job_listener listener) {
    auto& list = impl_->listeners;
    auto it = list.insert(list.end(), std::move(listener));
    std::weak_ptr<impl> weak = impl_;
    return std::shared_ptr<void>(nullptr, [weak, it](void*) {
        if (auto self = weak.lock()) self->listeners.erase(it);
    });
}

std::vector<server_stats> manager::servers() const {
    return impl_->backend->servers();
}

background_stats manager::background() const {
    background_stats out;
    if (impl_->db) {
        auto s = impl_->db->stats();
        out.store_errors = s.errors;
        out.store_pending_rows = s.pending_rows;
    }
    out.reaper_errors = impl_->reaper_errors;
    out.task_errors = impl_->task_errors;
    return out;
}

void manager::set_quotas(std::unordered_map<std::string, std::size_t> quotas) {
    impl_->quotas = std::move(quotas);
    impl_->pump();
}

std::optional<std::string> manager::holder(owner const& o, std::string const& id) const {
    auto j = impl_->jobs.find(o.principal, id);
    if (!j || j->runtime().holder.empty() || protocol::is_terminal(j->view.state))
        return std::nullopt;
    return j->runtime().holder;
}

bool manager::knows(owner const& o, std::span<std::string const> ids) const {
    if (!impl_->shared) return true;
    return std::all_of(ids.begin(), ids.end(),
                       [&](std::string const& id) { return impl_->jobs.find(o.principal, id); });
}

asio::awaitable<void> manager::discover(std::vector<std::string> ids) {
    auto self = impl_;
    if (!self->shared || ids.empty()) co_return;
    auto rows = co_await self->shared->fetch(ids);
    self->mirror(ids, std::move(rows));
}

bool manager::committed() const {
    return !impl_->db || impl_->db->committed();
}

asio::awaitable<void> manager::sync_store() {
    auto self = impl_;
    if (self->db) co_await self->db->sync();
}

shared_store* manager::shared() const {
    return impl_->shared;
}

manager_stats manager::stats() const {
    manager_stats out{impl_->jobs.size(), impl_->running, impl_->queue.size(), {}};
    impl_->jobs.for_each([&](job const& j) { ++out.by_state[static_cast<int>(j.view.state)]; });
    return out;
}

}  // namespace agentd::jobs
