// The questions the inline prompt asks, one line of input per answer: a permission in one line
// ("job_3f2a9c… wants to run bash `make` — [a]llow once, allow [A]lways, [d]eny?"), a question
// as its numbered options and then one reply per question of the request.
#include "prompt.hpp"

#include <fmt/core.h>

#include <string>

namespace agentctl {
namespace json = boost::json;
namespace {

std::string text_of(json::object const& obj, std::string_view key) {
    auto const* value = obj.if_contains(key);
    return value && value->is_string() ? single_line(value->get_string()) : std::string{};
}

std::optional<std::string> read_line(std::istream& in, std::ostream& out) {
    out.flush();
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    return line;
}

std::optional<json::object> ask_permission(input_request const& r, std::istream& in,
                                           std::ostream& out) {
    auto what = request_summary(r.request);
    auto verb = text_of(r.request, "permission") == "bash" ? "wants to run" : "asks to use";
    for (;;) {
        out << fmt::format(
            "{} {} {} \u2014 [a]llow once, allow [A]lways, [d]eny (d: reason to tell it)? ",
            short_id(r.job), verb, what);
        auto line = read_line(in, out);
        if (!line) return std::nullopt;
        if (auto reply = parse_permission_reply(*line)) return reply;
        out << "  answer a, A or d\n";
    }
}

std::optional<json::object> ask_questions(input_request const& r, std::istream& in,
                                          std::ostream& out) {
    json::array answers;
    auto const* questions = r.request.if_contains("questions");
    if (questions == nullptr || !questions->is_array()) return std::nullopt;
    for (auto const& item : questions->get_array()) {
        auto const* q = item.if_object();
        if (q == nullptr) return std::nullopt;
        auto header = text_of(*q, "header");
        out << fmt::format("{} asks: {}{}\n", short_id(r.job), header.empty() ? "" : header + ": ",
                           text_of(*q, "question"));
        std::size_t n = 0;
        if (auto const* options = q->if_contains("options"); options && options->is_array()) {
            for (auto const& option : options->get_array()) {
                auto const* o = option.if_object();
                if (o == nullptr) continue;
                auto description = text_of(*o, "description");
                out << fmt::format("  {}) {}{}\n", ++n, text_of(*o, "label"),
                                   description.empty() ? "" : " \u2014 " + description);
            }
        }
        auto const* multiple = q->if_contains("multiple");
        bool several = multiple && multiple->is_bool() && multiple->get_bool();
        auto const* custom = q->if_contains("custom");
        bool text = custom == nullptr || !custom->is_bool() || custom->get_bool();
        for (;;) {
            out << fmt::format(
                "answer with {}{}, or - to dismiss: ", several ? "numbers (1,3)" : "a number",
                text ? " or your own text" : "");
            auto line = read_line(in, out);
            if (!line) return std::nullopt;
            if (*line == "-") return json::object{{"decision", "deny"}};
            auto reply = parse_question_reply(*q, *line);
            if (reply.error.empty()) {
                answers.push_back(json::array(reply.labels.begin(), reply.labels.end()));
                break;
            }
            out << "  " << reply.error << "\n";
        }
    }
    return json::object{{"answers", std::move(answers)}};
}

}  // namespace

std::optional<json::object> ask(input_request const& r, std::istream& in, std::ostream& out) {
    auto const* kind = r.request.if_contains("kind");
    if (kind && *kind == "question") return ask_questions(r, in, out);
    return ask_permission(r, in, out);
}

}  // namespace agentctl
