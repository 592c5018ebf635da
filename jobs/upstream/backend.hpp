// The upstream backend interface (DESIGN §5): how a job becomes calls on an LLM API. The
// manager (jobs/manager.cpp) owns everything else: queue, launch gate, deadlines, cancel, waits,
// peek buffers, persistence. Implementations: opencode.cpp (session API + event stream) and
// openai.cpp (one streamed chat completion per job, the model for Anthropic Messages & co).
//
// How the manager drives a backend. Everything runs on one executor (no locks); different
// jobs' calls interleave freely, and a cancel's abort may run while its stopped prompt unwinds.
//   start(sink)       once, before any job: keep the sink (and start any background stream).
//   create_upstream_session
//                     the job's conversation id: JobView.upstream.session, the key deltas are
//                     reported under, and what abort/read_partial/recover get. It may be minted
//                     locally (openai: "chat_<hex>", no I/O) when the upstream keeps no sessions.
//   prompt            runs the task to its final text and usage. Every piece of text as it
//                     streams goes to sink.on_text(session, delta): that is what agents_peek
//                     shows; tool steps, requests and other progress go to the sink too. The
//                     output is capped at the configured max output on a UTF-8 boundary
//                     (protocol/utf8.hpp utf8_prefix) with truncated = true.
//   abort             after agents_cancel, and after a prompt that failed with a kind other
//                     than `upstream` (deadline, reset): make the upstream stop. A no-op success
//                     when closing the stream already stopped it (openai).
//   read_partial      only for peek of a running job whose sink got nothing yet; "" is fine.
//   recover           after a restart, for jobs that were running (see below).
//   respond           answers a pending request (agents_respond, policy, input timeout).
//   pending_requests  after a restart, the requests a re-attached session still waits on.
//   busy_upstream_sessions
//                     after a restart: which upstream sessions still run a turn; follow
//                     re-attaches to one of them and returns its outcome like prompt.
//   stop()            once, at shutdown, after every running job's call_control was stopped.
//   place/hold/release/at
//                     several servers (pool.hpp): the launch gate asks place() for a job's
//                     server, and every call of that job goes to at(server); release() frees
//                     the slot as the job's run ends. A backend of one server keeps the defaults.
//
// Rules every call keeps:
//   - Never throw and never hang: failures are upstream_error values. Kinds: cannot connect,
//     reset, closed → transport; the backend's own deadline → timeout; HTTP 4xx/5xx or an error
//     the provider reported (also inside a 200 stream) → upstream, with the provider's message
//     and http_status; a reply of the wrong shape (bad JSON or SSE, a stream ending early) →
//     protocol. Messages quote a short printable excerpt of upstream text, never a credential.
//   - The manager sets `phase` from the call (create_upstream_session → create, prompt → prompt).
//   - call_control: while waiting on I/O or a timer, hold a std::stop_callback on
//     ctl.stop_token() whose function closes the socket or wakes the wait; check ctl.stopped()
//     right after registering and return. Cancel, the job deadline and shutdown call
//     ctl.stop(): the call must then return promptly with any error, which the manager replaces
//     with the real cause (cancelled, timeout, interrupted).
//   - Deadlines of its own besides the job's: connect + response headers, and idle silence while
//     streaming, so a wedged upstream fails before a 30-minute job deadline.
//
// Adding a backend: X_parse.hpp/.cpp (pure: request body, stream events, error bodies; unit
// tests), X.cpp with make_X_backend(executor, X_config) (Beast stays in the .cpp; sse.hpp parses
// event streams), the sources in jobs/CMakeLists.txt, its name in backend_kind (below) and
// make_backend (daemon/main.cpp), and a fake server under tests/.
#pragma once

#include "jobs/health.hpp"
#include "jobs/upstream/call_control.hpp"
#include "jobs/upstream/transcript.hpp"
#include "protocol/job_view.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream {

// How an upstream call failed; becomes the job's `error`.
struct upstream_error {
    protocol::error_kind kind = protocol::error_kind::transport;
    protocol::error_phase phase = protocol::error_phase::prompt;
    std::string message;
    std::optional<int> http_status;
};

template <class T>
using up_result = boost::system::result<T, upstream_error>;
[[noreturn]] void throw_exception_from_error(upstream_error const& e,
                                             boost::source_location const& loc);

struct upstream_session_request {
    std::string title;                  // empty: none sent
    std::optional<std::string> parent;  // upstream parent session id
    std::optional<std::string> directory;
    // What the prompt will name, checked against the upstream's lists before launch (DESIGN §5
    // checks before launch): an unknown one fails the create with a message listing the known.
    std::optional<std::string> agent;
    std::optional<std::string> model;  // "provider/model"
};

struct prompt_request {
    std::string prompt;
    std::optional<std::string> agent;
    std::optional<std::string> model;  // "provider/model"
    std::optional<std::string> system;
    std::optional<std::string> directory;
    // The earlier turns of the conversation, oldest first (backends that replay transcripts;
    // null for a first turn). Owned by the job, which outlives the call.
    std::vector<chat_turn> const* history;
};

struct prompt_outcome {
    std::string output;
    bool truncated = false;
    protocol::job_usage usage;    // of the final message (opencode) or the whole call (openai)
    std::string message_id;       // the final message's, as event_sink::on_usage names it
    std::string user_message_id;  // the prompt's own message (opencode: its diff's messageID)
    // Whether the reply itself shows a change to files (opencode: a `patch` part in its final
    // message); nullopt when it does not tell. See backend::turn_changed_files.
    std::optional<bool> files_changed;
};

// One update of a tool step (opencode `message.part.updated` with a tool part). The backend
// fills `title` from the upstream's title, else from the input (bash's command, a file path),
// cut to step::title_chars, and `output_tail` from the output (or error) so far, its last
// step::output_tail_bytes on a UTF-8 boundary.
struct tool_update {
    std::string call_id;
    std::string tool;
    protocol::step_status status = protocol::step_status::pending;
    std::string title;
    std::optional<protocol::wall_time> started_at;
    std::optional<protocol::wall_time> finished_at;
    std::string output_tail;
};

// A request answered upstream (opencode `permission.replied`, `question.replied|rejected`),
// maybe by someone else (OpenCode's own UI).
struct request_settled {
    std::string request_id;
    protocol::decision how = protocol::decision::allow;
};

// Where a backend reports what an upstream session does, as it happens. Sessions are upstream
// session ids; the manager ignores those that are not its active jobs'. All calls come on the
// manager's executor.
class event_sink {
  public:
    // Whether the session belongs to an active job (background streams keep per-session state
    // only for those: a server's event stream carries all its sessions).
    virtual bool live(std::string_view session) const = 0;
    // Assistant text as it streams (peek); also progress.
    virtual void on_text(std::string_view session, std::string_view delta) = 0;
    virtual void on_tool(std::string_view session, tool_update const& update) = 0;
    virtual void on_request(std::string_view session, protocol::pending_request request) = 0;
    virtual void on_settled(std::string_view session, request_settled const& settled) = 0;
    // Any other event of the session that shows the upstream works on it (not heartbeats, not
    // retry notices): resets the job's idle clock (DESIGN §3 idle_timeout_ms).
    virtual void on_progress(std::string_view session) = 0;
    // The usage so far of one message of the session's turn (opencode: each assistant message,
    // one per LLM step; openai: the stream, message ""), replacing what that message reported
    // before: the turn's usage is the sum over its messages (DESIGN §2 budget).
    virtual void on_usage(std::string_view session, std::string_view message_id,
                          protocol::job_usage const& usage) = 0;
    // A server of a pool came back (pool.hpp): queued jobs may launch on it now.
    virtual void on_capacity() {}

  protected:
    ~event_sink() = default;
};

// An answer to a pending request (agents_respond, policy, input timeout).
struct request_reply {
    std::string request_id;
    protocol::request_kind kind = protocol::request_kind::permission;
    protocol::decision how = protocol::decision::allow;  // answer: `answers` for a question
    std::optional<std::string> message;                  // a permission's deny
    std::vector<std::vector<std::string>> answers;
};

// The backends agentd ships: config's upstream.backend and each backend's name(), as
// JobView.upstream.backend shows it (tests plug in others with names of their own).
enum class backend_kind { opencode, openai };
BOOST_DESCRIBE_ENUM(backend_kind, opencode, openai)

// Where the launch gate may run a job now (pool.hpp): on `server`, not yet (every healthy server
// is full: the job stays queued), or nowhere (`refused`, a transport error naming the servers).
struct placement {
    enum class verdict { run, wait, refuse } what = verdict::run;
    std::string server;
    std::optional<upstream_error> refused;
};

class backend {
  public:
    virtual ~backend() = default;
    virtual std::string_view name() const = 0;
    // Whether the upstream keeps no conversation, so agentd keeps each job's transcript and
    // replays it in a follow-up's prompt (openai); opencode keeps it in its session.
    virtual bool replays_transcript() const { return false; }

    virtual boost::asio::awaitable<up_result<std::string>> create_upstream_session(
        upstream_session_request const& req, call_control& ctl) = 0;
    virtual boost::asio::awaitable<up_result<prompt_outcome>> prompt(std::string const& session,
                                                                     prompt_request const& req,
                                                                     call_control& ctl) = 0;
    // Best effort, bounded by its own short deadline (there is no call_control).
    virtual boost::asio::awaitable<up_result<void>> abort(
        std::string const& session, std::optional<std::string> const& directory) = 0;
    // What the session has produced so far, read from the upstream (fallback when no deltas).
    virtual boost::asio::awaitable<up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const& directory) = 0;

    // After a restart: how the session's last turn ended, if the upstream finished it while
    // agentd was down (an error result for a turn that failed); nullopt when it has not finished
    // or the backend cannot tell. The default cannot tell. `own_prompt` is a follow-up's prompt
    // (empty for a first turn): the turn counts only if that prompt reached the session.
    virtual boost::asio::awaitable<up_result<std::optional<prompt_outcome>>> recover(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt) {
        (void)session;
        (void)directory;
        (void)own_prompt;
        co_return std::optional<prompt_outcome>{};
    }

    // After a restart: the upstream sessions still running a turn (opencode's GET
    // /session/status), to re-attach their jobs live; nullopt when the backend cannot tell.
    // `directories`: those of the jobs to settle (opencode answers per directory).
    virtual boost::asio::awaitable<up_result<std::optional<std::set<std::string>>>>
    busy_upstream_sessions(std::vector<std::optional<std::string>> const& directories) {
        (void)directories;
        co_return std::optional<std::set<std::string>>{};
    }
    // After a restart, for a session busy_upstream_sessions() listed: waits for its running
    // turn to end and returns its outcome as prompt would have (deltas reach the sink
    // meanwhile). Only called when busy_upstream_sessions() gave a set; the default cannot
    // follow. `own_prompt` as for recover.
    virtual boost::asio::awaitable<up_result<prompt_outcome>> follow(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt, call_control& ctl) {
        (void)session;
        (void)directory;
        (void)own_prompt;
        (void)ctl;
        co_return upstream_error{protocol::error_kind::interrupted,
                                 protocol::error_phase::prompt,
                                 "this upstream cannot be followed after a restart",
                                 {}};
    }

    // Answers a pending request of `session` (opencode: POST /permission/{id}/reply,
    // /question/{id}/reply or /question/{id}/reject, with the job's ?directory=). A request the
    // upstream no longer has is an `upstream` error with http_status 404. Backends without
    // requests keep the default.
    virtual boost::asio::awaitable<up_result<void>> respond(
        std::string const& session, std::optional<std::string> const& directory,
        request_reply const& reply) {
        (void)session;
        (void)directory;
        (void)reply;
        co_return upstream_error{protocol::error_kind::upstream, protocol::error_phase::prompt,
                                 "this upstream has no requests", 404};
    }
    // The requests of `session` still pending upstream (GET /permission and /question with the
    // job's ?directory=), to restore them when a job is re-attached after a restart.
    virtual boost::asio::awaitable<up_result<std::vector<protocol::pending_request>>>
    pending_requests(std::string const& session, std::optional<std::string> const& directory) {
        (void)session;
        (void)directory;
        co_return std::vector<protocol::pending_request>{};
    }

    // Task `isolation: worktree` (DESIGN §2): a fresh git worktree of `directory` (none: the
    // server's), returned once it is checked out. Backends without worktrees fail the create.
    virtual boost::asio::awaitable<up_result<protocol::worktree_ref>> create_worktree(
        std::optional<std::string> const& directory, call_control& ctl) {
        (void)directory;
        (void)ctl;
        co_return upstream_error{protocol::error_kind::upstream,
                                 protocol::error_phase::create,
                                 "isolation: worktree needs the opencode upstream",
                                 {}};
    }
    // Removes a worktree made by create_worktree (`directory`: the repository it was made from).
    virtual boost::asio::awaitable<up_result<void>> remove_worktree(
        std::optional<std::string> const& directory, std::string const& worktree) {
        (void)directory;
        (void)worktree;
        co_return upstream_error{protocol::error_kind::upstream,
                                 protocol::error_phase::abort,
                                 "this upstream has no worktrees",
                                 {}};
    }
    // The files the prompt `user_message` of `session` changed (opencode GET
    // /session/{id}/diff?messageID=), the reply read up to `max_bytes`. Backends whose
    // sub-agents have no tools change no files.
    virtual boost::asio::awaitable<up_result<std::vector<protocol::file_change>>> session_diff(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& user_message, std::size_t max_bytes) {
        (void)session;
        (void)directory;
        (void)user_message;
        (void)max_bytes;
        co_return std::vector<protocol::file_change>{};
    }

    // After prompt() returned `out` for `session`: whether the turn changed files, when the
    // backend can tell (opencode: from its event stream, once the diff summary that includes the
    // last change has ended, so that session_diff then shows it); nullopt: read the diff to
    // know. A separate call so that prompt()'s frame, alive for the whole turn, stays small.
    virtual boost::asio::awaitable<std::optional<bool>> turn_changed_files(
        std::string const& session, prompt_outcome const& out, call_control& ctl) {
        (void)session;
        (void)out;
        (void)ctl;
        co_return std::nullopt;
    }

    // Whether the server answers (opencode GET /global/health, openai GET /models) before
    // `deadline`; a pool's health checks call it. The default cannot tell and says yes.
    virtual boost::asio::awaitable<up_result<void>> health(
        std::chrono::steady_clock::time_point deadline) {
        (void)deadline;
        co_return up_result<void>{};
    }

    // Several servers (pool.hpp). `server` is a job's (empty: a new job, any server will do).
    // A backend of one server runs everything itself, without servers of its own.
    virtual placement place(std::string_view server) { return {{}, std::string(server), {}}; }
    // Counts a job that runs on `server` without asking (a job re-attached after a restart).
    virtual void hold(std::string_view server) { (void)server; }
    // The slot place() or hold() gave ends.
    virtual void release(std::string_view server) { (void)server; }
    // A job's create or prompt on `server` failed with `e`: a pool takes a transport error for
    // the server being down at once, not at its next health check.
    virtual void failed(std::string_view server, upstream_error const& e) {
        (void)server;
        (void)e;
    }
    // The backend that serves the jobs of `server`.
    virtual backend& at(std::string_view server) {
        (void)server;
        return *this;
    }
    virtual std::vector<jobs::server_stats> servers() const { return {}; }

    // Keeps `sink` (shared: background streams may outlive a stop()) and starts background work
    // (opencode's event stream).
    virtual void start(std::shared_ptr<event_sink> sink) = 0;
    // Stops background work and closes pooled connections; pending calls fail promptly.
    virtual void stop() = 0;
};

}  // namespace agentd::jobs::upstream
