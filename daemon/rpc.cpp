// rpc_service: JSON-RPC framing, the planner, and the five agents_* methods. Handlers see typed
// params only; anything unexpected is caught here once and answered -32603 without detail.
#include "daemon/rpc.hpp"

#include "common/tokens_file.hpp"

#include "common/log.hpp"
#include "daemon/metrics.hpp"
#include "jobs/store.hpp"
#include "planner/executor.hpp"
#include "planner/plan.hpp"
#include "protocol/json_text.hpp"

#include <fmt/format.h>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <iterator>
#include <map>
#include <type_traits>
#include <utility>

namespace agentd::daemon {
namespace json = boost::json;
namespace asio = boost::asio;
using protocol::result;

namespace {

using protocol::response_budget;

// A job whose output did not fit the response (output_omitted) hit max_response_bytes.
json::value warn_if_omitted(json::value view) {
    auto const& o = view.get_object();
    if (o.contains("output_omitted"))
        log::warn("limit", {{"limit", "max_response_bytes"},
                            {"job", std::string_view(o.at("id").as_string())}});
    return view;
}

json::array render(std::vector<jobs::job_entry> const& entries, json::storage_ptr const& sp,
                   response_budget& budget) {
    auto now = std::chrono::system_clock::now();
    json::array out(sp);
    out.reserve(entries.size());
    for (auto const& e : entries)
        out.push_back(e.view ? warn_if_omitted(protocol::to_json(*e.view, now, sp, &budget))
                             : protocol::not_found_json(e.id, sp));
    return out;
}

// Each job with its session, as agents_event carries them.
json::array render(std::vector<jobs::session_job> const& listed, json::storage_ptr const& sp,
                   response_budget& budget) {
    auto now = std::chrono::system_clock::now();
    json::array out(sp);
    out.reserve(listed.size());
    for (auto const& l : listed)
        out.push_back(
            json::object({{"job", warn_if_omitted(protocol::to_json(l.view, now, sp, &budget))},
                          {"session", l.session}},
                         sp));
    return out;
}

// agents_peek's `changes`; a patch that does not fit the response is left out
// (`patch_omitted: true`), the file's status and counts stay.
json::array render_changes(std::vector<protocol::file_change> const& changes,
                           json::storage_ptr const& sp, response_budget& budget) {
    json::array out(sp);
    for (auto const& c : changes) {
        budget.spend(96 + c.file.size());
        auto one = protocol::to_json(c, sp);
        if (!budget.take_json_string(c.patch)) {
            one.as_object()["patch"] = "";
            one.as_object()["patch_omitted"] = true;
        }
        out.push_back(std::move(one));
    }
    return out;
}

// agents_peek's result; the partial output too is omitted when the response has no room left.
json::object render_peek(jobs::peek_outcome const& out, json::storage_ptr const& sp,
                         response_budget& budget) {
    json::object result({{"job", render({out.job}, sp, budget).at(0)}}, sp);
    json::array steps(sp);
    steps.reserve(out.steps.size());
    for (auto const& s : out.steps) {
        budget.spend(96 + s.title.size() + s.output_tail.size());
        steps.push_back(protocol::to_json(s, sp));
    }
    result["steps"] = std::move(steps);
    if (budget.take_json_string(out.partial_output)) {
        result["partial_output"] = out.partial_output;
    } else {
        result["partial_output"] = "";
        result["output_omitted"] = true;
    }
    if (out.changes) result["changes"] = render_changes(*out.changes, sp, budget);
    if (out.diff_error) result["diff_error"] = *out.diff_error;
    return result;
}

// An object with an id and no method: a client's reply to a request of ours, not a call.
bool is_reply(protocol::frame const& f) {
    auto const* o = f.doc.if_object();
    return !f.is_batch && o && o->contains("id") && !o->contains("method");
}

// Records a method call's duration when it returns (agentd_rpc_duration_seconds): a guard
// rather than a wrapper coroutine, so timing costs no extra frame.
class rpc_timer {
  public:
    rpc_timer(metrics* m, std::string_view method)
        : m_(m),
          method_(m ? metrics::rpc_method_index(method) : 0),
          began_(std::chrono::steady_clock::now()) {}
    ~rpc_timer() {
        if (!m_) return;
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - began_;
        m_->observe_rpc(method_, took.count());
    }
    rpc_timer(rpc_timer const&) = delete;
    rpc_timer& operator=(rpc_timer const&) = delete;

  private:
    metrics* m_;
    std::size_t method_;
    std::chrono::steady_clock::time_point began_;
};

// agents_status's `usage`: the sum over the jobs found.
protocol::job_usage usage_total(std::vector<jobs::job_entry> const& found) {
    protocol::job_usage total;
    for (auto const& e : found) {
        if (!e.view || !e.view->usage) continue;
        total.input_tokens += e.view->usage->input_tokens;
        total.output_tokens += e.view->usage->output_tokens;
        total.cost += e.view->usage->cost;
    }
    return total;
}

}  // namespace

rpc_service::rpc_service(jobs::manager& jobs, planner::policy policy, protocol::codec_limits codec,
                         daemon::metrics* metrics)
    : jobs_(jobs), policy_(policy), codec_(codec), metrics_(metrics) {}

// What one agents_* call on the manager runs with.
struct rpc_service::call_context {
    std::string_view method;
    caller const& who;
    json::value const& params;  // as sent: what an approval request shows the user
    json::storage_ptr sp;
    response_budget& budget;
    jobs::owner owner;  // set by method<>() from the params' session
};

// agents_start is refused before its params are read when the policy denies it, and its parser
// takes the manager's task limit; every other method's parser takes the params alone.
template <class Parse>
auto rpc_service::parse(Parse parser, json::value const& params) const {
    if constexpr (std::is_invocable_v<Parse, json::value const&>) {
        return parser(params);
    } else {
        using parsed = decltype(parser(params, protocol::param_limits{}));
        if (policy_.start == planner::approval_mode::deny)
            return parsed(protocol::approval_error("agents_start is denied by policy"));
        return parser(params, protocol::param_limits{jobs_.config().max_tasks_per_call});
    }
}

namespace {

// The job ids a call names (a follow-up's `continue` too).
std::vector<std::string> named_ids(protocol::start_params const& p) {
    std::vector<std::string> ids;
    for (auto const& t : p.tasks)
        if (t.continues) ids.push_back(*t.continues);
    return ids;
}
template <class Params>
std::vector<std::string> named_ids(Params const& p) {
    if constexpr (requires { p.jobs.value_or(std::vector<std::string>{}); })
        return p.jobs.value_or(std::vector<std::string>{});
    else if constexpr (requires { p.jobs.size(); })
        return p.jobs;
    else
        return {p.job};
}

// What another instance holding the job answers for (its live text, steps and upstream calls).
template <class Params>
constexpr bool forwardable = std::is_same_v<Params, protocol::cancel_params> ||
                             std::is_same_v<Params, protocol::peek_params> ||
                             std::is_same_v<Params, protocol::respond_params> ||
                             std::is_same_v<Params, protocol::worktree_remove_params>;

// How long a forwarded call may take: the holder answers cancel, respond and peek at once (an
// abort it awaits is bounded well below this).
constexpr std::chrono::seconds forward_timeout{10};

}  // namespace

template <class Params>
asio::awaitable<std::optional<result<json::value>>> rpc_service::forward(Params const& p,
                                                                         call_context& c) {
    auto to = jobs_.holder(c.owner, p.job);
    if (!to) co_return std::nullopt;
    auto out = co_await call_instance(*to, c.params, c);
    co_return out;
}

// Each instance holding some of the ids cancels those; the entries come back in request order.
asio::awaitable<std::optional<result<json::value>>> rpc_service::forward(
    protocol::cancel_params const& p, call_context& c) {
    std::map<std::string, std::vector<std::string>> remote;
    std::vector<std::string> local;
    for (auto const& id : p.jobs) {
        if (auto to = jobs_.holder(c.owner, id))
            remote[*to].push_back(id);
        else
            local.push_back(id);
    }
    if (remote.empty()) co_return std::nullopt;
    std::map<std::string, json::value> entries;
    auto keep = [&](json::array const& jobs) {
        for (auto const& e : jobs)
            if (auto const* id = e.as_object().if_contains("id"); id && id->is_string())
                entries.emplace(std::string(id->get_string()), e);
    };
    for (auto const& [to, ids] : remote) {
        json::object params{{"jobs", json::value_from(ids)}};
        if (p.session) params["session"] = *p.session;
        auto out = co_await call_instance(to, params, c);
        if (!out) co_return out;
        keep(out->as_object().at("jobs").as_array());
    }
    if (!local.empty()) {
        protocol::cancel_params mine{p.session, local};
        auto out = co_await jobs_.cancel(c.owner, mine);
        keep(render(out, c.sp, c.budget));
    }
    json::array jobs(c.sp);
    for (auto const& id : p.jobs) jobs.push_back(entries.at(id));
    co_return json::value(json::object({{"jobs", std::move(jobs)}}, c.sp));
}

asio::awaitable<result<json::value>> rpc_service::call_instance(std::string const& to,
                                                                json::value const& params,
                                                                call_context& c) {
    json::object request{{"method", c.method},
                         {"params", params},
                         {"principal", c.who.principal},
                         {"session", c.owner.session}};
    auto reply = co_await jobs_.shared()->call(to, json::serialize(request), forward_timeout);
    if (!reply)
        co_return protocol::rpc_error{
            protocol::error_code::internal_error,
            fmt::format("the agentd instance {} holding the job did not answer within {} s; if "
                        "it stopped, another instance takes its jobs over within the lease time",
                        to, forward_timeout.count()),
            nullptr};
    boost::system::error_code ec;
    auto v = json::parse(*reply, ec, c.sp);
    auto const* o = ec ? nullptr : v.if_object();
    if (o && o->contains("result")) co_return o->at("result");
    auto const* e = o ? o->if_contains("error") : nullptr;
    if (!e || !e->is_object() || !e->as_object().contains("code"))
        co_return protocol::rpc_error{protocol::error_code::internal_error, "internal error",
                                      nullptr};
    auto const& err = e->as_object();
    auto const* message = err.if_contains("message");
    auto const* data = err.if_contains("data");
    co_return protocol::rpc_error{
        static_cast<protocol::error_code>(err.at("code").template to_number<int>()),
        message && message->is_string() ? std::string(message->get_string()) : std::string(),
        data ? *data : json::value(nullptr)};
}

asio::awaitable<std::string> rpc_service::answer_forwarded(std::string request) {
    boost::system::error_code ec;
    auto v = json::parse(request, ec);
    auto const* o = ec ? nullptr : v.if_object();
    auto text = [&](char const* key) -> std::string {
        auto const* f = o ? o->if_contains(key) : nullptr;
        return f && f->is_string() ? std::string(f->get_string()) : std::string();
    };
    caller who;
    who.principal = text("principal");
    who.default_session = text("session");
    who.forwarded = true;
    auto const method = text("method");
    auto const* params = o ? o->if_contains("params") : nullptr;
    json::object reply;
    if (!params || method.empty() || who.principal.empty() || who.default_session.empty()) {
        reply["error"] = {{"code", static_cast<int>(protocol::error_code::internal_error)},
                          {"message", "internal error"}};
    } else {
        auto out = co_await invoke(method, *params, who);
        if (out) {
            reply["result"] = std::move(*out);
        } else {
            auto e = out.error();
            reply["error"] = {
                {"code", static_cast<int>(e.code)}, {"message", e.message}, {"data", e.data}};
        }
    }
    co_return json::serialize(reply);
}

template <auto Parse>
asio::awaitable<result<json::value>> rpc_service::method(json::value const& params,
                                                         call_context& c) {
    auto p = parse(Parse, params);
    if (!p) co_return p.error();
    c.owner = c.who.owner(p->session);
    // Several instances on one store: a job started on another instance a moment ago is fetched
    // before the call looks for it, and a call on another instance's job is answered there.
    if (jobs_.shared() && !c.who.forwarded) {
        auto ids = named_ids(*p);
        if (!jobs_.knows(c.owner, ids)) co_await jobs_.discover(std::move(ids));
        if constexpr (forwardable<std::decay_t<decltype(*p)>>) {
            auto out = co_await forward(*p, c);
            if (out) co_return std::move(*out);
        }
    }
    // agents_status answers at once: the hottest call costs no second coroutine frame. What a
    // reply shows is committed first (an asynchronous store may still hold it).
    if constexpr (std::is_same_v<decltype(run(*p, c)), result<json::value>>) {
        auto out = run(*p, c);
        if (!jobs_.committed()) co_await jobs_.sync_store();
        co_return out;
    } else {
        auto out = co_await run(*p, c);
        if (!jobs_.committed()) co_await jobs_.sync_store();
        co_return out;
    }
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::start_params const& p,
                                                      call_context& c) {
    if (policy_.start == planner::approval_mode::ask) {
        if (!c.who.can_ask || !c.who.ask)
            co_return protocol::approval_error("approval required, and this transport cannot ask");
        json::value request{{"method", "agents_start"}, {"params", c.params}};
        bool approved = co_await c.who.ask(std::move(request));
        if (!approved) co_return protocol::approval_error("agents_start was not approved");
    }
    auto started = co_await jobs_.start_jobs(c.owner, p, c.who.connection);
    if (!started) co_return started.error();
    co_return json::object({{"jobs", render(*started, c.sp, c.budget)}}, c.sp);
}

result<json::value> rpc_service::run(protocol::status_params const& p, call_context& c) {
    auto found = jobs_.status(c.owner, p);
    auto const total = usage_total(found);
    return json::object(
        {{"jobs", render(found, c.sp, c.budget)}, {"usage", protocol::to_json(total, c.sp)}}, c.sp);
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::wait_params const& p,
                                                      call_context& c) {
    auto out = co_await jobs_.wait(c.owner, p);
    json::array needs_input(c.sp);
    for (auto const& id : out.needs_input) needs_input.push_back(json::string(id, c.sp));
    co_return json::object({{"done", out.done},
                            {"timed_out", out.timed_out},
                            {"jobs", render(out.jobs, c.sp, c.budget)},
                            {"needs_input", std::move(needs_input)}},
                           c.sp);
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::cancel_params const& p,
                                                      call_context& c) {
    auto out = co_await jobs_.cancel(c.owner, p);
    co_return json::object({{"jobs", render(out, c.sp, c.budget)}}, c.sp);
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::peek_params const& p,
                                                      call_context& c) {
    auto out = co_await jobs_.peek(c.owner, p);
    co_return render_peek(out, c.sp, c.budget);
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::respond_params const& p,
                                                      call_context& c) {
    auto out = co_await jobs_.respond(c.owner, p);
    if (!out) co_return out.error();
    co_return json::object({{"job", render({*out}, c.sp, c.budget).at(0)}}, c.sp);
}

asio::awaitable<result<json::value>> rpc_service::run(protocol::worktree_remove_params const& p,
                                                      call_context& c) {
    auto out = co_await jobs_.remove_worktree(c.owner, p.job);
    if (!out) co_return out.error();
    co_return json::object({{"job", render({*out}, c.sp, c.budget).at(0)}}, c.sp);
}

namespace {

// The session a call acts for, as the log names it: the one it names, else the caller's.
std::string_view session_of(json::value const& params, caller const& who) {
    if (auto const* o = params.if_object())
        if (auto const* s = o->if_contains("session"); s && s->is_string()) return s->get_string();
    return who.default_session;
}

// DESIGN §8: one line per request answered, and a warning for a limit the call hit. A named
// principal (tokens file) is on the line; "local", the one principal of a single-user daemon,
// is left out so that its lines stay as they were.
void log_answer(std::string_view method, std::string_view session, std::string_view principal,
                std::chrono::steady_clock::time_point started, result<json::value> const& out) {
    auto const elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
    std::vector<log::field> fields{{"method", method}, {"session", session}};
    if (principal != common::local_principal) fields.push_back({"principal", principal});
    fields.push_back({"elapsed_ms", elapsed});
    if (out) {
        log::write(log::level::info, "request", fields);
        return;
    }
    auto const e = out.error();  // error() answers a copy
    fields.push_back({"code", static_cast<std::int64_t>(e.code)});
    log::write(log::level::info, "request", fields);
    if (e.code != protocol::error_code::limit_exceeded) return;
    auto const* data = e.data.if_object();
    auto const* limit = data ? data->if_contains("limit") : nullptr;
    log::warn("limit",
              {{"limit", limit && limit->is_string() ? std::string_view(limit->get_string())
                                                     : std::string_view("unknown")},
               {"method", method},
               {"session", session},
               {"error", e.message}});
}

}  // namespace

asio::awaitable<result<json::value>> rpc_service::invoke(std::string_view method,
                                                         json::value const& params,
                                                         caller const& who, json::storage_ptr sp,
                                                         protocol::response_budget* budget) {
    auto const started = std::chrono::steady_clock::now();
    auto out = co_await dispatch(method, params, who, std::move(sp), budget);
    log_answer(method, session_of(params, who), who.principal, started, out);
    co_return out;
}

asio::awaitable<result<json::value>> rpc_service::dispatch(std::string_view method,
                                                           json::value const& params,
                                                           caller const& who, json::storage_ptr sp,
                                                           protocol::response_budget* budget) {
    using handler =
        asio::awaitable<result<json::value>> (rpc_service::*)(json::value const&, call_context&);
    static constexpr std::pair<std::string_view, handler> methods[] = {
        {"agents_start", &rpc_service::method<&protocol::parse_start>},
        {"agents_status", &rpc_service::method<&protocol::parse_status>},
        {"agents_wait", &rpc_service::method<&protocol::parse_wait>},
        {"agents_cancel", &rpc_service::method<&protocol::parse_cancel>},
        {"agents_peek", &rpc_service::method<&protocol::parse_peek>},
        {"agents_respond", &rpc_service::method<&protocol::parse_respond>},
        {"agents_worktree_remove", &rpc_service::method<&protocol::parse_worktree_remove>},
    };
    rpc_timer timing(metrics_, method);
    // A call made alone (MCP tools) has the whole response to itself.
    std::optional<protocol::response_budget> own;
    if (!budget) budget = &own.emplace(codec_.max_response_bytes);
    for (auto const& [name, run_method] : methods) {
        if (name != method) continue;
        call_context c{name, who, params, sp, *budget, {}};
        auto out = co_await (this->*run_method)(params, c);
        co_return out;
    }
    if ((method == "agents_subscribe" || method == "agents_unsubscribe") && who.subscribe) {
        auto p = protocol::parse_subscribe(params);
        if (!p) co_return p.error();
        bool on = method == "agents_subscribe";
        who.subscribe(*p, on);
        json::object out({{"ok", true}}, sp);
        // Taken in the same step as subscribing: every later change arrives as an event.
        if (on && p->snapshot) {
            auto listed = jobs_.list(who.principal, p->session, protocol::max_snapshot_jobs + 1);
            out["truncated"] = listed.size() > protocol::max_snapshot_jobs;
            listed.resize(std::min(listed.size(), protocol::max_snapshot_jobs));
            out["jobs"] = render(listed, sp, *budget);
        }
        co_return out;
    }
    co_return protocol::method_not_found(method);
}

asio::awaitable<result<json::value>> rpc_service::wait(protocol::wait_params const& p,
                                                       caller const& who) {
    rpc_timer timing(metrics_, "agents_wait");
    auto const started = std::chrono::steady_clock::now();
    protocol::response_budget budget(codec_.max_response_bytes);
    json::value const none;
    call_context c{"agents_wait", who, none, {}, budget, who.owner(p.session)};
    auto out = co_await run(p, c);
    log_answer("agents_wait", c.owner.session, who.principal, started, out);
    co_return out;
}

asio::awaitable<json::value> rpc_service::answer(protocol::request const& req, caller const& who,
                                                 json::storage_ptr sp,
                                                 protocol::response_budget& budget) {
    auto const& id = req.id ? *req.id : json::value(nullptr);
    auto out = co_await invoke(req.method, req.params, who, sp, &budget);
    co_return out ? protocol::make_result(id, std::move(*out))
                  : protocol::make_error(id, out.error(), sp);
}

std::vector<planner::batch> rpc_service::plan_for(
    std::vector<protocol::request_or_error> const& elements) const {
    std::vector<planner::call_traits> traits;
    traits.reserve(elements.size());
    for (auto const& e : elements) {
        traits.push_back(e.req ? planner::traits_for(e.req->method, &e.req->params, policy_)
                               : planner::call_traits{});
    }
    return planner::plan(traits);
}

namespace {

// The answer to a call that threw: logged here, and -32603 without detail for the client.
json::value internal_error_response(protocol::request const& req, std::exception_ptr error,
                                    json::storage_ptr const& sp) {
    try {
        std::rethrow_exception(error);
    } catch (std::exception const& x) {
        log::error("internal_error", {{"method", req.method}, {"error", x.what()}});
    } catch (...) {
        log::error("internal_error", {{"method", req.method}});
    }
    return protocol::make_error(*req.id, protocol::internal_error(), sp);
}

}  // namespace

std::optional<std::string> rpc_service::answer_at_once(std::string_view body, caller const& who) {
    // What handle() would suspend for goes there: other methods (found without parsing when the
    // body does not name agents_status), batches, another instance's jobs, and a store still
    // committing what a reply would show.
    constexpr std::string_view method_name = "agents_status";
    if (body.find("\"agents_status\"") == std::string_view::npos) return std::nullopt;
    if (jobs_.shared() || !jobs_.committed()) return std::nullopt;
    std::array<unsigned char, 4096> arena;  // as in handle(): one arena for all of its JSON
    json::monotonic_resource resource(arena.data(), arena.size());
    json::storage_ptr sp(&resource);
    auto frame = protocol::parse_frame(body, codec_, sp);
    if (!frame || frame->is_batch || is_reply(*frame)) return std::nullopt;
    auto msg = protocol::parse_message(std::move(*frame));
    auto const& req = msg.elements.front().req;
    if (!req || !req->id || req->method != method_name) return std::nullopt;

    // As handle() -> answer() -> invoke() -> dispatch() -> method<parse_status>() -> run() run
    // it: the same timing, budget, owner, log line and error answers; the response is written as
    // text (status_text) rather than built as a JSON tree and serialized.
    auto const& id = *req->id;
    try {
        auto const started = std::chrono::steady_clock::now();
        protocol::response_budget budget(codec_.max_response_bytes);
        std::optional<std::string> text;
        auto const out = [&]() -> result<json::value> {
            rpc_timer timing(metrics_, method_name);
            auto p = parse(&protocol::parse_status, req->params);
            if (!p) return p.error();
            text = status_text(id, jobs_.status(who.owner(p->session), *p), sp, budget);
            return json::value(nullptr);
        }();
        log_answer(method_name, session_of(req->params, who), who.principal, started, out);
        if (text) return std::move(*text);
        return protocol::to_text(protocol::make_error(id, out.error(), sp));
    } catch (...) {
        return protocol::to_text(internal_error_response(*req, std::current_exception(), sp));
    }
}

std::string rpc_service::status_text(json::value const& id,
                                     std::vector<jobs::job_entry> const& found,
                                     json::storage_ptr const& sp,
                                     protocol::response_budget& budget) {
    // make_result({"jobs", "usage"}) as to_text() writes it: the text of a JSON tree is the text
    // of its parts, so each part is written on its own.
    auto const total = usage_total(found);
    auto const now = std::chrono::system_clock::now();
    std::string text;
    text.reserve(1024);  // a one-job reply in one allocation
    text += "{\"jsonrpc\":\"2.0\",\"id\":";
    if (id.is_int64())  // the usual id, written without a string of its own
        fmt::format_to(std::back_inserter(text), "{}", id.get_int64());
    else
        text += protocol::to_text(id);
    text += ",\"result\":{\"jobs\":[";
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (i != 0) text += ',';
        auto const& e = found[i];
        if (e.view)
            append_view(text, *e.view, now, sp, budget);
        else
            text += protocol::to_text(protocol::not_found_json(e.id, sp));
    }
    text += "],\"usage\":";
    text += protocol::to_text(protocol::to_json(total, sp));
    text += "}}";
    return text;
}

void rpc_service::append_view(std::string& text, protocol::job_view const& v,
                              protocol::wall_time now, json::storage_ptr const& sp,
                              protocol::response_budget& budget) {
    bool const with_output = protocol::charge(v, budget);
    // A finished job's text depends on nothing but its view (elapsed_ms is finished - started),
    // and the view rarely changes any more (a worktree removed): the text is kept, and used
    // while the whole view is still equal to the one it was written from. Rendering and
    // serializing a one-job view was two fifths of an agents_status request's instructions.
    bool const keep =
        with_output && protocol::is_terminal(v.state) && (!v.started_at || v.finished_at);
    if (keep) {
        if (auto it = view_texts_.find(v.id); it != view_texts_.end() && it->second.view == v) {
            text += it->second.text;
            return;
        }
    }
    auto fresh =
        protocol::to_text(warn_if_omitted(protocol::to_json_charged(v, now, sp, with_output)));
    text += fresh;
    if (!keep || fresh.size() > max_kept_view_bytes) return;
    // Bounded by bytes and count; when full, it starts over (ids of removed jobs go too).
    if (auto it = view_texts_.find(v.id); it != view_texts_.end()) {
        view_texts_bytes_ -= it->second.text.size();
        view_texts_.erase(it);
    }
    if (view_texts_bytes_ + fresh.size() > max_kept_views_bytes ||
        view_texts_.size() >= max_kept_views) {
        view_texts_.clear();
        view_texts_bytes_ = 0;
    }
    view_texts_bytes_ += fresh.size();
    view_texts_.emplace(v.id, kept_view{v, std::move(fresh)});
}

asio::awaitable<std::optional<std::string>> rpc_service::handle(std::string_view body,
                                                                caller const& who) {
    // Everything JSON of one message (the parsed request, the replies, the job views) lives in
    // one arena released at the end: Boost.JSON allocates every key and every long string, some
    // 45 allocations for a one-job agents_status (tests/bench/http_bench). Values are moved
    // within it, never assigned to a default-storage value (that would copy).
    std::array<unsigned char, 4096> arena;
    json::monotonic_resource resource(arena.data(), arena.size());
    json::storage_ptr sp(&resource);
    auto frame = protocol::parse_frame(body, codec_, sp);
    if (!frame) co_return json::serialize(protocol::make_error(nullptr, frame.error()));
    if (is_reply(*frame) && who.take_reply && who.take_reply(frame->doc.get_object()))
        co_return std::nullopt;
    auto msg = protocol::parse_message(std::move(*frame));

    auto& elements = msg.elements;
    // Shared by every call of the message: a batch is bounded as a whole.
    protocol::response_budget budget(codec_.max_response_bytes);
    auto run = [&](std::size_t i) -> asio::awaitable<std::optional<json::value>> {
        auto const& e = elements[i];
        if (!e.req) co_return protocol::make_error(e.error_id, e.req.error(), sp);
        auto response = co_await answer(*e.req, who, sp, budget);
        if (!e.req->id) co_return std::nullopt;  // notification: run, never answer
        co_return std::move(response);
    };
    std::vector<planner::call_outcome> outcomes;
    if (elements.size() == 1) {
        // One call has nothing to plan; awaiting it here spares the parallel group's spawn and
        // bookkeeping, a tenth of a small request's instructions (tests/bench/http_bench).
        outcomes.resize(1);
        try {
            outcomes[0].response = co_await run(0);
        } catch (...) {
            outcomes[0].error = std::current_exception();
        }
    } else {
        outcomes = co_await planner::run_plan(plan_for(elements), elements.size(), run);
    }

    // A call cancelled because its client went away failed for that reason alone: no answer,
    // and no "internal error" in the log.
    auto cancelled = co_await asio::this_coro::cancellation_state;
    if (cancelled.cancelled() != asio::cancellation_type::none)
        throw boost::system::system_error(asio::error::operation_aborted);

    json::array responses(sp);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        auto& o = outcomes[i];
        if (o.response)
            responses.push_back(std::move(*o.response));
        else if (o.error && elements[i].req && elements[i].req->id)
            responses.push_back(internal_error_response(*elements[i].req, o.error, sp));
    }
    if (responses.empty()) co_return std::nullopt;
    if (!msg.is_batch) co_return protocol::to_text(responses.front());
    co_return protocol::to_text(responses);
}

}  // namespace agentd::daemon
