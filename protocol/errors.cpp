// Constructors for the JSON-RPC errors agentd answers with; messages are fixed strings so that
// nothing internal leaks, and `data` carries the machine-readable detail (field, limit).
#include "protocol/errors.hpp"

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

rpc_error limit_exceeded(std::string_view limit, std::int64_t max) {
    return {error_code::limit_exceeded, "Limit exceeded",
            boost::json::object{{"limit", limit}, {"max", max}}};
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
