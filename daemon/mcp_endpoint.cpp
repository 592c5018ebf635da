// MCP Streamable HTTP (2025-11-25, 2025-06-18, 2025-03-26) on Beast. A POST carries one message
// (or a 2025-03-26 batch); requests are answered with one JSON body, except agents_wait with a
// progress token or from a client that takes elicitations, which streams notifications/progress
// and elicitation/create requests (whose responses come back in later POSTs) and then its
// response as SSE events.
// notifications/cancelled (and the session's end) fires a per-request signal; a cancelled
// request is never answered: its SSE stream just ends, a JSON exchange gets 202 and no body.
#include "daemon/mcp_endpoint.hpp"

#include "common/log.hpp"
#include "daemon/mcp_sessions.hpp"
#include "daemon/routes.hpp"
#include "jobs/job.hpp"
#include "jobs/wake_signal.hpp"
#include "protocol/job_view.hpp"
#include "protocol/json_text.hpp"
#include "protocol/mcp.hpp"
#include "protocol/params.hpp"
#include "protocol/rpc.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <vector>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace mcp = protocol::mcp;
using namespace asio::experimental::awaitable_operators;
using protocol::result;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Warnings a peer can trigger at will: a line a second each (log::throttle).
log::throttle sessions_full_log;
log::throttle body_limit_log;

using wait_result = std::optional<result<json::value>>;  // nullopt: cancelled
constexpr std::string_view session_header = "Mcp-Session-Id";
constexpr std::string_view version_header = "MCP-Protocol-Version";
// Pins the owner session of a client's calls across reconnects (DESIGN §6).
constexpr std::string_view pinned_session_header = "Agentd-Session";

// --- header guards ----------------------------------------------------------------------------

// Accept must list application/json and text/event-stream; wildcards count, as in HTTP.
bool accepts_json_and_sse(std::string_view accept) {
    bool json_ok = false;
    bool sse_ok = false;
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto media = media_type(accept.substr(0, comma));
        bool any = media == "*/*";
        json_ok = json_ok || any || beast::iequals(media, "application/json") ||
                  beast::iequals(media, "application/*");
        sse_ok = sse_ok || any || beast::iequals(media, "text/event-stream") ||
                 beast::iequals(media, "text/*");
        accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    }
    return json_ok && sse_ok;
}

string_response json_response(http::status status, json::value const& body, unsigned version) {
    return make_response(status, version, "application/json", protocol::to_text(body));
}

// A transport-level refusal: the HTTP status, and a JSON-RPC error without an id (spec).
string_response refusal(http::status status, std::string_view reason, unsigned version) {
    return json_response(status, protocol::make_error(nullptr, protocol::invalid_request(reason)),
                         version);
}

string_response empty_response(http::status status, unsigned version) {
    return make_response(status, version, {}, {});
}

// --- one exchange -----------------------------------------------------------------------------

// One /mcp request being answered on its connection.
struct exchange {
    http_stream& stream;
    http::request<http::string_body> const& req;
    http_context& ctx;
    std::string principal;
    std::shared_ptr<mcp_session> session;

    caller who() const {
        caller c;
        c.principal = principal;
        // A call's `session` wins over both (caller::owner); screen_mcp checked the header.
        if (auto pinned = req[pinned_session_header]; !pinned.empty())
            c.default_session = pinned;
        else if (session)
            c.default_session = session->id;  // jobs belong to the MCP session
        return c;
    }

    // Writes a whole response; false when the connection must close.
    asio::awaitable<bool> send(string_response res) {
        if (session) res.set(session_header, session->id);
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        stream.expires_after(ctx.opts.read_timeout);
        auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
        stream.expires_never();
        co_return !ec && res.keep_alive();
    }
};

// A text/event-stream response in HTTP/1.1 chunks, one event per JSON-RPC message.
class sse_stream {
  public:
    explicit sse_stream(exchange& x) : x_(x) {}

    asio::awaitable<bool> open() {
        http::response<http::empty_body> head{http::status::ok, x_.req.version()};
        set_common_headers(head, "text/event-stream");
        head.set(session_header, x_.session->id);
        head.keep_alive(x_.req.keep_alive());
        head.chunked(true);
        http::response_serializer<http::empty_body> serializer{head};
        x_.stream.expires_after(x_.ctx.opts.read_timeout);
        auto [ec, n] = co_await http::async_write_header(x_.stream, serializer, use_tuple);
        x_.stream.expires_never();
        ok_ = !ec;
        co_return ok_;
    }

    asio::awaitable<bool> send(json::value const& message) {
        auto frame = fmt::format("event: message\ndata: {}\n\n", protocol::to_text(message));
        auto chunk = http::make_chunk(asio::buffer(frame));
        co_return co_await write(chunk);
    }

    // Ends the stream; false when the connection must close.
    asio::awaitable<bool> close() {
        auto last = http::make_chunk_last();
        co_return co_await write(last) && x_.req.keep_alive();
    }

  private:
    template <class Buffers>
    asio::awaitable<bool> write(Buffers const& buffers) {
        if (!ok_) co_return false;
        x_.stream.expires_after(x_.ctx.opts.read_timeout);
        auto [ec, n] = co_await asio::async_write(x_.stream, buffers, use_tuple);
        x_.stream.expires_never();
        ok_ = !ec;
        co_return ok_;
    }

    exchange& x_;
    bool ok_ = false;
};

// --- cancellation -----------------------------------------------------------------------------

// A request's cancel_signal is fired by notifications/cancelled or by the end of its session.
using cancel_signal = jobs::wake_signal;

// The work's outcome, or nullopt when the signal fires first (the work is then cancelled).
// Only for read-only work: a start or cancel stopped half-way would leave upstream work behind.
template <class T>
asio::awaitable<std::optional<T>> unless_cancelled(asio::awaitable<T> work, cancel_signal& signal) {
    if (signal.fired()) co_return std::nullopt;
    auto outcome = co_await (std::move(work) || signal.wait());
    if (outcome.index() == 1) co_return std::nullopt;
    co_return std::move(std::get<0>(outcome));
}

// --- tools/call --------------------------------------------------------------------------------

json::value tool_response(json::value const& id, result<json::value> const& out) {
    if (out) return protocol::make_result(id, mcp::tool_success(*out));
    if (mcp::is_tool_failure(out.error()))
        return protocol::make_result(id, mcp::tool_failure(out.error()));
    return protocol::make_error(id, out.error());
}

asio::awaitable<std::optional<json::value>> call_tool(exchange& x, json::value const& id,
                                                      json::value const& params) {
    auto call = mcp::parse_tool_call(params);
    if (!call) co_return protocol::make_error(id, call.error());
    x.session->used = true;
    cancel_signal signal(x.stream.get_executor());
    mcp_in_flight registration(x.session, json::serialize(id), [&signal] { signal.fire(); });
    auto who = x.who();
    wait_result out;
    if (call->name == "agents_wait") {
        auto work = x.ctx.rpc.invoke(call->name, call->arguments, who);
        out = co_await unless_cancelled(std::move(work), signal);
    } else {
        out = co_await x.ctx.rpc.invoke(call->name, call->arguments, who);
        if (signal.fired()) out.reset();
    }
    if (!out) co_return std::nullopt;
    co_return tool_response(id, *out);
}

// A selected job's state as the response shows it: an unknown or foreign id is "not_found".
std::string_view state_name(jobs::job_entry const& e) {
    return e.view ? protocol::to_string(e.view->state) : "not_found";
}

bool is_resolved(jobs::job_entry const& e) {
    return !e.view || protocol::is_terminal(e.view->state);
}

std::string progress_message(jobs::job_entry const& e, std::size_t done, std::size_t total) {
    auto const* description =
        e.view && !e.view->description.empty() ? &e.view->description : nullptr;
    return fmt::format("{}{} {} ({} of {} done)", e.id,
                       description ? fmt::format(" ({})", *description) : std::string(),
                       state_name(e), done, total);
}

// The jobs an agents_wait with progress selected, by position: their latest entries and which
// of them have been reported finished.
struct progress_state {
    std::vector<jobs::job_entry> entries;
    std::vector<bool> reported;
    std::size_t done = 0;

    explicit progress_state(std::vector<jobs::job_entry> snapshot)
        : entries(std::move(snapshot)), reported(entries.size(), false) {}

    bool met(protocol::wait_mode mode) const {
        return mode == protocol::wait_mode::any ? done > 0 || entries.empty()
                                                : done == entries.size();
    }

    std::vector<std::string> ids(bool unreported_only) const {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < entries.size(); ++i)
            if (!unreported_only || !reported[i]) out.push_back(entries[i].id);
        return out;
    }

    void update(std::vector<jobs::job_entry> const& fresh) {
        for (auto const& f : fresh)
            for (std::size_t i = 0; i < entries.size(); ++i)
                if (!reported[i] && entries[i].id == f.id) entries[i] = f;
    }
};

// Counts the selected jobs that have finished since the last report, with one progress
// notification for each when the call has a token; false once the client is gone.
asio::awaitable<bool> report_finished(sse_stream& sse, std::optional<json::value> const& token,
                                      progress_state& state) {
    auto total = state.entries.size();
    for (std::size_t i = 0; i < total; ++i) {
        if (state.reported[i] || !is_resolved(state.entries[i])) continue;
        state.reported[i] = true;
        ++state.done;
        if (!token) continue;
        auto note = mcp::progress_notification(
            *token, state.done, total, progress_message(state.entries[i], state.done, total));
        if (!co_await sse.send(note)) co_return false;
    }
    co_return true;
}

// --- elicitation ------------------------------------------------------------------------------

// At most this many elicitation/create requests per agents_wait; past it the wait returns with
// the jobs that still need input, for agents_respond.
constexpr std::size_t max_elicitations_per_wait = 16;

// A waiting job's request not yet put to the person in this session, with its form.
struct elicitation {
    std::string job;
    protocol::pending_request request;
    json::object params;
};

enum class asked { answered, settled, timed_out, cancelled, gone };

// Whether the job's view still lists the request as pending.
bool still_pending(protocol::job_view const& v, std::string const& request) {
    return std::any_of(v.requests.begin(), v.requests.end(),
                       [&](auto const& r) { return r.id == request; });
}

// Sends one elicitation/create on the wait's stream and awaits the client's response, which
// arrives in another POST (mcp_session::take_reply). Until the deadline, the signal, or the
// request's settling elsewhere (UI, agentctl, input timeout); in the last two cases the client is
// told the request is no longer wanted.
asio::awaitable<asked> ask_client(exchange& x, sse_stream& sse, elicitation const& e,
                                  std::chrono::steady_clock::time_point deadline,
                                  cancel_signal& signal, json::object& reply) {
    auto& session = *x.session;
    json::value id(json::string(fmt::format("agentd-elicitation-{}", ++session.requests_sent)));
    auto key = json::serialize(id);
    jobs::wake_signal arrived(x.stream.get_executor());
    std::optional<json::object> response;
    bool settled = false;
    session.awaiting[key] = [&](json::object const& r) {
        response = r;
        arrived.fire();
    };
    struct forget {
        mcp_session& s;
        std::string const& key;
        ~forget() { s.awaiting.erase(key); }
    } unregister{session, key};
    auto listening = x.ctx.rpc.jobs().listen([&](jobs::job const& j) {
        if (settled || j.view.id != e.job || still_pending(j.view, e.request.id)) return;
        settled = true;
        arrived.fire();
    });
    json::object request{
        {"jsonrpc", "2.0"}, {"id", id}, {"method", "elicitation/create"}, {"params", e.params}};
    if (!co_await sse.send(request)) co_return asked::gone;
    if (!response && !settled) {
        auto outcome = co_await (arrived.wait_until(deadline) || signal.wait());
        if (outcome.index() == 1 || signal.fired()) {
            // The wait is cancelled; its stream ends without a response. Best effort: withdraw
            // the form too, so the client need not show it any longer.
            co_await sse.send(mcp::cancelled_notification(id, "the wait was cancelled"));
            co_return asked::cancelled;
        }
    }
    if (response) {
        reply = std::move(*response);
        co_return asked::answered;
    }
    auto note = mcp::cancelled_notification(
        id, settled ? "the request was answered elsewhere" : "the wait's timeout passed");
    if (!co_await sse.send(note)) co_return asked::gone;
    co_return settled ? asked::settled : asked::timed_out;
}

std::optional<elicitation> next_elicitation(exchange& x, std::vector<jobs::job_entry> const& all) {
    for (auto const& e : all) {
        if (!e.view || e.view->state != protocol::job_state::waiting) continue;
        for (auto const& r : e.view->requests) {
            auto params = mcp::elicitation_params(*e.view, r, x.session->version);
            if (!params || !x.session->mark_elicited(e.id, r.id)) continue;
            return elicitation{e.id, r, std::move(*params)};
        }
    }
    return std::nullopt;
}

// After one elicitation the wait goes on (the answer was applied, or the request was settled
// or failed otherwise: the loop looks again, and a request still pending was asked already),
// gives the jobs back (declined, cancelled, timed out, unusable content), or stops (the wait
// itself was cancelled or its client is gone).
enum class elicited { go_on, give_back, stop };

// Asks the person about one request and applies an accepted answer as agents_respond would
// (answered by "caller").
asio::awaitable<elicited> elicit(exchange& x, sse_stream& sse, elicitation const& e,
                                 std::optional<std::string> const& session,
                                 std::chrono::steady_clock::time_point deadline,
                                 cancel_signal& signal) {
    json::object reply;
    auto outcome = co_await ask_client(x, sse, e, deadline, signal, reply);
    if (outcome == asked::cancelled || outcome == asked::gone) co_return elicited::stop;
    if (outcome == asked::settled) co_return elicited::go_on;  // by someone else
    if (outcome == asked::timed_out) co_return elicited::give_back;
    auto answer = mcp::read_elicitation(e.request, reply);
    if (answer.what != mcp::elicitation_answer::action::accept) co_return elicited::give_back;
    json::object args = std::move(answer.respond);
    if (session) args["session"] = *session;
    args["job"] = e.job;
    args["request"] = e.request.id;
    auto out = co_await x.ctx.rpc.invoke("agents_respond", args, x.who());
    if (!out) {
        log::warn("answer_failed", {{"job", e.job},
                                    {"request", e.request.id},
                                    {"by", "elicitation"},
                                    {"error", out.error().message}});
    }
    co_return elicited::go_on;
}

bool any_waiting(progress_state const& state) {
    for (std::size_t i = 0; i < state.entries.size(); ++i) {
        auto const& v = state.entries[i].view;
        if (!state.reported[i] && v && v->state == protocol::job_state::waiting) return true;
    }
    return false;
}

// --- the streamed agents_wait -------------------------------------------------------------------

// agents_wait as an SSE stream, on the manager's typed wait: a snapshot of the selected jobs,
// then event-driven waits for "any" of the unfinished ones, one progress notification per job
// that finishes (with a progress token), and for a job that becomes waiting an
// elicitation/create (when the client takes them) whose accepted answer is applied before the
// wait goes on, until the call's condition or deadline, or a request nobody answered here; the
// response is the call itself checked once more.
asio::awaitable<wait_result> streamed_wait(exchange& x, sse_stream& sse, mcp::tool_call const& call,
                                           cancel_signal& signal) {
    auto params = protocol::parse_wait(call.arguments);
    if (!params) co_return result<json::value>(params.error());
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(params->timeout_ms);
    auto who = x.who();
    auto owner = who.owner(params->session);
    auto& manager = x.ctx.rpc.jobs();
    protocol::wait_params selection = *params;
    selection.timeout_ms = 0;
    auto snapshot = co_await manager.wait(owner, selection);

    progress_state state(std::move(snapshot.jobs));
    selection.jobs = state.ids(false);  // from here on exactly the snapshot's jobs
    bool elicits = x.session->elicits && !params->ignore_input;
    std::size_t elicitations = 0;
    for (;;) {
        if (!co_await report_finished(sse, call.progress_token, state)) co_return std::nullopt;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
        if (state.met(params->mode) || left.count() <= 0) break;
        if (!params->ignore_input && any_waiting(state)) {
            if (!elicits || elicitations == max_elicitations_per_wait) break;
            auto next = next_elicitation(x, state.entries);
            if (!next) break;  // asked already, or not expressible as a form: agents_respond
            ++elicitations;
            auto outcome = co_await elicit(x, sse, *next, params->session, deadline, signal);
            if (outcome == elicited::stop) co_return std::nullopt;
            if (outcome == elicited::give_back) break;
            protocol::status_params now{params->session, state.ids(true)};
            state.update(manager.status(owner, now));
            continue;
        }
        protocol::wait_params step;
        step.jobs = state.ids(true);
        step.mode = protocol::wait_mode::any;
        step.timeout_ms = left.count();
        step.ignore_input = params->ignore_input;
        auto work = manager.wait(owner, step);
        auto outcome = co_await unless_cancelled(std::move(work), signal);
        if (!outcome) co_return std::nullopt;
        state.update(outcome->jobs);
    }
    auto out = co_await x.ctx.rpc.wait(selection, who);
    co_return out;
}

asio::awaitable<bool> stream_wait(exchange& x, json::value const& id, mcp::tool_call const& call) {
    x.session->used = true;
    cancel_signal signal(x.stream.get_executor());
    mcp_in_flight registration(x.session, json::serialize(id), [&signal] { signal.fire(); });
    sse_stream sse(x);
    if (!co_await sse.open()) co_return false;
    wait_result out;
    try {
        out = co_await streamed_wait(x, sse, call, signal);
    } catch (std::exception const& e) {
        log::error("internal_error", {{"method", "agents_wait"}, {"error", e.what()}});
        out = result<json::value>(protocol::internal_error());
    }
    if (out) {
        auto response = tool_response(id, *out);
        if (!co_await sse.send(response)) co_return false;
    }
    co_return co_await sse.close();
}

// The one kind of request answered as a stream: agents_wait with a progress token, or from a
// client that takes elicitations, alone in its POST, over HTTP/1.1 (chunked).
std::optional<mcp::tool_call> streaming_call(exchange const& x, mcp::body const& body) {
    if (body.is_batch || body.calls.size() != 1 || x.req.version() < 11) return std::nullopt;
    auto const& c = body.calls.front();
    if (!c.req || !c.req->id || c.req->method != "tools/call") return std::nullopt;
    auto call = mcp::parse_tool_call(c.req->params);
    if (!call || call->name != "agents_wait" || !(call->progress_token || x.session->elicits))
        return std::nullopt;
    return std::move(*call);
}

// --- messages ----------------------------------------------------------------------------------

asio::awaitable<std::optional<json::value>> answer(exchange& x, protocol::request const& req) {
    auto const& id = *req.id;
    try {
        if (req.method == "ping") co_return protocol::make_result(id, json::object{});
        if (req.method == "tools/list")
            co_return protocol::make_result(id, mcp::tools_list_result());
        if (req.method == "tools/call") co_return co_await call_tool(x, id, req.params);
        if (req.method == "initialize")
            co_return protocol::make_error(
                id, protocol::invalid_request("initialize must be sent alone, not in a batch"));
        co_return protocol::make_error(id, protocol::method_not_found(req.method));
    } catch (std::exception const& e) {
        log::error("internal_error", {{"method", req.method}, {"error", e.what()}});
    }
    co_return protocol::make_error(id, protocol::internal_error());
}

// Notifications need no answer; only cancellation does anything (initialized, progress and
// list_changed from a client change nothing here).
void notify(exchange& x, protocol::request const& note) {
    if (note.method != "notifications/cancelled") return;
    if (auto id = mcp::cancelled_request_id(note.params)) x.session->cancel(json::serialize(*id));
}

asio::awaitable<bool> handle_messages(exchange& x, mcp::body const& body) {
    auto v = x.req.version();
    for (auto const& response : body.responses) x.session->take_reply(response);
    if (auto call = streaming_call(x, body))
        co_return co_await stream_wait(x, *body.calls.front().req->id, *call);
    json::array responses;
    for (auto const& c : body.calls) {
        if (!c.req) {
            responses.push_back(protocol::make_error(c.error_id, c.req.error()));
        } else if (!c.req->id) {
            notify(x, *c.req);
        } else if (auto response = co_await answer(x, *c.req)) {
            responses.push_back(std::move(*response));
        }
    }
    string_response res;
    if (responses.empty()) {
        res = empty_response(http::status::accepted, v);
    } else if (body.is_batch) {
        res = json_response(http::status::ok, responses, v);
    } else {
        auto status = body.calls.front().req ? http::status::ok : http::status::bad_request;
        res = json_response(status, responses.front(), v);
    }
    co_return co_await x.send(std::move(res));
}

protocol::request const* lone_initialize(mcp::body const& body) {
    if (body.is_batch || body.calls.size() != 1) return nullptr;
    auto const& c = body.calls.front();
    return c.req && c.req->id && c.req->method == "initialize" ? &*c.req : nullptr;
}

// Every MCP session of the principal has a request in flight: none may be evicted for a new one.
string_response all_sessions_busy(unsigned version) {
    sessions_full_log.warn("limit", {{"limit", "max_mcp_sessions"}, {"status", 503}});
    auto res = refusal(http::status::service_unavailable,
                       "too many MCP sessions, all busy; retry when one ends", version);
    res.set(http::field::retry_after, "5");
    return res;
}

asio::awaitable<bool> initialize(exchange& x, protocol::request const& req) {
    auto v = x.req.version();
    auto version = mcp::negotiate_version(req.params);
    string_response res;
    if (version) {
        x.session = x.ctx.mcp.open(x.who().principal);
        if (!x.session) co_return co_await x.send(all_sessions_busy(v));
        x.session->version = *version;
        x.session->elicits = mcp::offers_form_elicitation(req.params, *version);
        res = json_response(http::status::ok,
                            protocol::make_result(*req.id, mcp::initialize_result(*version)), v);
    } else {
        res = json_response(http::status::ok, protocol::make_error(*req.id, version.error()), v);
    }
    co_return co_await x.send(std::move(res));
}

// The session a non-initialize request names: 400 without the header, 404 when unknown/ended.
std::optional<string_response> attach_session(exchange& x) {
    auto v = x.req.version();
    auto id = x.req[session_header];
    if (id.empty())
        return refusal(http::status::bad_request, "Mcp-Session-Id header is required", v);
    x.session = x.ctx.mcp.find(id);
    // Another principal's session is as good as unknown: its id must not lend its requests.
    if (x.session && x.session->principal != x.principal) x.session = nullptr;
    if (!x.session) return refusal(http::status::not_found, "unknown or ended MCP session", v);
    return std::nullopt;
}

asio::awaitable<bool> end_session(exchange& x) {
    auto v = x.req.version();
    auto id = x.req[session_header];
    string_response res;
    if (id.empty()) {
        res = refusal(http::status::bad_request, "Mcp-Session-Id header is required", v);
    } else if (auto s = x.ctx.mcp.find(id);
               !s || s->principal != x.principal || !x.ctx.mcp.end(id)) {
        res = refusal(http::status::not_found, "unknown or ended MCP session", v);
    } else {
        res = empty_response(http::status::no_content, v);
    }
    co_return co_await x.send(std::move(res));
}

}  // namespace

std::optional<string_response> screen_mcp(http::request_parser<http::string_body> const& parser,
                                          http_context const& ctx) {
    auto const& req = parser.get();
    auto v = req.version();
    if (auto version = req[version_header]; !version.empty() && !mcp::is_supported_version(version))
        return refusal(http::status::bad_request, "unsupported MCP-Protocol-Version", v);
    if (req.count(pinned_session_header) > 1 ||
        (req.find(pinned_session_header) != req.end() &&
         !protocol::valid_session_name(req[pinned_session_header])))
        return refusal(http::status::bad_request,
                       "Agentd-Session must be one header matching [A-Za-z0-9._:-]{1,128}", v);
    if (req.method() == http::verb::delete_) return std::nullopt;
    if (!accepts_json_and_sse(req[http::field::accept]))
        return refusal(http::status::not_acceptable,
                       "Accept must list application/json and text/event-stream", v);
    if (!beast::iequals(media_type(req[http::field::content_type]), "application/json"))
        return refusal(http::status::unsupported_media_type,
                       "Content-Type must be application/json", v);
    if (auto len = parser.content_length(); len && *len > ctx.opts.max_body_bytes) {
        body_limit_log.warn("limit", {{"limit", "max_body_bytes"}, {"status", 413}});
        return refusal(http::status::payload_too_large, "body too large", v);
    }
    return std::nullopt;
}

asio::awaitable<bool> serve_mcp(http_stream& stream, http::request<http::string_body> const& req,
                                std::string principal, http_context& ctx) {
    stream.expires_never();  // a long agents_wait is not a slow client; writes set deadlines
    exchange x{stream, req, ctx, std::move(principal), nullptr};
    if (req.method() == http::verb::delete_) co_return co_await end_session(x);
    auto body = mcp::parse_body(req.body());
    if (!body) {
        auto res = json_response(http::status::bad_request,
                                 protocol::make_error(nullptr, body.error()), req.version());
        co_return co_await x.send(std::move(res));
    }
    if (auto const* init = lone_initialize(*body)) co_return co_await initialize(x, *init);
    if (auto refused = attach_session(x)) co_return co_await x.send(std::move(*refused));
    co_return co_await handle_messages(x, *body);
}

}  // namespace agentd::daemon
