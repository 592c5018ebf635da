// Pure parsing of OpenCode server responses and events into agentd's terms (DESIGN §5):
// session ids, final text + usage, `info.error` as an upstream failure, partial text, deltas.
// No I/O, so each function is unit-tested and fuzzed on its own.
#pragma once

#include "jobs/upstream/backend.hpp"

#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream::opencode {

// `status` and `body` of an HTTP reply from the upstream.
up_result<std::string> parse_session(unsigned status, std::string_view body);
// `ses` + [A-Za-z0-9_-]+ (at most 256 bytes): safe to put into a request path.
bool valid_upstream_session_id(std::string_view id);
up_result<prompt_outcome> parse_prompt(unsigned status, std::string_view body,
                                       std::size_t max_output);
up_result<std::string> parse_partial(unsigned status, std::string_view body);
// The last assistant turn of a session's messages, if it has finished (time.completed set):
// its outcome, or its info.error as a failure; nullopt while it still runs.
up_result<std::optional<prompt_outcome>> parse_recovered(unsigned status, std::string_view body,
                                                         std::size_t max_output);

// GET /session/status ({id: {type}}): the sessions still running a turn.
up_result<std::set<std::string>> parse_busy(unsigned status, std::string_view body);

// A non-2xx reply as a failure of `phase`, with the upstream's own message when it gave one.
upstream_error http_error(protocol::error_phase phase, unsigned status, std::string_view body);

// What one event means for a job. `progress`: any other event of the session that shows work
// (message.updated, a non-tool part, session.status busy…), not retry notices or heartbeats.
struct event {
    enum class kind {
        delta,
        part_updated,  // a part that is not a tool part (text, reasoning, step-start…)
        tool,          // a tool part: `tool` holds the step
        permission,    // permission.asked: `request`
        question,      // question.asked: `request`
        settled,       // permission.replied, question.replied|rejected: `settled`
        idle,
        progress,
        other
    } what = kind::other;
    std::string session;
    std::string part_id;
    std::string part_type;  // part_updated, tool
    std::string delta;      // delta of field "text"
    tool_update tool;
    protocol::pending_request request;  // asked_at left for the receiver to set
    request_settled settled;
};
// One SSE data frame of /global/event ({directory, payload}) or /event (the payload itself).
std::optional<event> parse_event(std::string_view data);

}  // namespace agentd::jobs::upstream::opencode
