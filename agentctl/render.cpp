// Text agentctl prints for each command: one line per job for start/cancel/respond, a table for
// status (and its usage total), output blocks (or pending requests) for wait, tool steps and raw
// partial output for peek, and pretty JSON (plain decimals) for --json.
#include "render.hpp"

#include "exit_codes.hpp"
#include "requests.hpp"

#include "protocol/job_view.hpp"
#include "protocol/json_text.hpp"

#include <fmt/core.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

namespace agentctl {
namespace json = boost::json;
namespace protocol = agentd::protocol;
namespace {

// Failed, cancelled or interrupted: the wait did not get what it waited for.
bool is_failed_outcome(std::string_view state) {
    auto known = protocol::from_string<protocol::job_state>(state);
    return known && protocol::is_terminal(*known) && *known != protocol::job_state::completed;
}

using row = std::vector<std::string>;

std::optional<std::int64_t> integer_of(json::object const& obj, std::string_view key) {
    auto const* value = obj.if_contains(key);
    if (value == nullptr || !value->is_number()) return std::nullopt;
    boost::system::error_code ec;
    auto n = value->to_number<std::int64_t>(ec);
    return ec ? std::nullopt : std::optional(n);
}

std::string one_line(std::string_view text) {
    std::string line(text);
    std::replace_if(
        line.begin(), line.end(), [](unsigned char c) { return c < ' ' || c == 0x7f; }, ' ');
    return line;
}

std::string error_summary(json::value const* error) {
    auto const* e = error ? error->if_object() : nullptr;
    if (e == nullptr) return {};
    auto text = text_of(*e, "kind");
    if (auto phase = text_of(*e, "phase"); !phase.empty()) text += "/" + phase;
    if (auto message = text_of(*e, "message"); !message.empty()) {
        text += (text.empty() ? "" : ": ") + message;
    }
    if (auto status = integer_of(*e, "http_status")) text += fmt::format(" (HTTP {})", *status);
    return one_line(text);
}

std::string join_nonempty(row const& parts) {
    std::string line;
    for (auto const& part : parts) {
        if (part.empty()) continue;
        if (!line.empty()) line += "  ";
        line += part;
    }
    return line;
}

// Where a line of `text` of at most `chars` characters ends (UTF-8 aware).
std::size_t prefix_bytes(std::string_view text, std::size_t chars) {
    std::size_t seen = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        bool starts_char = (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80;
        if (starts_char && seen++ == chars) return i;
    }
    return text.size();
}

std::size_t char_count(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

// `text` in lines of at most `width` characters, broken at spaces; a longer word is split.
std::vector<std::string> wrap(std::string_view text, std::size_t width) {
    std::vector<std::string> lines;
    std::string line;
    std::size_t used = 0;
    while (!text.empty()) {
        auto end = std::min(text.find(' '), text.size());
        auto word = text.substr(0, end);
        text.remove_prefix(std::min(end + 1, text.size()));
        if (word.empty()) continue;
        auto chars = char_count(word);
        if (used > 0 && used + 1 + chars <= width) {
            line += ' ';
            line += word;
            used += 1 + chars;
            continue;
        }
        if (used > 0) lines.push_back(std::exchange(line, {}));
        for (; chars > width; chars -= width) {
            auto cut = prefix_bytes(word, width);
            lines.emplace_back(word.substr(0, cut));
            word.remove_prefix(cut);
        }
        line = word;
        used = chars;
    }
    if (used > 0) lines.push_back(line);
    return lines;
}

// Each row's columns padded to the widest, then the row's notes (whole lines) beneath it.
std::string table(std::vector<row> const& rows, std::vector<std::string> const& notes) {
    std::vector<std::size_t> widths(rows.front().size(), 0);
    for (auto const& r : rows) {
        for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
    }
    std::string out;
    for (auto const& r : rows) {
        std::string line;
        for (std::size_t i = 0; i + 1 < r.size(); ++i)
            line += fmt::format("{:<{}}  ", r[i], widths[i]);
        line += r.back();
        line.erase(line.find_last_not_of(' ') + 1);
        out += line + "\n";
        out += notes[static_cast<std::size_t>(&r - rows.data())];
    }
    return out;
}

json::array const& jobs_of(json::object const& result) {
    static const json::array none;
    auto const* jobs = result.if_contains("jobs");
    return jobs && jobs->is_array() ? jobs->get_array() : none;
}

std::string job_lines(json::object const& result) {
    std::string out;
    for (auto const& value : jobs_of(result)) {
        auto job = read_job(value);
        out += join_nonempty({job.id, job.state, job.label, job.error}) + "\n";
    }
    return out;
}

std::string status_table(json::object const& result, std::size_t columns) {
    std::vector<job_view> jobs;
    for (auto const& value : jobs_of(result)) jobs.push_back(read_job(value));
    auto any = [&](std::string job_view::*field) {
        return std::any_of(jobs.begin(), jobs.end(),
                           [&](job_view const& j) { return !(j.*field).empty(); });
    };
    // Columns only some results need come only when one job fills them. An error goes on lines
    // of its own under the job's row: as a last column it would be cut on a narrow terminal.
    bool inputs = any(&job_view::requests), steps = any(&job_view::activity);
    std::vector<row> rows{{"ID", "STATE", "ELAPSED"}};
    std::vector<std::string> notes{""};
    if (inputs) rows.front().push_back("INPUT");
    rows.front().push_back("DESCRIPTION");
    if (steps) rows.front().push_back("STEP");
    for (auto const& j : jobs) {
        rows.push_back({j.id, j.state, format_elapsed(j.elapsed_ms)});
        if (inputs) rows.back().push_back(j.requests);
        rows.back().push_back(j.label);
        if (steps) rows.back().push_back(j.activity);
        notes.emplace_back();
        for (auto const& line : error_lines(j.error, columns)) notes.back() += line + "\n";
    }
    return table(rows, notes);
}

void ensure_newline(std::string& text) {
    if (!text.empty() && text.back() != '\n') text += '\n';
}

// "completed, 1.2s, truncated"; parts the daemon did not send are left out.
std::string facts(job_view const& job) {
    auto text = job.state;
    if (job.elapsed_ms) text += ", " + format_elapsed(job.elapsed_ms);
    if (job.truncated) text += ", truncated";
    return text;
}

rendered wait_blocks(json::object const& result) {
    rendered r;
    std::size_t unfinished = 0;
    for (auto const& value : jobs_of(result)) {
        auto job = read_job(value);
        auto header = fmt::format("== {} ({}) {}", job.id, facts(job), job.label);
        header.erase(header.find_last_not_of(' ') + 1);
        r.out += header + "\n" + (job.error.empty() ? job.output : "error: " + job.error);
        ensure_newline(r.out);
        if (auto const* view = value.if_object())
            for (auto const& request : requests_of(*view))
                for (auto const& line : request_lines(request)) r.out += line + "\n";
        unfinished += !protocol::is_terminal(job.state);
    }
    if (flag_of(result, "timed_out")) {
        r.err = fmt::format("agentctl: wait timed out; {} job(s) not finished\n", unfinished);
    }
    return r;
}

// One line per tool step, oldest first: "completed  bash: npm test".
std::string step_lines(json::object const& result) {
    auto const* steps = result.if_contains("steps");
    if (steps == nullptr || !steps->is_array()) return {};
    std::string out;
    for (auto const& value : steps->get_array()) {
        auto const* step = value.if_object();
        if (step == nullptr) continue;
        auto title = one_line(text_of(*step, "title"));
        out += fmt::format("{:<9}  {}{}\n", one_line(text_of(*step, "status")),
                           one_line(text_of(*step, "tool")), title.empty() ? "" : ": " + title);
    }
    return out;
}

rendered peek_text(json::object const& result) {
    rendered r{text_of(result, "partial_output"), {}};
    ensure_newline(r.out);
    if (auto steps = step_lines(result); !steps.empty()) r.out = steps + "\n" + r.out;
    auto const* value = result.if_contains("job");
    auto job = read_job(value ? *value : json::value{});
    r.err = fmt::format("{}: {}", job.id, facts(job));
    r.err += job.error.empty() ? "\n" : "; " + job.error + "\n";
    return r;
}

// diff: one line per file (status, +added -removed, path), then the patches; the job's facts
// (and a diff that could not be read) on stderr.
rendered diff_text(json::object const& result) {
    rendered r;
    auto const* value = result.if_contains("changes");
    auto const* changes = value ? value->if_array() : nullptr;
    std::string patches;
    for (auto const& c : changes ? *changes : json::array{}) {
        auto const* o = c.if_object();
        if (!o) continue;
        r.out +=
            fmt::format("{:<8}  +{:<5} -{:<5}  {}\n", one_line(text_of(*o, "status")),
                        integer_of(*o, "additions").value_or(0),
                        integer_of(*o, "deletions").value_or(0), one_line(text_of(*o, "file")));
        patches += text_of(*o, "patch");
        ensure_newline(patches);
    }
    if (!patches.empty()) r.out += "\n" + patches;
    auto const* job = result.if_contains("job");
    auto view = read_job(job ? *job : json::value{});
    r.err =
        fmt::format("{}: {}", view.id, changes && changes->empty() ? "no changes" : facts(view));
    if (auto why = text_of(result, "diff_error"); !why.empty()) r.err += "; diff: " + one_line(why);
    r.err += "\n";
    return r;
}

// worktree rm: which directory went.
rendered removed_text(json::object const& result) {
    auto const* job = result.if_contains("job");
    auto const* obj = job ? job->if_object() : nullptr;
    auto const* tree = obj ? obj->if_contains("worktree") : nullptr;
    auto dir = tree && tree->is_object() ? text_of(tree->get_object(), "directory") : "";
    return {fmt::format("{}: worktree {} removed\n", read_job(job ? *job : json::value{}).id,
                        one_line(dir)),
            {}};
}

template <class Range, class Emit>
void pretty_block(std::string& out, char open, char close, Range const& items, int indent,
                  Emit emit) {
    out += open;
    char const* separator = "\n";
    for (auto const& item : items) {
        out += separator;
        out.append(indent + 2, ' ');
        emit(item);
        separator = ",\n";
    }
    out += '\n';
    out.append(indent, ' ');
    out += close;
}

void pretty_into(std::string& out, json::value const& value, int indent) {
    if (auto const* obj = value.if_object(); obj && !obj->empty()) {
        pretty_block(out, '{', '}', *obj, indent, [&](json::key_value_pair const& kv) {
            out += json::serialize(json::string(kv.key())) + ": ";
            pretty_into(out, kv.value(), indent + 2);
        });
    } else if (auto const* arr = value.if_array(); arr && !arr->empty()) {
        pretty_block(out, '[', ']', *arr, indent,
                     [&](json::value const& item) { pretty_into(out, item, indent + 2); });
    } else {
        out += protocol::to_text(value);  // a cost reads 0.0012, never 1.2E-3
    }
}

// What a job is: its description, else the start of its prompt (JobView task.prompt), cut so
// that a table row stays readable.
std::string label_of(json::object const& view) {
    constexpr std::size_t preview_chars = 60;
    if (auto description = one_line(text_of(view, "description")); !description.empty())
        return description;
    auto const* task = view.if_contains("task");
    auto prompt = task && task->is_object() ? one_line(text_of(task->get_object(), "prompt")) : "";
    if (char_count(prompt) <= preview_chars) return prompt;
    return prompt.substr(0, prefix_bytes(prompt, preview_chars - 1)) + "\u2026";
}

}  // namespace

job_view read_job(json::value const& value) {
    auto const* obj = value.if_object();
    if (obj == nullptr) return {};
    return {one_line(text_of(*obj, "id")),
            one_line(text_of(*obj, "state")),
            one_line(text_of(*obj, "description")),
            integer_of(*obj, "elapsed_ms"),
            text_of(*obj, "output"),
            flag_of(*obj, "truncated"),
            error_summary(obj->if_contains("error")),
            activity_text(*obj),
            requests_count(*obj),
            label_of(*obj)};
}

bool is_completed(std::string_view state) {
    return protocol::from_string<protocol::job_state>(state) == protocol::job_state::completed;
}

std::string format_elapsed(std::optional<std::int64_t> ms) {
    if (!ms || *ms < 0) return "-";
    if (*ms < 60'000) return fmt::format("{}.{}s", *ms / 1000, *ms / 100 % 10);
    if (*ms < 3'600'000) return fmt::format("{}m{:02}s", *ms / 60'000, *ms / 1000 % 60);
    return fmt::format("{}h{:02}m", *ms / 3'600'000, *ms / 60'000 % 60);
}

std::string plain_cost(double cost) {
    if (!std::isfinite(cost)) return "-";
    auto text = fmt::format("{:.10f}", cost);  // sub-1e-10 digits are float noise of a sum
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    return text == "-0" ? "0" : text;
}

std::string total_line(json::object const& listed, std::size_t shown) {
    auto const* usage = listed.if_contains("usage");
    if (usage == nullptr || !usage->is_object()) return {};
    auto const& u = usage->get_object();
    auto count = jobs_of(listed).size();
    auto line = fmt::format("total: {} job{}", count, count == 1 ? "" : "s");
    if (shown != count) line += fmt::format(" ({} shown)", shown);
    auto tokens = [&](std::string_view key) {
        auto n = integer_of(u, key);
        return n ? std::to_string(*n) : std::string("-");
    };
    line += fmt::format(", tokens {} in / {} out", tokens("input_tokens"), tokens("output_tokens"));
    auto const* cost = u.if_contains("cost");
    line += ", cost " + (cost && cost->is_number() ? plain_cost(cost->to_number<double>()) : "-");
    return line + "\n";
}

std::vector<std::string> error_lines(std::string_view error, std::size_t columns) {
    constexpr std::string_view indent = "    ";
    constexpr std::size_t narrowest = 20;  // below that, lines of a few letters help nobody
    if (error.empty()) return {};
    auto width = std::max(columns, narrowest) - 1 - indent.size();
    auto lines = wrap("error: " + std::string(error), width);
    for (auto& line : lines) line.insert(0, indent);
    return lines;
}

rendered render_result(command_kind kind, json::object const& result, std::size_t columns) {
    switch (kind) {
        case command_kind::start:
        case command_kind::cancel:
            return {job_lines(result), {}};
        case command_kind::status:
            return {status_table(result, columns), {}};
        case command_kind::wait:
            return wait_blocks(result);
        case command_kind::peek:
            return peek_text(result);
        case command_kind::diff:
            return diff_text(result);
        case command_kind::worktree_rm:
            return removed_text(result);
        case command_kind::respond: {
            auto const* job = result.if_contains("job");
            json::object jobs{{"jobs", json::array{job ? *job : json::value{}}}};
            return {job_lines(jobs), {}};
        }
        case command_kind::ui:
        case command_kind::watch:
        case command_kind::service_install:
        case command_kind::service_uninstall:
        case command_kind::service_status:
        case command_kind::token_add:  // tokens.cpp: edits the tokens file
        case command_kind::token_list:
        case command_kind::token_revoke:
            break;
    }
    return {};
}

std::string pretty_json(json::value const& value) {
    std::string out;
    pretty_into(out, value, 0);
    return out + "\n";
}

int wait_exit_code(json::object const& result) {
    bool failed = false;
    for (auto const& value : jobs_of(result)) {
        auto state = read_job(value).state;
        if (state == protocol::not_found_state) return exit_unknown_job;
        failed = failed || is_failed_outcome(state);
    }
    if (failed) return exit_failed;
    return flag_of(result, "timed_out") ? exit_timed_out : exit_ok;
}

}  // namespace agentctl
