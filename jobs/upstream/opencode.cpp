// opencode backend: requests through the keep-alive pool, failures mapped to error kinds and
// phases, and one long-lived `GET /global/event` stream (reconnecting with backoff) whose text
// deltas feed peek, since mid-turn message reads show the text part empty, whose tool steps,
// requests and other progress go to the sink, and which ends prompt_async turns with their
// answer; permission and question replies.
#include "jobs/upstream/opencode.hpp"

#include "jobs/bounded_read.hpp"
#include "jobs/endpoints.hpp"
#include "jobs/upstream/catalog.hpp"
#include "jobs/upstream/json_read.hpp"
#include "jobs/upstream/opencode_parse.hpp"
#include "jobs/upstream/shared_lookup.hpp"
#include "jobs/upstream/sse.hpp"
#include "jobs/wake_signal.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/throw_exception.hpp>

#include <deque>
#include <iterator>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace agentd::jobs::upstream {

void throw_exception_from_error(upstream_error const& e, boost::source_location const& loc) {
    boost::throw_exception(std::runtime_error("upstream error: " + e.message), loc);
}

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;
using clock = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// A created session's reply is a small object (id, title, times); more is not a session.
constexpr std::size_t max_create_reply = 64 << 10;
// The agent and provider lists (checks before launch): a real server's providers with their
// model metadata run to a few hundred KiB. Kept briefly, for the directories of recent tasks.
constexpr std::size_t max_list_reply = 8 << 20;
constexpr auto catalog_ttl = std::chrono::seconds(30);
// How long a new worktree may take to check out (its worktree.ready event) within the job's
// own deadline: a lost event must not hold a job for its whole timeout.
constexpr auto worktree_ready_timeout = std::chrono::seconds(120);
constexpr std::size_t catalog_directories = 32;

std::optional<std::string> basic_auth(opencode_config const& cfg) {
    if (!cfg.password) return std::nullopt;
    std::string plain = cfg.username.value_or("opencode") + ":" + *cfg.password;
    std::string out(beast::detail::base64::encoded_size(plain.size()), '\0');
    out.resize(beast::detail::base64::encode(out.data(), plain.data(), plain.size()));
    return "Basic " + out;
}

// `path` (which may have a query already) with the job's ?directory=.
std::string with_directory(std::string path, std::optional<std::string> const& directory) {
    if (!directory) return path;
    path += path.find('?') == std::string::npos ? "?directory=" : "&directory=";
    path += url_encode(*directory);
    return path;
}

upstream_error from_failure(http_failure const& f, error_phase phase) {
    switch (f.what) {
        case http_failure::kind::connect:
            return {error_kind::transport, phase, "cannot reach upstream: " + f.message, {}};
        case http_failure::kind::timeout:
            return {error_kind::timeout, phase, "upstream did not answer before the deadline", {}};
        case http_failure::kind::stopped:
            return {error_kind::cancelled, phase, "stopped", {}};
        case http_failure::kind::too_large:
            return {error_kind::protocol, phase, "upstream response too large", {}};
        case http_failure::kind::transport:
            break;
    }
    return {error_kind::transport, phase, "upstream connection failed: " + f.message, {}};
}

// While a prompt_async turn runs, its end is also looked up in the session itself this often: a
// stream that stays connected but loses or holds back events (a buffering proxy) costs a job at
// most this much, not its whole deadline.
constexpr auto quiet_check = std::chrono::seconds(15);

// How long a reply may wait for the stream to show its turn's end and diff summary
// (turn_marks), within the job's deadline: past it the diff is read as it is.
constexpr auto summary_timeout = std::chrono::seconds(10);

// What the event stream showed of a live session's turn, for the diff read at its end. Opencode
// writes a `patch` part after each LLM step that changed files, then computes the user message's
// summary.diffs in the background (session.diff as one begins, the user message.updated with
// summary.diffs as it ends), often after the prompt's reply: GET /session/{id}/diff shows the
// change only once a summary begun after its patch has ended.
// Message ids are kept as hashes: a running job's marks stay a few words.
struct turn_marks {
    std::size_t user_message = 0;    // the turn's, from its first message.updated
    std::size_t latest_message = 0;  // the last assistant message (one per step) seen so far
    bool latest_completed = false;   // and whether it was seen with time.completed
    std::uint32_t started = 0;       // summaries begun since the user message
    std::uint32_t ended = 0;         // summaries of the user message ended
    std::uint32_t needed = 0;        // ends that include one begun after the last patch; 0: none
    // The event stream that was connected as the prompt left (event_stream::connections); 0:
    // none was, and the marks cannot be trusted.
    std::uint64_t epoch = 0;
    wake_signal* waiter = nullptr;  // turn_changed_files() waiting for these marks

    static std::size_t id_hash(std::string_view id) { return std::hash<std::string_view>{}(id); }

    void on_event(opencode::event const& e) {
        using kind = opencode::event::kind;
        auto const message = id_hash(e.message_id);
        switch (e.what) {
            case kind::user_message:
                if (!e.summarized && message != user_message)
                    *this = {message, 0, false, 0, 0, 0, epoch, waiter};  // a new turn
                else if (e.summarized && message == user_message)
                    ++ended;
                break;
            case kind::summary_started:
                ++started;
                break;
            case kind::part_updated:
                // A summary that ends before one begun now cannot include the change: the
                // count of ends must pass every summary begun so far.
                if (e.part_type == "patch") needed = started + 1;
                break;
            case kind::usage:
                if (message != latest_message) {
                    latest_message = message;
                    latest_completed = false;
                }
                latest_completed = latest_completed || e.completed;
                break;
            default:
                return;
        }
        if (waiter) waiter->notify();
    }
};

// What the event stream keeps of a live job's session.
struct session_marks {
    // Parts that are not assistant text (reasoning, tools) must not leak into peek.
    std::unordered_set<std::string> hidden_parts;
    turn_marks turn;
};

// A prompt sent with prompt_async, waiting on the event stream for its turn's end: the stream
// marks what it saw of the turn here and wakes the prompt. The turn's answer is its last
// assistant message (one per LLM step), kept as the stream shows it: once that message has
// finished when the session goes idle, the answer needs no read.
struct async_turn {
    wake_signal& wake;
    std::uint64_t epoch;                   // event_stream::connections when the prompt left
    std::string user_message;              // the turn's, from its first message.updated
    std::optional<upstream_error> failed;  // a session.error of the turn
    bool idle = false;                     // a session.idle after the turn began
    // The latest assistant message of the turn: its usage, whether it has finished
    // (time.completed), its text parts by part id (ids ascend, so the map keeps their order)
    // and whether it has a patch part.
    std::string answer;
    protocol::job_usage usage;
    bool completed = false;
    std::map<std::string, std::string, std::less<>> text;
    bool patched = false;
    // The text kept is bounded like the synchronous reply's output: max_output in all, cut on
    // a character boundary, `cut` once something was left out.
    std::size_t max_output;
    std::size_t text_bytes = 0;
    bool cut = false;

    async_turn(wake_signal& w, std::uint64_t connection, std::size_t max)
        : wake(w), epoch(connection), max_output(max) {}

    void on_message(opencode::event const& e) {
        if (e.message_id.empty() || e.message_id == answer) return;
        answer = e.message_id;
        usage = {};
        completed = false;
        text.clear();
        patched = false;
        text_bytes = 0;
        cut = false;
    }
    void on_usage(opencode::event const& e) {
        on_message(e);
        usage = e.usage;
        completed = e.completed;
    }
    void on_part(opencode::event const& e) {
        if (e.message_id == user_message) return;  // the prompt's own text
        on_message(e);
        if (e.part_type == "patch") patched = true;
        if (e.part_type != "text") return;
        auto& kept = text[e.part_id];
        text_bytes -= kept.size();
        auto const room = max_output - std::min(max_output, text_bytes);
        kept.assign(e.text, 0, protocol::utf8_prefix(e.text, room));
        cut = cut || kept.size() < e.text.size();
        text_bytes += kept.size();
    }
    // The answer as the synchronous prompt's reply gives it: its text parts' text.
    prompt_outcome outcome() const {
        prompt_outcome out;
        out.output.reserve(text_bytes);
        for (auto const& [id, part] : text) out.output += part;
        out.truncated = cut;
        out.usage = usage;
        out.message_id = answer;
        out.user_message_id = user_message;
        if (patched) out.files_changed = true;
        return out;
    }
};

// State shared with the event-stream coroutine, which may outlive a call to stop().
struct event_stream {
    asio::any_io_executor ex;
    common::url target;
    std::optional<std::string> auth;
    std::chrono::milliseconds idle_timeout;
    std::shared_ptr<event_sink> sink;
    bool stopping = false;
    // /global/event carries every directory's sessions; a plain /event only the server's own
    // directory, which would miss jobs that pass a `directory`.
    std::string path = "/global/event";
    beast::tcp_stream* active = nullptr;
    asio::steady_timer* backoff = nullptr;
    // Only live jobs' sessions have an entry: the stream carries every session of the server.
    std::unordered_map<std::string, session_marks> sessions;
    std::size_t events_since_sweep = 0;
    // follow(): re-attached sessions waiting for their session.idle.
    std::unordered_map<std::string, wake_signal*> idle_waiters;
    // Prompts sent with prompt_async, by upstream session (one prompt in flight per session).
    std::unordered_map<std::string, async_turn*> async_turns;
    // The last worktree events, kept because worktree.ready may come before the reply to the
    // POST that named its directory; create_worktree() waits on the signals registered here.
    static constexpr std::size_t worktree_events_kept = 64;
    std::deque<opencode::event> worktree_events;
    std::unordered_set<wake_signal*> worktree_waiters;
    // Whether the stream showed all of a turn's events: `connections` counts the streams that
    // started (a reconnect may have lost events).
    bool connected = false;
    std::uint64_t connections = 0;

    void on_event(opencode::event&& e) {
        using kind = opencode::event::kind;
        if (e.what == kind::worktree_ready || e.what == kind::worktree_failed) {
            worktree_events.push_back(std::move(e));
            if (worktree_events.size() > worktree_events_kept) worktree_events.pop_front();
            for (auto* w : worktree_waiters) w->notify();
            return;
        }
        if (e.session.empty()) return;
        sweep_ended();
        if (!sink->live(e.session)) {
            sessions.erase(e.session);
            return;
        }
        // The prompt_async turn of the session, and the same once it has begun: events before
        // its user message are not its own.
        auto* const pending = async_turn_of(e.session);
        auto* const turn = pending && !pending->user_message.empty() ? pending : nullptr;
        switch (e.what) {
            case kind::part_updated:
                if (turn) turn->on_part(e);
                if (e.part_type != "text") {
                    auto& marks = sessions[e.session];
                    marks.hidden_parts.insert(e.part_id);
                    if (e.part_type == "patch") marks.turn.on_event(e);
                }
                sink->on_progress(e.session);
                break;
            case kind::tool:
                sessions[e.session].hidden_parts.insert(e.part_id);
                sink->on_tool(e.session, e.tool);
                break;
            case kind::permission:
            case kind::question:
                sink->on_request(e.session, std::move(e.request));
                break;
            case kind::settled:
                sink->on_settled(e.session, e.settled);
                break;
            case kind::idle:
                // The turn's marks stay: its reply may come after the idle event.
                if (auto it = sessions.find(e.session); it != sessions.end())
                    it->second.hidden_parts = {};
                if (auto it = idle_waiters.find(e.session); it != idle_waiters.end())
                    it->second->notify();
                // An idle before the turn's user message is the previous turn's.
                if (turn) {
                    turn->idle = true;
                    turn->wake.notify();
                }
                break;
            case kind::session_error:
                if (pending && !pending->failed) {
                    // The abort of an earlier turn (a cancelled job's) may be reported after
                    // this prompt left; this turn cannot have been aborted before it began.
                    bool stale = !turn && e.failure.message.starts_with("MessageAbortedError");
                    if (!stale) {
                        pending->failed = std::move(e.failure);
                        pending->wake.notify();
                    }
                }
                break;
            case kind::delta: {
                auto it = sessions.find(e.session);
                bool hidden = it != sessions.end() && it->second.hidden_parts.contains(e.part_id);
                if (!e.delta.empty() && !hidden)
                    sink->on_text(e.session, e.delta);
                else
                    sink->on_progress(e.session);  // reasoning streams: work, not output
                break;
            }
            case kind::usage:
                if (turn) turn->on_usage(e);
                sessions[e.session].turn.on_event(e);
                sink->on_usage(e.session, e.message_id, e.usage);
                sink->on_progress(e.session);
                break;
            case kind::user_message:
                if (pending && !turn && !e.summarized) pending->user_message = e.message_id;
                sessions[e.session].turn.on_event(e);
                sink->on_progress(e.session);
                break;
            case kind::summary_started:
                sessions[e.session].turn.on_event(e);
                sink->on_progress(e.session);
                break;
            case kind::progress:
                sink->on_progress(e.session);
                break;
            case kind::worktree_ready:
            case kind::worktree_failed:
            case kind::other:
                break;
        }
    }

    // Wakes the turns' waiters when the stream ends: what it did not show cannot be waited for.
    void disconnected() {
        connected = false;
        for (auto& [session, marks] : sessions)
            if (marks.turn.waiter) marks.turn.waiter->notify();
        for (auto& [session, turn] : async_turns) turn->wake.notify();
    }

    async_turn* async_turn_of(std::string const& session) {
        auto it = async_turns.find(session);
        return it == async_turns.end() ? nullptr : it->second;
    }

    // Drops the entries of sessions whose job ended without a closing event (cancel, deadline).
    void sweep_ended() {
        if (++events_since_sweep < 1024) return;
        events_since_sweep = 0;
        std::erase_if(sessions, [this](auto const& entry) { return !sink->live(entry.first); });
    }

    asio::awaitable<void> read_once() {
        beast::tcp_stream stream(ex);
        active = &stream;
        struct clear_active {
            event_stream* self;
            ~clear_active() {
                self->active = nullptr;
                if (self->connected) self->disconnected();
            }
        } guard{this};

        stream.expires_after(idle_timeout);
        asio::ip::tcp::resolver resolver(ex);
        auto [rec, eps] = co_await endpoints_of(resolver, target.host, target.port);
        if (rec || stopping) co_return;
        auto [cec, ep] = co_await stream.async_connect(eps, use_tuple);
        if (cec || stopping) co_return;
        beast::error_code ignored;
        stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
        http::request<http::empty_body> req{http::verb::get, target.base_path + path, 11};
        req.set(http::field::host, target.host);
        req.set(http::field::accept, "text/event-stream");
        if (auth) req.set(http::field::authorization, *auth);
        auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
        if (wec) co_return;

        // Bounded like every upstream read (bounded_read.hpp); past a bound the stream is
        // dropped and followed again after the backoff.
        beast::flat_buffer buf(read_buffer_bytes);
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);
        auto [hec, hn] = co_await http::async_read_header(stream, buf, parser, use_tuple);
        if (hec) co_return;
        if (parser.get().result_int() == 404 && path != "/event") path = "/event";  // older servers
        if (parser.get().result_int() != 200) co_return;
        connected = true;
        ++connections;

        // One socket read, then every event it holds parsed in place: a flood costs a syscall
        // per 64 KiB, not an async operation (and a timer reset) per HTTP chunk.
        opencode_sse sse_reader{*this};
        framing_meter meter;
        parser.eager(true);
        while (!stopping) {
            if (!drain(parser, buf, meter, sse_reader)) co_return;
            if (parser.is_done() || buf.size() >= read_buffer_bytes) co_return;  // ended; framing
            stream.expires_after(idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(
                buf.prepare(read_buffer_bytes - buf.size()), use_tuple);
            if (ec) co_return;
            buf.commit(n);
        }
    }

    // Parses what `buf` holds into SSE frames; false when the stream must be dropped.
    template <class Parser, class Sse>
    static bool drain(Parser& parser, beast::flat_buffer& buf, framing_meter& meter, Sse& sse) {
        char chunk[16 * 1024];
        while (buf.size() > 0 && !parser.is_done()) {
            parser.get().body().data = chunk;
            parser.get().body().size = sizeof chunk;
            beast::error_code ec;
            auto n = parser.put(buf.data(), ec);
            buf.consume(n);
            std::string_view piece(chunk, sizeof chunk - parser.get().body().size);
            if (!meter.add(n, piece.size()) || !sse.feed(piece)) return false;
            if (ec == http::error::need_more) return true;
            if (ec && ec != http::error::need_buffer) return false;
            if (n == 0 && piece.empty()) return true;  // needs more bytes
        }
        return true;
    }

    struct opencode_sse {
        event_stream& self;
        sse_parser parser{};
        bool feed(std::string_view bytes) {
            return parser.feed(bytes, [this](std::string_view data) {
                if (auto e = opencode::parse_event(data)) self.on_event(std::move(*e));
            });
        }
    };
};

asio::awaitable<void> run_events(std::shared_ptr<event_stream> s) {
    auto delay = std::chrono::milliseconds(100);
    while (!s->stopping) {
        auto started = clock::now();
        co_await s->read_once();
        if (s->stopping) break;
        if (clock::now() - started > std::chrono::seconds(5))
            delay = std::chrono::milliseconds(100);
        asio::steady_timer t(s->ex, delay);
        s->backoff = &t;
        [[maybe_unused]] auto [waited] = co_await t.async_wait(use_tuple);
        s->backoff = nullptr;
        delay = std::min(delay * 2, std::chrono::milliseconds(5000));
    }
}

class opencode_backend final : public backend {
  public:
    opencode_backend(asio::any_io_executor ex, opencode_config cfg)
        : ex_(ex),
          cfg_(std::move(cfg)),
          pool_(ex, cfg_.target, basic_auth(cfg_), cfg_.max_idle_connections),
          catalogs_(ex, catalog_ttl, catalog_directories) {}

    std::string_view name() const override { return protocol::to_string(backend_kind::opencode); }

    asio::awaitable<up_result<std::string>> create_upstream_session(
        upstream_session_request const& req, call_control& ctl) override {
        auto refused = co_await check_task(req, ctl);
        if (refused) co_return std::move(*refused);
        json::object body;
        if (!req.title.empty()) body["title"] = req.title;
        if (req.parent) body["parentID"] = *req.parent;
        http_request r{"POST", with_directory("/session", req.directory), json::serialize(body),
                       short_deadline(ctl), &ctl};
        r.max_body = max_create_reply;
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), error_phase::create);
        co_return opencode::parse_session(reply->status, reply->body);
    }

    // With the event stream connected, the prompt goes with prompt_async and the stream shows
    // its turn's end: a running job holds no upstream connection. Without it, the synchronous
    // prompt, whose reply is the turn's end. Not a coroutine itself: a running job keeps only
    // the frame of the way taken.
    asio::awaitable<up_result<prompt_outcome>> prompt(std::string const& session,
                                                      prompt_request const& req,
                                                      call_control& ctl) override {
        bool const streaming = events_ && events_->connected;
        if (events_) events_->sessions[session].turn.epoch = streaming ? events_->connections : 0;
        return streaming ? prompt_async(session, req, ctl) : prompt_sync(session, req, ctl);
    }

    // Waits until the stream has shown every patch part of the turn and, when there was one,
    // the end of a diff summary begun after the last (turn_marks). The stream lags the reply
    // (0.3-39 ms on opencode 1.18.33), so the marks are as early as they can be: the final
    // message's first event follows every earlier step's patch part; only when the reply shows
    // the final step's own patch (`final_patched`) must its completion be seen.
    // Whether files changed; nullopt when it cannot tell (the stream was not connected
    // throughout, or the wait ran out), and the diff is read all the same.
    asio::awaitable<std::optional<bool>> turn_changed_files(std::string const& session,
                                                            prompt_outcome const& out,
                                                            call_control& ctl) override {
        if (!events_) co_return std::nullopt;
        auto& events = *events_;
        auto const final_message = turn_marks::id_hash(out.message_id);
        bool const final_patched = out.files_changed.value_or(false);
        wake_signal wake(ex_);
        struct registered {
            event_stream& events;
            std::string const& session;
            ~registered() {
                if (auto it = events.sessions.find(session); it != events.sessions.end())
                    it->second.turn.waiter = nullptr;
            }
        } guard{events, session};
        std::stop_callback hook(ctl.stop_token(), [&wake] { wake.notify(); });
        auto const deadline = std::min(ctl.deadline(), clock::now() + summary_timeout);
        while (events.connected && ctl.stopped() == stop_reason::none) {
            auto& marks = events.sessions[session].turn;
            if (marks.epoch != events.connections) break;  // events of the turn may be lost
            bool const shown =
                marks.latest_message == final_message && (!final_patched || marks.latest_completed);
            if (shown && marks.ended >= marks.needed) {
                bool changed = marks.needed > 0;
                events.sessions.erase(session);
                co_return changed;
            }
            marks.waiter = &wake;
            auto woken = co_await wake.wait_until(deadline);
            if (!woken) break;
        }
        co_return std::nullopt;
    }

    asio::awaitable<up_result<void>> abort(std::string const& session,
                                           std::optional<std::string> const& directory) override {
        http_request r{"POST", with_directory("/session/" + session + "/abort", directory), "{}",
                       clock::now() + cfg_.request_timeout, nullptr};
        auto sent = co_await send(std::move(r), error_phase::abort);
        co_return sent;
    }

    asio::awaitable<up_result<void>> health(clock::time_point deadline) override {
        http_request r{"GET", "/global/health", {}, deadline, nullptr};
        r.max_body = 64 << 10;
        auto sent = co_await send(std::move(r), error_phase::create);
        co_return sent;
    }

    // A call whose reply says only yes or no: a transport failure or a non-2xx status is an
    // error of `phase`, with the upstream's message.
    asio::awaitable<up_result<void>> send(http_request r, error_phase phase) {
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), phase);
        if (reply->status < 200 || reply->status >= 300)
            co_return opencode::http_error(phase, reply->status, reply->body);
        co_return up_result<void>{};
    }

    asio::awaitable<up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const& directory) override {
        auto reply = co_await read_messages(session, directory);
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_partial(reply->status, reply->body);
    }

    asio::awaitable<up_result<std::optional<prompt_outcome>>> recover(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt) override {
        auto reply = co_await read_messages(session, directory);
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_recovered(reply->status, reply->body, cfg_.max_output,
                                            own_prompt);
    }

    // GET /session/status answers for one directory (an opencode instance): asked once per
    // directory the jobs ran in (worktrees included).
    asio::awaitable<up_result<std::optional<std::set<std::string>>>> busy_upstream_sessions(
        std::vector<std::optional<std::string>> const& directories) override {
        std::set<std::string> all;
        for (auto const& directory : directories) {
            http_request r{"GET",
                           with_directory("/session/status", directory),
                           {},
                           clock::now() + cfg_.request_timeout,
                           nullptr};
            r.max_body = 1 << 20;
            auto reply = co_await pool_.request(std::move(r));
            if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
            auto busy = opencode::parse_busy(reply->status, reply->body);
            if (!busy) co_return busy.error();
            all.merge(*busy);
        }
        co_return std::optional<std::set<std::string>>(std::move(all));
    }

    // Permission: POST /permission/{id}/reply {reply, message?}; question: POST
    // /question/{id}/reply {answers} or /question/{id}/reject. A request answered or unknown
    // upstream is a 404 (PermissionNotFoundError, QuestionNotFoundError) → upstream error.
    asio::awaitable<up_result<void>> respond(std::string const& session,
                                             std::optional<std::string> const& directory,
                                             request_reply const& reply) override {
        (void)session;  // the request id alone names it upstream
        bool permission = reply.kind == protocol::request_kind::permission;
        // The id goes into the request path: nothing but an id may pass.
        if (!opencode::valid_request_id(reply.request_id, reply.kind))
            co_return upstream_error{
                error_kind::protocol, error_phase::prompt, "invalid request id", {}};
        auto body = opencode::reply_body(reply);
        if (!body)
            co_return upstream_error{error_kind::protocol,
                                     error_phase::prompt,
                                     "this decision does not fit the request",
                                     {}};
        std::string path =
            (permission ? "/permission/" : "/question/") + reply.request_id +
            (!permission && reply.how == protocol::decision::deny ? "/reject" : "/reply");
        http_request r{"POST", with_directory(std::move(path), directory), std::move(*body),
                       clock::now() + cfg_.request_timeout, nullptr};
        r.max_body = 64 << 10;
        auto sent = co_await send(std::move(r), error_phase::prompt);
        co_return sent;
    }

    asio::awaitable<up_result<std::vector<protocol::pending_request>>> pending_requests(
        std::string const& session, std::optional<std::string> const& directory) override {
        std::vector<protocol::pending_request> all;
        for (auto kind : {protocol::request_kind::permission, protocol::request_kind::question}) {
            bool permission = kind == protocol::request_kind::permission;
            http_request r{"GET",
                           with_directory(permission ? "/permission" : "/question", directory),
                           {},
                           clock::now() + cfg_.request_timeout,
                           nullptr};
            r.max_body = 4 << 20;
            auto res = co_await pool_.request(std::move(r));
            if (!res) co_return from_failure(res.error(), error_phase::prompt);
            // A server without the route has no such requests to restore.
            if (res->status == 404) continue;
            auto some = opencode::parse_pending(res->status, res->body, kind, session);
            if (!some) co_return some.error();
            std::move(some->begin(), some->end(), std::back_inserter(all));
        }
        co_return all;
    }

    asio::awaitable<up_result<prompt_outcome>> follow(std::string const& session,
                                                      std::optional<std::string> const& directory,
                                                      std::string const& own_prompt,
                                                      call_control& ctl) override {
        auto out = co_await follow_turn(session, directory, own_prompt, {}, ctl);
        co_return out;
    }

    // POST /experimental/worktree answers before the files are checked out: the worktree is
    // ready with the worktree.ready event whose frame directory is the new worktree's.
    asio::awaitable<up_result<protocol::worktree_ref>> create_worktree(
        std::optional<std::string> const& directory, call_control& ctl) override {
        http_request r{"POST", with_directory("/experimental/worktree", directory), "{}",
                       short_deadline(ctl), &ctl};
        r.max_body = max_create_reply;
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), error_phase::create);
        auto made = opencode::parse_worktree(reply->status, reply->body);
        if (!made || !events_)
            co_return made ? up_result<protocol::worktree_ref>(made->ref)
                           : up_result<protocol::worktree_ref>(made.error());
        co_return co_await worktree_ready(*made, ctl);
    }

    asio::awaitable<up_result<void>> remove_worktree(std::optional<std::string> const& directory,
                                                     std::string const& worktree) override {
        http_request r{"DELETE", with_directory("/experimental/worktree", directory),
                       json::serialize(json::object{{"directory", worktree}}),
                       clock::now() + cfg_.request_timeout, nullptr};
        r.max_body = 64 << 10;
        auto sent = co_await send(std::move(r), error_phase::abort);
        co_return sent;
    }

    // Without the user message (a turn still running) the session's latest one is read first.
    asio::awaitable<up_result<std::vector<protocol::file_change>>> session_diff(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& user_message, std::size_t max_bytes) override {
        std::string message = user_message;
        if (message.empty()) {
            auto latest = co_await latest_user_message(session, directory);
            if (!latest) co_return latest.error();
            message = std::move(*latest);
        }
        if (message.empty()) co_return std::vector<protocol::file_change>{};
        if (!opencode::valid_upstream_session_id(session) || !opencode::valid_message_id(message))
            co_return upstream_error{error_kind::protocol, error_phase::prompt, "invalid id", {}};
        http_request r{
            "GET",
            with_directory("/session/" + session + "/diff?messageID=" + message, directory),
            {},
            clock::now() + cfg_.request_timeout,
            nullptr};
        r.max_body = max_bytes;
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_diff(reply->status, reply->body);
    }

    void start(std::shared_ptr<event_sink> sink) override {
        events_ = std::make_shared<event_stream>();
        events_->ex = ex_;
        events_->target = cfg_.target;
        events_->auth = basic_auth(cfg_);
        events_->idle_timeout = cfg_.event_idle_timeout;
        events_->sink = std::move(sink);
        asio::co_spawn(ex_, run_events(events_), asio::detached);
    }

    void stop() override {
        if (events_) {
            events_->stopping = true;
            if (events_->active) events_->active->close();
            if (events_->backoff) events_->backoff->cancel();
        }
        pool_.close_idle();
    }

  private:
    asio::awaitable<up_result<prompt_outcome>> prompt_sync(std::string const& session,
                                                           prompt_request const& req,
                                                           call_control& ctl) {
        http_request r{"POST", with_directory("/session/" + session + "/message", req.directory),
                       opencode::prompt_body(req), ctl.deadline(), &ctl};
        r.max_body = 2 * cfg_.max_output + (1 << 20);
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_prompt(reply->status, reply->body, cfg_.max_output);
    }

    // POST /session/{id}/prompt_async, 204 at once; then the turn's end as the stream shows it
    // (async_turn): a session.error or a session.idle, when the session's last message is read
    // once. The prompt is aborted by the manager on a stop, as the synchronous one.
    asio::awaitable<up_result<prompt_outcome>> prompt_async(std::string const& session,
                                                            prompt_request const& req,
                                                            call_control& ctl) {
        auto events = events_;
        wake_signal wake(ex_);
        async_turn turn(wake, events->connections, cfg_.max_output);
        struct registered {
            event_stream& events;
            std::string const& session;
            ~registered() { events.async_turns.erase(session); }
        } guard{*events, session};
        events->async_turns[session] = &turn;
        std::stop_callback hook(ctl.stop_token(), [&wake] { wake.notify(); });
        auto sent = co_await send_prompt_async(session, req, ctl);
        if (!sent) co_return sent.error();

        bool quiet = false;  // quiet_check passed without the turn's end
        for (;;) {
            if (ctl.stopped() != stop_reason::none)
                co_return upstream_error{error_kind::cancelled, error_phase::prompt, "stopped", {}};
            if (turn.idle && turn.completed && !turn.failed) co_return turn.outcome();
            if (quiet || ((turn.failed || turn.idle) && !turn.user_message.empty())) {
                auto end =
                    co_await read_outcome(session, req.directory, req.prompt, turn.user_message);
                if (!end) co_return end.error();
                if (*end) co_return std::move(**end);
                turn.idle = false;  // its last message is not stored yet: the next idle
            }
            if (turn.failed) co_return std::move(*turn.failed);
            if (!events->connected || events->connections != turn.epoch) {
                // The stream may have lost the turn's end: the session's messages tell.
                auto out = co_await follow_turn(session, req.directory, req.prompt,
                                                turn.user_message, ctl);
                co_return out;
            }
            auto const until = std::min(ctl.deadline(), clock::now() + quiet_check);
            auto woken = co_await wake.wait_until(until);
            if (!woken && clock::now() >= ctl.deadline())
                co_return upstream_error{error_kind::timeout,
                                         error_phase::prompt,
                                         "upstream did not answer before the deadline",
                                         {}};
            quiet = !woken;
        }
    }

    // In a frame of its own, freed before the turn's long wait.
    asio::awaitable<up_result<void>> send_prompt_async(std::string const& session,
                                                       prompt_request const& req,
                                                       call_control& ctl) {
        http_request r{"POST",
                       with_directory("/session/" + session + "/prompt_async", req.directory),
                       opencode::prompt_body(req), short_deadline(ctl), &ctl};
        r.max_body = 64 << 10;
        auto accepted = co_await pool_.request(std::move(r));
        if (!accepted) co_return from_failure(accepted.error(), error_phase::prompt);
        if (accepted->status != 204)
            co_return opencode::not_accepted(accepted->status, accepted->body);
        co_return up_result<void>{};
    }

    // The turn ends with a session.idle event; the messages are read again on each one, and
    // every couple of seconds in case the event came while the stream was reconnecting. With the
    // turn's user message known, only the session's last message is read.
    asio::awaitable<up_result<prompt_outcome>> follow_turn(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt, std::string const& user_message, call_control& ctl) {
        wake_signal wake(ex_);
        struct waiting {
            std::shared_ptr<event_stream> events;
            std::string const& session;
            ~waiting() {
                if (events) events->idle_waiters.erase(session);
            }
        } registered{events_, session};
        if (events_) events_->idle_waiters[session] = &wake;
        std::stop_callback hook(ctl.stop_token(), [&wake] { wake.notify(); });
        while (ctl.stopped() == stop_reason::none) {
            auto done = co_await read_outcome(session, directory, own_prompt, user_message);
            if (!done) co_return done.error();
            if (*done) co_return std::move(**done);
            if (ctl.stopped() != stop_reason::none) break;
            [[maybe_unused]] auto woken = co_await wake.wait_for(std::chrono::seconds(2));
        }
        co_return upstream_error{error_kind::cancelled, error_phase::prompt, "stopped", {}};
    }

    // The turn's outcome if it has ended: from the session's last message when the turn's user
    // message is known, else from all its messages (recover).
    asio::awaitable<up_result<std::optional<prompt_outcome>>> read_outcome(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt, std::string const& user_message) {
        if (user_message.empty()) {
            auto all = co_await recover(session, directory, own_prompt);
            co_return all;
        }
        auto last = co_await read_turn_end(session, directory, user_message);
        co_return last;
    }

    // GET /session/{id}/message?limit=1: the session's last message, the turn's answer once it
    // has finished.
    asio::awaitable<up_result<std::optional<prompt_outcome>>> read_turn_end(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& user_message) {
        auto reply = co_await read_messages(session, directory, "?limit=1");
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_turn_end(reply->status, reply->body, cfg_.max_output,
                                           user_message);
    }

    clock::time_point short_deadline(call_control const& ctl) const {
        return std::min(ctl.deadline(), clock::now() + cfg_.request_timeout);
    }

    // Checks before launch: a task naming an agent or model the server lacks fails here, with
    // what exists (the server itself answers the prompt with a bare 500). When the lists cannot
    // be read the task launches unchecked: the check must not fail a job that would run.
    asio::awaitable<std::optional<upstream_error>> check_task(upstream_session_request const& req,
                                                              call_control& ctl) {
        if (!req.agent && !req.model) co_return std::nullopt;
        auto key = req.directory ? "=" + *req.directory : std::string("-");
        auto catalog = co_await catalogs_.get(key, ctl, short_deadline(ctl),
                                              [&] { return fetch_catalog(req.directory, ctl); });
        if (!catalog) {
            if (ctl.stopped() != stop_reason::none) co_return catalog.error();
            co_return std::nullopt;
        }
        auto why = check_opencode_task(**catalog, req.agent, req.model);
        if (!why) co_return std::nullopt;
        co_return upstream_error{error_kind::upstream, error_phase::create, std::move(*why), {}};
    }

    asio::awaitable<up_result<opencode_catalog>> fetch_catalog(
        std::optional<std::string> const& directory, call_control& ctl) {
        auto agents = co_await get_list("/agent", directory, ctl);
        if (!agents) co_return agents.error();
        auto catalog = parse_opencode_agents(agents->status, agents->body);
        if (!catalog) co_return catalog;
        auto providers = co_await get_list("/config/providers", directory, ctl);
        if (!providers) co_return providers.error();
        auto parsed = parse_opencode_providers(providers->status, providers->body, *catalog);
        if (!parsed) co_return parsed.error();
        co_return catalog;
    }

    asio::awaitable<up_result<http_reply>> get_list(std::string path,
                                                    std::optional<std::string> const& directory,
                                                    call_control& ctl) {
        http_request r{
            "GET", with_directory(std::move(path), directory), {}, short_deadline(ctl), &ctl};
        r.max_body = max_list_reply;
        auto reply = co_await pool_.request(std::move(r));
        if (!reply) co_return from_failure(reply.error(), error_phase::create);
        co_return std::move(*reply);
    }

    // Waits for the worktree.ready (or .failed) event of `made`, bounded by the job's deadline
    // and worktree_ready_timeout. Matched by the frame's directory, or by the worktree's name.
    asio::awaitable<up_result<protocol::worktree_ref>> worktree_ready(
        opencode::created_worktree const& made, call_control& ctl) {
        wake_signal wake(ex_);
        struct registered {
            std::shared_ptr<event_stream> events;
            wake_signal* w;
            ~registered() { events->worktree_waiters.erase(w); }
        } guard{events_, &wake};
        events_->worktree_waiters.insert(&wake);
        std::stop_callback hook(ctl.stop_token(), [&wake] { wake.notify(); });
        auto until = std::min(ctl.deadline(), clock::now() + worktree_ready_timeout);
        for (;;) {
            for (auto const& e : events_->worktree_events) {
                if (e.directory != made.ref.directory && (made.name.empty() || e.name != made.name))
                    continue;
                if (e.what == opencode::event::kind::worktree_ready) co_return made.ref;
                co_return upstream_error{error_kind::upstream,
                                         error_phase::create,
                                         excerpt(e.message.empty() ? "worktree failed" : e.message),
                                         {}};
            }
            if (ctl.stopped() != stop_reason::none)
                co_return upstream_error{error_kind::cancelled, error_phase::create, "stopped", {}};
            if (clock::now() >= until)
                co_return upstream_error{
                    error_kind::timeout,
                    error_phase::create,
                    fmt::format("worktree {} was not ready in time", made.ref.directory),
                    {}};
            [[maybe_unused]] auto woken = co_await wake.wait_until(until);
        }
    }

    // GET /session/{id}/message: the transcript that partial text, recovery and the latest user
    // message are all read from; bounded at twice the output cap plus 1 MiB of steps and parts.
    // `query` narrows it ("?limit=1": the last message only).
    asio::awaitable<http_result> read_messages(std::string const& session,
                                               std::optional<std::string> const& directory,
                                               std::string_view query = {}) {
        http_request r{
            "GET",
            with_directory("/session/" + session + "/message" + std::string(query), directory),
            {},
            clock::now() + cfg_.request_timeout,
            nullptr};
        r.max_body = 2 * cfg_.max_output + (1 << 20);
        auto reply = co_await pool_.request(std::move(r));
        co_return reply;
    }

    // The id of the session's latest user message ("" when none).
    asio::awaitable<up_result<std::string>> latest_user_message(
        std::string const& session, std::optional<std::string> const& directory) {
        auto reply = co_await read_messages(session, directory);
        if (!reply) co_return from_failure(reply.error(), error_phase::prompt);
        co_return opencode::parse_latest_user_message(reply->status, reply->body);
    }

    asio::any_io_executor ex_;
    opencode_config cfg_;
    http_pool pool_;
    shared_lookup<opencode_catalog> catalogs_;
    std::shared_ptr<event_stream> events_;
};

}  // namespace

std::unique_ptr<backend> make_opencode_backend(asio::any_io_executor ex, opencode_config cfg) {
    return std::make_unique<opencode_backend>(std::move(ex), std::move(cfg));
}

}  // namespace agentd::jobs::upstream
