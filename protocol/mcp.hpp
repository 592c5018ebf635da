// MCP (Model Context Protocol) message mapping, transport-agnostic: protocol version
// negotiation, the initialize result, the six agents_* tools with their JSON Schemas and
// annotations, tools/call params and results, progress and cancellation notifications, and the
// elicitation/create forms that ask a person to answer a waiting job's request.
#pragma once

#include "protocol/errors.hpp"
#include "protocol/job_view.hpp"
#include "protocol/rpc.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::protocol::mcp {

inline constexpr std::string_view latest_version = "2025-11-25";
inline constexpr std::string_view server_name = "agentd";

// Newest first.
std::span<std::string_view const> supported_versions();
bool is_supported_version(std::string_view version);

// The version an `initialize` answers with: the client's when supported, else the latest.
// -32602 when params carry no protocolVersion string.
result<std::string> negotiate_version(boost::json::value const& initialize_params);

boost::json::object initialize_result(std::string_view version);

// Whether an initialize's client capabilities offer form elicitation (2025-06-18 or later:
// `elicitation: {}` or `elicitation: {form: {…}}`; a URL-only client does not count).
bool offers_form_elicitation(boost::json::value const& initialize_params, std::string_view version);
boost::json::object tools_list_result();

// One POSTed body: the requests and notifications in it (malformed ones carry their error),
// and the client's responses to requests of agentd (elicitation/create).
struct body {
    bool is_batch = false;
    std::vector<request_or_error> calls;
    std::vector<boost::json::object> responses;
};

// -32700 when not JSON, -32600 for an empty or too long batch.
result<body> parse_body(std::string_view text, codec_limits const& limits = {});

// tools/call params: a known tool, its arguments (null when absent) and the progress token.
struct tool_call {
    std::string name;
    boost::json::value arguments;
    std::optional<boost::json::value> progress_token;  // a string or an integer
};

// -32602 for malformed params or an unknown tool (protocol errors, per the spec).
result<tool_call> parse_tool_call(boost::json::value const& params);

// Past this, a tool result's text content does not repeat the structured result.
inline constexpr std::size_t max_text_copy_bytes = 64 << 10;

// A tool's result as MCP content: the object as structuredContent and as serialized text; a
// result larger than max_text_copy_bytes is only in structuredContent (the text says so).
boost::json::object tool_success(boost::json::value const& structured);
// A tool-level failure (bad arguments, limits, approval): an isError result the model can read.
boost::json::object tool_failure(rpc_error const& error);
// Whether an agents_* error is a tool execution error rather than a protocol error.
bool is_tool_failure(rpc_error const& error);

boost::json::object progress_notification(boost::json::value const& token, std::int64_t progress,
                                          std::int64_t total, std::string_view message);

// The requestId of a notifications/cancelled, nullopt when params carry none.
std::optional<boost::json::value> cancelled_request_id(boost::json::value const& params);
// notifications/cancelled for a request of agentd's that is no longer wanted.
boost::json::object cancelled_notification(boost::json::value const& request_id,
                                           std::string_view reason);

// --- elicitation (DESIGN §2 requests) ---------------------------------------------------------

// The params of an elicitation/create (form mode) asking a person to answer `request` of `job`
// under protocol `version`; nullopt when the form cannot express it (a `multiple` question
// before 2025-11-25, a question with neither options nor free text): it stays for
// agents_respond.
std::optional<boost::json::object> elicitation_params(job_view const& job,
                                                      pending_request const& request,
                                                      std::string_view version);

// What a person's elicitation answer means for the request.
struct elicitation_answer {
    enum class action { accept, decline, cancel, invalid };
    action what = action::invalid;
    // With accept: agents_respond's `decision`/`message`/`answers` (no session, job, request).
    boost::json::object respond;
};

// Reads the client's response (`result` or `error` of a JSON-RPC response) to the form that
// elicitation_params() made for `request`. accept with content that does not fit is invalid.
elicitation_answer read_elicitation(pending_request const& request,
                                    boost::json::object const& response);

}  // namespace agentd::protocol::mcp
