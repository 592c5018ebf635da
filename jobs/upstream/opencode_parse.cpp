// OpenCode response and event parsing; see opencode_parse.hpp. Anything of the wrong shape is
// a `protocol` failure naming what was missing, never an exception.
#include "jobs/upstream/opencode_parse.hpp"

#include "jobs/upstream/opencode_event_scan.hpp"

#include "jobs/upstream/json_read.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>

namespace agentd::jobs::upstream::opencode {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;

namespace {

upstream_error protocol_error(error_phase phase, std::string_view what) {
    return {error_kind::protocol, phase, std::string(what), std::nullopt};
}

bool ok_status(unsigned status) {
    return status >= 200 && status < 300;
}

// Concatenated `text` of the text parts.
std::string text_of(json::array const& parts) {
    std::string out;
    for (auto const& p : parts) {
        if (!p.is_object()) continue;
        auto const& po = p.get_object();
        if (string_at(po, "type") == "text") out += string_at(po, "text");
    }
    return out;
}

// Epoch milliseconds as a wall time; nullopt when missing, not a number or out of any sane
// range (year 1970..~5000), so a hostile value cannot overflow the conversion.
std::optional<protocol::wall_time> epoch_ms(json::object const* o, std::string_view key) {
    auto const* v = o ? o->if_contains(key) : nullptr;
    if (!v || !v->is_number()) return std::nullopt;
    constexpr double max_ms = 100'000'000'000'000;
    if (v->is_double() && !(v->get_double() > 0 && v->get_double() < max_ms)) return std::nullopt;
    auto ms = int_at(o, key);  // in range now: the cast of a double cannot overflow
    if (ms <= 0 || ms > static_cast<std::int64_t>(max_ms)) return std::nullopt;
    return protocol::wall_time(std::chrono::milliseconds(ms));
}

// At most `chars` code points of `s`, cut on a character boundary, on one line: a title is a
// label (a multi-line bash command shows its lines joined by spaces).
std::string title_line(std::string_view s, std::size_t chars) {
    std::size_t n = 0, i = 0;
    for (; i < s.size(); ++i) {
        bool lead = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
        if (lead && n++ == chars) break;
    }
    auto out = protocol::utf8_clean(s.substr(0, i));
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    return out;
}

// The last `bytes` bytes of `s` at most, starting on a character boundary.
std::string last_bytes(std::string_view s, std::size_t bytes) {
    if (s.size() <= bytes) return protocol::utf8_clean(s);
    std::size_t from = s.size() - bytes;
    while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) ++from;
    return protocol::utf8_clean(s.substr(from));
}

// What the step shows when the upstream gave no title yet (it sends one only on completion).
std::string_view title_from_input(std::string_view tool, json::object const* input) {
    if (!input) return {};
    if (tool == "bash") return string_at(*input, "command");
    if (tool == "read" || tool == "write" || tool == "edit") return string_at(*input, "filePath");
    if (tool == "glob" || tool == "grep") return string_at(*input, "pattern");
    if (tool == "webfetch") return string_at(*input, "url");
    if (tool == "task") return string_at(*input, "description");
    return {};
}

std::optional<tool_update> tool_of(json::object const& part) {
    auto const* state = object_at(part, "state");
    if (!state) return std::nullopt;
    tool_update t;
    auto status = string_at(*state, "status");
    std::string_view out;
    auto const* metadata = object_at(*state, "metadata");
    if (status == "pending") {
        t.status = protocol::step_status::pending;
    } else if (status == "running") {
        t.status = protocol::step_status::running;
        out = metadata ? string_at(*metadata, "output") : std::string_view{};  // streaming
    } else if (status == "completed") {
        t.status = protocol::step_status::completed;
        out = string_at(*state, "output");
    } else if (status == "error") {
        t.status = protocol::step_status::error;
        out = string_at(*state, "error");
    } else {
        return std::nullopt;
    }
    t.call_id = string_at(part, "callID");
    t.tool = string_at(part, "tool");
    auto title = string_at(*state, "title");
    if (title.empty()) title = title_from_input(t.tool, object_at(*state, "input"));
    t.title = title_line(title, protocol::step::title_chars);
    auto const* time = object_at(*state, "time");
    t.started_at = epoch_ms(time, "start");
    t.finished_at = epoch_ms(time, "end");
    t.output_tail = last_bytes(out, protocol::step::output_tail_bytes);
    return t;
}

// permission.asked / question.asked properties, or one entry of GET /permission|/question.
std::optional<protocol::pending_request> request_of(json::object const& o,
                                                    protocol::request_kind kind) {
    protocol::pending_request r;
    r.id = string_at(o, "id");
    if (!valid_request_id(r.id, kind)) return std::nullopt;
    r.kind = kind;
    if (kind == protocol::request_kind::permission) {
        r.permission = string_at(o, "permission");
        if (auto const* pats = o.if_contains("patterns"); pats && pats->is_array())
            for (auto const& p : pats->get_array())
                if (p.is_string()) r.patterns.emplace_back(p.get_string());
        return r;
    }
    auto const* qs = o.if_contains("questions");
    if (!qs || !qs->is_array()) return std::nullopt;
    for (auto const& q : qs->get_array()) {
        // A malformed entry still takes its place: answers go by position.
        protocol::question_item item;
        if (auto const* qo = q.if_object()) {
            item.question = string_at(*qo, "question");
            item.header = string_at(*qo, "header");
            if (auto const* opts = qo->if_contains("options"); opts && opts->is_array()) {
                for (auto const& op : opts->get_array()) {
                    auto const* oo = op.if_object();
                    if (!oo) continue;
                    item.options.push_back({std::string(string_at(*oo, "label")),
                                            std::string(string_at(*oo, "description"))});
                }
            }
            if (auto const* m = qo->if_contains("multiple"); m && m->is_bool())
                item.multiple = m->get_bool();
            // Absent on every real question: opencode's documented default is true.
            if (auto const* c = qo->if_contains("custom"); c && c->is_bool())
                item.custom = c->get_bool();
        }
        r.questions.push_back(std::move(item));
    }
    return r;
}

std::optional<request_settled> settled_of(std::string_view type, json::object const& props) {
    request_settled s;
    s.request_id = string_at(props, "requestID");
    if (s.request_id.empty()) return std::nullopt;
    if (type == "question.replied") {
        s.how = protocol::decision::answer;
    } else if (type == "question.rejected") {
        s.how = protocol::decision::deny;
    } else {
        auto reply = string_at(props, "reply");
        if (reply == "once") {
            s.how = protocol::decision::allow;
        } else if (reply == "always") {
            s.how = protocol::decision::allow_always;
        } else if (reply == "reject") {
            s.how = protocol::decision::deny;
        } else {
            return std::nullopt;
        }
    }
    return s;
}

// An assistant message's `cost` and `tokens`. Reasoning tokens are billed as output, as an
// OpenAI-compatible API's completion_tokens count them; cache reads and writes are left out.
protocol::job_usage usage_of(json::object const& info) {
    protocol::job_usage u;
    auto const* tokens = object_at(info, "tokens");
    u.input_tokens = std::max<std::int64_t>(int_at(tokens, "input"), 0);
    u.output_tokens = std::max<std::int64_t>(int_at(tokens, "output"), 0) +
                      std::max<std::int64_t>(int_at(tokens, "reasoning"), 0);
    if (auto const* cost = info.if_contains("cost"); cost && cost->is_number())
        u.cost = std::max(cost->to_number<double>(), 0.0);
    return u;
}

}  // namespace

upstream_error http_error(error_phase phase, unsigned status, std::string_view body) {
    std::string message = fmt::format("upstream answered HTTP {}", status);
    if (auto v = parse_json(body); v && v->is_object()) {
        // Two shapes: {name, data:{message}} (BadRequest, NotFoundError) and {_tag, message}
        // (PermissionNotFoundError, InvalidRequestError); a bare {_tag} names only the error.
        auto const& o = v->get_object();
        auto const* data = object_at(o, "data");
        auto detail = data ? string_at(*data, "message") : std::string_view{};
        if (detail.empty()) detail = string_at(o, "message");
        if (detail.empty()) detail = string_at(o, "_tag");
        if (detail.empty()) detail = string_at(o, "name");
        if (!detail.empty()) message += ": " + excerpt(detail);
    } else if (!body.empty()) {
        message += ": " + excerpt(body);
    }
    return {error_kind::upstream, phase, std::move(message), static_cast<int>(status)};
}

up_result<std::string> parse_session(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::create, status, body);
    unsigned char scratch[4096];  // read and dropped here: no heap for a small reply
    json::monotonic_resource arena(scratch, sizeof scratch);
    auto v = parse_json(body, &arena);
    if (!v) return protocol_error(error_phase::create, "session create: response is not JSON");
    if (!v->is_object())
        return protocol_error(error_phase::create, "session create: response is not an object");
    auto id = string_at(v->get_object(), "id");
    if (id.empty())
        return protocol_error(error_phase::create, "session create: response has no session id");
    // The id goes into request paths (/session/{id}/message): nothing but an id may pass.
    if (!valid_upstream_session_id(id))
        return protocol_error(error_phase::create, "session create: invalid session id");
    return std::string(id);
}

bool valid_upstream_session_id(std::string_view id) {
    constexpr std::string_view prefix = "ses";
    if (id.size() <= prefix.size() || id.size() > 256 || !id.starts_with(prefix)) return false;
    return std::all_of(id.begin() + prefix.size(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

bool valid_message_id(std::string_view id) {
    constexpr std::string_view prefix = "msg";
    if (id.size() <= prefix.size() || id.size() > 256 || !id.starts_with(prefix)) return false;
    return std::all_of(id.begin() + prefix.size(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

bool valid_request_id(std::string_view id, protocol::request_kind kind) {
    std::string_view prefix = kind == protocol::request_kind::permission ? "per_" : "que_";
    if (id.size() <= prefix.size() || id.size() > 256 || !id.starts_with(prefix)) return false;
    return std::all_of(id.begin() + prefix.size(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

namespace {

// An `info.error` or a session.error's `error` ({name, data: {message, statusCode?}}).
upstream_error error_of(json::object const& err) {
    auto const* data = object_at(err, "data");
    std::string name(string_at(err, "name"));
    std::string detail(data ? string_at(*data, "message") : std::string_view{});
    upstream_error e{error_kind::upstream, error_phase::prompt,
                     excerpt(name.empty() ? "upstream error" : name), std::nullopt};
    if (!detail.empty()) e.message += ": " + excerpt(detail);
    if (data && data->contains("statusCode")) {
        auto code = int_at(data, "statusCode");
        if (code > 0 && code < 1000) e.http_status = static_cast<int>(code);
    }
    return e;
}

// One message {info, parts}: an assistant message's outcome, or its info.error as a failure.
up_result<prompt_outcome> outcome_of(json::object const& message, std::size_t max_output) {
    auto const* info = object_at(message, "info");
    auto const* parts = message.if_contains("parts");
    if (!info || !parts || !parts->is_array())
        return protocol_error(error_phase::prompt, "prompt: response has no info/parts");
    if (auto const* err = object_at(*info, "error")) return error_of(*err);

    prompt_outcome out;
    out.output = text_of(parts->get_array());
    if (out.output.size() > max_output) {
        out.output.resize(protocol::utf8_prefix(out.output, max_output));
        out.truncated = true;
    }
    out.usage = usage_of(*info);
    out.message_id = string_at(*info, "id");
    out.user_message_id = string_at(*info, "parentID");
    // The final step changed files: its patch part is written before the reply.
    for (auto const& part : parts->get_array())
        if (auto const* po = part.if_object(); po && string_at(*po, "type") == "patch")
            out.files_changed = true;
    return out;
}

// The outcome of a turn's answer `message` once it has finished (time.completed); nullopt while
// it still runs.
up_result<std::optional<prompt_outcome>> finished_outcome(json::object const& message,
                                                          json::object const& info,
                                                          std::size_t max_output) {
    auto const* time = object_at(info, "time");
    if (!time || !time->contains("completed")) return std::optional<prompt_outcome>{};
    auto outcome = outcome_of(message, max_output);
    if (!outcome) return outcome.error();
    return std::optional<prompt_outcome>{std::move(*outcome)};
}

}  // namespace

std::string prompt_body(prompt_request const& req) {
    json::object body{{"parts", json::array{json::object{{"type", "text"}, {"text", req.prompt}}}}};
    if (req.agent) body["agent"] = *req.agent;
    if (req.system) body["system"] = *req.system;
    if (req.model) {
        auto slash = req.model->find('/');
        body["model"] = json::object{{"providerID", req.model->substr(0, slash)},
                                     {"modelID", req.model->substr(slash + 1)}};
    }
    return json::serialize(body);
}

upstream_error not_accepted(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    return {error_kind::protocol, error_phase::prompt,
            fmt::format("prompt_async: expected 204 No Content, got {}", status), std::nullopt};
}

up_result<prompt_outcome> parse_prompt(unsigned status, std::string_view body,
                                       std::size_t max_output) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    unsigned char scratch[16384];  // read and dropped here: most replies need no heap
    json::monotonic_resource arena(scratch, sizeof scratch);
    auto v = parse_json(body, &arena);
    if (!v) return protocol_error(error_phase::prompt, "prompt: response is not JSON");
    auto const* root = v->if_object();
    if (!root) return protocol_error(error_phase::prompt, "prompt: response has no info/parts");
    return outcome_of(*root, max_output);
}

up_result<std::optional<prompt_outcome>> parse_turn_end(unsigned status, std::string_view body,
                                                        std::size_t max_output,
                                                        std::string_view user_message) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    unsigned char scratch[16384];
    json::monotonic_resource arena(scratch, sizeof scratch);
    auto v = parse_json(body, &arena);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    if (v->get_array().empty()) return std::optional<prompt_outcome>{};
    auto const* last = v->get_array().back().if_object();
    auto const* info = last ? object_at(*last, "info") : nullptr;
    if (!info || string_at(*info, "role") != "assistant" ||
        string_at(*info, "parentID") != user_message)
        return std::optional<prompt_outcome>{};
    return finished_outcome(*last, *info, max_output);
}

up_result<std::string> parse_partial(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    std::string text;
    for (auto const& m : v->get_array()) {
        auto const* mo = m.if_object();
        auto const* info = mo ? object_at(*mo, "info") : nullptr;
        auto const* parts = mo ? mo->if_contains("parts") : nullptr;
        if (!info || string_at(*info, "role") != "assistant" || !parts || !parts->is_array())
            continue;
        text = text_of(parts->get_array());  // the latest assistant message wins
    }
    return text;
}

namespace {

bool carries_text(json::object const& message, std::string_view text) {
    auto const* parts = message.if_contains("parts");
    if (!parts || !parts->is_array()) return false;
    for (auto const& p : parts->get_array()) {
        auto const* po = p.if_object();
        if (po && string_at(*po, "type") == "text" && string_at(*po, "text") == text) return true;
    }
    return false;
}

}  // namespace

up_result<std::optional<prompt_outcome>> parse_recovered(unsigned status, std::string_view body,
                                                         std::size_t max_output,
                                                         std::string_view own_prompt) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    // The last turn's answer: an assistant message after the last user message. A follow-up's
    // turn that has none yet must not take the earlier turn's answer for its own.
    json::value const* last = nullptr;
    json::object const* last_user = nullptr;
    for (auto const& m : v->get_array()) {
        auto const* mo = m.if_object();
        auto const* info = mo ? object_at(*mo, "info") : nullptr;
        if (info && string_at(*info, "role") == "assistant") last = &m;
        if (info && string_at(*info, "role") == "user") last = nullptr, last_user = mo;
    }
    if (!last) return std::optional<prompt_outcome>{};
    if (!own_prompt.empty() && (!last_user || !carries_text(*last_user, own_prompt)))
        return std::optional<prompt_outcome>{};
    auto const& message = last->get_object();
    return finished_outcome(message, *object_at(message, "info"), max_output);
}

up_result<created_worktree> parse_worktree(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::create, status, body);
    auto v = parse_json(body);
    auto const* o = v ? v->if_object() : nullptr;
    auto dir = o ? string_at(*o, "directory") : std::string_view{};
    if (dir.empty() || dir.front() != '/')
        return protocol_error(error_phase::create, "worktree: response has no directory");
    created_worktree out{std::string(string_at(*o, "name")), {std::string(dir), std::nullopt}};
    if (auto branch = string_at(*o, "branch"); !branch.empty())
        out.ref.branch = std::string(branch);
    return out;
}

namespace {

// A diff's line count, 0 to 2^40 whatever the upstream sends (a hostile 1e300 or -4 included),
// so the sums of diff_summary cannot overflow.
std::int64_t line_count(json::object const& o, std::string_view key) {
    constexpr double max_lines = 1099511627776.0;
    auto const* v = o.if_contains(key);
    if (!v || !v->is_number()) return 0;
    auto d = v->to_number<double>();
    return d > 0 ? static_cast<std::int64_t>(std::min(d, max_lines)) : 0;
}

}  // namespace

up_result<std::string> parse_latest_user_message(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    std::string id;
    for (auto const& m : v->get_array()) {
        auto const* mo = m.if_object();
        auto const* info = mo ? object_at(*mo, "info") : nullptr;
        if (info && string_at(*info, "role") == "user") id = string_at(*info, "id");
    }
    return id;
}

up_result<std::vector<protocol::file_change>> parse_diff(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "diff: response is not a JSON array");
    std::vector<protocol::file_change> out;
    for (auto const& item : v->get_array()) {
        auto const* o = item.if_object();
        if (!o || string_at(*o, "file").empty()) continue;
        // Only the three words of the contract pass; anything else is a modification.
        auto word = string_at(*o, "status");
        bool known = word == "added" || word == "deleted";
        out.push_back({std::string(string_at(*o, "file")),
                       known ? std::string(word) : std::string("modified"),
                       line_count(*o, "additions"), line_count(*o, "deletions"),
                       std::string(string_at(*o, "patch"))});
    }
    return out;
}

up_result<std::set<std::string>> parse_busy(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_object())
        return protocol_error(error_phase::prompt, "session status: response is not an object");
    std::set<std::string> busy;
    for (auto const& [id, st] : v->get_object()) {
        auto const* o = st.if_object();
        // "busy" and "retry" both mean a turn is still running; idle ones are usually omitted.
        if (o && string_at(*o, "type") != "idle" && valid_upstream_session_id(id))
            busy.emplace(std::string_view(id));
    }
    return busy;
}

up_result<std::vector<protocol::pending_request>> parse_pending(unsigned status,
                                                                std::string_view body,
                                                                protocol::request_kind kind,
                                                                std::string_view session) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "pending requests: response is not an array");
    std::vector<protocol::pending_request> out;
    for (auto const& item : v->get_array()) {
        auto const* o = item.if_object();
        if (!o || string_at(*o, "sessionID") != session) continue;
        if (auto r = request_of(*o, kind)) out.push_back(std::move(*r));
    }
    return out;
}

std::optional<std::string> reply_body(request_reply const& reply) {
    using protocol::decision;
    json::object body;
    if (reply.kind == protocol::request_kind::permission) {
        switch (reply.how) {
            case decision::allow:
                body["reply"] = "once";
                break;
            case decision::allow_always:
                body["reply"] = "always";
                break;
            case decision::deny:
                body["reply"] = "reject";
                // With a message the sub-agent gets it as the tool result and goes on.
                if (reply.message && !reply.message->empty()) body["message"] = *reply.message;
                break;
            case decision::answer:
                return std::nullopt;
        }
        return json::serialize(body);
    }
    if (reply.how == decision::deny) return "{}";
    if (reply.how != decision::answer) return std::nullopt;
    json::array answers;
    for (auto const& one : reply.answers) {
        json::array labels;
        for (auto const& a : one) labels.emplace_back(a);
        answers.emplace_back(std::move(labels));
    }
    body["answers"] = std::move(answers);
    return json::serialize(body);
}

namespace {

// The message.updated's info when it is a message of `role` with an id.
json::object const* message_info(json::object const& props, std::string_view role) {
    auto const* info = object_at(props, "info");
    if (!info || string_at(*info, "role") != role || string_at(*info, "id").empty()) return nullptr;
    return info;
}

// Whether `o.key1.key2` holds a value of the kind `is` accepts.
template <class Is>
bool nested_is(json::object const& o, std::string_view key1, std::string_view key2, Is is) {
    auto const* inner = object_at(o, key1);
    auto const* v = inner ? inner->if_contains(key2) : nullptr;
    return v && is(*v);
}

}  // namespace

std::optional<event> parse_event(std::string_view data) {
    auto scanned = scan_event(data);
    if (!scanned) return std::nullopt;
    auto& s = scanned->event;
    if (!s.properties_object) return std::nullopt;
    auto const& type = s.type;
    bool assistant = s.info_object && s.info_role == "assistant" && !s.info_id.empty();
    bool user = s.info_object && s.info_role == "user" && !s.info_id.empty();
    if (type.starts_with("worktree.") || type.starts_with("permission.") ||
        type.starts_with("question.") || type == "session.error" ||
        (type == "message.part.updated" && s.part_type == "tool"))
        return parse_event_tree(data);  // structure beyond a few strings
    std::optional<event> out(std::in_place);
    auto& e = *out;
    if (type == "message.part.delta") {
        if (s.field.empty()) return std::nullopt;
        e.what = s.field == "text" ? event::kind::delta : event::kind::progress;
        e.session = std::move(s.session);
        e.part_id = std::move(s.part_id);
        if (e.what == event::kind::delta) e.delta = std::move(s.delta);
    } else if (type == "message.part.updated") {
        if (!s.part_object) return std::nullopt;
        e.what = event::kind::part_updated;
        e.session = std::move(s.part_session);
        e.part_id = std::move(s.part_key);
        e.part_type = std::move(s.part_type);
        e.message_id = std::move(s.part_message);
        if (e.part_type == "text") e.text = std::move(s.part_text);
    } else if (type == "session.idle") {
        e.what = event::kind::idle;
        e.session = std::move(s.session);
    } else if (type == "message.updated" && assistant) {
        // As in parse_event_tree: an assistant message's usage so far (usage_of).
        e.what = event::kind::usage;
        e.session = std::move(s.info_session);
        e.message_id = std::move(s.info_id);
        e.usage.input_tokens = std::max<std::int64_t>(s.tokens_input, 0);
        e.usage.output_tokens = std::max<std::int64_t>(s.tokens_output, 0) +
                                std::max<std::int64_t>(s.tokens_reasoning, 0);
        e.usage.cost = std::max(s.cost, 0.0);
        e.completed = s.info_completed;
    } else if (type == "message.updated" && user) {
        e.what = event::kind::user_message;
        e.session = std::move(s.info_session);
        e.message_id = std::move(s.info_id);
        e.summarized = s.info_summary_diffs;
    } else if (type == "message.updated" || type == "session.updated" || type == "session.diff" ||
               type == "session.status") {
        // As in parse_event_tree: a retry notice is not progress.
        e.session = s.session.empty() && type == "message.updated" ? std::move(s.info_session)
                                                                   : std::move(s.session);
        bool works = type != "session.status" || (s.status_object && s.status_type == "busy");
        if (e.session.empty() || !works) return event{};
        e.what = type == "session.diff" ? event::kind::summary_started : event::kind::progress;
    } else {
        return event{};
    }
    if (e.session.empty()) return std::nullopt;
    if (scanned->wrapped) e.directory = std::move(scanned->directory);
    return out;
}

std::optional<event> parse_event_tree(std::string_view data) {
    // A flood parses thousands of frames a second: their DOM lives on the stack, not the heap.
    unsigned char scratch[8192];
    json::monotonic_resource arena(scratch, sizeof scratch);
    auto v = parse_json(data, &arena);
    if (!v || !v->is_object()) return std::nullopt;
    // /global/event wraps each event as {directory, project, payload}; /event sends it bare.
    auto const* wrapped = object_at(v->get_object(), "payload");
    auto const& o = wrapped ? *wrapped : v->get_object();
    auto const* props = object_at(o, "properties");
    if (!props) return std::nullopt;
    auto type = string_at(o, "type");
    event e;
    if (wrapped) e.directory = string_at(v->get_object(), "directory");
    if (type == "worktree.ready" || type == "worktree.failed") {
        // No session: the frame's directory names the worktree (checked against opencode).
        if (e.directory.empty()) return std::nullopt;
        bool ready = type == "worktree.ready";
        e.what = ready ? event::kind::worktree_ready : event::kind::worktree_failed;
        e.name = string_at(*props, "name");
        e.branch = string_at(*props, "branch");
        e.message = string_at(*props, "message");
        return e;
    }
    if (type == "message.part.delta") {
        e.session = string_at(*props, "sessionID");
        e.part_id = string_at(*props, "partID");
        auto field = string_at(*props, "field");
        if (field.empty()) return std::nullopt;
        if (field == "text") {
            e.what = event::kind::delta;
            e.delta = string_at(*props, "delta");
        } else {
            e.what = event::kind::progress;  // another field streams: work, not output
        }
    } else if (type == "message.part.updated") {
        auto const* part = object_at(*props, "part");
        if (!part) return std::nullopt;
        e.session = string_at(*part, "sessionID");
        e.part_id = string_at(*part, "id");
        e.part_type = string_at(*part, "type");
        if (e.part_type == "tool") {
            auto t = tool_of(*part);
            if (!t) return std::nullopt;
            e.what = event::kind::tool;
            e.tool = std::move(*t);
        } else {
            e.what = event::kind::part_updated;
            e.message_id = string_at(*part, "messageID");
            if (e.part_type == "text") e.text = string_at(*part, "text");
        }
    } else if (type == "session.idle") {
        e.what = event::kind::idle;
        e.session = string_at(*props, "sessionID");
    } else if (type == "session.error") {
        e.what = event::kind::session_error;
        e.session = string_at(*props, "sessionID");
        auto const* err = object_at(*props, "error");
        e.failure = err ? error_of(*err)
                        : upstream_error{error_kind::upstream, error_phase::prompt,
                                         "upstream error", std::nullopt};
    } else if (type == "permission.asked" || type == "question.asked") {
        auto kind = type == "permission.asked" ? protocol::request_kind::permission
                                               : protocol::request_kind::question;
        auto r = request_of(*props, kind);
        if (!r) return std::nullopt;
        e.what = kind == protocol::request_kind::permission ? event::kind::permission
                                                            : event::kind::question;
        e.session = string_at(*props, "sessionID");
        e.request = std::move(*r);
    } else if (type == "permission.replied" || type == "question.replied" ||
               type == "question.rejected") {
        auto s = settled_of(type, *props);
        if (!s) return std::nullopt;
        e.what = event::kind::settled;
        e.session = string_at(*props, "sessionID");
        e.settled = std::move(*s);
    } else if (auto const* info =
                   type == "message.updated" ? message_info(*props, "assistant") : nullptr) {
        // An assistant message's usage so far (each LLM step is a message of its own).
        e.what = event::kind::usage;
        e.session = string_at(*info, "sessionID");
        e.message_id = string_at(*info, "id");
        e.usage = usage_of(*info);
        e.completed = nested_is(*info, "time", "completed",
                                [](json::value const& v) { return v.is_number(); });
    } else if (auto const* user =
                   type == "message.updated" ? message_info(*props, "user") : nullptr) {
        e.what = event::kind::user_message;
        e.session = string_at(*user, "sessionID");
        e.message_id = string_at(*user, "id");
        e.summarized =
            nested_is(*user, "summary", "diffs", [](json::value const& v) { return v.is_array(); });
    } else if (type == "message.updated" || type == "session.updated" || type == "session.diff" ||
               type == "session.status") {
        e.session = string_at(*props, "sessionID");
        if (e.session.empty() && type == "message.updated")
            if (auto const* info = object_at(*props, "info"))
                e.session = string_at(*info, "sessionID");
        // A retry notice is not progress: a provider failing forever must still go idle.
        bool works = true;
        if (type == "session.status") {
            auto const* st = object_at(*props, "status");
            works = st && string_at(*st, "type") == "busy";
        }
        if (e.session.empty() || !works) return event{};
        e.what = type == "session.diff" ? event::kind::summary_started : event::kind::progress;
    } else {
        return event{};
    }
    if (e.what != event::kind::other && e.session.empty()) return std::nullopt;
    return e;
}

}  // namespace agentd::jobs::upstream::opencode
