// JSON-RPC side of agentctl: each command's method and params (DESIGN §2), the request envelope,
// and decoding of the reply into a result or an error. Pure functions, so unit tests need no
// server.
#pragma once

#include "cli.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace agentctl {

struct rpc_request {
    std::string method;
    boost::json::object params;
};

struct rpc_error {
    std::int64_t code = 0;
    std::string message;
    boost::json::value data;
};

// The --tasks document's tasks (options fill the fields they lack), then one task per PROMPT.
// tasks_json is empty when there is no --tasks. Throws usage_error.
boost::json::array build_tasks(command const& cmd, std::string_view tasks_json);

rpc_request build_request(invocation const& inv, std::string_view tasks_json);

std::string encode_request(rpc_request const& request);

// Throws transport_error when the body is not a JSON-RPC response: the URL reached something else.
std::variant<boost::json::value, rpc_error> decode_response(std::string_view body);

// "error CODE: MESSAGE (field F: REASON)".
std::string describe(rpc_error const& error);

}  // namespace agentctl
