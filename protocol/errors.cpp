// Constructors for the JSON-RPC errors agentd answers with; messages are fixed strings (a limit's
// message adds its numbers) so that nothing internal leaks, and `data` carries the
// machine-readable detail (field, limit).
#include "protocol/errors.hpp"

#include <fmt/core.h>
#include <boost/json/object.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace agentd::protocol {

rpc_error parse_error(std::string_view detail) {
    return {error_code::parse_error, "Parse error", boost::json::object{{"reason", detail}}};
}

rpc_error invalid_request(std::string_view detail) {
    return {error_code::invalid_request, "Invalid Request",
            boost::json::object{{"reason", detail}}};
}

rpc_error method_not_found(std::string_view method) {
    return {error_code::method_not_found, "Method not found",
            boost::json::object{{"method", method}}};
}

rpc_error invalid_params(std::string_view field, std::string_view reason) {
    return {error_code::invalid_params, "Invalid params",
            boost::json::object{{"field", field}, {"reason", reason}}};
}

rpc_error limit_exceeded(std::string_view limit, std::int64_t max,
                         std::optional<std::int64_t> value, std::string_view what) {
    boost::json::object data{{"limit", limit}, {"max", max}};
    if (value) data["value"] = *value;
    return {error_code::limit_exceeded, fmt::format("Limit exceeded: {}", what), std::move(data)};
}

// data.limit is the wire name `max_tasks`; the message names the setting a person would change.
rpc_error too_many_tasks(std::int64_t tasks, std::int64_t max) {
    return limit_exceeded("max_tasks", max, tasks,
                          fmt::format("{} tasks > max_tasks_per_call {}", tasks, max));
}

rpc_error too_deep(std::int64_t depth, std::int64_t max) {
    return limit_exceeded("max_depth", max, depth,
                          fmt::format("depth {} > max_depth {}", depth, max));
}

rpc_error queue_full(std::int64_t queued, std::int64_t max) {
    return limit_exceeded("max_queued", max, queued,
                          fmt::format("admission queue full (max_queued {})", max));
}

rpc_error approval_error(std::string_view reason) {
    return {error_code::approval, "Approval denied", boost::json::object{{"reason", reason}}};
}

rpc_error shutting_down() {
    return {error_code::shutting_down, "Shutting down", nullptr};
}

rpc_error internal_error() {
    return {error_code::internal_error, "Internal error", nullptr};
}

void throw_exception_from_error(rpc_error const& e, boost::source_location const& loc) {
    boost::throw_exception(std::runtime_error("rpc_error: " + e.message), loc);
}

}  // namespace agentd::protocol
