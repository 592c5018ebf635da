// Pure parsing of OpenCode server responses and events into agentd's terms (DESIGN §5):
// session ids, final text + usage, `info.error` as an upstream failure, partial text, events
// (deltas, tool steps, permission and question requests and their replies, progress), pending
// request lists and reply bodies. No I/O, so each function is unit-tested and fuzzed on its own.
#pragma once

#include "jobs/upstream/backend.hpp"

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream::opencode {

// `status` and `body` of an HTTP reply from the upstream.
up_result<std::string> parse_session(unsigned status, std::string_view body);
// `ses` + [A-Za-z0-9_-]+ (at most 256 bytes): safe to put into a request path.
bool valid_upstream_session_id(std::string_view id);
// `per_` (permission) or `que_` (question) + [A-Za-z0-9_-]+, at most 256 bytes: the same rule
// for the request ids that go into /permission/{id}/reply and /question/{id}/reply|reject.
bool valid_request_id(std::string_view id, protocol::request_kind kind);
// `msg` + [A-Za-z0-9_-]+, at most 256 bytes: a message id that may go into a query.
bool valid_message_id(std::string_view id);
// The body of POST /session/{id}/message and /prompt_async: {parts: [{type: "text", text}],
// agent?, system?, model?: {providerID, modelID}}.
std::string prompt_body(prompt_request const& req);
// A prompt_async reply other than its 204: an upstream failure for a non-2xx status (as
// http_error), a protocol error for any other 2xx.
upstream_error not_accepted(unsigned status, std::string_view body);
// files_changed is true when the reply's message has a `patch` part (its step changed files),
// else nullopt: earlier steps are other messages.
up_result<prompt_outcome> parse_prompt(unsigned status, std::string_view body,
                                       std::size_t max_output);
up_result<std::string> parse_partial(unsigned status, std::string_view body);
// The last assistant turn of a session's messages, if it has finished (time.completed set):
// its outcome, or its info.error as a failure; nullopt while it still runs, or while the last
// user message (a follow-up's) has no answer yet. With `own_prompt` (a follow-up's), the last
// user message must carry it as a text part: else the follow-up's prompt never reached the
// session, and the answer there is the earlier turn's (nullopt).
up_result<std::optional<prompt_outcome>> parse_recovered(unsigned status, std::string_view body,
                                                         std::size_t max_output,
                                                         std::string_view own_prompt = {});

// GET /session/{id}/message?limit=1 at a turn's end: the outcome of the turn begun by the user
// message `user_message` once its last assistant message has finished (time.completed), or its
// info.error as a failure; nullopt while the session's last message is anything else.
up_result<std::optional<prompt_outcome>> parse_turn_end(unsigned status, std::string_view body,
                                                        std::size_t max_output,
                                                        std::string_view user_message);

// GET /session/status ({id: {type}}): the sessions still running a turn.
up_result<std::set<std::string>> parse_busy(unsigned status, std::string_view body);

// A non-2xx reply as a failure of `phase`, with the upstream's own message when it gave one:
// `data.message` ({name, data}), else a top-level `message` ({_tag, message}), else the
// `_tag` or `name` itself, else the body's text.
upstream_error http_error(protocol::error_phase phase, unsigned status, std::string_view body);

// GET /permission or GET /question: a JSON array of requests shaped like the asked events;
// those of `session` (invalid entries are skipped), asked_at left unset.
up_result<std::vector<protocol::pending_request>> parse_pending(unsigned status,
                                                                std::string_view body,
                                                                protocol::request_kind kind,
                                                                std::string_view session);

// The body of POST /permission/{id}/reply ({reply, message?}) or /question/{id}/reply
// ({answers}); nullopt for a reply that does not fit its kind (a question `allow`). A question's
// deny (POST /question/{id}/reject) takes "{}".
std::optional<std::string> reply_body(request_reply const& reply);

// POST /experimental/worktree → {name, branch?, directory}; a 400 (WorktreeNotGitError, …)
// is an upstream failure of the create with opencode's message.
struct created_worktree {
    std::string name;
    protocol::worktree_ref ref;
};
up_result<created_worktree> parse_worktree(unsigned status, std::string_view body);
// GET /session/{id}/message: the id of the latest user message ("" when there is none).
up_result<std::string> parse_latest_user_message(unsigned status, std::string_view body);
// GET /session/{id}/diff → [{file, patch, additions, deletions, status}].
up_result<std::vector<protocol::file_change>> parse_diff(unsigned status, std::string_view body);

// What one event means for a job. `progress`: any other event of the session that shows work
// (session.updated, a non-tool part, session.status busy…), not retry notices or heartbeats;
// usage, user_message and summary_started show work too.
struct event {
    enum class kind {
        delta,
        // a part that is not a tool part (text, reasoning, step-start…): `message_id` its
        // message's, `text` a text part's text so far
        part_updated,
        tool,        // a tool part: `tool` holds the step
        permission,  // permission.asked: `request`
        question,    // question.asked: `request`
        settled,     // permission.replied, question.replied|rejected: `settled`
        idle,
        worktree_ready,   // worktree.ready: `directory` (the frame's), `name`, `branch`
        worktree_failed,  // worktree.failed: `directory` (the frame's), `message`
        usage,  // message.updated of an assistant message: `message_id`, `usage`, `completed`
        // message.updated of a user message: `message_id`; `summarized` once its summary.diffs
        // are written (the end of a diff summary, which opencode computes after each step)
        user_message,
        summary_started,  // session.diff: a diff summary of the session begins
        session_error,    // session.error: the turn failed, `failure` says how
        progress,
        other
    } what = kind::other;
    std::string session;
    std::string part_id;
    std::string part_type;  // part_updated, tool
    std::string delta;      // delta of field "text"
    std::string text;       // part_updated of a text part
    tool_update tool;
    protocol::pending_request request;  // asked_at left for the receiver to set
    request_settled settled;
    std::string message_id;
    protocol::job_usage usage;
    bool completed = false;   // usage: the message has time.completed
    bool summarized = false;  // user_message
    std::string directory;    // the /global/event frame's (the worktree's for worktree events)
    std::string name;         // worktree.ready
    std::string branch;       // worktree.ready
    std::string message;      // worktree.failed
    upstream_error failure;   // session_error: its `error` as info.error reads
};
// One SSE data frame of /global/event ({directory, payload}) or /event (the payload itself).
// Frames of the common kinds (deltas, progress, usage, idle, non-tool parts) are read in one scan
// without a JSON tree; the rest go to parse_event_tree.
std::optional<event> parse_event(std::string_view data);
// The same read through a full JSON tree: every kind of frame gives the same event as through
// parse_event.
std::optional<event> parse_event_tree(std::string_view data);

}  // namespace agentd::jobs::upstream::opencode
