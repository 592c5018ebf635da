// The job <-> row mapping of store_row.hpp, shared by the SQLite and PostgreSQL stores: the
// JobView fields in named columns, the task, the answered requests and the transcript as JSON.
#include "jobs/store_row.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <stdexcept>

namespace agentd::jobs {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;
using protocol::job_state;
using column = store_column;

namespace {

std::int64_t to_ms(protocol::wall_time t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

protocol::wall_time from_ms(std::int64_t ms) {
    return protocol::wall_time(std::chrono::milliseconds(ms));
}

std::string task_json(protocol::task const& t) {
    json::object o{{"prompt", t.prompt}, {"description", t.description}};
    if (t.agent) o["agent"] = *t.agent;
    if (t.model) o["model"] = *t.model;
    if (t.system) o["system"] = *t.system;
    if (t.directory) o["directory"] = *t.directory;
    if (t.timeout_ms) o["timeout_ms"] = *t.timeout_ms;
    if (t.permissions) o["permissions"] = protocol::to_string(*t.permissions);
    if (t.isolation) o["isolation"] = protocol::to_string(*t.isolation);
    if (t.budget) {
        json::object b;
        if (t.budget->max_cost) b["max_cost"] = *t.budget->max_cost;
        if (t.budget->max_tokens) b["max_tokens"] = *t.budget->max_tokens;
        o["budget"] = std::move(b);
    }
    return json::serialize(o);
}

std::optional<std::string> answered_json(std::vector<protocol::answered_request> const& list) {
    if (list.empty()) return std::nullopt;
    json::array out;
    for (auto const& a : list)
        out.push_back(json::object{{"id", a.id},
                                   {"kind", protocol::to_string(a.kind)},
                                   {"decision", protocol::to_string(a.how)},
                                   {"by", protocol::to_string(a.by)},
                                   {"at_ms", to_ms(a.at)}});
    return json::serialize(out);
}

// A waiting job's pending requests, or NULL: [{id, kind, permission, patterns, questions:
// [{question, header, multiple, custom, options: [[label, description], …]}], asked_ms}, …].
std::optional<std::string> requests_json(protocol::job_view const& v) {
    if (v.state != job_state::waiting || v.requests.empty()) return std::nullopt;
    json::array out;
    for (auto const& r : v.requests) {
        json::array patterns, questions;
        for (auto const& p : r.patterns) patterns.emplace_back(p);
        for (auto const& q : r.questions) {
            json::array options;
            for (auto const& o : q.options) options.push_back(json::array{o.label, o.description});
            questions.push_back(json::object{{"question", q.question},
                                             {"header", q.header},
                                             {"multiple", q.multiple},
                                             {"custom", q.custom},
                                             {"options", std::move(options)}});
        }
        out.push_back(json::object{{"id", r.id},
                                   {"kind", protocol::to_string(r.kind)},
                                   {"permission", r.permission},
                                   {"patterns", std::move(patterns)},
                                   {"questions", std::move(questions)},
                                   {"asked_ms", to_ms(r.asked_at)}});
    }
    return json::serialize(out);
}

// Rows written by this agentd; anything unreadable in one entry drops that entry only.
std::vector<protocol::pending_request> requests_from(std::string_view text) {
    std::vector<protocol::pending_request> out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    auto str = [](json::object const& o, char const* key) {
        auto const* s = o.if_contains(key);
        return s && s->is_string() ? std::string(s->get_string()) : std::string();
    };
    auto flag = [](json::object const& o, char const* key, bool otherwise) {
        auto const* b = o.if_contains(key);
        return b && b->is_bool() ? b->get_bool() : otherwise;
    };
    auto array = [](json::object const& o, char const* key) {
        auto const* a = o.if_contains(key);
        return a && a->is_array() ? a->get_array() : json::array();
    };
    for (auto const& e : v.get_array()) {
        auto const* o = e.if_object();
        auto kind =
            o ? protocol::from_string<protocol::request_kind>(str(*o, "kind")) : std::nullopt;
        auto const* at = o ? o->if_contains("asked_ms") : nullptr;
        if (!kind || !at || !at->is_int64()) continue;
        protocol::pending_request r;
        r.id = str(*o, "id");
        r.kind = *kind;
        r.permission = str(*o, "permission");
        for (auto const& p : array(*o, "patterns"))
            if (p.is_string()) r.patterns.emplace_back(p.get_string());
        for (auto const& q : array(*o, "questions")) {
            auto const* qo = q.if_object();
            if (!qo) continue;
            protocol::question_item item{str(*qo, "question"),
                                         str(*qo, "header"),
                                         {},
                                         flag(*qo, "multiple", false),
                                         flag(*qo, "custom", true)};
            for (auto const& opt : array(*qo, "options")) {
                auto const* pair = opt.if_array();
                if (pair && pair->size() == 2 && (*pair)[0].is_string() && (*pair)[1].is_string())
                    item.options.push_back({std::string((*pair)[0].get_string()),
                                            std::string((*pair)[1].get_string())});
            }
            r.questions.push_back(std::move(item));
        }
        r.asked_at = from_ms(at->get_int64());
        out.push_back(std::move(r));
    }
    return out;
}

// {system?, turns: [[user, assistant], …]}, or NULL when there is none (opencode jobs).
std::optional<std::string> transcript_json(upstream::transcript const& t) {
    if (!t.system && t.turns.empty()) return std::nullopt;
    json::object out;
    if (t.system) out["system"] = *t.system;
    json::array turns;
    for (auto const& turn : t.turns) turns.push_back(json::array{turn.user, turn.assistant});
    out["turns"] = std::move(turns);
    return json::serialize(out);
}

upstream::transcript transcript_from(std::string_view text) {
    upstream::transcript out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    auto const* o = ec ? nullptr : v.if_object();
    if (!o) return out;
    if (auto const* s = o->if_contains("system"); s && s->is_string())
        out.system = std::string(s->get_string());
    auto const* turns = o->if_contains("turns");
    if (!turns || !turns->is_array()) return out;
    for (auto const& turn : turns->get_array()) {
        auto const* pair = turn.if_array();
        if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string())
            continue;
        out.turns.push_back(
            {std::string((*pair)[0].get_string()), std::string((*pair)[1].get_string())});
    }
    return out;
}

// Rows written by this agentd; anything unreadable in one entry drops that entry only.
std::vector<protocol::answered_request> answered_from(std::string_view text) {
    std::vector<protocol::answered_request> out;
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_array()) return out;
    for (auto const& e : v.get_array()) {
        auto const* o = e.if_object();
        if (!o) continue;
        auto str = [&](char const* key) -> std::string_view {
            auto const* s = o->if_contains(key);
            return s && s->is_string() ? std::string_view(s->get_string()) : std::string_view{};
        };
        auto kind = protocol::from_string<protocol::request_kind>(str("kind"));
        auto how = protocol::from_string<protocol::decision>(str("decision"));
        auto by = protocol::from_string<protocol::answered_by>(str("by"));
        auto const* at = o->if_contains("at_ms");
        if (!kind || !how || !by || !at || !at->is_int64()) continue;
        out.push_back({std::string(str("id")), *kind, *how, *by, from_ms(at->get_int64())});
    }
    return out;
}

protocol::task task_from(std::string_view text) {
    protocol::task t;
    auto v = json::parse(text).as_object();
    auto opt = [&](char const* key) -> std::optional<std::string> {
        if (auto const* s = v.if_contains(key); s && s->is_string())
            return std::string(s->get_string());
        return std::nullopt;
    };
    t.prompt = opt("prompt").value_or("");
    t.description = opt("description").value_or("");
    t.agent = opt("agent");
    t.model = opt("model");
    t.system = opt("system");
    t.directory = opt("directory");
    if (auto const* n = v.if_contains("timeout_ms"); n && n->is_int64())
        t.timeout_ms = n->get_int64();
    if (auto p = opt("permissions"))
        t.permissions = protocol::from_string<protocol::permission_policy>(*p);
    if (auto i = opt("isolation"))
        t.isolation = protocol::from_string<protocol::isolation_mode>(*i);
    if (auto const* b = v.if_contains("budget"); b && b->is_object()) {
        protocol::task_budget budget;
        if (auto const* c = b->get_object().if_contains("max_cost"); c && c->is_number())
            budget.max_cost = c->to_number<double>();
        if (auto const* n = b->get_object().if_contains("max_tokens"); n && n->is_int64())
            budget.max_tokens = n->get_int64();
        t.budget = budget;
    }
    return t;
}

}  // namespace

column_type type_of(store_column c) {
    switch (c) {
        case column::seq:
        case column::created_ms:
        case column::started_ms:
        case column::finished_ms:
        case column::depth:
        case column::truncated:
        case column::error_http_status:
        case column::input_tokens:
        case column::output_tokens:
        case column::diff_files:
        case column::diff_additions:
        case column::diff_deletions:
            return column_type::integer;
        case column::cost:
            return column_type::real;
        default:
            return column_type::text;
    }
}

std::optional<std::string> store_row::text(store_column c) const {
    if (auto const* s = std::get_if<std::string>(&get(c))) return *s;
    return std::nullopt;
}

std::optional<std::int64_t> store_row::integer(store_column c) const {
    if (auto const* i = std::get_if<std::int64_t>(&get(c))) return *i;
    return std::nullopt;
}

std::optional<double> store_row::real(store_column c) const {
    if (auto const* d = std::get_if<double>(&get(c))) return *d;
    if (auto const* i = std::get_if<std::int64_t>(&get(c))) return static_cast<double>(*i);
    return std::nullopt;
}

namespace {

// Sets column c to v, or NULL when v is empty.
template <class T>
void put(store_row& r, column c, std::optional<T> const& v) {
    if (!v) return r.set(c, std::monostate{});
    if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, std::string>)
        r.set(c, std::string(*v));
    else if constexpr (std::is_floating_point_v<T>)
        r.set(c, static_cast<double>(*v));
    else
        r.set(c, static_cast<std::int64_t>(*v));
}

// Of a std::optional<std::string> or a protocol::boxed<std::string>.
template <class Optional>
std::optional<std::string_view> view_of(Optional const& s) {
    return s ? std::optional<std::string_view>(*s) : std::nullopt;
}

template <class T>
T required(std::optional<T> v, column c) {
    if (!v) throw std::runtime_error(fmt::format("job row without {}", protocol::to_string(c)));
    return std::move(*v);
}

}  // namespace

bool fixed_column(store_column c) {
    switch (c) {
        case column::principal:
        case column::session:
        case column::seq:
        case column::description:
        case column::created_ms:
        case column::depth:
            return true;
        default:
            return false;
    }
}

store_row row_of(job const& j, bool with_fixed) {
    auto const& v = j.view;
    auto const& e = v.error;
    auto const& u = v.usage;
    auto ms = [](std::optional<protocol::wall_time> t) {
        return t ? std::optional(to_ms(*t)) : std::nullopt;
    };
    store_row r;
    r.set(column::id, v.id);
    if (with_fixed) {
        r.set(column::principal, j.own.principal);
        r.set(column::session, j.own.session);
        r.set(column::seq, static_cast<std::int64_t>(j.seq));
        r.set(column::description, v.description);
        r.set(column::created_ms, to_ms(v.created_at));
        r.set(column::depth, std::int64_t{v.depth});
    }
    // The costliest column to build (JSON), and it changes once: compact_finished() cuts a
    // finished job's prompt. A stored job's changes carry it only then (NULL: unchanged).
    if (with_fixed || protocol::is_terminal(v.state)) r.set(column::task, task_json(j.task));
    r.set(column::state, std::string(protocol::to_string(v.state)));
    put(r, column::started_ms, ms(v.started_at));
    put(r, column::finished_ms, ms(v.finished_at));
    if (v.upstream) {
        r.set(column::backend, v.upstream->backend);
        r.set(column::upstream_session, v.upstream->session);
    }
    if (v.output) r.set(column::output, *v.output);
    r.set(column::truncated, std::int64_t{v.truncated ? 1 : 0});
    if (e) {
        r.set(column::error_kind, std::string(protocol::to_string(e->kind)));
        if (e->phase) r.set(column::error_phase, std::string(protocol::to_string(*e->phase)));
        r.set(column::error_message, e->message);
        if (e->http_status) r.set(column::error_http_status, std::int64_t{*e->http_status});
    }
    if (u) {
        r.set(column::input_tokens, std::int64_t{u->input_tokens});
        r.set(column::output_tokens, std::int64_t{u->output_tokens});
        r.set(column::cost, u->cost);
    }
    put(r, column::upstream_parent, view_of(j.upstream_parent));
    put(r, column::answered, answered_json(v.answered));
    auto const& w = v.worktree;
    auto const& d = v.diff_summary;
    if (w) {
        r.set(column::worktree_directory, w->directory);
        put(r, column::worktree_branch, view_of(w->branch));
    }
    if (!j.runtime().user_message.empty()) r.set(column::user_message, j.runtime().user_message);
    if (d) {
        r.set(column::diff_files, std::int64_t{d->files});
        r.set(column::diff_additions, std::int64_t{d->additions});
        r.set(column::diff_deletions, std::int64_t{d->deletions});
    }
    put(r, column::continues, view_of(v.continues));
    put(r, column::transcript, transcript_json(j.runtime().transcript));
    if (!j.runtime().upstream_server.empty())
        r.set(column::upstream_server, j.runtime().upstream_server);
    put(r, column::requests, requests_json(v));
    return r;
}

job_ptr job_of(store_row const& r) {
    auto j = std::make_shared<job>();
    auto& v = j->view;
    v.id = required(r.text(column::id), column::id);
    j->own = {required(r.text(column::principal), column::principal),
              required(r.text(column::session), column::session)};
    v.session = j->own.session;
    j->seq = static_cast<std::uint64_t>(required(r.integer(column::seq), column::seq));
    v.description = required(r.text(column::description), column::description);
    v.state = protocol::from_string<job_state>(required(r.text(column::state), column::state))
                  .value_or(job_state::interrupted);
    v.created_at = from_ms(required(r.integer(column::created_ms), column::created_ms));
    if (auto t = r.integer(column::started_ms)) v.started_at = from_ms(*t);
    if (auto t = r.integer(column::finished_ms)) v.finished_at = from_ms(*t);
    v.depth = static_cast<int>(required(r.integer(column::depth), column::depth));
    if (auto b = r.text(column::backend))
        v.upstream = protocol::upstream_ref{*b, r.text(column::upstream_session).value_or("")};
    v.output = r.text(column::output);
    v.truncated = r.integer(column::truncated).value_or(0) != 0;
    if (auto kind = r.text(column::error_kind)) {
        protocol::job_error e;
        e.kind = protocol::from_string<error_kind>(*kind).value_or(error_kind::protocol);
        if (auto p = r.text(column::error_phase)) e.phase = protocol::from_string<error_phase>(*p);
        e.message = r.text(column::error_message).value_or("");
        if (auto h = r.integer(column::error_http_status)) e.http_status = static_cast<int>(*h);
        v.error = e;
    }
    if (auto in = r.integer(column::input_tokens)) {
        v.usage = protocol::job_usage{*in, r.integer(column::output_tokens).value_or(0),
                                      r.real(column::cost).value_or(0.0)};
    }
    j->task = task_from(required(r.text(column::task), column::task));
    j->view.task = preview_of(j->task);
    if (protocol::is_terminal(v.state)) compact_finished(*j);  // rows of an older agentd
    j->upstream_parent = r.text(column::upstream_parent);
    if (auto a = r.text(column::answered)) v.answered = answered_from(*a);
    if (auto dir = r.text(column::worktree_directory))
        v.worktree = protocol::worktree_ref{*dir, r.text(column::worktree_branch)};
    j->set_runtime(&job::runtime_state::user_message, r.text(column::user_message).value_or(""));
    if (auto files = r.integer(column::diff_files))
        v.diff_summary =
            protocol::diff_summary{*files, r.integer(column::diff_additions).value_or(0),
                                   r.integer(column::diff_deletions).value_or(0)};
    v.continues = r.text(column::continues);
    j->task.continues = v.continues;
    if (auto t = r.text(column::transcript)) j->runtime_mut().transcript = transcript_from(*t);
    j->set_runtime(&job::runtime_state::upstream_server,
                   r.text(column::upstream_server).value_or(""));
    if (v.upstream && !j->runtime().upstream_server.empty())
        v.upstream->server = j->runtime().upstream_server;
    if (auto rq = r.text(column::requests); rq && v.state == job_state::waiting)
        v.requests = requests_from(*rq);
    return j;
}

}  // namespace agentd::jobs
