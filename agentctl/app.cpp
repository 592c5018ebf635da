// The flow of one agentctl run and the mapping of each failure to its exit code.
// Diagnostics go to stderr prefixed "agentctl:", so stdout carries only results.
#include "app.hpp"

#include "client.hpp"
#include "discover.hpp"
#include "exit_codes.hpp"
#include "input.hpp"
#include "live.hpp"
#include "live_view.hpp"
#include "render.hpp"
#include "requests.hpp"
#include "rpc.hpp"
#include "ui.hpp"

#include <fmt/core.h>
#include <boost/json/value.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

namespace agentctl {
namespace {

constexpr std::int64_t server_default_wait_ms = 30'000;  // DESIGN §2 agents_wait
constexpr std::size_t max_detail_chars = 200;

std::string read_tasks(command const& cmd) {
    if (!cmd.tasks_file) return {};
    std::ostringstream text;
    if (*cmd.tasks_file == "-") {
        text << std::cin.rdbuf();
        return text.str();
    }
    std::ifstream in(*cmd.tasks_file);
    if (!in) throw usage_error(fmt::format("cannot read --tasks file {}", *cmd.tasks_file));
    text << in.rdbuf();
    return text.str();
}

// The daemon may hold a wait open for the wait's whole timeout; --timeout-ms is the allowance on
// top.
std::chrono::milliseconds http_deadline(invocation const& inv) {
    auto ms = inv.globals.timeout_ms;
    if (inv.cmd.kind == command_kind::wait)
        ms += inv.cmd.wait_timeout_ms.value_or(server_default_wait_ms);
    return std::chrono::milliseconds(ms);
}

std::string http_failure(http_reply const& reply, credentials const& creds) {
    if (reply.status == 401) {
        return creds.token ? fmt::format("unauthorized (token from {})", creds.source)
                           : fmt::format("unauthorized ({})", creds.source);
    }
    auto detail = reply.body.substr(0, std::min(reply.body.find('\n'), max_detail_chars));
    return fmt::format("HTTP {} {}{}{}", reply.status, reply.reason, detail.empty() ? "" : ": ",
                       detail);
}

std::vector<std::string> job_ids(boost::json::object const& result) {
    std::vector<std::string> ids;
    auto const* jobs = result.if_contains("jobs");
    if (jobs && jobs->is_array())
        for (auto const& job : jobs->get_array()) ids.push_back(read_job(job).id);
    return ids;
}

int print_result(invocation const& inv, boost::json::object const& result) {
    if (inv.cmd.kind == command_kind::start && inv.cmd.quiet && !inv.globals.json) {
        for (auto const& id : job_ids(result)) fmt::print("{}\n", id);
    } else if (inv.globals.json) {
        fmt::print("{}", pretty_json(result));
    } else {
        auto text = render_result(inv.cmd.kind, result);
        fmt::print("{}", text.out);
        fmt::print(stderr, "{}", text.err);
    }
    if (inv.cmd.kind != command_kind::wait) return exit_ok;
    // The wait came back for a request (its lines are in the text above): say how to answer.
    if (!inv.cmd.ignore_input && !needs_input(result).empty()) {
        print_input_hint();
        return exit_input_needed;
    }
    return wait_exit_code(result);
}

// The JSON-RPC result, or the exit code of a failure already reported on stderr.
using outcome = std::variant<boost::json::object, int>;

outcome result_of(http_reply const& reply, credentials const& creds) {
    if (reply.status < 200 || reply.status > 299) {
        fmt::print(stderr, "agentctl: {}\n", http_failure(reply, creds));
        return exit_unreachable;
    }
    auto decoded = decode_response(reply.body);
    if (auto const* error = std::get_if<rpc_error>(&decoded)) {
        fmt::print(stderr, "agentctl: {}\n", describe(*error));
        return exit_failed;
    }
    auto const* result = std::get<boost::json::value>(decoded).if_object();
    if (result == nullptr) throw transport_error("the JSON-RPC result is not an object");
    return *result;
}

outcome send(invocation const& inv, rpc_request const& request) {
    auto to = parse_url(resolve_url(inv.globals));
    auto creds = resolve_credentials(inv.globals);
    auto reply = post_json(to, {encode_request(request), creds.token}, http_deadline(inv));
    return result_of(reply, creds);
}

outcome request(invocation const& inv) {
    return send(inv, build_request(inv, read_tasks(inv.cmd)));
}

// start --wait: the start's lines (text mode), then a wait for exactly the jobs it started.
int start_and_wait(invocation const& inv) {
    auto started = request(inv);
    if (auto const* code = std::get_if<int>(&started)) return *code;
    auto waiting = inv;
    waiting.cmd.kind = command_kind::wait;
    waiting.cmd.args = job_ids(std::get<boost::json::object>(started));
    if (wants_live_display(waiting)) return run_live_wait(waiting, waiting.cmd.args);
    if (!inv.globals.json) print_result(inv, std::get<boost::json::object>(started));
    return run_request(waiting);
}

int dispatch(invocation const& inv) {
    if (inv.cmd.kind == command_kind::watch) return run_watch(inv);
    if (inv.cmd.kind == command_kind::start && inv.cmd.start_wait) return start_and_wait(inv);
    if (inv.cmd.kind == command_kind::wait && wants_live_display(inv))
        return run_live_wait(inv, inv.cmd.args);
    return run_request(inv);
}

}  // namespace

int run(invocation const& inv) {
    if (inv.cmd.kind == command_kind::ui) return run_ui(inv);  // prints a URL, sends nothing
    auto url = resolve_url(inv.globals);
    try {
        return dispatch(inv);
    } catch (rpc_failure const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_failed;
    } catch (usage_error const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_usage;
    } catch (transport_error const& e) {
        fmt::print(stderr, "agentctl: {}: {}\n", url, e.what());
        return exit_unreachable;
    }
}

outcome call(invocation const& inv, rpc_request request) {
    if (inv.globals.session && !request.params.contains("session"))
        request.params["session"] = *inv.globals.session;
    auto plain = inv;
    plain.cmd.kind = command_kind::status;  // no wait allowance on the deadline
    return send(plain, request);
}

int run_request(invocation const& inv) {
    auto result = request(inv);
    if (auto const* code = std::get_if<int>(&result)) return *code;
    return print_result(inv, std::get<boost::json::object>(result));
}

}  // namespace agentctl
