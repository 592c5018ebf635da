// libFuzzer target over the request path without I/O: a body as HTTP or WebSocket delivers it
// → JSON-RPC codec → per-call traits → planner → typed params of the five methods and of
// agents_subscribe, then response building; and the same bytes as an MCP body and tools/call.
#include "planner/plan.hpp"
#include "planner/traits.hpp"
#include "protocol/mcp.hpp"
#include "protocol/params.hpp"
#include "protocol/rpc.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

namespace json = boost::json;
using namespace agentd;

// The plan must place every call exactly once, whatever the traits.
void check_plan(std::vector<planner::call_traits> const& traits) {
    std::vector<int> seen(traits.size(), 0);
    for (auto const& b : planner::plan(traits)) {
        std::visit(
            [&](auto const& batch) {
                if constexpr (requires { batch.calls; }) {
                    for (auto i : batch.calls) ++seen.at(i);
                } else {
                    ++seen.at(batch.call);
                }
            },
            b);
    }
    for (int n : seen)
        if (n != 1) std::abort();
}

json::value answer(protocol::request const& r) {
    auto const& p = r.params;
    auto id = r.id.value_or(nullptr);
    auto done = [&](auto const& parsed) {
        if (!parsed) return protocol::make_error(id, parsed.error());
        return protocol::make_result(id, json::object{{"ok", true}});
    };
    if (r.method == "agents_start") return done(protocol::parse_start(p, {8}));
    if (r.method == "agents_status") return done(protocol::parse_status(p));
    if (r.method == "agents_wait") return done(protocol::parse_wait(p));
    if (r.method == "agents_cancel") return done(protocol::parse_cancel(p));
    if (r.method == "agents_peek") return done(protocol::parse_peek(p));
    if (r.method == "agents_subscribe") return done(protocol::parse_subscribe(p));
    if (r.method == "tools/call") return done(protocol::mcp::parse_tool_call(p));
    if (r.method == "initialize") return done(protocol::mcp::negotiate_version(p));
    return protocol::make_error(id, protocol::rpc_error{protocol::error_code::method_not_found,
                                                        "method not found", nullptr});
}

void rpc_path(std::string_view body) {
    auto msg = protocol::parse_message(body);
    if (!msg) {
        json::serialize(protocol::make_error(nullptr, msg.error()));
        return;
    }
    std::vector<planner::call_traits> traits;
    for (auto const& e : msg->elements)
        traits.push_back(e.req ? planner::traits_for(e.req->method, &e.req->params,
                                                     planner::policy{planner::approval_mode::ask})
                               : planner::call_traits{});
    check_plan(traits);
    json::array responses;
    for (auto const& e : msg->elements)
        responses.push_back(e.req ? answer(*e.req)
                                  : protocol::make_error(e.error_id, e.req.error()));
    json::serialize(responses);
}

void mcp_path(std::string_view body) {
    auto parsed = protocol::mcp::parse_body(body);
    if (!parsed) return;
    for (auto const& call : parsed->calls) {
        if (!call.req) continue;
        answer(*call.req);
        protocol::mcp::cancelled_request_id(call.req->params);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view body(reinterpret_cast<char const*>(data), size);
    rpc_path(body);
    mcp_path(body);
    return 0;
}
