// JSON-RPC error codes (standard and agentd's own, DESIGN §2) and the error value that domain
// code returns instead of throwing. Everything a handler can fail with is one of these.
#pragma once

#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::protocol {

enum class error_code : int {
    parse_error = -32700,
    invalid_request = -32600,
    method_not_found = -32601,
    invalid_params = -32602,
    internal_error = -32603,
    limit_exceeded = -32001,
    approval = -32002,
    shutting_down = -32003,
};

struct rpc_error {
    error_code code = error_code::internal_error;
    std::string message;
    boost::json::value data;  // null when absent
};

// A domain result: the value, or the exact JSON-RPC error to answer with.
template <class T>
using result = boost::system::result<T, rpc_error>;

rpc_error parse_error(std::string_view detail);
rpc_error invalid_request(std::string_view detail);
rpc_error method_not_found(std::string_view method);
rpc_error invalid_params(std::string_view field, std::string_view reason);
// -32001 with `data {limit, max, value?}`; the message names what went over, as in "Limit
// exceeded: <what>", so that a person reading only the message learns the limit's value.
rpc_error limit_exceeded(std::string_view limit, std::int64_t max,
                         std::optional<std::int64_t> value, std::string_view what);
// The three limits of DESIGN §2 errors, each with its message.
rpc_error too_many_tasks(std::int64_t tasks, std::int64_t max);
rpc_error too_deep(std::int64_t depth, std::int64_t max);
rpc_error queue_full(std::int64_t queued, std::int64_t max);
rpc_error approval_error(std::string_view reason);
rpc_error shutting_down();
rpc_error internal_error();

// Found by ADL when result<T>::value() is misused on an error: it throws, and the request
// boundary turns that into -32603.
[[noreturn]] void throw_exception_from_error(rpc_error const& e, boost::source_location const& loc);

}  // namespace agentd::protocol
