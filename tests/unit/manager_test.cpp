// Unit tests of the job manager on a real io_context with a scripted in-process backend (no
// sockets): the launch gate and its FIFO queue, admission limits (max_queued, max_depth), owner
// isolation, event-driven waits, cancel and job deadlines with upstream abort, failures kept per
// job, peek, the retention reaper, and stop(). Every test ends by checking no work is left behind.
#include "jobs/manager.hpp"
#include "jobs/sqlite_store.hpp"
#include "jobs/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace agentd::jobs {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using protocol::error_kind;
using protocol::error_phase;
using protocol::job_state;
using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// gtest's ASSERT_* return from the function, which a coroutine cannot do.
#define CO_ASSERT_TRUE(cond)                                \
    do {                                                    \
        if (!(cond)) {                                      \
            ADD_FAILURE() << "Assertion failed: " << #cond; \
            co_return;                                      \
        }                                                   \
    } while (0)

// ---------------------------------------------------------------------------------------------
// The scripted backend
// ---------------------------------------------------------------------------------------------

// How one upstream call of the fake behaves.
struct step {
    ms latency{0};
    bool manual = false;  // waits until release() or a stop instead of `latency`
    ms slow_stop{0};      // a stop completes the call only after this (a slow socket close)
    std::optional<upstream::upstream_error> error;  // answered instead of success
    bool throws = false;
};

// A task's script, looked up by name (tests use the task's name as prompt and description).
struct behaviour {
    step create;
    step prompt;
    std::optional<upstream::prompt_outcome> outcome;  // default: "done: <name>"
    std::string partial;                              // what read_partial answers
};

// A manual call in flight; release() completes it successfully.
struct gate {
    asio::steady_timer* timer;
    bool released = false;
};

// Everything the fake saw, shared with the test (the manager owns the backend itself).
struct fake_state {
    behaviour fallback;
    std::map<std::string, behaviour> scripts;
    std::map<std::string, gate*> gates;  // "create:<name>" / "prompt:<name>"
    std::set<asio::steady_timer*> timers;
    std::vector<std::string> creates;  // task names, in call order
    std::vector<upstream::upstream_session_request> create_requests;
    std::vector<std::string> prompts;
    std::vector<std::string> prompt_sessions;
    std::vector<upstream::prompt_request> prompt_requests;
    std::map<std::string, std::string> session_of;  // task name -> session id
    std::vector<std::pair<std::string, std::optional<std::string>>> aborts;
    std::vector<std::string> partial_reads;       // session ids
    std::vector<std::string> stopped_by_control;  // calls ended through call_control's hook
    std::vector<std::string> hooks_fired;         // the hook ran (the call may still be completing)
    ms abort_latency{0};
    int in_flight = 0;
    int max_in_flight = 0;
    bool started = false;
    bool stopped = false;
    std::shared_ptr<upstream::event_sink> sink;
    std::vector<upstream::request_reply> replies;           // respond(), in call order
    std::optional<upstream::upstream_error> respond_error;  // answered instead of success
    std::vector<protocol::pending_request> still_pending;   // pending_requests()
    std::optional<std::set<std::string>> busy_sessions;     // busy_upstream_sessions()
    ms busy_latency{0};                                     // before it answers
    std::vector<std::string> diff_reads;                    // session_diff(): user messages

    behaviour const& of(std::string const& name) const {
        auto it = scripts.find(name);
        return it == scripts.end() ? fallback : it->second;
    }
    bool pending(std::string const& key) const { return gates.contains(key); }
    bool release(std::string const& key) {
        auto it = gates.find(key);
        if (it == gates.end()) return false;
        it->second->released = true;
        it->second->timer->cancel();
        return true;
    }
};

class fake_backend final : public upstream::backend {
  public:
    fake_backend(asio::any_io_executor ex, std::shared_ptr<fake_state> st)
        : ex_(std::move(ex)), st_(std::move(st)) {}

    std::string_view name() const override { return "fake"; }

    asio::awaitable<upstream::up_result<std::string>> create_upstream_session(
        upstream::upstream_session_request const& req, upstream::call_control& ctl) override {
        std::string name = req.title;
        st_->creates.push_back(name);
        st_->create_requests.push_back(req);
        step s = st_->of(name).create;
        busy guard(*st_);
        std::string key = "create:" + name;
        bool ok = co_await pause(s, key, &ctl);
        if (!ok)
            co_return upstream::upstream_error{error_kind::cancelled, error_phase::create,
                                               "stopped", std::nullopt};
        if (s.throws) throw std::runtime_error("fake create threw");
        if (s.error) co_return *s.error;
        std::string id = "ses_" + name;
        st_->session_of[name] = id;
        co_return id;
    }

    asio::awaitable<upstream::up_result<upstream::prompt_outcome>> prompt(
        std::string const& session, upstream::prompt_request const& req,
        upstream::call_control& ctl) override {
        std::string name = req.prompt;
        st_->prompts.push_back(name);
        st_->prompt_sessions.push_back(session);
        st_->prompt_requests.push_back(req);
        behaviour b = st_->of(name);
        busy guard(*st_);
        std::string key = "prompt:" + name;
        bool ok = co_await pause(b.prompt, key, &ctl);
        if (!ok)
            co_return upstream::upstream_error{error_kind::cancelled, error_phase::prompt,
                                               "stopped", std::nullopt};
        if (b.prompt.throws) throw std::runtime_error("fake prompt threw");
        if (b.prompt.error) co_return *b.prompt.error;
        co_return b.outcome.value_or(
            upstream::prompt_outcome{"done: " + name, false, {}, {}, {}, {}});
    }

    // The scripted outcome's files_changed stands for what the event stream would tell.
    asio::awaitable<std::optional<bool>> turn_changed_files(std::string const&,
                                                            upstream::prompt_outcome const& out,
                                                            upstream::call_control&) override {
        co_return out.files_changed;
    }

    asio::awaitable<upstream::up_result<std::vector<protocol::file_change>>> session_diff(
        std::string const&, std::optional<std::string> const&, std::string const& user_message,
        std::size_t) override {
        st_->diff_reads.push_back(user_message);
        co_return std::vector<protocol::file_change>{{"a.txt", "modified", 2, 1, "@@"}};
    }

    asio::awaitable<upstream::up_result<void>> abort(
        std::string const& session, std::optional<std::string> const& directory) override {
        st_->aborts.emplace_back(session, directory);
        step quick;
        quick.latency = st_->abort_latency;
        std::string key = "abort:" + session;
        co_await pause(quick, key, nullptr);  // asynchronous, like a real request
        co_return upstream::up_result<void>{};
    }

    asio::awaitable<upstream::up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const&) override {
        st_->partial_reads.push_back(session);
        std::string text;
        for (auto const& [name, id] : st_->session_of)
            if (id == session) text = st_->of(name).partial;
        step quick;
        std::string key = "partial:" + session;
        bool ok = co_await pause(quick, key, nullptr);
        if (!ok)
            co_return upstream::upstream_error{error_kind::transport, error_phase::prompt,
                                               "stopped", std::nullopt};
        co_return text;
    }

    asio::awaitable<upstream::up_result<void>> respond(
        std::string const&, std::optional<std::string> const&,
        upstream::request_reply const& reply) override {
        st_->replies.push_back(reply);
        step quick;
        std::string key = "respond:" + reply.request_id;
        co_await pause(quick, key, nullptr);  // asynchronous, like a real request
        if (st_->respond_error) co_return *st_->respond_error;
        co_return upstream::up_result<void>{};
    }

    asio::awaitable<upstream::up_result<std::vector<protocol::pending_request>>> pending_requests(
        std::string const&, std::optional<std::string> const&) override {
        co_return st_->still_pending;
    }

    asio::awaitable<upstream::up_result<std::optional<std::set<std::string>>>>
    busy_upstream_sessions(std::vector<std::optional<std::string>> const&) override {
        if (st_->busy_latency.count() > 0) {  // an upstream that takes a moment to answer
            asio::steady_timer t(ex_, st_->busy_latency);
            [[maybe_unused]] auto [ec] = co_await t.async_wait(use_tuple);
        }
        co_return st_->busy_sessions;
    }

    // A re-attached turn runs until released or stopped.
    asio::awaitable<upstream::up_result<upstream::prompt_outcome>> follow(
        std::string const& session, std::optional<std::string> const&, std::string const&,
        upstream::call_control& ctl) override {
        busy guard(*st_);
        step manual;
        manual.manual = true;
        bool ok = co_await pause(manual, "follow:" + session, &ctl);
        if (!ok)
            co_return upstream::upstream_error{error_kind::cancelled, error_phase::prompt,
                                               "stopped", std::nullopt};
        co_return upstream::prompt_outcome{"followed", false, {}, {}, {}, {}};
    }

    void start(std::shared_ptr<upstream::event_sink> sink) override {
        st_->started = true;
        st_->sink = std::move(sink);
    }

    // Pending calls fail promptly, like the real client closing its connections.
    void stop() override {
        st_->stopped = true;
        for (auto* t : std::vector<asio::steady_timer*>(st_->timers.begin(), st_->timers.end()))
            t->cancel();
    }

  private:
    // Counts calls in flight (a job is in create or prompt, never between: no suspension).
    struct busy {
        fake_state& st;
        explicit busy(fake_state& s) : st(s) {
            st.max_in_flight = std::max(st.max_in_flight, ++st.in_flight);
        }
        ~busy() { --st.in_flight; }
    };

    // Waits out `s`; false when the call was stopped (call_control or backend stop) first. The
    // stop hook cancels the timer, as the real client closes its socket.
    asio::awaitable<bool> pause(step const& s, std::string const& key,
                                upstream::call_control* ctl) {
        if (st_->stopped || (ctl && ctl->stopped() != upstream::stop_reason::none)) co_return false;
        asio::steady_timer timer(ex_);
        if (s.manual)
            timer.expires_at(asio::steady_timer::time_point::max());
        else
            timer.expires_after(s.latency);
        gate g{&timer};
        if (s.manual) st_->gates[key] = &g;
        st_->timers.insert(&timer);
        bool by_control = false;
        asio::steady_timer slow_close(ex_);
        std::stop_callback hook(ctl ? ctl->stop_token() : std::stop_token{},
                                [&, delay = s.slow_stop] {
                                    by_control = true;
                                    st_->hooks_fired.push_back(key);
                                    if (delay == ms{0}) {
                                        timer.cancel();
                                        return;
                                    }
                                    slow_close.expires_after(delay);
                                    slow_close.async_wait([&timer](boost::system::error_code ec) {
                                        if (!ec) timer.cancel();
                                    });
                                });
        auto [ec] = co_await timer.async_wait(use_tuple);
        slow_close.cancel();
        st_->timers.erase(&timer);
        if (s.manual) st_->gates.erase(key);
        if (by_control) st_->stopped_by_control.push_back(key);
        co_return (!ec && !by_control) || g.released;
    }

    asio::any_io_executor ex_;
    std::shared_ptr<fake_state> st_;
};

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

owner const alice{"alice", "chat-1"};

class manager_test : public ::testing::Test {
  protected:
    void make(limits lim = {}, store* db = nullptr) {
        auto be = std::make_unique<fake_backend>(ioc_.get_executor(), st_);
        mgr_ = std::make_unique<manager>(ioc_.get_executor(), lim, std::move(be), db);
        mgr_->start();
    }

    // Runs the test coroutine to its end, then stops the manager and checks that nothing is left
    // behind: the context runs out of work by itself and nothing is ready afterwards.
    template <class F>
    void run(F body) {
        if (!mgr_) make();
        bool finished = false;
        std::exception_ptr error;
        asio::co_spawn(ioc_, body(), [&](std::exception_ptr e) {
            finished = true;
            error = e;
            mgr_->stop();
        });
        handlers_ = ioc_.run_for(10s);
        EXPECT_TRUE(finished) << "the test coroutine did not finish";
        EXPECT_TRUE(ioc_.stopped()) << "work left behind after stop()";
        ioc_.restart();
        EXPECT_EQ(ioc_.poll(), 0u) << "handlers left behind after stop()";
        EXPECT_EQ(st_->in_flight, 0) << "backend calls left in flight";
        EXPECT_TRUE(st_->timers.empty());
        if (error) std::rethrow_exception(error);
    }

    // Bounded wait for a fact nothing notifies the test of (a call reaching the fake, a job's
    // coroutine finishing): checks every 2 ms for at most `limit`. Pass a named lambda.
    template <class F>
    asio::awaitable<bool> until(F const& cond, ms limit = 2s) {
        auto end = steady::now() + limit;
        asio::steady_timer t(ioc_);
        while (!cond()) {
            if (steady::now() >= end) co_return false;
            t.expires_after(2ms);
            co_await t.async_wait(use_tuple);
        }
        co_return true;
    }

    asio::awaitable<void> sleep(ms d) {
        asio::steady_timer t(ioc_, d);
        co_await t.async_wait(use_tuple);
    }

    // Named task helpers: a task's name is its prompt and its description.
    static protocol::task task(std::string const& name) {
        protocol::task t;
        t.prompt = name;
        t.description = name;
        return t;
    }
    static protocol::start_params tasks(std::vector<std::string> const& names) {
        protocol::start_params p;
        for (auto const& n : names) p.tasks.push_back(task(n));
        return p;
    }

    // A crash with job "a" in the store at `dir` (made empty first): the job runs on a manager of
    // its own, `while_running` acts on its upstream, and once that manager stopped, the row is put
    // back to `state` as a crash would have left it. Returns the job's id ("" on failure).
    static std::string crash_with_job(std::filesystem::path const& dir, std::string const& state,
                                      std::function<void(fake_state&)> const& while_running) {
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        std::string id;
        {
            sqlite_store db((dir / "agentd.db").string());
            auto st = std::make_shared<fake_state>();
            st->fallback.prompt.manual = true;
            asio::io_context ioc;
            manager m(ioc.get_executor(), {},
                      std::make_unique<fake_backend>(ioc.get_executor(), st), &db);
            m.start();
            auto const p = tasks({"a"});  // outlives the coroutine, which holds a reference
            auto started = asio::co_spawn(ioc, m.start_jobs(alice, p), asio::use_future);
            ioc.run_for(50ms);
            auto r = started.get();
            EXPECT_TRUE(r.has_value());
            if (!r) return "";
            id = (*r)[0].id;
            while_running(*st);
            ioc.run_for(20ms);
            m.stop();
            ioc.run_for(200ms);
        }
        // The stopped job ended interrupted; a job left active by a crash is re-attached instead.
        sqlite3* raw = nullptr;
        EXPECT_EQ(sqlite3_open((dir / "agentd.db").string().c_str(), &raw), SQLITE_OK);
        auto const sql = "UPDATE jobs SET state = '" + state +
                         "', finished_ms = NULL, error_kind = NULL, error_message = NULL, "
                         "error_phase = NULL";
        EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(raw);
        return id;
    }

    // By value: callers build the arguments in one statement and co_await in the next (g++ 12
    // miscompiles a braced list inside a co_await expression).
    asio::awaitable<std::vector<std::string>> start(owner o, std::vector<std::string> names) {
        auto const p = tasks(names);
        auto r = co_await mgr_->start_jobs(o, p);
        EXPECT_TRUE(r.has_value());
        std::vector<std::string> ids;
        if (r)
            for (auto const& e : *r) ids.push_back(e.id);
        co_return ids;
    }

    std::optional<protocol::job_view> view(owner const& o, std::string const& id) const {
        protocol::status_params p;
        p.jobs = std::vector<std::string>{id};
        auto s = mgr_->status(o, p);
        return s.at(0).view;
    }

    job_state state(std::string const& id) const {
        auto v = view(alice, id);
        EXPECT_TRUE(v.has_value()) << id;
        return v ? v->state : job_state::queued;
    }

    static protocol::wait_params wait_for(std::vector<std::string> const& ids, ms timeout,
                                          protocol::wait_mode mode = protocol::wait_mode::all) {
        protocol::wait_params p;
        p.jobs = ids;
        p.timeout_ms = timeout.count();
        p.mode = mode;
        return p;
    }

    static protocol::cancel_params cancel_of(std::vector<std::string> const& ids) {
        protocol::cancel_params p;
        p.jobs = ids;
        return p;
    }

    behaviour& script(std::string const& name) { return st_->scripts[name]; }

    // Cancels from a coroutine of its own (arguments by value: it outlives the caller's frame).
    asio::awaitable<void> cancel_later(owner o, std::vector<std::string> ids) {
        auto cp = cancel_of(ids);
        co_await mgr_->cancel(o, cp);
    }

    asio::io_context ioc_;
    std::shared_ptr<fake_state> st_ = std::make_shared<fake_state>();
    std::unique_ptr<manager> mgr_;
    std::size_t handlers_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Launch gate and admission
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, launch_gate_runs_max_running_and_drains_the_queue_fifo) {
    limits lim;
    lim.max_running = 2;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto r_tasks = tasks({"a", "b", "c", "d", "e"});
        auto r = co_await mgr_->start_jobs(alice, r_tasks);
        CO_ASSERT_TRUE(r.has_value());
        CO_ASSERT_TRUE(r->size() == 5u);
        std::vector<job_state> states;
        for (auto const& e : *r) states.push_back(e.view->state);
        EXPECT_EQ(states,
                  (std::vector<job_state>{job_state::running, job_state::running, job_state::queued,
                                          job_state::queued, job_state::queued}));
        EXPECT_EQ(mgr_->stats().running, 2u);
        EXPECT_EQ(mgr_->stats().queued, 3u);
        std::vector<std::string> ids;
        for (auto const& e : *r) ids.push_back(e.id);

        // Each finished job admits exactly the next queued one, in order.
        std::vector<std::string> const names{"a", "b", "c", "d", "e"};
        for (std::size_t i = 0; i < names.size(); ++i) {
            std::string key = "prompt:" + names[i];
            std::size_t launched = std::min<std::size_t>(i + 2, names.size());
            auto reached = [&] { return st_->pending(key) && st_->creates.size() >= launched; };
            CO_ASSERT_TRUE(co_await until(reached));
            EXPECT_EQ(st_->creates,
                      std::vector<std::string>(names.begin(), names.begin() + launched));
            EXPECT_LE(mgr_->stats().running, 2u);
            EXPECT_TRUE(st_->release(key));
            auto wp = wait_for({ids[i]}, 5s);
            auto w = co_await mgr_->wait(alice, wp);
            EXPECT_TRUE(w.done);
            EXPECT_EQ(w.jobs.at(0).view->state, job_state::completed);
            EXPECT_EQ(w.jobs.at(0).view->output, "done: " + names[i]);
        }
        EXPECT_EQ(st_->creates, names);
        EXPECT_EQ(st_->prompts, names);
        EXPECT_EQ(st_->max_in_flight, 2);
        EXPECT_EQ(mgr_->stats().queued, 0u);
    });
}

TEST_F(manager_test, launch_gate_with_latencies_never_exceeds_max_running) {
    limits lim;
    lim.max_running = 2;
    make(lim);
    st_->fallback.prompt.latency = 15ms;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "b", "c", "d", "e", "f", "g"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        for (auto const& e : w.jobs) EXPECT_EQ(e.view->state, job_state::completed) << e.id;
        EXPECT_EQ(st_->max_in_flight, 2);
        EXPECT_EQ(st_->creates, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "g"}));
    });
}

TEST_F(manager_test, max_queued_rejects_the_whole_call_and_creates_nothing) {
    limits lim;
    lim.max_running = 2;
    lim.max_queued = 3;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        // 6 tasks: 2 could run, 4 would queue: over max_queued, so nothing at all is admitted.
        auto r_tasks = tasks({"a", "b", "c", "d", "e", "f"});
        auto r = co_await mgr_->start_jobs(alice, r_tasks);
        CO_ASSERT_TRUE(!r.has_value());
        EXPECT_EQ(r.error().code, protocol::error_code::limit_exceeded);
        EXPECT_EQ(r.error().data.at("limit"), boost::json::value("max_queued"));
        EXPECT_EQ(r.error().data.at("max"), boost::json::value(3));
        co_await sleep(5ms);  // a launched job would have reached the fake by now
        EXPECT_TRUE(st_->creates.empty());
        EXPECT_TRUE(mgr_->status(alice, {}).empty());
        EXPECT_EQ(mgr_->stats().jobs, 0u);

        // Exactly full is fine: 2 running + 3 queued.
        auto ok_tasks = tasks({"g", "h", "i", "j", "k"});
        auto ok = co_await mgr_->start_jobs(alice, ok_tasks);
        CO_ASSERT_TRUE(ok.has_value());
        EXPECT_EQ(mgr_->stats().queued, 3u);

        // Now the queue is full: one more task is refused and nothing is added.
        auto one_tasks = tasks({"l"});
        auto one = co_await mgr_->start_jobs(alice, one_tasks);
        CO_ASSERT_TRUE(!one.has_value());
        EXPECT_EQ(one.error().data.at("limit"), boost::json::value("max_queued"));
        EXPECT_EQ(mgr_->stats().jobs, 5u);
        EXPECT_EQ(mgr_->status(alice, {}).size(), 5u);
    });
}

TEST_F(manager_test, max_queued_counts_free_slots_of_the_gate) {
    limits lim;
    lim.max_running = 1;
    lim.max_queued = 1;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto first_tasks = tasks({"a", "b"});
        auto first = co_await mgr_->start_jobs(alice, first_tasks);  // 1 running + 1 queued
        CO_ASSERT_TRUE(first.has_value());
        auto more_tasks = tasks({"c"});
        auto more = co_await mgr_->start_jobs(alice, more_tasks);
        CO_ASSERT_TRUE(!more.has_value());
        EXPECT_EQ(more.error().code, protocol::error_code::limit_exceeded);
        // Cancelling the queued job frees its place in the queue.
        auto cp = cancel_of({first->at(1).id});
        co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(mgr_->stats().queued, 0u);
        auto again_tasks = tasks({"c"});
        auto again = co_await mgr_->start_jobs(alice, again_tasks);
        EXPECT_TRUE(again.has_value());
    });
}

TEST_F(manager_test, max_depth_follows_upstream_sessions) {
    limits lim;
    lim.max_depth = 2;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto top_call = start(alice, {"top"});
        auto top = co_await std::move(top_call);
        auto has_session = [&] { return st_->pending("prompt:top"); };
        CO_ASSERT_TRUE(co_await until(has_session));
        EXPECT_EQ(view(alice, top.at(0))->depth, 1);
        std::string top_session = st_->session_of.at("top");

        // A sub-agent of "top" calls with its own upstream session as the session.
        owner child_owner{"alice", top_session};
        auto child_tasks = tasks({"child"});
        auto child = co_await mgr_->start_jobs(child_owner, child_tasks);
        CO_ASSERT_TRUE(child.has_value());
        EXPECT_EQ(child->at(0).view->depth, 2);
        auto child_session = [&] { return st_->pending("prompt:child"); };
        CO_ASSERT_TRUE(co_await until(child_session));

        // Its own sub-agent would be depth 3: refused, nothing created.
        owner grandchild_owner{"alice", st_->session_of.at("child")};
        auto deep_tasks = tasks({"grandchild"});
        auto deep = co_await mgr_->start_jobs(grandchild_owner, deep_tasks);
        CO_ASSERT_TRUE(!deep.has_value());
        EXPECT_EQ(deep.error().code, protocol::error_code::limit_exceeded);
        EXPECT_EQ(deep.error().data.at("limit"), boost::json::value("max_depth"));
        EXPECT_EQ(deep.error().data.at("max"), boost::json::value(2));
        EXPECT_TRUE(mgr_->status(grandchild_owner, {}).empty());

        // The same session name under another principal is not a child of alice's job.
        owner other{"bob", top_session};
        auto bobs_tasks = tasks({"bobs"});
        auto bobs = co_await mgr_->start_jobs(other, bobs_tasks);
        CO_ASSERT_TRUE(bobs.has_value());
        EXPECT_EQ(bobs->at(0).view->depth, 1);
        EXPECT_EQ(std::count(st_->creates.begin(), st_->creates.end(), "grandchild"), 0);
    });
}

TEST_F(manager_test, start_passes_task_fields_to_the_backend) {
    make();
    run([&]() -> asio::awaitable<void> {
        protocol::start_params p;
        auto t = task("full");
        t.agent = "build";
        t.model = "anthropic/claude";
        t.system = "be brief";
        t.directory = "/work/x";
        p.tasks.push_back(t);
        p.upstream_parent = "ses_parent";
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->at(0).id.substr(0, 4), "job_");
        EXPECT_EQ(r->at(0).id.size(), 4u + 32u);
        auto wp = wait_for({r->at(0).id}, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        CO_ASSERT_TRUE(st_->create_requests.size() == 1u);
        EXPECT_EQ(st_->create_requests[0].title, "full");
        EXPECT_EQ(st_->create_requests[0].parent, "ses_parent");
        EXPECT_EQ(st_->create_requests[0].directory, "/work/x");
        CO_ASSERT_TRUE(st_->prompt_requests.size() == 1u);
        auto const& pr = st_->prompt_requests[0];
        EXPECT_EQ(pr.prompt, "full");
        EXPECT_EQ(pr.agent, "build");
        EXPECT_EQ(pr.model, "anthropic/claude");
        EXPECT_EQ(pr.system, "be brief");
        EXPECT_EQ(pr.directory, "/work/x");
        EXPECT_EQ(st_->prompt_sessions, std::vector<std::string>{"ses_full"});
        EXPECT_TRUE(st_->started);
    });
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, status_is_owner_scoped_newest_first_and_read_only) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "b"});
        auto ids = co_await std::move(ids_call);
        auto more_call = start(alice, {"c"});
        auto more = co_await std::move(more_call);
        ids.push_back(more.at(0));
        auto all = mgr_->status(alice, {});
        std::vector<std::string> listed;
        for (auto const& e : all) listed.push_back(e.id);
        EXPECT_EQ(listed, (std::vector<std::string>{ids[2], ids[1], ids[0]}));

        // Another principal with the same session sees nothing, and the ids answer exactly like
        // unknown ones.
        owner stranger{"bob", "chat-1"};
        EXPECT_TRUE(mgr_->status(stranger, {}).empty());
        protocol::status_params p;
        p.jobs = std::vector<std::string>{ids[0], "job_unknown"};
        auto s = mgr_->status(stranger, p);
        CO_ASSERT_TRUE(s.size() == 2u);
        EXPECT_EQ(s[0].id, ids[0]);
        EXPECT_FALSE(s[0].view.has_value());
        EXPECT_EQ(s[1].id, "job_unknown");
        EXPECT_FALSE(s[1].view.has_value());

        // Read-only: repeated status calls change nothing.
        auto before = mgr_->stats();
        for (int i = 0; i < 3; ++i) mgr_->status(alice, {});
        auto after = mgr_->stats();
        EXPECT_EQ(before.jobs, after.jobs);
        EXPECT_EQ(before.running, after.running);
        EXPECT_EQ(before.queued, after.queued);
        EXPECT_EQ(view(alice, ids[0])->state, job_state::running);
        EXPECT_TRUE(view(alice, ids[0])->started_at.has_value());
        EXPECT_FALSE(view(alice, ids[0])->finished_at.has_value());
    });
}

TEST_F(manager_test, ids_reach_every_session_of_the_principal_but_listings_do_not) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "b"});
        auto ids = co_await std::move(ids_call);
        owner other_session{"alice", "chat-2"};
        EXPECT_TRUE(mgr_->status(other_session, {}).empty());
        EXPECT_EQ(view(other_session, ids[0])->session, "chat-1");

        auto none = wait_for({}, 10s);
        none.jobs.reset();  // without ids: chat-2's own jobs, none
        auto listed = co_await mgr_->wait(other_session, none);
        EXPECT_TRUE(listed.done);
        EXPECT_TRUE(listed.jobs.empty());

        auto pending = [&] { return st_->pending("prompt:a") && st_->pending("prompt:b"); };
        CO_ASSERT_TRUE(co_await until(pending));
        protocol::peek_params pp;
        pp.job = ids[0];
        auto peeked = co_await mgr_->peek(other_session, pp);
        CO_ASSERT_TRUE(peeked.job.view.has_value());
        EXPECT_EQ(peeked.job.view->state, job_state::running);

        auto cp = cancel_of({ids[0]});
        auto out = co_await mgr_->cancel(other_session, cp);
        CO_ASSERT_TRUE(out.at(0).view.has_value());
        EXPECT_EQ(out[0].view->state, job_state::cancelled);
        auto wp = wait_for({ids[0]}, 10s);
        auto w = co_await mgr_->wait(other_session, wp);
        EXPECT_TRUE(w.done);
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::cancelled);
        EXPECT_EQ(state(ids[1]), job_state::running);
        EXPECT_EQ(mgr_->status(alice, {}).size(), 2u);  // it still belongs to chat-1
    });
}

// DESIGN §2 `continue`: by id from any session of the principal; another principal's job
// answers like one that never existed.
TEST_F(manager_test, a_follow_up_reaches_jobs_of_its_principal_only) {
    make();
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 10s);
        auto done = co_await mgr_->wait(alice, wp);
        CO_ASSERT_TRUE(done.done);
        auto follow = tasks({"next"});
        follow.tasks[0].continues = ids[0];
        owner const bob{"bob", "chat-1"};
        auto refused = co_await mgr_->start_jobs(bob, follow);
        CO_ASSERT_TRUE(!refused.has_value());
        auto const data = refused.error().data.as_object();  // error() is a copy
        EXPECT_EQ(data.at("field"), "tasks[0].continue");
        EXPECT_EQ(data.at("reason"), "unknown job");
        owner const alice2{"alice", "chat-2"};
        auto taken = co_await mgr_->start_jobs(alice2, follow);
        CO_ASSERT_TRUE(taken.has_value());
        EXPECT_EQ(taken->at(0).view->continues, ids[0]);
        EXPECT_EQ(taken->at(0).view->session, "chat-2");
        EXPECT_EQ(taken->at(0).view->upstream->session, view(alice, ids[0])->upstream->session);
    });
}

TEST_F(manager_test, cancel_cascades_to_the_jobs_descendants_only) {
    limits lim;
    lim.max_depth = 3;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto tops_call = start(alice, {"top", "other"});
        auto tops = co_await std::move(tops_call);
        auto created = [&] { return st_->pending("prompt:top") && st_->pending("prompt:other"); };
        CO_ASSERT_TRUE(co_await until(created));
        // Sub-agents of "top" and "other" call with their upstream session as the session.
        auto child_call = start(owner{"alice", st_->session_of.at("top")}, {"child"});
        auto child = co_await std::move(child_call);
        auto niece_call = start(owner{"alice", st_->session_of.at("other")}, {"niece"});
        auto niece = co_await std::move(niece_call);
        auto child_created = [&] { return st_->pending("prompt:child"); };
        CO_ASSERT_TRUE(co_await until(child_created));
        auto grandchild_call = start(owner{"alice", st_->session_of.at("child")}, {"gc1", "gc2"});
        auto grandchild = co_await std::move(grandchild_call);
        auto all_created = [&] { return st_->pending("prompt:gc1") && st_->pending("prompt:gc2"); };
        CO_ASSERT_TRUE(co_await until(all_created));
        // A job of another principal in the same session name is nobody's child.
        auto bobs_call = start(owner{"bob", st_->session_of.at("top")}, {"bobs"});
        auto bobs = co_await std::move(bobs_call);

        auto cp = cancel_of({tops[0]});
        auto out = co_await mgr_->cancel(alice, cp);
        CO_ASSERT_TRUE(out.size() == 1u && out[0].view);  // the named jobs only
        EXPECT_EQ(out[0].view->state, job_state::cancelled);
        for (auto const& id : {child[0], grandchild[0], grandchild[1]}) {
            EXPECT_EQ(state(id), job_state::cancelled) << id;
            EXPECT_EQ(view(alice, id)->error->message, "cancelled with its ancestor " + tops[0]);
        }
        EXPECT_EQ(state(tops[1]), job_state::running);
        EXPECT_EQ(state(niece[0]), job_state::running);
        EXPECT_EQ(view(owner{"bob", "x"}, bobs[0])->state, job_state::running);
        std::set<std::string> aborted;
        for (auto const& [session, dir] : st_->aborts) aborted.insert(session);
        EXPECT_EQ(aborted, (std::set<std::string>{"ses_top", "ses_child", "ses_gc1", "ses_gc2"}));
        EXPECT_EQ(st_->aborts.size(), 4u);
    });
}

TEST_F(manager_test, cancelling_a_finished_job_still_cancels_its_running_descendants) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto top_call = start(alice, {"top"});
        auto top = co_await std::move(top_call);
        auto created = [&] { return st_->pending("prompt:top"); };
        CO_ASSERT_TRUE(co_await until(created));
        auto child_call = start(owner{"alice", st_->session_of.at("top")}, {"child"});
        auto child = co_await std::move(child_call);
        st_->release("prompt:top");
        auto top_done = [&] { return state(top[0]) == job_state::completed; };
        CO_ASSERT_TRUE(co_await until(top_done));

        auto cp = cancel_of(top);
        auto out = co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(out.at(0).view->state, job_state::completed);  // terminal: left as it is
        EXPECT_EQ(state(child[0]), job_state::cancelled);
    });
}

TEST_F(manager_test, list_spans_the_principals_sessions_and_no_one_elses) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto a1_call = start(owner{"alice", "s1"}, {"a"});
        auto a1 = co_await std::move(a1_call);
        auto bob_call = start(owner{"bob", "s1"}, {"b"});
        auto bob = co_await std::move(bob_call);
        auto a2_call = start(owner{"alice", "s2"}, {"c", "d"});
        auto a2 = co_await std::move(a2_call);
        auto listed = mgr_->list("alice", std::nullopt, 10);
        CO_ASSERT_TRUE(listed.size() == 3u);
        EXPECT_EQ(listed[0].view.id, a2[1]);  // newest first, across sessions
        EXPECT_EQ(listed[0].session, "s2");
        EXPECT_EQ(listed[1].view.id, a2[0]);
        EXPECT_EQ(listed[2].view.id, a1[0]);
        EXPECT_EQ(listed[2].session, "s1");
        for (auto const& l : listed) EXPECT_NE(l.view.id, bob[0]);

        auto one = mgr_->list("alice", std::string("s1"), 10);
        CO_ASSERT_TRUE(one.size() == 1u);
        EXPECT_EQ(one[0].view.id, a1[0]);
        EXPECT_EQ(mgr_->list("alice", std::nullopt, 2).size(), 2u);
        // A principal whose name is a prefix of another's sees nothing of it.
        EXPECT_TRUE(mgr_->list("ali", std::nullopt, 10).empty());
        EXPECT_TRUE(mgr_->list("carol", std::nullopt, 10).empty());
        auto bobs = mgr_->list("bob", std::nullopt, 10);
        CO_ASSERT_TRUE(bobs.size() == 1u);
        EXPECT_EQ(bobs[0].view.id, bob[0]);
    });
}

// ---------------------------------------------------------------------------------------------
// Wait
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, wait_zero_timeout_checks_now) {
    make();
    script("slow").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"quick", "slow"});
        auto ids = co_await std::move(ids_call);
        auto quick_done = [&] { return state(ids[0]) == job_state::completed; };
        CO_ASSERT_TRUE(co_await until(quick_done));

        auto t0 = steady::now();
        auto slow = wait_for({ids[1]}, 0ms);
        auto w = co_await mgr_->wait(alice, slow);
        EXPECT_LT(steady::now() - t0, 100ms);
        EXPECT_FALSE(w.done);
        EXPECT_TRUE(w.timed_out);
        CO_ASSERT_TRUE(w.jobs.size() == 1u);
        EXPECT_EQ(w.jobs[0].view->state, job_state::running);

        auto quick = wait_for({ids[0]}, 0ms);
        auto q = co_await mgr_->wait(alice, quick);
        EXPECT_TRUE(q.done);
        EXPECT_FALSE(q.timed_out);
        EXPECT_EQ(q.jobs.at(0).view->state, job_state::completed);
    });
}

TEST_F(manager_test, wait_times_out_without_polling) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto t0 = steady::now();
        auto wp = wait_for(ids, 300ms);
        auto w = co_await mgr_->wait(alice, wp);
        auto took = steady::now() - t0;
        EXPECT_FALSE(w.done);
        EXPECT_TRUE(w.timed_out);
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::running);
        EXPECT_GE(took, 300ms);
        EXPECT_LT(took, 1s);
    });
    // A 300 ms wait that polled every few ms would have run hundreds of handlers.
    EXPECT_LT(handlers_, 60u);
}

TEST_F(manager_test, wait_is_woken_by_the_event) {
    make();
    script("a").prompt.latency = 30ms;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto t0 = steady::now();
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        auto took = steady::now() - t0;
        EXPECT_TRUE(w.done);
        EXPECT_FALSE(w.timed_out);
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::completed);
        EXPECT_GE(took, 30ms);
        EXPECT_LT(took, 1s);
    });
}

TEST_F(manager_test, wait_any_returns_at_the_first_terminal_job) {
    make();
    script("slow").prompt.manual = true;
    script("fast").prompt.latency = 20ms;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"slow", "fast"});
        auto ids = co_await std::move(ids_call);
        auto t0 = steady::now();
        auto wp = wait_for(ids, 10s, protocol::wait_mode::any);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s);
        EXPECT_TRUE(w.done);
        EXPECT_FALSE(w.timed_out);
        CO_ASSERT_TRUE(w.jobs.size() == 2u);
        EXPECT_EQ(w.jobs[0].id, ids[0]);
        EXPECT_EQ(w.jobs[0].view->state, job_state::running);
        EXPECT_EQ(w.jobs[1].id, ids[1]);
        EXPECT_EQ(w.jobs[1].view->state, job_state::completed);
    });
}

TEST_F(manager_test, wait_all_waits_for_every_job) {
    make();
    script("a").prompt.latency = 10ms;
    script("b").prompt.latency = 40ms;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "b"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        EXPECT_FALSE(w.timed_out);
        for (auto const& e : w.jobs) EXPECT_EQ(e.view->state, job_state::completed) << e.id;
    });
}

TEST_F(manager_test, wait_counts_unknown_and_foreign_ids_as_resolved) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto t0 = steady::now();
        auto unknown = wait_for({"job_nope"}, 10s);
        auto w = co_await mgr_->wait(alice, unknown);
        EXPECT_TRUE(w.done);
        EXPECT_FALSE(w.timed_out);
        CO_ASSERT_TRUE(w.jobs.size() == 1u);
        EXPECT_EQ(w.jobs[0].id, "job_nope");
        EXPECT_FALSE(w.jobs[0].view.has_value());

        // alice's running job seen by bob: not found, so resolved at once.
        auto foreign = wait_for(ids, 10s);
        owner bob{"bob", "chat-1"};
        auto f = co_await mgr_->wait(bob, foreign);
        EXPECT_TRUE(f.done);
        EXPECT_FALSE(f.jobs.at(0).view.has_value());

        // `any` over a running job and an unknown id is done at once.
        auto mixed = wait_for({ids[0], "job_nope"}, 10s, protocol::wait_mode::any);
        auto m = co_await mgr_->wait(alice, mixed);
        EXPECT_TRUE(m.done);
        EXPECT_EQ(m.jobs.at(0).view->state, job_state::running);
        EXPECT_FALSE(m.jobs.at(1).view.has_value());
        EXPECT_LT(steady::now() - t0, 1s);
    });
}

TEST_F(manager_test, wait_without_ids_takes_the_jobs_not_terminal_at_arrival) {
    make();
    script("later").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        // Nothing to wait for: done at once.
        protocol::wait_params none;
        none.timeout_ms = 10'000;
        auto empty = co_await mgr_->wait(alice, none);
        EXPECT_TRUE(empty.done);
        EXPECT_TRUE(empty.jobs.empty());

        auto early_call = start(alice, {"early"});

        auto early = co_await std::move(early_call);
        auto early_done = [&] { return state(early[0]) == job_state::completed; };
        CO_ASSERT_TRUE(co_await until(early_done));
        auto later_call = start(alice, {"later"});
        auto later = co_await std::move(later_call);
        auto pending = [&] { return st_->pending("prompt:later"); };
        CO_ASSERT_TRUE(co_await until(pending));

        protocol::wait_params now;
        now.timeout_ms = 0;
        auto w0 = co_await mgr_->wait(alice, now);
        EXPECT_FALSE(w0.done);
        CO_ASSERT_TRUE(w0.jobs.size() == 1u);
        EXPECT_EQ(w0.jobs[0].id, later[0]);

        asio::steady_timer release_later(ioc_, 20ms);
        release_later.async_wait([&](boost::system::error_code) { st_->release("prompt:later"); });
        protocol::wait_params all;
        all.timeout_ms = 10'000;
        auto t0 = steady::now();
        auto w = co_await mgr_->wait(alice, all);
        EXPECT_LT(steady::now() - t0, 1s);
        EXPECT_TRUE(w.done);
        CO_ASSERT_TRUE(w.jobs.size() == 1u);
        EXPECT_EQ(w.jobs[0].id, later[0]);
        EXPECT_EQ(w.jobs[0].view->state, job_state::completed);
    });
}

TEST_F(manager_test, wait_is_woken_by_cancel) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        asio::steady_timer later(ioc_, 20ms);
        later.async_wait([&](boost::system::error_code) {
            asio::co_spawn(ioc_, cancel_later(alice, ids), asio::detached);
        });
        auto t0 = steady::now();
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s);
        EXPECT_TRUE(w.done);
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::cancelled);
    });
}

// ---------------------------------------------------------------------------------------------
// Cancel
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, cancel_queued_job_never_reaches_the_backend) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("first").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"first", "second"});
        auto ids = co_await std::move(ids_call);
        EXPECT_EQ(state(ids[1]), job_state::queued);
        auto cp = cancel_of({ids[1], "job_unknown"});
        auto out = co_await mgr_->cancel(alice, cp);
        CO_ASSERT_TRUE(out.size() == 2u);
        EXPECT_EQ(out[0].view->state, job_state::cancelled);
        EXPECT_TRUE(out[0].view->finished_at.has_value());
        EXPECT_FALSE(out[0].view->started_at.has_value());
        EXPECT_EQ(out[1].id, "job_unknown");
        EXPECT_FALSE(out[1].view.has_value());
        EXPECT_EQ(mgr_->stats().queued, 0u);

        auto pending = [&] { return st_->pending("prompt:first"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->release("prompt:first");
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_EQ(state(ids[0]), job_state::completed);
        EXPECT_EQ(state(ids[1]), job_state::cancelled);
        EXPECT_EQ(st_->creates, std::vector<std::string>{"first"});
        EXPECT_TRUE(st_->aborts.empty());
    });
}

TEST_F(manager_test, cancel_running_job_stops_the_call_and_aborts_once) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("a").prompt.manual = true;
    protocol::start_params p;
    auto t = task("a");
    t.directory = "/src";
    p.tasks = {t, task("next")};
    run([&]() -> asio::awaitable<void> {
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        std::string id = r->at(0).id;
        std::string next = r->at(1).id;
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));

        auto cp = cancel_of({id});
        auto out = co_await mgr_->cancel(alice, cp);
        CO_ASSERT_TRUE(out.size() == 1u && out[0].view);
        EXPECT_EQ(out[0].view->state, job_state::cancelled);
        CO_ASSERT_TRUE(out[0].view->error.has_value());
        EXPECT_EQ(out[0].view->error->kind, error_kind::cancelled);

        // The freed slot admits the queued job: the cancelled one has really ended.
        auto next_done = [&] { return state(next) == job_state::completed; };
        CO_ASSERT_TRUE(co_await until(next_done));
        EXPECT_EQ(st_->stopped_by_control, std::vector<std::string>{"prompt:a"});
        CO_ASSERT_TRUE(st_->aborts.size() == 1u);
        EXPECT_EQ(st_->aborts[0].first, "ses_a");
        EXPECT_EQ(st_->aborts[0].second, "/src");

        auto v = view(alice, id);
        EXPECT_EQ(v->state, job_state::cancelled);
        EXPECT_EQ(v->error->kind, error_kind::cancelled);
        EXPECT_FALSE(v->output.has_value());

        // Cancelling again leaves the terminal job as it is and aborts nothing more.
        auto again = co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(again.at(0).view->state, job_state::cancelled);
        auto cn = cancel_of({next});
        auto done = co_await mgr_->cancel(alice, cn);
        EXPECT_EQ(done.at(0).view->state, job_state::completed);
        EXPECT_EQ(st_->aborts.size(), 1u);
    });
}

TEST_F(manager_test, cancel_racing_the_deadline_aborts_upstream_once) {
    make();
    // The deadline stops the prompt, but the call takes a while to complete (a slow close);
    // the caller cancels in between. agents_cancel aborts the session; the job must not abort it
    // a second time when its prompt finally returns.
    script("race").prompt.manual = true;
    script("race").prompt.slow_stop = 200ms;
    run([&]() -> asio::awaitable<void> {
        protocol::start_params p;
        auto t = task("race");
        t.timeout_ms = 30;
        p.tasks.push_back(t);
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        std::string id = r->at(0).id;
        // The hook has fired (deadline) but the prompt has not returned yet.
        auto hooked = [&] { return st_->pending("prompt:race") && !st_->hooks_fired.empty(); };
        CO_ASSERT_TRUE(co_await until(hooked));
        auto cp = cancel_of({id});
        auto out = co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(out.at(0).view->state, job_state::cancelled);
        EXPECT_EQ(st_->aborts.size(), 1u);
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_EQ(state(id), job_state::cancelled);
        EXPECT_EQ(st_->aborts.size(), 1u) << "the session was aborted twice";
    });
}

TEST_F(manager_test, cancel_aborts_several_jobs_concurrently) {
    make();
    st_->fallback.prompt.manual = true;
    st_->abort_latency = 150ms;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "b", "c", "d"});
        auto ids = co_await std::move(ids_call);
        auto all_pending = [&] {
            return st_->pending("prompt:a") && st_->pending("prompt:b") &&
                   st_->pending("prompt:c") && st_->pending("prompt:d");
        };
        CO_ASSERT_TRUE(co_await until(all_pending));
        auto t0 = steady::now();
        auto cp = cancel_of(ids);
        auto out = co_await mgr_->cancel(alice, cp);
        auto took = steady::now() - t0;
        for (auto const& e : out) EXPECT_EQ(e.view->state, job_state::cancelled);
        EXPECT_EQ(st_->aborts.size(), 4u);
        // One slow upstream abort must not be paid once per job: 4 x 150 ms in series is 600 ms.
        EXPECT_LT(took, 400ms) << "aborts ran one after another";
    });
}

TEST_F(manager_test, cancel_during_create_sends_no_prompt) {
    make();
    script("a").create.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("create:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        auto cp = cancel_of(ids);
        auto out = co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(out.at(0).view->state, job_state::cancelled);
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_EQ(st_->stopped_by_control, std::vector<std::string>{"create:a"});
        EXPECT_TRUE(st_->prompts.empty());
        EXPECT_TRUE(st_->aborts.empty());
        EXPECT_EQ(state(ids[0]), job_state::cancelled);
    });
}

TEST_F(manager_test, cancel_of_a_foreign_job_does_nothing) {
    make();
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        auto cp = cancel_of(ids);
        owner mallory{"mallory", "chat-1"};
        auto out = co_await mgr_->cancel(mallory, cp);
        EXPECT_FALSE(out.at(0).view.has_value());
        EXPECT_EQ(state(ids[0]), job_state::running);
        EXPECT_TRUE(st_->aborts.empty());
        EXPECT_TRUE(st_->pending("prompt:a"));
    });
}

// ---------------------------------------------------------------------------------------------
// Deadlines and failures
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, job_deadline_fails_a_hanging_prompt_and_aborts_upstream) {
    make();
    script("hang").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        protocol::start_params p;
        auto t = task("hang");
        t.timeout_ms = 50;
        p.tasks.push_back(t);
        auto t0 = steady::now();  // before the launch, from which the deadline counts
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        auto wp = wait_for({r->at(0).id}, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        auto took = steady::now() - t0;
        EXPECT_TRUE(w.done);
        EXPECT_GE(took, 50ms);
        EXPECT_LT(took, 1s);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::timeout);
        EXPECT_EQ(v.error->phase, error_phase::prompt);
        EXPECT_NE(v.error->message.find("50 ms"), std::string::npos) << v.error->message;
        EXPECT_EQ(st_->stopped_by_control, std::vector<std::string>{"prompt:hang"});
        auto aborted = [&] { return !st_->aborts.empty() && mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(aborted));
        CO_ASSERT_TRUE(st_->aborts.size() == 1u);
        EXPECT_EQ(st_->aborts[0].first, "ses_hang");
    });
}

TEST_F(manager_test, default_job_timeout_comes_from_limits_and_covers_create) {
    limits lim;
    lim.job_timeout = 40ms;
    make(lim);
    script("stuck").create.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"stuck"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::timeout);
        EXPECT_EQ(v.error->phase, error_phase::create);
        EXPECT_NE(v.error->message.find("40 ms"), std::string::npos) << v.error->message;
        EXPECT_FALSE(v.upstream.has_value());
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_TRUE(st_->prompts.empty());
        EXPECT_TRUE(st_->aborts.empty()) << "no session to abort";
    });
}

TEST_F(manager_test, create_failure_fails_only_that_job) {
    make();
    script("bad").create.error =
        upstream::upstream_error{error_kind::upstream, error_phase::create,
                                 "upstream answered HTTP 404: Session not found", 404};
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"good1", "bad", "good2"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::completed);
        EXPECT_EQ(w.jobs.at(2).view->state, job_state::completed);
        auto const& bad = *w.jobs.at(1).view;
        EXPECT_EQ(bad.state, job_state::failed);
        CO_ASSERT_TRUE(bad.error.has_value());
        EXPECT_EQ(bad.error->kind, error_kind::upstream);
        EXPECT_EQ(bad.error->phase, error_phase::create);
        EXPECT_EQ(bad.error->message, "upstream answered HTTP 404: Session not found");
        EXPECT_EQ(bad.error->http_status, 404);
        EXPECT_FALSE(bad.upstream.has_value());
        EXPECT_FALSE(bad.output.has_value());
        EXPECT_EQ(st_->prompts, (std::vector<std::string>{"good1", "good2"}));
        EXPECT_TRUE(st_->aborts.empty());
    });
}

TEST_F(manager_test, upstream_error_result_is_preserved_and_not_aborted) {
    make();
    script("llm").prompt.error = upstream::upstream_error{error_kind::upstream, error_phase::prompt,
                                                          "APIError: Rate limit exceeded", 429};
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"llm"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::upstream);
        EXPECT_EQ(v.error->phase, error_phase::prompt);
        EXPECT_EQ(v.error->message, "APIError: Rate limit exceeded");
        EXPECT_EQ(v.error->http_status, 429);
        CO_ASSERT_TRUE(v.upstream.has_value());
        EXPECT_EQ(v.upstream->backend, "fake");
        EXPECT_EQ(v.upstream->session, "ses_llm");
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_TRUE(st_->aborts.empty()) << "the upstream already ended this turn";
    });
}

TEST_F(manager_test, transport_error_fails_the_job_and_aborts_upstream) {
    make();
    script("reset").prompt.error = upstream::upstream_error{
        error_kind::transport, error_phase::prompt, "connection reset", std::nullopt};
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"reset"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::transport);
        EXPECT_EQ(v.error->phase, error_phase::prompt);
        EXPECT_EQ(v.error->message, "connection reset");
        EXPECT_FALSE(v.error->http_status.has_value());
        auto aborted = [&] { return st_->aborts.size() == 1u && mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(aborted));
        EXPECT_EQ(st_->aborts[0].first, "ses_reset");
    });
}

TEST_F(manager_test, a_throwing_backend_fails_the_job_and_frees_the_gate) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("boom").prompt.throws = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"boom", "after"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::protocol);
        EXPECT_EQ(w.jobs.at(1).view->state, job_state::completed);
    });
}

// The diff is read as the turn ends unless the backend knows no file changed.
TEST_F(manager_test, diff_is_read_unless_the_backend_knows_nothing_changed) {
    make();
    script("unknown").outcome = upstream::prompt_outcome{"u", false, {}, "msg_a", "msg_1", {}};
    script("changed").outcome = upstream::prompt_outcome{"c", false, {}, "msg_a", "msg_2", true};
    script("same").outcome = upstream::prompt_outcome{"s", false, {}, "msg_a", "msg_3", false};
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"unknown", "changed", "same"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        CO_ASSERT_TRUE(w.jobs.size() == 3u);
        auto reads = st_->diff_reads;
        std::sort(reads.begin(), reads.end());
        EXPECT_EQ(reads, (std::vector<std::string>{"msg_1", "msg_2"}));
        for (auto const& j : w.jobs) {
            auto const& v = *j.view;
            EXPECT_EQ(v.state, job_state::completed);
            if (v.output == "s") {
                EXPECT_FALSE(v.diff_summary);
            } else {
                EXPECT_EQ(v.diff_summary, (protocol::diff_summary{1, 2, 1}));
            }
        }
    });
}

TEST_F(manager_test, completed_job_carries_output_usage_and_times) {
    make();
    script("a").outcome =
        upstream::prompt_outcome{"final answer", false, {120, 45, 0.25}, {}, {}, {}};
    script("a").prompt.latency = 20ms;
    script("cut").outcome = upstream::prompt_outcome{"trunc", true, {}, {}, {}, {}};
    run([&]() -> asio::awaitable<void> {
        auto before = std::chrono::system_clock::now();
        auto ids_call = start(alice, {"a", "cut"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        auto after = std::chrono::system_clock::now();
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::completed);
        EXPECT_EQ(v.output, "final answer");
        EXPECT_FALSE(v.truncated);
        CO_ASSERT_TRUE(v.usage.has_value());
        EXPECT_EQ(v.usage->input_tokens, 120);
        EXPECT_EQ(v.usage->output_tokens, 45);
        EXPECT_DOUBLE_EQ(v.usage->cost, 0.25);
        EXPECT_FALSE(v.error.has_value());
        EXPECT_EQ(v.description, "a");
        EXPECT_EQ(v.depth, 1);
        CO_ASSERT_TRUE(v.started_at && v.finished_at);
        // Job times are kept at millisecond precision (as shown and stored).
        EXPECT_LE(std::chrono::time_point_cast<std::chrono::milliseconds>(before), v.created_at);
        EXPECT_LE(v.created_at, *v.started_at);
        EXPECT_LE(*v.started_at + 15ms, *v.finished_at);
        EXPECT_LE(*v.finished_at, after);

        auto const& cut = *w.jobs.at(1).view;
        EXPECT_EQ(cut.output, "trunc");
        EXPECT_TRUE(cut.truncated);
    });
}

// ---------------------------------------------------------------------------------------------
// Peek
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, peek_returns_streamed_deltas) {
    limits lim;
    lim.max_output_bytes = 8;
    make(lim);
    script("a").prompt.manual = true;
    script("a").partial = "should not be read";
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        CO_ASSERT_TRUE(static_cast<bool>(st_->sink));
        st_->sink->on_text("ses_a", "Hel");
        st_->sink->on_text("ses_other", "noise");
        st_->sink->on_text("ses_a", "lo");
        protocol::peek_params pp;
        pp.job = ids[0];
        auto p = co_await mgr_->peek(alice, pp);
        EXPECT_EQ(p.partial_output, "Hello");
        CO_ASSERT_TRUE(p.job.view.has_value());
        EXPECT_EQ(p.job.view->state, job_state::running);
        EXPECT_TRUE(st_->partial_reads.empty());

        // Capped at max_output_bytes.
        st_->sink->on_text("ses_a", ", world");
        auto capped = co_await mgr_->peek(alice, pp);
        EXPECT_EQ(capped.partial_output, "Hello, w");

        // Another owner cannot peek.
        owner bob{"bob", "chat-1"};
        auto foreign = co_await mgr_->peek(bob, pp);
        EXPECT_EQ(foreign.job.id, ids[0]);
        EXPECT_FALSE(foreign.job.view.has_value());
        EXPECT_EQ(foreign.partial_output, "");

        // Finished: the final output, and late deltas change nothing.
        st_->release("prompt:a");
        auto wp = wait_for(ids, 5s);
        co_await mgr_->wait(alice, wp);
        st_->sink->on_text("ses_a", "late");
        auto fin = co_await mgr_->peek(alice, pp);
        EXPECT_EQ(fin.partial_output, "done: a");
        EXPECT_TRUE(st_->partial_reads.empty());
    });
}

TEST_F(manager_test, peek_cap_does_not_split_a_utf8_character) {
    limits lim;
    lim.max_output_bytes = 4;
    make(lim);
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_text("ses_a", "abc");
        st_->sink->on_text("ses_a", "\xC3\xA9");  // U+00E9: only one of its two bytes fits the cap
        protocol::peek_params pp;
        pp.job = ids[0];
        auto p = co_await mgr_->peek(alice, pp);
        // The partial output goes into a JSON string: half a character makes the whole
        // response invalid UTF-8, which strict clients (Boost.JSON, Python) refuse to parse.
        EXPECT_EQ(p.partial_output, "abc");
    });
}

TEST_F(manager_test, peek_falls_back_to_read_partial_without_deltas) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("a").prompt.manual = true;
    script("a").partial = "from upstream";
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a", "queued"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        protocol::peek_params pp;
        pp.job = ids[0];
        auto p = co_await mgr_->peek(alice, pp);
        EXPECT_EQ(p.partial_output, "from upstream");
        EXPECT_EQ(st_->partial_reads, std::vector<std::string>{"ses_a"});
        EXPECT_EQ(p.job.view->state, job_state::running);

        // A queued job has nothing to read yet.
        protocol::peek_params pq;
        pq.job = ids[1];
        auto q = co_await mgr_->peek(alice, pq);
        EXPECT_EQ(q.partial_output, "");
        EXPECT_EQ(q.job.view->state, job_state::queued);
        EXPECT_EQ(st_->partial_reads.size(), 1u);

        protocol::peek_params unknown;
        unknown.job = "job_nope";
        auto u = co_await mgr_->peek(alice, unknown);
        EXPECT_EQ(u.job.id, "job_nope");
        EXPECT_FALSE(u.job.view.has_value());
    });
}

TEST_F(manager_test, job_timeout_counts_queue_time_and_fails_a_queued_job) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("blocker").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto blocker_call = start(alice, {"blocker"});
        auto blocker = co_await std::move(blocker_call);
        auto p = tasks({"late"});
        p.tasks[0].timeout_ms = 50;
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        auto id = r->at(0).id;
        EXPECT_EQ(state(id), job_state::queued);
        auto t0 = steady::now();
        auto wp = wait_for({id}, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s);
        auto const& v = *w.jobs.at(0).view;
        EXPECT_EQ(v.state, job_state::failed);
        CO_ASSERT_TRUE(v.error.has_value());
        EXPECT_EQ(v.error->kind, error_kind::timeout);
        EXPECT_FALSE(v.error->phase.has_value());
        EXPECT_NE(v.error->message.find("50 ms"), std::string::npos) << v.error->message;
        EXPECT_FALSE(v.started_at.has_value());
        EXPECT_EQ(mgr_->stats().queued, 0u);
        EXPECT_EQ(st_->creates, std::vector<std::string>{"blocker"}) << "it never launched";
        // The gate still works: once the blocker ends, nothing stale is launched.
        st_->release("prompt:blocker");
        auto idle = [&] { return mgr_->stats().running == 0; };
        CO_ASSERT_TRUE(co_await until(idle));
        EXPECT_EQ(st_->creates.size(), 1u);
    });
}

TEST_F(manager_test, a_launched_job_keeps_the_deadline_of_its_creation) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    script("first").prompt.latency = 60ms;
    script("second").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto first_call = start(alice, {"first"});
        [[maybe_unused]] auto first = co_await std::move(first_call);
        auto p = tasks({"second"});
        p.tasks[0].timeout_ms = 100;  // 60 ms of it pass in the queue
        auto r = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(r.has_value());
        auto created = steady::now();
        auto wp = wait_for({r->at(0).id}, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        auto took = steady::now() - created;
        EXPECT_EQ(w.jobs.at(0).view->state, job_state::failed);
        EXPECT_EQ(w.jobs.at(0).view->error->kind, error_kind::timeout);
        EXPECT_GE(took, 90ms);
        EXPECT_LT(took, 150ms) << "the deadline restarted at launch";
    });
}

TEST_F(manager_test, a_hung_post_failure_abort_does_not_hold_a_launch_slot) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    st_->abort_latency = 5s;  // the upstream hangs on abort
    script("reset").prompt.error = upstream::upstream_error{
        error_kind::transport, error_phase::prompt, "connection reset", std::nullopt};
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"reset", "next"});
        auto ids = co_await std::move(ids_call);
        auto next_done = wait_for({ids[1]}, 3s);
        auto w = co_await mgr_->wait(alice, next_done);
        EXPECT_TRUE(w.done) << "the queued job waited behind the abort";
        EXPECT_EQ(state(ids[1]), job_state::completed);
        EXPECT_EQ(st_->aborts.size(), 1u);
    });
}

TEST_F(manager_test, cancel_answers_within_a_second_when_the_abort_hangs) {
    make();
    st_->abort_latency = 5s;
    script("held").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"held"});
        auto ids = co_await std::move(ids_call);
        auto launched = [&] { return st_->pending("prompt:held"); };
        CO_ASSERT_TRUE(co_await until(launched));
        auto t0 = steady::now();
        auto cp = cancel_of(ids);
        auto out = co_await mgr_->cancel(alice, cp);
        auto took = steady::now() - t0;
        EXPECT_GE(took, 900ms);
        EXPECT_LT(took, 2s);
        EXPECT_EQ(out.at(0).view->state, job_state::cancelled);
        EXPECT_EQ(st_->aborts.size(), 1u);
    });
}

TEST_F(manager_test, drain_bounds_the_wait_for_hung_aborts_after_the_grace) {
    make();
    st_->abort_latency = 30s;
    script("long").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"long"});
        auto ids = co_await std::move(ids_call);
        auto launched = [&] { return st_->pending("prompt:long"); };
        CO_ASSERT_TRUE(co_await until(launched));
        auto t0 = steady::now();
        co_await mgr_->drain(100ms);
        auto took = steady::now() - t0;
        EXPECT_LT(took, 3s) << "the drain waited for the upstream's abort";
        EXPECT_EQ(state(ids[0]), job_state::interrupted);
        EXPECT_EQ(st_->aborts.size(), 1u);
    });
}

// ---------------------------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, reaper_removes_finished_jobs_after_retention_from_finish) {
    limits lim;
    lim.retention = 50ms;
    make(lim);
    script("long").prompt.latency = 120ms;  // longer than the retention
    script("held").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"long", "held"});
        auto ids = co_await std::move(ids_call);
        auto wp = wait_for({ids[0]}, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.done);
        auto finished = steady::now();
        // Measured from finish, not creation: still there right after finishing.
        auto v = view(alice, ids[0]);
        CO_ASSERT_TRUE(v.has_value());
        EXPECT_EQ(v->state, job_state::completed);

        auto gone = [&] { return !view(alice, ids[0]).has_value(); };
        CO_ASSERT_TRUE(co_await until(gone, 2s));
        EXPECT_GE(steady::now() - finished, 40ms);
        EXPECT_EQ(mgr_->stats().jobs, 1u);
        EXPECT_TRUE(mgr_->status(alice, {}).size() == 1u);
        // A running job is never reaped.
        EXPECT_EQ(state(ids[1]), job_state::running);

        // A second round re-arms the reaper.
        st_->release("prompt:held");
        auto gone2 = [&] { return mgr_->stats().jobs == 0; };
        CO_ASSERT_TRUE(co_await until(gone2, 2s));
        EXPECT_TRUE(mgr_->status(alice, {}).empty());
    });
}

// A state database in a fresh temp dir, and a second connection that can hold its write lock.
class locked_store {
  public:
    locked_store()
        : dir_(std::filesystem::temp_directory_path() /
               ("agentd-manager-" + std::to_string(::getpid()))) {
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        db_ = std::make_unique<sqlite_store>(dir_ / "agentd.db");
        EXPECT_EQ(sqlite3_open((dir_ / "agentd.db").c_str(), &other_), SQLITE_OK);
        sqlite3_busy_timeout(other_, 10'000);  // the store's checkpoint may hold the lock a moment
    }
    ~locked_store() {
        unlock();
        sqlite3_close(other_);
        db_.reset();
        std::filesystem::remove_all(dir_);
    }
    sqlite_store& db() { return *db_; }
    void lock() { EXPECT_EQ(sqlite3_exec(other_, "BEGIN IMMEDIATE", 0, 0, 0), SQLITE_OK); }
    void unlock() { sqlite3_exec(other_, "ROLLBACK", 0, 0, 0); }

  private:
    std::filesystem::path dir_;
    std::unique_ptr<sqlite_store> db_;
    sqlite3* other_ = nullptr;
};

TEST_F(manager_test, reaper_survives_a_locked_store_and_reaps_later) {
    locked_store s;
    limits lim;
    lim.retention = 30ms;
    make(lim, &s.db());
    run([&]() -> asio::awaitable<void> {
        auto first_call = start(alice, {"one"});
        auto first = co_await std::move(first_call);
        s.lock();  // the job's completion and its reaping cannot be written now
        auto gone = [&] { return !view(alice, first[0]).has_value(); };
        CO_ASSERT_TRUE(co_await until(gone, 2s));
        EXPECT_GT(mgr_->background().store_pending_rows, 0u);
        EXPECT_GT(mgr_->background().store_errors[static_cast<int>(store_op::save)] +
                      mgr_->background().store_errors[static_cast<int>(store_op::erase)],
                  0u);

        s.unlock();
        auto second_call = start(alice, {"two"});
        auto second = co_await std::move(second_call);
        auto gone2 = [&] { return !view(alice, second[0]).has_value(); };
        bool reaped = co_await until(gone2, 2s);
        CO_ASSERT_TRUE(reaped);  // else the reaper died
        auto flushed = [&] { return mgr_->background().store_pending_rows == 0; };
        bool written = co_await until(flushed, 3s);
        CO_ASSERT_TRUE(written);  // else the pending rows were never retried
    });
    EXPECT_TRUE(s.db().load().empty()) << "reaped jobs left in the database";
}

TEST_F(manager_test, start_is_refused_whole_while_the_store_is_locked) {
    locked_store s;
    make({}, &s.db());
    run([&]() -> asio::awaitable<void> {
        s.lock();
        auto r_tasks = tasks({"a", "b"});
        auto r = co_await mgr_->start_jobs(alice, r_tasks);
        CO_ASSERT_TRUE(!r.has_value());
        EXPECT_EQ(r.error().code, protocol::error_code::internal_error);
        EXPECT_EQ(r.error().message, "the job store is unavailable");
        EXPECT_EQ(mgr_->stats().jobs, 0u);
        EXPECT_TRUE(st_->creates.empty());
        s.unlock();
        co_return;
    });
}

// ---------------------------------------------------------------------------------------------
// Stop
// ---------------------------------------------------------------------------------------------

TEST_F(manager_test, stop_interrupts_queued_and_running_jobs) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"running", "queued"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:running"); };
        CO_ASSERT_TRUE(co_await until(pending));

        mgr_->stop();
        EXPECT_TRUE(st_->stopped);
        EXPECT_EQ(state(ids[1]), job_state::interrupted);
        EXPECT_EQ(mgr_->stats().queued, 0u);

        auto ended = [&] { return state(ids[0]) == job_state::interrupted; };
        CO_ASSERT_TRUE(co_await until(ended));
        auto v = view(alice, ids[0]);
        CO_ASSERT_TRUE(v->error.has_value());
        EXPECT_EQ(v->error->kind, error_kind::interrupted);
        EXPECT_EQ(st_->stopped_by_control, std::vector<std::string>{"prompt:running"});
        EXPECT_EQ(st_->creates, std::vector<std::string>{"running"}) << "queued job launched";

        auto after_tasks = tasks({"late"});

        auto after = co_await mgr_->start_jobs(alice, after_tasks);
        CO_ASSERT_TRUE(!after.has_value());
        EXPECT_EQ(after.error().code, protocol::error_code::shutting_down);

        // Waits and status still answer after stop.
        auto t0 = steady::now();
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s);
        EXPECT_TRUE(w.done);
        EXPECT_EQ(mgr_->status(alice, {}).size(), 2u);
    });
}

TEST_F(manager_test, stop_does_not_report_a_pending_wait_as_timed_out) {
    limits lim;
    lim.max_running = 1;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"running", "queued"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:running"); };
        CO_ASSERT_TRUE(co_await until(pending));
        asio::steady_timer later(ioc_, 20ms);
        later.async_wait([&](boost::system::error_code) { mgr_->stop(); });
        auto t0 = steady::now();
        auto wp = wait_for(ids, 10s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s) << "a pending wait must end promptly on stop()";
        // 10 s have not passed: whatever else the answer says, it did not time out.
        EXPECT_FALSE(w.timed_out);
        // And what it reports is not stale: every job ends promptly on stop().
        for (auto const& e : w.jobs)
            EXPECT_TRUE(protocol::is_terminal(e.view->state)) << protocol::to_string(e.view->state);
    });
}

// ---------------------------------------------------------------------------------------------
// Tool steps and requests (DESIGN §2): waiting, agents_respond, policy, input and idle timeouts
// ---------------------------------------------------------------------------------------------

protocol::pending_request permission(std::string id) {
    protocol::pending_request r;
    r.id = std::move(id);
    r.kind = protocol::request_kind::permission;
    r.permission = "bash";
    r.patterns = {"rm -rf build"};
    return r;
}

protocol::pending_request question(std::string id, bool multiple = false, bool custom = true) {
    protocol::pending_request r;
    r.id = std::move(id);
    r.kind = protocol::request_kind::question;
    protocol::question_item q;
    q.question = "Which colour?";
    q.options = {{"red", ""}, {"green", ""}};
    q.multiple = multiple;
    q.custom = custom;
    r.questions = {q};
    return r;
}

protocol::respond_params answer_of(
    std::string job, std::string request, std::optional<protocol::respond_decision> d,
    std::optional<std::vector<std::vector<std::string>>> answers = {}) {
    protocol::respond_params p;
    p.job = std::move(job);
    p.request = std::move(request);
    p.decision = d;
    p.answers = std::move(answers);
    return p;
}

std::string field_of(protocol::rpc_error const& e) {
    auto const* o = e.data.if_object();
    auto const* f = o ? o->if_contains("field") : nullptr;
    return f && f->is_string() ? std::string(f->get_string()) : std::string{};
}

TEST_F(manager_test, a_permission_makes_the_job_wait_and_an_answer_resumes_it) {
    make();
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_1"));
        EXPECT_EQ(state(ids[0]), job_state::waiting);
        auto v = view(alice, ids[0]);
        CO_ASSERT_TRUE(v && v->requests.size() == 1u);
        EXPECT_EQ(v->requests[0].id, "per_1");
        st_->sink->on_request("ses_a", permission("per_1"));  // told again (restore): once
        EXPECT_EQ(view(alice, ids[0])->requests.size(), 1u);

        // A waiting job ends a wait at once, with needs_input.
        auto t0 = steady::now();
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_LT(steady::now() - t0, 1s);
        EXPECT_FALSE(w.done);
        EXPECT_FALSE(w.timed_out);
        EXPECT_EQ(w.needs_input, ids);

        auto rp = answer_of(ids[0], "per_1", protocol::respond_decision::allow_always);
        auto r = co_await mgr_->respond(alice, rp);
        CO_ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->view->state, job_state::running);
        EXPECT_TRUE(r->view->requests.empty());
        CO_ASSERT_TRUE(r->view->answered.size() == 1u);
        EXPECT_EQ(r->view->answered[0].how, protocol::decision::allow_always);
        EXPECT_EQ(r->view->answered[0].by, protocol::answered_by::caller);
        CO_ASSERT_TRUE(st_->replies.size() == 1u);
        EXPECT_EQ(st_->replies[0].how, protocol::decision::allow_always);

        // Answered: no longer pending.
        auto again = co_await mgr_->respond(alice, rp);
        CO_ASSERT_TRUE(!again);
        EXPECT_EQ(field_of(again.error()), "request");

        st_->release("prompt:a");
        auto wp2 = wait_for(ids, 5s);
        auto done = co_await mgr_->wait(alice, wp2);
        EXPECT_TRUE(done.done);
        EXPECT_EQ(done.jobs[0].view->state, job_state::completed);
        EXPECT_EQ(done.jobs[0].view->answered.size(), 1u);  // kept after the end
    });
}

TEST_F(manager_test, respond_checks_the_answer_against_the_request) {
    make();
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        using D = protocol::respond_decision;
        using labels = std::vector<std::string>;
        using answers = std::vector<labels>;
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_1"));
        st_->sink->on_request("ses_a", question("que_1"));
        st_->sink->on_request("ses_a", question("que_2", false, false));

        // One named co_await per call (g++ 12 mis-destroys co_await results in temporaries).
        std::vector<std::pair<protocol::respond_params, std::string>> const cases{
            {answer_of("job_nope", "per_1", D::allow), "job"},
            {answer_of(ids[0], "per_nope", D::allow), "request"},
            {answer_of(ids[0], "per_1", {}, answers{labels{"red"}}), "decision"},
            {answer_of(ids[0], "que_1", D::allow), "decision"},
            {answer_of(ids[0], "que_1", {}, answers{labels{"red"}, labels{"x"}}), "answers"},
            {answer_of(ids[0], "que_1", {}, answers{labels{"red", "green"}}), "answers"},
            {answer_of(ids[0], "que_2", {}, answers{labels{"purple"}}), "answers"},
        };
        for (auto const& [params, expected] : cases) {
            auto r = co_await mgr_->respond(alice, params);
            CO_ASSERT_TRUE(!r);
            EXPECT_EQ(field_of(r.error()), expected) << params.request;
        }
        // Another owner's job is unknown.
        owner bob{"bob", "chat-1"};
        auto foreign = answer_of(ids[0], "per_1", D::allow);
        auto r = co_await mgr_->respond(bob, foreign);
        CO_ASSERT_TRUE(!r);
        EXPECT_EQ(field_of(r.error()), "job");
        EXPECT_TRUE(st_->replies.empty());

        // Free text where the question allows it; deny of a question; a permission's deny.
        auto deny = answer_of(ids[0], "per_1", D::deny);
        deny.message = "not in this repo";
        std::vector<protocol::respond_params> const fine{
            answer_of(ids[0], "que_1", {}, answers{labels{"purple, obviously"}}),
            answer_of(ids[0], "que_2", D::deny), deny};
        for (auto const& params : fine) {
            auto ok = co_await mgr_->respond(alice, params);
            EXPECT_TRUE(ok.has_value()) << params.request;
        }
        CO_ASSERT_TRUE(st_->replies.size() == 3u);
        EXPECT_EQ(st_->replies[0].answers, (answers{labels{"purple, obviously"}}));
        EXPECT_EQ(st_->replies[1].how, protocol::decision::deny);
        EXPECT_EQ(st_->replies[2].message, "not in this repo");
        EXPECT_EQ(state(ids[0]), job_state::running);
        st_->release("prompt:a");
    });
}

TEST_F(manager_test, a_request_answered_upstream_is_cleared_and_recorded) {
    make();
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_1"));
        EXPECT_EQ(state(ids[0]), job_state::waiting);
        st_->sink->on_settled("ses_a", {"per_1", protocol::decision::deny});
        auto v = view(alice, ids[0]);
        EXPECT_EQ(v->state, job_state::running);
        CO_ASSERT_TRUE(v->answered.size() == 1u);
        EXPECT_EQ(v->answered[0].by, protocol::answered_by::upstream);
        EXPECT_EQ(v->answered[0].how, protocol::decision::deny);
        EXPECT_TRUE(st_->replies.empty());
        // A 404 from the upstream (answered meanwhile) drops the request too.
        st_->sink->on_request("ses_a", permission("per_2"));
        st_->respond_error = upstream::upstream_error{error_kind::upstream, error_phase::prompt,
                                                      "Permission request not found", 404};
        auto rp = answer_of(ids[0], "per_2", protocol::respond_decision::allow);
        auto r = co_await mgr_->respond(alice, rp);
        CO_ASSERT_TRUE(!r);
        EXPECT_EQ(field_of(r.error()), "request");
        EXPECT_EQ(state(ids[0]), job_state::running);
        st_->release("prompt:a");
    });
}

TEST_F(manager_test, policy_answers_requests_without_waiting) {
    limits lim;
    lim.permissions = protocol::permission_policy::allow;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto p = tasks({"a", "b"});
        p.tasks[1].permissions = protocol::permission_policy::deny;
        auto started = co_await mgr_->start_jobs(alice, p);
        CO_ASSERT_TRUE(started.has_value());
        auto pending = [&] { return st_->pending("prompt:a") && st_->pending("prompt:b"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_a"));
        st_->sink->on_request("ses_a", question("que_a"));
        st_->sink->on_request("ses_b", permission("per_b"));
        st_->sink->on_request("ses_b", question("que_b", false, false));
        auto answered = [&] {
            return st_->replies.size() == 4u &&
                   view(alice, (*started)[1].id)->answered.size() == 2u;
        };
        CO_ASSERT_TRUE(co_await until(answered));
        std::map<std::string, upstream::request_reply> by_id;
        for (auto const& r : st_->replies) by_id[r.request_id] = r;
        EXPECT_EQ(by_id["per_a"].how, protocol::decision::allow);
        EXPECT_EQ(by_id["que_a"].how, protocol::decision::answer);
        EXPECT_EQ(by_id["que_a"].answers,
                  (std::vector<std::vector<std::string>>{
                      std::vector<std::string>{"No user is available; decide yourself."}}));
        EXPECT_EQ(by_id["per_b"].how, protocol::decision::deny);
        EXPECT_EQ(by_id["per_b"].message, "denied by agentd policy");
        EXPECT_EQ(by_id["que_b"].how, protocol::decision::deny);  // no free text: rejected
        for (auto const& e : *started) {
            auto v = view(alice, e.id);
            EXPECT_EQ(v->state, job_state::running);
            for (auto const& a : v->answered) EXPECT_EQ(a.by, protocol::answered_by::policy);
        }
        st_->release("prompt:a");
        st_->release("prompt:b");
    });
}

TEST_F(manager_test, an_unanswered_request_is_rejected_after_the_input_timeout) {
    limits lim;
    lim.input_timeout = 60ms;
    lim.idle_timeout = 30ms;  // a waiting job is not idle
    make(lim);
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_1"));
        auto t0 = steady::now();
        auto rejected = [&] {
            return st_->replies.size() == 1u && state(ids[0]) == job_state::running;
        };
        CO_ASSERT_TRUE(co_await until(rejected));
        EXPECT_GE(steady::now() - t0, 60ms);
        EXPECT_EQ(st_->replies[0].how, protocol::decision::deny);
        EXPECT_EQ(st_->replies[0].message, "no answer within 0.06 s");
        auto v = view(alice, ids[0]);
        CO_ASSERT_TRUE(v->answered.size() == 1u);
        EXPECT_EQ(v->answered[0].by, protocol::answered_by::timeout);
        st_->release("prompt:a");
    });
}

TEST_F(manager_test, a_job_without_upstream_progress_fails_after_the_idle_timeout) {
    limits lim;
    lim.idle_timeout = 80ms;
    make(lim);
    st_->fallback.prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"quiet", "busy"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:quiet") && st_->pending("prompt:busy"); };
        CO_ASSERT_TRUE(co_await until(pending));
        // "busy" shows progress every 20 ms for 300 ms; "quiet" shows none.
        for (int i = 0; i < 15; ++i) {
            st_->sink->on_progress("ses_busy");
            co_await sleep(20ms);
        }
        auto v = view(alice, ids[0]);
        EXPECT_EQ(v->state, job_state::failed);
        CO_ASSERT_TRUE(v->error.has_value());
        EXPECT_EQ(v->error->kind, error_kind::timeout);
        EXPECT_EQ(v->error->message, "no progress from the upstream for 0.08 s");
        EXPECT_EQ(state(ids[1]), job_state::running);
        auto aborted = [&] { return !st_->aborts.empty(); };
        CO_ASSERT_TRUE(co_await until(aborted));
        EXPECT_EQ(st_->aborts[0].first, "ses_quiet");
        // Silent from now on: "busy" fails too.
        auto wp = wait_for({ids[1]}, 2s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_EQ(w.jobs[0].view->state, job_state::failed);
    });
}

TEST_F(manager_test, on_input_ignore_waits_through_requests) {
    make();
    script("a").prompt.manual = true;
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        st_->sink->on_request("ses_a", permission("per_1"));
        auto wp = wait_for(ids, 50ms);
        wp.ignore_input = true;
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_TRUE(w.timed_out);
        EXPECT_EQ(w.needs_input, ids);
        // Cancelling a waiting job clears its requests.
        auto cp = cancel_of(ids);
        auto c = co_await mgr_->cancel(alice, cp);
        EXPECT_EQ(c[0].view->state, job_state::cancelled);
        EXPECT_TRUE(c[0].view->requests.empty());
    });
}

TEST_F(manager_test, tool_steps_show_as_activity_and_pushes_are_throttled) {
    make();
    script("a").prompt.manual = true;
    std::vector<std::pair<steady::time_point, protocol::boxed<protocol::activity_view>>> pushes;
    auto listening = mgr_->listen([&](job const& j) {
        if (j.view.state == job_state::running) pushes.emplace_back(steady::now(), j.view.activity);
    });
    run([&]() -> asio::awaitable<void> {
        auto ids_call = start(alice, {"a"});
        auto ids = co_await std::move(ids_call);
        auto pending = [&] { return st_->pending("prompt:a"); };
        CO_ASSERT_TRUE(co_await until(pending));
        pushes.clear();
        auto tool = [](std::string call, protocol::step_status s, std::string title) {
            upstream::tool_update u;
            u.call_id = std::move(call);
            u.tool = "bash";
            u.status = s;
            u.title = std::move(title);
            u.output_tail = "out";
            return u;
        };
        auto t0 = steady::now();
        st_->sink->on_tool("ses_a", tool("c1", protocol::step_status::running, "npm test"));
        st_->sink->on_tool("ses_a", tool("c1", protocol::step_status::completed, "npm test"));
        st_->sink->on_tool("ses_a", tool("c2", protocol::step_status::running, "make"));
        st_->sink->on_tool("ses_a", tool("c2", protocol::step_status::running, "make"));  // same
        CO_ASSERT_TRUE(pushes.size() == 1u);  // the first change at once
        CO_ASSERT_TRUE(pushes[0].second.has_value());
        EXPECT_EQ(pushes[0].second->title, "npm test");
        auto merged = [&] { return pushes.size() == 2u; };
        CO_ASSERT_TRUE(co_await until(merged));
        EXPECT_GE(pushes[1].first - t0, 240ms);  // the rest merged into one, 250 ms later
        EXPECT_EQ(pushes[1].second->steps, 2);
        EXPECT_EQ(pushes[1].second->title, "make");

        protocol::peek_params pp;
        pp.job = ids[0];
        auto p = co_await mgr_->peek(alice, pp);
        CO_ASSERT_TRUE(p.steps.size() == 2u);
        EXPECT_EQ(p.steps[0].status, protocol::step_status::completed);
        EXPECT_EQ(p.steps[1].title, "make");
        EXPECT_EQ(p.steps[1].output_tail, "out");
        st_->release("prompt:a");
        auto wp = wait_for(ids, 5s);
        auto w = co_await mgr_->wait(alice, wp);
        EXPECT_FALSE(w.jobs[0].view->activity.has_value());  // only while active
        auto fin = co_await mgr_->peek(alice, pp);
        CO_ASSERT_TRUE(fin.steps.size() == 2u);
        EXPECT_EQ(fin.steps[1].output_tail, "");  // a finished job keeps its steps, not outputs
    });
}

TEST_F(manager_test, a_reattached_job_gets_its_pending_requests_back) {
    auto dir =
        std::filesystem::temp_directory_path() / ("agentd-reattach-" + std::to_string(::getpid()));
    auto id = crash_with_job(
        dir, "waiting", [](fake_state& st) { st.sink->on_request("ses_a", permission("per_1")); });
    ASSERT_FALSE(id.empty());
    sqlite_store db((dir / "agentd.db").string());
    st_->busy_sessions = std::set<std::string>{"ses_a"};
    st_->still_pending = {permission("per_1")};
    make({}, &db);
    run([&]() -> asio::awaitable<void> {
        co_await mgr_->recover(2s);
        auto v = view(alice, id);
        CO_ASSERT_TRUE(v.has_value());
        EXPECT_EQ(v->state, job_state::waiting);
        CO_ASSERT_TRUE(v->requests.size() == 1u);
        EXPECT_EQ(v->requests[0].id, "per_1");
    });
    std::filesystem::remove_all(dir);
}

// A re-attached job's idle clock starts at re-attachment: its last progress before the restart
// is unknown, and the watch round that its deadline arms must not find it idle since the
// clock's epoch.
TEST_F(manager_test, a_reattached_job_is_not_idle_when_the_watch_first_looks) {
    auto dir =
        std::filesystem::temp_directory_path() / ("agentd-reidle-" + std::to_string(::getpid()));
    auto id = crash_with_job(dir, "running", [](fake_state&) {});
    ASSERT_FALSE(id.empty());
    sqlite_store db((dir / "agentd.db").string());
    st_->busy_sessions = std::set<std::string>{"ses_a"};
    st_->fallback.prompt.manual = true;
    limits lim;
    lim.idle_timeout = 10s;
    make(lim, &db);
    run([&]() -> asio::awaitable<void> {
        co_await mgr_->recover(2s);
        auto v = view(alice, id);
        CO_ASSERT_TRUE(v.has_value());
        CO_ASSERT_TRUE(v->state == job_state::running);
        asio::steady_timer pause(co_await asio::this_coro::executor, 100ms);
        co_await pause.async_wait(asio::use_awaitable);
        v = view(alice, id);
        CO_ASSERT_TRUE(v.has_value());
        EXPECT_EQ(v->state, job_state::running)
            << (v->error ? v->error->message : std::string("no error"));
    });
    std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------
// Several instances on one store (DESIGN §9), with the store's shared side faked in memory
// ---------------------------------------------------------------------------------------------

// Rows as another instance committed them: fetch() answers them, the test announces changes
// through the watch callback, take_over() hands out the rows listed in `expired` once.
class fake_shared_store final : public store, public shared_store {
  public:
    std::map<std::string, job> rows;   // by id, as committed (holder: the lease owner)
    std::vector<std::string> expired;  // take_over() claims these once
    std::vector<std::string> saved;    // this instance's writes, by id
    std::function<void(std::vector<std::string>)> on_change;
    int take_overs = 0;

    void save(job const& j) override { saved.push_back(j.view.id); }
    void erase(std::string const&) override {}
    asio::awaitable<void> save_all(std::span<job_ptr const> jobs) override {
        for (auto const& j : jobs) saved.push_back(j->view.id);
        co_return;
    }
    asio::awaitable<void> sync() override { co_return; }
    asio::awaitable<bool> flush() override { co_return true; }
    std::size_t pending() const override { return 0; }
    store_stats stats() const override { return {}; }
    std::string last_error() const override { return {}; }
    std::vector<job_ptr> load() const override { return {}; }
    shared_store* shared() override { return this; }

    std::string const& instance() const override { return me_; }
    std::chrono::milliseconds lease_ttl() const override { return 30ms; }
    void watch(std::function<void(std::vector<std::string>)> f) override { on_change = f; }
    asio::awaitable<std::vector<job_ptr>> fetch(std::vector<std::string> ids) override {
        std::vector<job_ptr> out;
        for (auto const& id : ids)
            if (auto it = rows.find(id); it != rows.end()) out.push_back(copy(it->second));
        co_return out;
    }
    asio::awaitable<std::vector<job_ptr>> take_over() override {
        ++take_overs;
        std::vector<job_ptr> out;
        for (auto const& id : std::exchange(expired, {})) {
            auto j = copy(rows.at(id));
            j->set_runtime(&job::runtime_state::holder, {});  // claimed: this instance's now
            out.push_back(j);
        }
        co_return out;
    }
    asio::awaitable<std::optional<std::string>> call(std::string, std::string,
                                                     std::chrono::milliseconds) override {
        co_return std::nullopt;
    }
    void serve(std::function<asio::awaitable<std::string>(std::string)>) override {}

  private:
    static job_ptr copy(job const& row) {
        auto j = std::make_shared<job>();
        j->view = row.view;
        j->own = row.own;
        j->task = row.task;
        j->seq = row.seq;
        j->set_runtime(&job::runtime_state::holder, row.runtime().holder);
        return j;
    }
    std::string me_ = "here";
};

job other_instances_job(std::string const& id, job_state state, std::string const& prompt) {
    job j;
    j.view.id = id;
    j.view.state = state;
    j.view.session = alice.session;
    j.view.created_at =
        std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    j.view.depth = 1;
    j.own = alice;
    j.task.prompt = prompt;
    j.task.description = prompt;
    j.view.description = prompt;
    j.seq = 1;
    j.runtime_mut().holder = "there";
    return j;
}

TEST_F(manager_test, another_instances_job_is_mirrored_and_its_change_wakes_a_wait) {
    fake_shared_store db;
    db.rows.emplace("job_far", other_instances_job("job_far", job_state::running, "far"));
    make({}, &db);
    run([&]() -> asio::awaitable<void> {
        std::vector<std::string> const ids{"job_far"};
        EXPECT_FALSE(mgr_->knows(alice, ids));
        co_await mgr_->discover(ids);
        EXPECT_TRUE(mgr_->knows(alice, ids));
        EXPECT_EQ(state("job_far"), job_state::running);
        EXPECT_EQ(mgr_->holder(alice, "job_far"), "there");
        EXPECT_FALSE(mgr_->holder(owner{"bob", "x"}, "job_far").has_value()) << "principal";

        // Its instance finishes it: the change notice wakes a wait here.
        auto w = wait_for(ids, 5s);
        auto waiting = asio::co_spawn(ioc_, mgr_->wait(alice, w), asio::use_awaitable);
        auto finish = [&]() -> asio::awaitable<void> {
            co_await sleep(20ms);
            auto& row = db.rows.at("job_far");
            row.view.state = job_state::completed;
            row.view.output = "from there";
            db.on_change({"job_far"});
        };
        asio::co_spawn(ioc_, finish(), asio::detached);
        auto out = co_await std::move(waiting);
        EXPECT_TRUE(out.done);
        CO_ASSERT_TRUE(out.jobs.size() == 1u && out.jobs[0].view.has_value());
        EXPECT_EQ(out.jobs[0].view->state, job_state::completed);
        EXPECT_EQ(out.jobs[0].view->output, "from there");
        EXPECT_FALSE(mgr_->holder(alice, "job_far").has_value()) << "finished: answered here";
        EXPECT_TRUE(st_->creates.empty()) << "a mirrored job never runs here";
        EXPECT_TRUE(db.saved.empty()) << "a mirrored job is never written here";

        // Gone from the database: gone here.
        db.rows.erase("job_far");
        db.on_change({"job_far"});
        auto gone = [&] { return !view(alice, "job_far").has_value(); };
        CO_ASSERT_TRUE(co_await until(gone));
    });
}

TEST_F(manager_test, a_dead_instances_queued_job_is_taken_over_and_runs_here) {
    fake_shared_store db;
    db.rows.emplace("job_orphan", other_instances_job("job_orphan", job_state::queued, "orphan"));
    make({}, &db);
    run([&]() -> asio::awaitable<void> {
        std::vector<std::string> const ids{"job_orphan"};
        co_await mgr_->discover(ids);
        EXPECT_EQ(mgr_->holder(alice, "job_orphan"), "there");
        db.expired = {"job_orphan"};
        auto done = [&] {
            auto v = view(alice, "job_orphan");
            return v && v->state == job_state::completed;
        };
        CO_ASSERT_TRUE(co_await until(done));
        EXPECT_EQ(st_->creates, std::vector<std::string>{"orphan"});
        EXPECT_FALSE(mgr_->holder(alice, "job_orphan").has_value());
        EXPECT_NE(std::find(db.saved.begin(), db.saved.end(), "job_orphan"), db.saved.end());
        EXPECT_GT(db.take_overs, 1) << "leases are renewed every third of the lease time";
    });
}

// The restart rules for a taken-over job whose turn is no longer running upstream: interrupted,
// saying why, and aborted upstream; never prompted again.
TEST_F(manager_test, a_dead_instances_running_job_whose_turn_is_gone_is_interrupted) {
    fake_shared_store db;
    auto row = other_instances_job("job_lost", job_state::running, "lost");
    row.view.upstream = protocol::upstream_ref{"fake", "ses_lost"};
    db.rows.emplace("job_lost", std::move(row));
    st_->busy_sessions = std::set<std::string>{};  // the upstream runs nothing
    make({}, &db);
    run([&]() -> asio::awaitable<void> {
        std::vector<std::string> const ids{"job_lost"};
        co_await mgr_->discover(ids);
        db.expired = ids;
        auto ended = [&] {
            auto v = view(alice, "job_lost");
            return v && v->state == job_state::interrupted;
        };
        CO_ASSERT_TRUE(co_await until(ended));
        auto v = view(alice, "job_lost");
        CO_ASSERT_TRUE(v->error.has_value());
        EXPECT_EQ(v->error->message, "its agentd instance stopped while the job ran");
        auto aborted = [&] { return !st_->aborts.empty(); };
        CO_ASSERT_TRUE(co_await until(aborted));
        EXPECT_EQ(st_->aborts.at(0).first, "ses_lost");
        EXPECT_TRUE(st_->prompts.empty());
    });
}

// Take-overs one after another (a second instance dies later): each batch gets its own time to
// settle, so running turns are re-attached both times, never cut short by the earlier batch.
TEST_F(manager_test, running_jobs_of_two_dead_instances_are_both_reattached) {
    fake_shared_store db;
    for (auto const* id : {"job_one", "job_two"}) {
        auto row = other_instances_job(id, job_state::running, id);
        row.view.upstream = protocol::upstream_ref{"fake", std::string("ses_") + id};
        db.rows.emplace(id, std::move(row));
    }
    st_->busy_sessions = std::set<std::string>{"ses_job_one", "ses_job_two"};
    st_->busy_latency = 20ms;
    make({}, &db);
    run([&]() -> asio::awaitable<void> {
        std::vector<std::string> const ids{"job_one", "job_two"};
        co_await mgr_->discover(ids);
        auto following = [&](std::size_t n) {
            return [&, n] { return mgr_->stats().running == n; };
        };
        db.expired = {"job_one"};
        auto first = following(1);
        CO_ASSERT_TRUE(co_await until(first));
        db.expired = {"job_two"};
        auto both = following(2);
        CO_ASSERT_TRUE(co_await until(both));
        co_await sleep(50ms);  // past the moment an earlier batch's signal would cut it short
        EXPECT_EQ(state("job_one"), job_state::running);
        EXPECT_EQ(state("job_two"), job_state::running);
        EXPECT_TRUE(st_->prompts.empty()) << "re-attached, never prompted again";
        EXPECT_TRUE(st_->aborts.empty());
    });
}

}  // namespace
}  // namespace agentd::jobs
