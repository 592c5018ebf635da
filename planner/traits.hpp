// Per-call traits (DESIGN §4): what the planner may assume about one JSON-RPC call, computed from
// its method and its params under the approval policy. Pure logic, no Asio.
#pragma once

#include <boost/describe/enum.hpp>
#include <boost/json/fwd.hpp>

#include <optional>
#include <string_view>

namespace agentd::planner {

struct call_traits {
    bool read_only = false, parallel_safe = false, detached_start = false,
         approval_required = false, interactive = false;

    bool operator==(call_traits const&) const = default;
};

enum class approval_mode { auto_approve, deny, ask };
BOOST_DESCRIBE_ENUM(approval_mode, auto_approve, deny, ask)
// The config word of auto_approve is `auto`, a C++ keyword (protocol/enum_names.hpp reads this).
constexpr std::optional<std::string_view> wire_name(approval_mode m) {
    if (m == approval_mode::auto_approve) return "auto";
    return std::nullopt;
}

// Config `approval.start`. `ask` only makes sense where the caller can be asked (WebSocket/MCP);
// choosing the mode per transport is the caller's business.
struct policy {
    approval_mode start = approval_mode::auto_approve;
};

// Traits from the method AND its params. Absent or null params mean {}. Conservative (all false)
// for an unknown method, params that are not an object, or an object whose shape is obviously
// wrong for the method (e.g. agents_start without a `tasks` array): such a call must not share a
// batch with anything, whatever it turns out to do.
call_traits traits_for(std::string_view method, boost::json::value const* params, policy const& p);

// DESIGN §4: a read-only parallel-safe call, or a detached start, that nobody has to approve.
bool can_join_parallel(call_traits const& t);

}  // namespace agentd::planner
