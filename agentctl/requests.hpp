// What agentctl shows of a sub-agent's tool activity and pending requests (DESIGN §2 Requests),
// and how it reads answers to them: `respond --answer` values and the replies typed at the
// inline prompt. Pure functions over JobView JSON, so unit tests need neither a terminal nor a
// server.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentctl {

// A string or boolean field of a JobView or request, or ""/false when absent or of another type.
std::string text_of(boost::json::object const& obj, std::string_view key);
bool flag_of(boost::json::object const& obj, std::string_view key);

// A pending request of one job, as JobView `requests` lists it.
struct input_request {
    std::string job;
    boost::json::object request;
    std::string session;  // the job's (JobView `session`), so an answer reaches it from any view
};

// `view`'s pending requests (empty unless it is waiting with some).
std::vector<input_request> requests_of(boost::json::object const& view);

// The ids of result.needs_input (agents_wait), empty when absent.
std::vector<std::string> needs_input(boost::json::object const& result);

// "bash: npm test" from JobView activity (tool, and title when there is one); "" without one.
std::string activity_text(boost::json::object const& view);

// "1 request", "2 requests"; "" when none is pending.
std::string requests_count(boost::json::object const& view);

// "bash `rm -rf build`" / "question: Which colour?": one request in a few words.
std::string request_summary(boost::json::object const& request);

// The lines a script reads when input is needed, one per permission or question, each carrying
// the job id, the request id and the kind:
//   job_…  per_…  permission  bash  rm -rf build | make
//   job_…  que_…  question 1/2  Colour: Which colour?  [red|green] (several) (or own text)
std::vector<std::string> request_lines(input_request const& r);

// The answers of agents_respond from `--answer` values: "LABEL" answers question 1 and
// "N=LABEL" question N (1-based; write "1=a=b" for a first-question label that starts with
// digits and "="); repeating a question adds labels (for `multiple`). Questions given no label
// get an empty list. Throws usage_error on N = 0 or N past protocol's max_answers.
boost::json::array parse_answers(std::vector<std::string> const& values);

// `respond`'s decision word: allow, always (or allow_always), deny; nullopt otherwise.
std::optional<std::string> decision_name(std::string_view word);

// A reply typed at the permission prompt: "a"/"allow"/"y" -> allow, "A"/"always" -> allow_always,
// "d"/"deny"/"n" -> deny, "d: MESSAGE" or "deny MESSAGE" -> deny with a message. Returns the
// agents_respond fields ({decision, message?}), nullopt for anything else.
std::optional<boost::json::object> parse_permission_reply(std::string_view line);

// A reply to question `q` (a JobView question object): option numbers ("2", "1,3" or "1 3"
// where `multiple`), else the text itself where `custom` allows it. Returns the labels, or an
// error message to show before asking again.
struct question_reply {
    std::vector<std::string> labels;
    std::string error;
};
question_reply parse_question_reply(boost::json::object const& q, std::string_view line);

// Upstream text made one line: control characters become spaces, so it cannot drive a terminal.
std::string single_line(std::string_view text);

// "job_3f2a9c…": enough of an id to tell jobs apart in a prompt.
std::string short_id(std::string_view id);

}  // namespace agentctl
