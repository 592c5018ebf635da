// JobView serialisation: ISO-8601 UTC times with milliseconds and the omission of unknown optional
// fields; the names of states and error kinds come from their enums (enum_names.hpp).
#include "protocol/job_view.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <array>

namespace agentd::protocol {
namespace json = boost::json;

bool is_terminal(job_state s) {
    return s != job_state::queued && !is_active(s);
}

bool is_terminal(std::string_view state) {
    auto s = from_string<job_state>(state);
    return !s || is_terminal(*s);
}

namespace {

// By hand rather than with fmt's chrono formatting, which parses the format string and calls
// gmtime on every call: a status reply carries three times per job (tests/bench/http_bench).
// Fixed width, so no allocation either.
struct time_text {
    std::array<char, 24> chars;
    std::string_view view() const { return {chars.data(), chars.size()}; }
};

time_text render_time(wall_time t) {
    using namespace std::chrono;
    auto ms = time_point_cast<milliseconds>(t);
    auto day = floor<days>(ms);
    year_month_day date{day};
    hh_mm_ss clock{ms - day};
    constexpr std::string_view pattern = "0000-00-00T00:00:00.000Z";
    time_text out;
    static_assert(pattern.size() == out.chars.size());
    std::copy(pattern.begin(), pattern.end(), out.chars.begin());
    auto put = [&out](std::size_t at, std::size_t width, long long value) {
        for (std::size_t i = width; i-- > 0; value /= 10)
            out.chars[at + i] = char('0' + value % 10);
    };
    put(0, 4, int(date.year()));
    put(5, 2, unsigned(date.month()));
    put(8, 2, unsigned(date.day()));
    put(11, 2, clock.hours().count());
    put(14, 2, clock.minutes().count());
    put(17, 2, clock.seconds().count());
    put(20, 3, clock.subseconds().count());
    return out;
}

json::object error_json(job_error const& e, json::storage_ptr const& sp) {
    json::object o({{"kind", to_string(e.kind)}, {"message", e.message}}, sp);
    if (e.phase) o["phase"] = to_string(*e.phase);
    if (e.http_status) o["http_status"] = *e.http_status;
    return o;
}

json::object task_json(task_preview const& t, json::storage_ptr const& sp) {
    json::object o({{"prompt", t.prompt}}, sp);
    if (t.agent) o["agent"] = *t.agent;
    if (t.model) o["model"] = *t.model;
    if (t.directory) o["directory"] = *t.directory;
    return o;
}

json::object activity_json(activity_view const& a, json::storage_ptr const& sp) {
    json::object o({{"steps", a.steps}, {"tool", a.tool}}, sp);
    if (!a.title.empty()) o["title"] = a.title;
    o["since"] = render_time(a.since).view();
    return o;
}

json::array answered_json(std::vector<answered_request> const& list, json::storage_ptr const& sp) {
    json::array out(sp);
    out.reserve(list.size());
    for (auto const& a : list)
        out.push_back(json::object({{"id", a.id},
                                    {"kind", to_string(a.kind)},
                                    {"decision", to_string(a.how)},
                                    {"by", to_string(a.by)},
                                    {"at", render_time(a.at).view()}},
                                   sp));
    return out;
}

json::object question_json(question_item const& q, json::storage_ptr const& sp) {
    json::array options(sp);
    for (auto const& opt : q.options) {
        json::object o({{"label", opt.label}}, sp);
        if (!opt.description.empty()) o["description"] = opt.description;
        options.push_back(std::move(o));
    }
    json::object o({{"question", q.question}}, sp);
    if (!q.header.empty()) o["header"] = q.header;
    o["options"] = std::move(options);
    if (q.multiple) o["multiple"] = true;
    o["custom"] = q.custom;
    return o;
}

std::int64_t millis_between(wall_time from, wall_time to) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
    return d < 0 ? 0 : d;
}

}  // namespace

bool response_budget::take(std::size_t bytes) {
    if (bytes > left_) return false;
    left_ -= bytes;
    return true;
}

bool response_budget::take_json_string(std::string_view text) {
    // Escapes only add bytes: a text whose raw size does not fit never will (no 1 MB scan for
    // each of a batch's omitted outputs).
    return text.size() + 2 <= left_ && take(json_string_size(text));
}

std::size_t json_string_size(std::string_view text) {
    std::size_t size = 2;
    for (unsigned char c : text) {
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            size += 2;
        else if (c < 0x20)
            size += 6;  // \u00XX
        else
            ++size;
    }
    return size;
}

namespace {

// What a view without its output takes, roughly: fixed fields plus its free texts.
std::size_t view_overhead(job_view const& v) {
    constexpr std::size_t fixed = 320;  // id, state, three times, depth, upstream, usage
    std::size_t task = 0;
    if (v.task)
        task = 64 + v.task->prompt.size() + v.task->agent.value_or("").size() +
               v.task->model.value_or("").size() + v.task->directory.value_or("").size();
    std::size_t agentic = (v.activity ? 96 + v.activity->title.size() : 0) +
                          v.answered.size() * 120 + v.requests.size() * 512;
    std::size_t isolated =
        v.worktree ? 96 + v.worktree->directory.size() + v.worktree->branch.value_or("").size() : 0;
    return fixed + task + agentic + isolated + v.description.size() +
           (v.error ? v.error->message.size() : 0);
}

}  // namespace

bool charge(job_view const& v, response_budget& budget) {
    budget.spend(view_overhead(v));
    return !v.output || budget.take_json_string(*v.output);
}

json::value to_json(job_view const& v, wall_time now, json::storage_ptr sp,
                    response_budget* budget) {
    bool const with_output = !budget || charge(v, *budget);
    return to_json_charged(v, now, std::move(sp), with_output);
}

json::value to_json_charged(job_view const& v, wall_time now, json::storage_ptr sp,
                            bool with_output) {
    json::object o(22, sp);  // room for every field: no growth while it fills
    o["id"] = v.id;
    if (!v.session.empty()) o["session"] = v.session;
    if (!v.description.empty()) o["description"] = v.description;
    o["state"] = to_string(v.state);
    if (v.task) o["task"] = task_json(*v.task, sp);
    o["created_at"] = render_time(v.created_at).view();
    if (v.started_at) o["started_at"] = render_time(*v.started_at).view();
    if (v.finished_at) o["finished_at"] = render_time(*v.finished_at).view();
    if (v.started_at) o["elapsed_ms"] = millis_between(*v.started_at, v.finished_at.value_or(now));
    o["depth"] = v.depth;
    if (v.upstream) {
        json::object u({{"backend", v.upstream->backend}, {"session", v.upstream->session}}, sp);
        if (v.upstream->server) u["server"] = *v.upstream->server;
        o["upstream"] = std::move(u);
    }
    if (v.activity) o["activity"] = activity_json(*v.activity, sp);
    if (!v.requests.empty()) {
        json::array requests(sp);
        for (auto const& r : v.requests) requests.push_back(to_json(r, sp));
        o["requests"] = std::move(requests);
    }
    if (!v.answered.empty()) o["answered"] = answered_json(v.answered, sp);
    if (v.worktree) {
        json::object w({{"directory", v.worktree->directory}}, sp);
        if (v.worktree->branch) w["branch"] = *v.worktree->branch;
        o["worktree"] = std::move(w);
    }
    if (v.diff_summary)
        o["diff_summary"] = json::object({{"files", v.diff_summary->files},
                                          {"additions", v.diff_summary->additions},
                                          {"deletions", v.diff_summary->deletions}},
                                         sp);
    if (v.continues) o["continues"] = *v.continues;
    if (v.output && !with_output) {
        o["output_omitted"] = true;  // fetch this job alone to read it
        o["truncated"] = v.truncated;
    } else if (v.output) {
        o["output"] = *v.output;
        o["truncated"] = v.truncated;
    }
    if (v.error) o["error"] = error_json(*v.error, sp);
    if (v.usage) o["usage"] = to_json(*v.usage, sp);
    return o;
}

json::value to_json(job_usage const& u, json::storage_ptr sp) {
    return json::object(
        {{"input_tokens", u.input_tokens}, {"output_tokens", u.output_tokens}, {"cost", u.cost}},
        sp);
}

json::value to_json(file_change const& c, json::storage_ptr sp) {
    return json::object({{"file", c.file},
                         {"status", c.status},
                         {"additions", c.additions},
                         {"deletions", c.deletions},
                         {"patch", c.patch}},
                        sp);
}

diff_summary summarize(std::vector<file_change> const& changes) {
    diff_summary sum;
    sum.files = static_cast<std::int64_t>(changes.size());
    for (auto const& c : changes) {
        sum.additions += c.additions;
        sum.deletions += c.deletions;
    }
    return sum;
}

json::value to_json(pending_request const& r, json::storage_ptr sp) {
    json::object o({{"id", r.id}, {"kind", to_string(r.kind)}}, sp);
    if (r.kind == request_kind::permission) {
        o["permission"] = r.permission;
        json::array patterns(sp);
        for (auto const& p : r.patterns) patterns.push_back(json::string(p, sp));
        o["patterns"] = std::move(patterns);
    } else {
        json::array questions(sp);
        for (auto const& q : r.questions) questions.push_back(question_json(q, sp));
        o["questions"] = std::move(questions);
    }
    o["asked_at"] = render_time(r.asked_at).view();
    return o;
}

json::value to_json(step const& s, json::storage_ptr sp) {
    json::object o({{"tool", s.tool}, {"status", to_string(s.status)}, {"title", s.title}}, sp);
    if (s.started_at) o["started_at"] = render_time(*s.started_at).view();
    if (s.finished_at) o["finished_at"] = render_time(*s.finished_at).view();
    if (!s.output_tail.empty()) o["output_tail"] = s.output_tail;
    return o;
}

json::value not_found_json(std::string_view id, json::storage_ptr sp) {
    return json::object({{"id", id}, {"state", not_found_state}}, sp);
}

}  // namespace agentd::protocol
