// Model behind the fake OpenCode server: sessions, queued LLM turns, the SSE event bus and the
// counters tests read. Asio timers and coroutines but no Beast, so HTTP stays in one translation
// unit. Everything runs on the single io_context thread, hence no locks anywhere.
#pragma once

#include "directives.hpp"
#include "options.hpp"

#include "fake_common/range_waiters.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fake {

namespace asio = boost::asio;

// Whether the running coroutine was cancelled, e.g. as the loser of an `a || b`: its loop must
// stop instead of waiting again (a further co_await would throw operation_aborted).
asio::awaitable<bool> cancel_requested();

std::int64_t now_ms();
std::string new_id(std::string_view prefix);
// The `{"name":..., "data":{"message":...}}` error shape OpenCode uses for 4xx/5xx bodies.
boost::json::object error_body(std::string_view name, std::string_view message);

// Counters and gauges for /_fake/stats. Every change wakes the /_fake/wait waiters, which is what
// lets tests block on "prompts_in_flight >= 8" without polling.
class stats {
  public:
    stats();
    std::optional<std::int64_t> get(std::string_view name) const;
    // Gauges named *_in_flight also raise their max_* partner.
    void add(std::string_view name, std::int64_t delta);
    void record_abort(std::string_view session_id);
    void record_directory(std::string_view directory);
    // When a session's turn ended (its session.idle published, the synchronous reply about to
    // go out; steady clock, µs, the same CLOCK_MONOTONIC a benchmark on this machine reads): the
    // start of a measured agents_wait wake-up.
    void record_answer(std::string_view session_id);
    // Every OpenCode call (not /_fake/): method, path and its ?directory= (null when absent), the
    // last `max_calls` of them, so a test can check which directory agentd named.
    void record_call(std::string_view method, std::string_view path,
                     std::optional<std::string> const& directory);
    boost::json::array calls() const;
    static constexpr std::size_t max_calls = 1000;
    void set_last_create_body(boost::json::value body) { last_create_body_ = std::move(body); }
    void set_last_prompt_body(boost::json::value body) { last_prompt_body_ = std::move(body); }
    boost::json::object to_json() const;
    // Gauges keep their live value (zeroing them would drive them negative later); max_* restart
    // from it.
    void reset();
    // {true, value} as soon as min <= `name` <= max, {false, value} once `timeout` passes.
    asio::awaitable<std::pair<bool, std::int64_t>> wait_for(std::string name, std::int64_t min,
                                                            std::int64_t max,
                                                            std::chrono::milliseconds timeout);
    void shutdown() { waiters_.shutdown(); }

  private:
    std::map<std::string, std::int64_t, std::less<>> counters_;
    boost::json::array aborted_sessions_;
    boost::json::array directories_;
    boost::json::object answered_us_;
    std::deque<boost::json::object> calls_;
    boost::json::value last_create_body_;
    boost::json::value last_prompt_body_;
    fake_common::range_waiters waiters_;
};

// Fan-out of SSE frames. Each subscriber has a bounded queue; one that falls too far behind is
// dropped rather than allowed to hold memory or slow the publisher.
class event_bus {
  public:
    struct subscriber {
        explicit subscriber(asio::any_io_executor ex);
        // Only events of sessions in this directory (an OpenCode instance); all when unset.
        std::optional<std::string> directory;
        // /global/event: every event, wrapped as {"directory": D, "payload": event}.
        bool global = false;
        std::deque<std::shared_ptr<std::string const>> frames;
        std::size_t bytes = 0;
        bool dropped = false;
        // Set by the pump: frees a connection stuck writing to a reader that stopped reading.
        std::function<void()> on_drop;
        // The pump sleeps on it until the next heartbeat; a publish cancels it to wake the pump.
        asio::steady_timer wake;
    };

    // Unsubscribes on destruction, so a pump coroutine that ends for any reason cleans up.
    class subscription {
      public:
        subscription(event_bus& bus, std::shared_ptr<subscriber> sub);
        subscription(subscription const&) = delete;
        subscription& operator=(subscription const&) = delete;
        ~subscription();
        subscriber& get() { return *sub_; }

      private:
        event_bus& bus_;
        std::shared_ptr<subscriber> sub_;
    };

    static constexpr std::size_t max_queued_frames = 65'536;

    event_bus(stats& counters, std::size_t max_queued_bytes)
        : stats_(counters), max_queued_bytes_(max_queued_bytes) {}
    std::unique_ptr<subscription> subscribe(asio::any_io_executor ex,
                                            std::optional<std::string> directory, bool global);
    // `directory` is the one of the session the event belongs to.
    void publish(std::string_view directory, std::string_view type, boost::json::object properties);
    // The same with the event already serialized (`{"id":…,"type":…,"properties":…}`): the
    // flood's fast path, which builds its JSON text without boost::json.
    void publish_serialized(std::string_view directory, std::string_view event_json);
    static boost::json::object event(std::string_view type, boost::json::object properties);
    static std::string frame(boost::json::value const& data);
    // How many subscribers are served (not dropped).
    std::size_t readers() const;
    // Frames queued for the slowest subscriber that is still served.
    std::size_t backlog() const;
    // Ends every event stream now (POST /_fake/drop_events): the events published meanwhile are
    // lost to its readers, as on a connection that broke.
    std::size_t drop_all();
    void shutdown();

  private:
    // Queues the frame for each subscriber of `directory`; `make` builds it once per kind
    // (global or plain) on first need.
    template <class Make>
    void deliver(std::string_view directory, Make const& make);

    stats& stats_;
    std::size_t max_queued_bytes_;
    std::vector<subscriber*> subscribers_;
};

// What a turn does: `mode` none runs normally, error ends with info.error, hang/stall never end on
// their own (only an abort ends them). HTTP-level faults are the server's business: the turn runs
// normally and only the reply is spoiled.
struct tool_step {
    std::string tool;
    std::string title;  // input.command and, once completed, the part's title
    std::string output;
    std::int64_t ms = 0;
    bool fail = false;
};

struct permission_step {
    std::string permission;
    std::vector<std::string> patterns;
    std::string output;  // the tool's output once allowed
};

struct question_step {
    std::string question;
    std::string header;
    std::vector<std::string> options;
    bool multiple = false;
};

// Agentic turns run their steps in this order (see directives.hpp), then stream their text.
struct turn_spec {
    std::int64_t latency_ms = 0;
    std::int64_t chunks = 4;
    std::string output;
    fault mode = fault::none;
    std::int64_t input_tokens = 0;
    std::vector<tool_step> tools;
    std::optional<permission_step> permission;
    std::optional<question_step> question;
    std::int64_t silent_ms = 0;
    // Billed LLM steps before the others, each a message of its own (directives.hpp).
    std::int64_t usage_steps = 0;
    double step_cost = 0.1;
    std::int64_t step_tokens = 100;
    std::int64_t step_ms = 0;
    bool fixed_output = false;  // output_bytes: the steps do not replace the text
    std::string write_file;     // write=FILE: written as the turn begins
    std::string write_text;
    std::int64_t summary_ms = 0;  // how long the diff summary of the write takes
    bool agentic() const { return !tools.empty() || permission || question; }
};

// POST /_fake/flood?events=N[&kind=K][&sessions=all][&rate=R][&tool_gap_ms=G][&end_mark=1]
//  kind reasoning (default): reasoning parts of sessions nobody created (a busy server);
//  kind delta | tool | mixed: events of the live sessions (those running a turn; sessions=all is
//   then required): text deltas of their text part, tool-part updates (bash, a running update
//   then a completed one per call, like the real server's) or both. Sessions take turns.
//   Mixed: a session's next event is a tool update once tool_gap_ms have passed since its last
//   one (0: every other event), else a delta. Every tool update's input.command / title is
//   "seq=S t=NS": S the event's number in the flood, NS the steady clock (CLOCK_MONOTONIC) in
//   ns when it was published, so a benchmark on this machine can time its way through agentd.
//  rate: events per second (0, the default: as fast as the readers take them).
//  end_mark=1: the first live session gets deltas only, and the flood's last event is a tool
//   update of it titled "end seq=S t=NS": after its quiet, a reader's first sign of it marks
//   the moment all the flood was read.
struct flood_spec {
    enum class kind { reasoning, delta, tool, mixed } what = kind::reasoning;
    std::int64_t events = 0;
    double rate = 0;
    std::int64_t tool_gap_ms = 0;
    bool end_mark = false;
};

struct session;

struct turn {
    explicit turn(asio::any_io_executor ex);
    turn_spec spec;
    session* owner = nullptr;
    std::string user_message_id;
    std::string message_id;
    std::string step_part_id;
    std::string text_part_id;
    std::string streamed;
    std::int64_t created_ms = 0;
    std::size_t message_index = 0;
    bool started = false;
    bool silence_taken = false;
    bool aborted = false;
    bool done = false;
    bool text_started = false;   // the text part was published (agentic turns: after the steps)
    bool ended_on_tool = false;  // a reject ended the turn without text: finish "tool-calls"
    std::vector<boost::json::object> tool_parts;  // latest state of each tool part
    boost::json::object patch_part;  // write=: the step's patch part, after the tool parts
    std::vector<std::string> lines;  // the text of an agentic turn
    std::optional<boost::json::object> answer;  // the reply to its pending request
    boost::json::object result;                 // {info, parts}, set once done
    asio::steady_timer signal;                  // wakes the turn: queue advanced, abort, shutdown
    asio::steady_timer done_signal;             // cancelled once done, waking every waiter
};

// A permission or question waiting for its reply; `request` is the .asked event's properties,
// which GET /permission and GET /question list as they are.
struct pending_request {
    enum class kind { permission, question } type;
    std::string id;
    std::string directory;
    boost::json::object request;
    std::weak_ptr<turn> owner;
};

struct session {
    std::string id;
    std::string directory;
    boost::json::object info;
    boost::json::array messages;  // [{info, parts}], the assistant entry updated in place
    std::deque<std::shared_ptr<turn>> turns;  // the front one runs, the others queue behind it
    // "permission\npattern" pairs a reply "always" allowed for the rest of the session.
    std::set<std::string, std::less<>> always_allowed;
    // The files each turn wrote, by its user message id, once its diff summary has ended
    // (GET /session/{id}/diff?messageID=).
    std::map<std::string, std::vector<std::string>, std::less<>> written;
};

class fake_state {
  public:
    fake_state(asio::any_io_executor ex, options opts);
    options const& opts() const { return opts_; }
    class stats& counters() {
        return stats_;
    }
    event_bus& bus() { return bus_; }
    bool stopping() const { return stopping_; }

    session* find_session(std::string_view id);
    session& create_session(std::optional<std::string> title, std::optional<std::string> parent_id,
                            std::string directory);
    // Records the user message and runs the turn in the background, behind the session's earlier
    // turns. `request` is the validated prompt body (parts, agent, model, system).
    std::shared_ptr<turn> start_turn(session& s, turn_spec spec,
                                     boost::json::object const& request);
    // Ends every unfinished turn of the session, queued ones included, and drops its pending
    // permissions and questions.
    void abort(std::string_view session_id);

    // Pending requests of one kind, oldest first; only those of `directory` when set.
    boost::json::array pending(pending_request::kind type,
                               std::optional<std::string> const& directory) const;
    // Hands `answer` to the turn waiting on request `id` and publishes `replied_type` with
    // `event` (plus sessionID and requestID). False when no such request is pending.
    bool answer(pending_request::kind type, std::string_view id, std::string_view replied_type,
                boost::json::object event, boost::json::object answer);
    void shutdown();

    // Completes once the turn has its result (finished, failed or aborted) or on shutdown.
    asio::awaitable<void> wait_done(std::shared_ptr<turn> t);

    // GET /session/status: {id: {"type": "busy"}} for sessions running a turn; like the real
    // server, idle sessions are left out, and it is per instance: `directory`'s sessions only
    // (every directory's when nullopt, for the flood).
    boost::json::object busy_sessions(std::optional<std::string_view> directory) const;
    // Publishes a flood of events (see flood_spec), paced so no subscriber is dropped; counts
    // them in flood_events (and the tool updates among them in flood_tools).
    asio::awaitable<void> flood(flood_spec spec);

  private:
    asio::awaitable<void> run_turn(std::shared_ptr<turn> t);
    asio::awaitable<void> sleep_until(turn& t, std::chrono::steady_clock::time_point due);
    void begin_turn(turn& t);
    void finish_turn(turn& t);
    boost::json::object assistant_info(turn const& t, bool completed) const;
    // Waits `ms` unless the turn is aborted or the server stops first.
    asio::awaitable<void> pause(turn& t, std::int64_t ms);
    // The silent_ms gap, taken once per turn.
    asio::awaitable<void> maybe_silence(turn& t);
    bool interrupted(turn const& t) const { return t.aborted || stopping_; }
    // Runs the turn's tool steps, permission and question; false when the turn ends there.
    asio::awaitable<bool> run_steps(std::shared_ptr<turn> t);
    asio::awaitable<void> stream_text(turn& t);
    void write_file(turn& t);
    // The diff summary of a turn that wrote `file`: ends `ms` after it begins.
    asio::awaitable<void> summarize(std::string session_id, std::string user_message,
                                    std::string file, std::int64_t ms);
    // The usage_steps, each a stored assistant message of its own; false when aborted.
    asio::awaitable<bool> run_usage_steps(turn& t);
    // Adds a tool part in state pending and publishes it; returns its index in t.tool_parts.
    std::size_t add_tool_part(turn& t, std::string_view tool);
    // Replaces the state of tool part `index`, publishes it and updates the stored message.
    void set_tool_state(turn& t, std::size_t index, boost::json::object state);
    asio::awaitable<bool> wait_answer(std::shared_ptr<turn> t, std::string const& id);
    void publish_part(session const& s, boost::json::object const& part);
    void store_message(turn& t);
    boost::json::array message_parts(turn const& t, bool final) const;

    asio::any_io_executor ex_;
    options opts_;
    class stats stats_;
    event_bus bus_;
    std::map<std::string, std::unique_ptr<session>, std::less<>> sessions_;
    std::vector<pending_request> pending_;
    bool stopping_ = false;
};

// Splits `text` into at most `n` non-empty pieces of near-equal size, never inside a UTF-8
// sequence, so every delta is valid JSON text and the pieces concatenate to `text`.
std::vector<std::string_view> split_chunks(std::string_view text, std::int64_t n);
std::int64_t count_words(std::string_view text);

}  // namespace fake
