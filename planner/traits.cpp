// traits_for: the DESIGN §4 table, applied only to params whose shape fits the method, so a
// malformed call falls back to the conservative (serial) traits.
#include "planner/traits.hpp"

#include <boost/json/value.hpp>

namespace agentd::planner {
namespace {

namespace json = boost::json;

// Traits the table gives the method alone; unknown methods and agents_cancel get the defaults.
call_traits table_traits(std::string_view method, policy const& p) {
    if (method == "agents_status" || method == "agents_peek" || method == "agents_wait") {
        return {.read_only = true, .parallel_safe = true};
    }
    if (method == "agents_start") {
        return {.detached_start = true,
                .approval_required = p.start != approval_mode::auto_approve,
                .interactive = p.start == approval_mode::ask};
    }
    return {};
}

bool has(json::object const& params, std::string_view key, json::kind kind) {
    auto const* v = params.if_contains(key);
    return v != nullptr && v->kind() == kind;
}

bool absent_or(json::object const& params, std::string_view key, json::kind kind) {
    return !params.contains(key) || has(params, key, kind);
}

// Only the keys that decide what the call touches; full validation (-32602) is protocol's job.
bool well_shaped(std::string_view method, json::object const& params) {
    if (!absent_or(params, "session", json::kind::string)) return false;
    if (method == "agents_start") return has(params, "tasks", json::kind::array);
    if (method == "agents_peek") return has(params, "job", json::kind::string);
    return absent_or(params, "jobs", json::kind::array);
}

}  // namespace

call_traits traits_for(std::string_view method, json::value const* params, policy const& p) {
    auto const traits = table_traits(method, p);
    if (traits == call_traits{}) return traits;
    json::object const empty;
    auto const* object = (params == nullptr || params->is_null()) ? &empty : params->if_object();
    if (object == nullptr || !well_shaped(method, *object)) return {};
    return traits;
}

bool can_join_parallel(call_traits const& t) {
    bool const unattended = !t.approval_required && !t.interactive;
    return unattended && ((t.read_only && t.parallel_safe) || t.detached_start);
}

}  // namespace agentd::planner
