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
#include "service.hpp"
#include "tokens.hpp"
#include "ui.hpp"

#include "protocol/job_view.hpp"
#include "protocol/params.hpp"

#include <fmt/core.h>
#include <boost/json/value.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace agentctl {
namespace {

namespace protocol = agentd::protocol;

// Five minutes: well under the daemon's max wait, and under the idle limits proxies commonly
// put on one request.
constexpr std::int64_t default_wait_slice_ms = 300'000;
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

// The daemon may hold a wait open for the wait's whole timeout (one slice: wait_in_slices sets
// it); --http-timeout-ms is the allowance on top.
std::chrono::milliseconds http_deadline(invocation const& inv) {
    auto ms = inv.globals.http_timeout_ms;
    if (inv.cmd.kind == command_kind::wait) ms += inv.cmd.wait_timeout_ms.value_or(0);
    return std::chrono::milliseconds(ms);
}

// Ctrl-C during a wait or watch ends agentctl, never the jobs: they run in agentd and nothing
// here cancels them. Only async-signal-safe calls, so the note is a fixed string.
void stop_waiting(int) {
    constexpr char note[] = "\nagentctl: stopped waiting; the jobs go on (agentctl status)\n";
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, note, sizeof note - 1);
    ::_exit(exit_interrupted);
}

void stop_waiting_on_ctrl_c() {
    struct sigaction action {};
    action.sa_handler = stop_waiting;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
}

// AGENTCTL_WAIT_SLICE_MS, else default_wait_slice_ms: the longest one agents_wait call may be.
std::int64_t wait_slice_ms() {
    char const* text = std::getenv("AGENTCTL_WAIT_SLICE_MS");
    if (text == nullptr || *text == '\0') return default_wait_slice_ms;
    std::int64_t ms = 0;
    auto const* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, ms);
    if (ec != std::errc{} || ptr != end || ms < 1 || ms > protocol::max_wait_timeout_ms)
        throw usage_error(fmt::format("AGENTCTL_WAIT_SLICE_MS={}: want 1 to {} ms", text,
                                      protocol::max_wait_timeout_ms));
    return ms;
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

boost::json::array const& jobs_in(boost::json::object const& result) {
    static const boost::json::array none;
    auto const* jobs = result.if_contains("jobs");
    return jobs && jobs->is_array() ? jobs->get_array() : none;
}

std::vector<std::string> job_ids(boost::json::object const& result) {
    std::vector<std::string> ids;
    for (auto const& job : jobs_in(result)) ids.push_back(read_job(job).id);
    return ids;
}

// The ids the daemon answered `not_found` for: in `jobs` (status, wait, cancel) or `job` (peek).
std::vector<std::string> unknown_ids(boost::json::object const& result) {
    std::vector<std::string> ids;
    auto note = [&ids](boost::json::value const& value) {
        auto job = read_job(value);
        if (job.state == protocol::not_found_state) ids.push_back(job.id);
    };
    if (auto const* job = result.if_contains("job")) note(*job);
    for (auto const& job : jobs_in(result)) note(job);
    return ids;
}

// status --state: only the jobs in those states (the filter is agentctl's, the daemon lists all).
boost::json::object shown_part(command const& cmd, boost::json::object result) {
    auto* jobs = result.if_contains("jobs");
    if (cmd.kind != command_kind::status || cmd.states.empty() || !jobs || !jobs->is_array())
        return result;
    boost::json::array kept;
    for (auto const& job : jobs->get_array()) {
        auto state = read_job(job).state;
        if (std::find(cmd.states.begin(), cmd.states.end(), state) != cmd.states.end())
            kept.push_back(job);
    }
    *jobs = std::move(kept);
    return result;
}

// `listed` is the daemon's result, `shown` what of it the command prints (status --state).
void print_text(invocation const& inv, boost::json::object const& listed,
                boost::json::object const& shown) {
    if (inv.cmd.kind == command_kind::start && inv.cmd.quiet && !inv.globals.json) {
        for (auto const& id : job_ids(shown)) fmt::print("{}\n", id);
    } else if (inv.globals.json) {
        fmt::print("{}", pretty_json(shown));
    } else {
        auto text = render_result(inv.cmd.kind, shown, terminal_columns());
        if (inv.cmd.kind == command_kind::status)
            text.out += total_line(listed, jobs_in(shown).size());
        fmt::print("{}", text.out);
        fmt::print(stderr, "{}", text.err);
    }
}

int print_result(invocation const& inv, boost::json::object const& result) {
    print_text(inv, result, shown_part(inv.cmd, result));
    auto unknown = unknown_ids(result);
    for (auto const& id : unknown)
        fmt::print(stderr, "agentctl: no such job: {} (unknown, expired, or another owner's)\n",
                   id);
    if (inv.cmd.kind != command_kind::wait) return unknown.empty() ? exit_ok : exit_unknown_job;
    // The wait came back for a request (its lines are in the text above): say how to answer.
    if (!inv.cmd.ignore_input && !needs_input(result).empty()) {
        print_input_hint();
        return exit_input_needed;
    }
    return wait_exit_code(result);
}

// agents_respond's -32602 on `job`: the id is not one of the caller's jobs.
bool is_unknown_job(rpc_error const& error) {
    auto const* data = error.data.if_object();
    return error.code == -32602 && data && text_of(*data, "field") == "job";
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
        return is_unknown_job(*error) ? exit_unknown_job : exit_failed;
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

// A wait is a series of agents_wait calls of at most one slice each, so a wait without
// --timeout lasts until the jobs end with no request of unbounded length. The first call
// without ids selects the session's unfinished jobs; later ones name those jobs, so jobs started
// meanwhile do not join and jobs that ended in an earlier slice are still reported.
int wait_in_slices(invocation const& inv) {
    auto left = inv.cmd.wait_timeout_ms;  // nullopt: until the jobs end
    auto slice_ms = wait_slice_ms();
    auto next = inv;
    for (;;) {
        auto slice = left ? std::min(*left, slice_ms) : slice_ms;
        next.cmd.wait_timeout_ms = slice;
        auto result = request(next);
        if (auto const* code = std::get_if<int>(&result)) return *code;
        auto const& waited = std::get<boost::json::object>(result);
        if (left) *left -= slice;
        if (!flag_of(waited, "timed_out") || (left && *left <= 0)) return print_result(inv, waited);
        if (next.cmd.args.empty()) next.cmd.args = job_ids(waited);
    }
}

// cancel --all: the session's jobs not yet terminal, as agents_status lists them, cancelled in
// batches of the most ids one call takes.
int cancel_all(invocation const& inv) {
    auto listed = call(inv, {"agents_status", {}});
    if (auto const* code = std::get_if<int>(&listed)) return *code;
    std::vector<std::string> ids;
    for (auto const& value : jobs_in(std::get<boost::json::object>(listed)))
        if (auto job = read_job(value); !protocol::is_terminal(job.state)) ids.push_back(job.id);
    boost::json::array cancelled;
    for (std::size_t i = 0; i < ids.size(); i += protocol::max_job_ids) {
        auto batch = inv;
        auto end = std::min(ids.size(), i + protocol::max_job_ids);
        batch.cmd.args.assign(ids.begin() + static_cast<std::ptrdiff_t>(i),
                              ids.begin() + static_cast<std::ptrdiff_t>(end));
        auto result = request(batch);
        if (auto const* code = std::get_if<int>(&result)) return *code;
        for (auto const& job : jobs_in(std::get<boost::json::object>(result)))
            cancelled.push_back(job);
    }
    if (ids.empty() && !inv.globals.json)
        fmt::print(stderr, "agentctl: no unfinished jobs to cancel\n");
    return print_result(inv, boost::json::object{{"jobs", std::move(cancelled)}});
}

// start --wait: the start's lines (text mode), then a wait for exactly the jobs it started.
int start_and_wait(invocation const& inv) {
    auto started = request(inv);
    if (auto const* code = std::get_if<int>(&started)) return *code;
    stop_waiting_on_ctrl_c();
    auto waiting = inv;
    waiting.cmd.kind = command_kind::wait;
    waiting.cmd.args = job_ids(std::get<boost::json::object>(started));
    if (wants_live_display(waiting)) return run_live_wait(waiting, waiting.cmd.args);
    if (!inv.globals.json) print_result(inv, std::get<boost::json::object>(started));
    return run_request(waiting);
}

bool is_service(command_kind kind) {
    return kind == command_kind::service_install || kind == command_kind::service_uninstall ||
           kind == command_kind::service_status;
}

int dispatch(invocation const& inv) {
    if (is_service(inv.cmd.kind)) return run_service(inv);
    if (inv.cmd.kind == command_kind::wait || inv.cmd.kind == command_kind::watch)
        stop_waiting_on_ctrl_c();
    if (inv.cmd.kind == command_kind::watch) return run_watch(inv);
    if (inv.cmd.kind == command_kind::start && inv.cmd.start_wait) return start_and_wait(inv);
    if (inv.cmd.kind == command_kind::wait && wants_live_display(inv))
        return run_live_wait(inv, inv.cmd.args);
    return run_request(inv);
}

bool is_token(command_kind kind) {
    return kind == command_kind::token_add || kind == command_kind::token_list ||
           kind == command_kind::token_revoke;
}

}  // namespace

int run(invocation const& inv) {
    if (inv.cmd.kind == command_kind::ui) return run_ui(inv);  // prints a URL, sends nothing
    if (is_token(inv.cmd.kind)) return run_token(inv);         // edits a file, sends nothing
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
    if (inv.cmd.kind == command_kind::wait) return wait_in_slices(inv);
    if (inv.cmd.kind == command_kind::cancel && inv.cmd.cancel_all) return cancel_all(inv);
    auto result = request(inv);
    if (auto const* code = std::get_if<int>(&result)) return *code;
    return print_result(inv, std::get<boost::json::object>(result));
}

}  // namespace agentctl
