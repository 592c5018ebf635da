// Activity and request text of JobViews, and the parsing of answers (--answer values, prompt
// replies). Upstream text is made single-line before it reaches a terminal.
#include "requests.hpp"

#include "exit_codes.hpp"

#include "protocol/params.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace agentctl {
namespace json = boost::json;
std::string text_of(json::object const& obj, std::string_view key) {
    auto const* value = obj.if_contains(key);
    return value && value->is_string() ? std::string(value->get_string()) : std::string{};
}

bool flag_of(json::object const& obj, std::string_view key) {
    auto const* value = obj.if_contains(key);
    return value && value->is_bool() && value->get_bool();
}

namespace {

json::array const& array_of(json::object const& obj, std::string_view key) {
    static const json::array none;
    auto const* value = obj.if_contains(key);
    return value && value->is_array() ? value->get_array() : none;
}

std::string one_line(std::string_view text) {
    std::string line(text);
    std::replace_if(
        line.begin(), line.end(), [](unsigned char c) { return c < ' ' || c == 0x7f; }, ' ');
    return line;
}

std::vector<std::string> strings_of(json::array const& items) {
    std::vector<std::string> out;
    for (auto const& item : items)
        if (item.is_string()) out.push_back(one_line(item.get_string()));
    return out;
}

std::string join(std::vector<std::string> const& parts, std::string_view separator) {
    std::string out;
    for (auto const& part : parts) {
        if (!out.empty()) out += separator;
        out += part;
    }
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
        text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.remove_suffix(1);
    return text;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// "Colour: Which colour?" (the header only when there is one).
std::string question_title(json::object const& q) {
    auto header = one_line(text_of(q, "header"));
    auto question = one_line(text_of(q, "question"));
    return header.empty() ? question : header + ": " + question;
}

std::vector<std::string> option_labels(json::object const& q) {
    std::vector<std::string> labels;
    for (auto const& option : array_of(q, "options"))
        if (auto const* o = option.if_object()) labels.push_back(text_of(*o, "label"));
    return labels;
}

bool allows_custom(json::object const& q) {
    auto const* custom = q.if_contains("custom");  // opencode's default is true
    return custom == nullptr || !custom->is_bool() || custom->get_bool();
}

// "2" or "1,3" / "1 3": option numbers; nullopt when the line is anything else.
std::optional<std::vector<std::size_t>> numbers_in(std::string_view line) {
    std::vector<std::size_t> numbers;
    std::size_t i = 0;
    while (i < line.size()) {
        if (line[i] == ',' || line[i] == ' ') {
            ++i;
            continue;
        }
        std::size_t n = 0;
        auto [ptr, ec] = std::from_chars(line.data() + i, line.data() + line.size(), n);
        if (ec != std::errc{}) return std::nullopt;
        numbers.push_back(n);
        i = static_cast<std::size_t>(ptr - line.data());
        if (i < line.size() && line[i] != ',' && line[i] != ' ') return std::nullopt;
    }
    if (numbers.empty()) return std::nullopt;
    return numbers;
}

}  // namespace

std::vector<input_request> requests_of(json::object const& view) {
    std::vector<input_request> out;
    auto id = text_of(view, "id");
    auto session = text_of(view, "session");
    for (auto const& request : array_of(view, "requests"))
        if (auto const* r = request.if_object(); r && !text_of(*r, "id").empty())
            out.push_back({id, *r, session});
    return out;
}

std::vector<std::string> needs_input(json::object const& result) {
    return strings_of(array_of(result, "needs_input"));
}

std::string activity_text(json::object const& view) {
    auto const* activity = view.if_contains("activity");
    auto const* a = activity ? activity->if_object() : nullptr;
    if (a == nullptr) return {};
    auto tool = one_line(text_of(*a, "tool"));
    auto title = one_line(text_of(*a, "title"));
    if (tool.empty()) return title;
    return title.empty() ? tool : tool + ": " + title;
}

std::string requests_count(json::object const& view) {
    auto n = array_of(view, "requests").size();
    if (n == 0) return {};
    return fmt::format("{} request{}", n, n == 1 ? "" : "s");
}

std::string request_summary(json::object const& request) {
    if (text_of(request, "kind") == "question") {
        auto const& questions = array_of(request, "questions");
        auto const* first = questions.empty() ? nullptr : questions.front().if_object();
        auto text = "question: " + (first ? one_line(text_of(*first, "question")) : std::string{});
        if (questions.size() > 1) text += fmt::format(" (+{} more)", questions.size() - 1);
        return text;
    }
    auto text = one_line(text_of(request, "permission"));
    auto patterns = strings_of(array_of(request, "patterns"));
    if (!patterns.empty()) text += " `" + join(patterns, "`, `") + "`";
    return text;
}

std::vector<std::string> request_lines(input_request const& r) {
    auto prefix = fmt::format("{}  {}", one_line(r.job), one_line(text_of(r.request, "id")));
    if (text_of(r.request, "kind") != "question") {
        auto line =
            fmt::format("{}  permission  {}", prefix, one_line(text_of(r.request, "permission")));
        auto patterns = strings_of(array_of(r.request, "patterns"));
        if (!patterns.empty()) line += "  " + join(patterns, " | ");
        return {line};
    }
    std::vector<std::string> lines;
    auto const& questions = array_of(r.request, "questions");
    for (std::size_t i = 0; i < questions.size(); ++i) {
        auto const* q = questions[i].if_object();
        if (q == nullptr) continue;
        auto kind = questions.size() > 1 ? fmt::format("question {}/{}", i + 1, questions.size())
                                         : std::string("question");
        std::vector<std::string> labels;
        for (auto const& label : option_labels(*q)) labels.push_back(one_line(label));
        auto line =
            fmt::format("{}  {}  {}  [{}]", prefix, kind, question_title(*q), join(labels, "|"));
        if (flag_of(*q, "multiple")) line += " (several)";
        if (allows_custom(*q)) line += " (or own text)";
        lines.push_back(std::move(line));
    }
    return lines;
}

json::array parse_answers(std::vector<std::string> const& values) {
    std::vector<std::vector<std::string>> answers;
    for (auto const& value : values) {
        std::size_t question = 1;
        std::string_view label = value;
        auto eq = value.find('=');
        if (eq != std::string::npos && eq > 0 &&
            std::all_of(value.begin(), value.begin() + static_cast<std::ptrdiff_t>(eq),
                        [](unsigned char c) { return std::isdigit(c); })) {
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + eq, question);
            if (ec != std::errc{} || question == 0 || question > agentd::protocol::max_answers)
                throw usage_error(fmt::format("--answer {}: questions are numbered 1 to {}", value,
                                              agentd::protocol::max_answers));
            label.remove_prefix(eq + 1);
        }
        if (answers.size() < question) answers.resize(question);
        answers[question - 1].emplace_back(label);
    }
    json::array out;
    for (auto const& labels : answers) out.push_back(json::array(labels.begin(), labels.end()));
    return out;
}

std::optional<std::string> decision_name(std::string_view word) {
    if (word == "allow") return "allow";
    if (word == "always" || word == "allow_always") return "allow_always";
    if (word == "deny") return "deny";
    return std::nullopt;
}

std::optional<json::object> parse_permission_reply(std::string_view line) {
    line = trim(line);
    auto word_end = std::min(line.find_first_of(": "), line.size());
    auto word = line.substr(0, word_end);
    auto rest = trim(line.substr(word_end));
    if (!rest.empty() && rest.front() == ':') rest = trim(rest.substr(1));
    auto name = lower(word);
    if (word == "A" || name == "always") {
        if (!rest.empty()) return std::nullopt;
        return json::object{{"decision", "allow_always"}};
    }
    if (name == "a" || name == "allow" || name == "y" || name == "yes" || name == "once") {
        if (!rest.empty()) return std::nullopt;
        return json::object{{"decision", "allow"}};
    }
    if (name == "d" || name == "deny" || name == "n" || name == "no") {
        json::object out{{"decision", "deny"}};
        if (!rest.empty()) out["message"] = std::string(rest);
        return out;
    }
    return std::nullopt;
}

question_reply parse_question_reply(json::object const& q, std::string_view line) {
    line = trim(line);
    auto labels = option_labels(q);
    bool custom = allows_custom(q);
    if (line.empty())
        return {{}, "type an option's number" + std::string(custom ? " or text" : "")};
    if (auto numbers = numbers_in(line)) {
        question_reply out;
        for (auto n : *numbers) {
            if (n == 0 || n > labels.size())
                return {{}, fmt::format("pick options 1 to {}", labels.size())};
            out.labels.push_back(labels[n - 1]);
        }
        if (out.labels.size() > 1 && !flag_of(q, "multiple"))
            return {{}, "this question takes one option"};
        return out;
    }
    if (!custom) return {{}, fmt::format("pick an option, 1 to {}", labels.size())};
    return {{std::string(line)}, {}};
}

std::string single_line(std::string_view text) {
    return one_line(text);
}

std::string short_id(std::string_view id) {
    constexpr std::size_t shown = 10;  // "job_" and 6 hex digits
    if (id.size() <= shown + 1) return std::string(id);
    return std::string(id.substr(0, shown)) + "\u2026";
}

}  // namespace agentctl
