// JSON-RPC 2.0 codec: parses a request body (one request or a batch) into validated request
// values, and builds response objects. Transport-agnostic: HTTP, WebSocket and MCP share it.
#pragma once

#include "protocol/errors.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::protocol {

struct request {
    std::optional<boost::json::value> id;  // nullopt: a notification (no response)
    std::string method;
    boost::json::value params;  // null when absent; else an object or array
};

// One element of a message: a valid request, or the error to answer (with the id when one
// could be recovered from the malformed element, else null).
struct request_or_error {
    result<request> req;
    boost::json::value error_id;
};

struct message {
    bool is_batch = false;
    std::vector<request_or_error> elements;
};

struct codec_limits {
    std::size_t max_depth = 32;
    std::size_t max_batch = 64;
    // One response's size (limits.max_response_bytes): past it, job outputs are omitted.
    std::size_t max_response_bytes = 16 << 20;
};

// The whole-message failures (-32700 unparsable, -32600 empty batch or too long a batch) come
// back as the error; a batch with some malformed elements parses, with per-element errors.
// `sp` holds everything parsed (a request-scoped monotonic resource in the daemon).
result<message> parse_message(std::string_view body, codec_limits const& limits = {},
                              boost::json::storage_ptr sp = {});
// The framing both JSON-RPC bodies share (HTTP/WebSocket and MCP): the document parsed within
// max_depth, and its elements — the document itself, or a batch's elements within max_batch.
struct frame {
    boost::json::value doc;
    bool is_batch = false;
    std::span<boost::json::value> elements();  // mutable: parse_message moves out of them
    std::span<boost::json::value const> elements() const;
};
result<frame> parse_frame(std::string_view body, codec_limits const& limits = {},
                          boost::json::storage_ptr sp = {});
// The elements of a frame already parsed (a transport that looked at the document first),
// moved out of it.
message parse_message(frame f);
// One already-parsed element, checked as a request or notification (MCP frames its own bodies).
request_or_error parse_request(boost::json::value const& v);

// The response lives in the result's storage, so a result built in a request's resource is moved,
// not copied.
boost::json::value make_result(boost::json::value const& id, boost::json::value result);
boost::json::value make_error(boost::json::value const& id, rpc_error const& error,
                              boost::json::storage_ptr sp = {});

}  // namespace agentd::protocol
