// The parts of `agentctl respond` and of the inline prompt that need no daemon: --answer values
// into agents_respond answers, typed replies into decisions or labels, the prompt's dialogue
// over string streams, the request lines scripts read, and the respond command line.
#include "agentctl/cli.hpp"
#include "agentctl/exit_codes.hpp"
#include "agentctl/prompt.hpp"
#include "agentctl/requests.hpp"
#include "agentctl/rpc.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <sstream>

namespace agentctl {
namespace {

namespace json = boost::json;

json::object parse_object(std::string_view text) {
    return json::parse(text).as_object();
}

json::object const permission = parse_object(
    R"({"id":"per_1","kind":"permission","permission":"bash","patterns":["rm -rf build","ls"],
        "asked_at":"2026-12-05T09:00:00Z"})");

json::object const question = parse_object(
    R"({"id":"que_1","kind":"question","asked_at":"2026-12-05T09:00:00Z","questions":[
        {"question":"Which colour?","header":"Colour","custom":false,
         "options":[{"label":"red","description":"warm"},{"label":"green"},{"label":"blue"}]},
        {"question":"Which\nsizes?","multiple":true,"custom":true,
         "options":[{"label":"S"},{"label":"M"}]}]})");

TEST(parse_answers, labels_go_to_question_one_unless_numbered) {
    EXPECT_EQ(json::value(parse_answers({"red"})), json::parse(R"([["red"]])"));
    EXPECT_EQ(json::value(parse_answers({"red", "blue"})), json::parse(R"([["red","blue"]])"));
    EXPECT_EQ(json::value(parse_answers({"2=M", "1=red", "2=S"})),
              json::parse(R"([["red"],["M","S"]])"));
    EXPECT_EQ(json::value(parse_answers({"3=x"})), json::parse(R"([[],[],["x"]])"));
    EXPECT_EQ(json::value(parse_answers({"1=a=b", "x=1", "=y"})),
              json::parse(R"([["a=b","x=1","=y"]])"));
    EXPECT_THROW(parse_answers({"0=red"}), usage_error);
    EXPECT_THROW(parse_answers({"65=red"}), usage_error);
    EXPECT_THROW(parse_answers({"99999999999999999999999=red"}), usage_error);
}

TEST(parse_permission_reply, letters_and_words) {
    EXPECT_EQ(json::value(*parse_permission_reply("a")), json::parse(R"({"decision":"allow"})"));
    EXPECT_EQ(json::value(*parse_permission_reply(" yes ")),
              json::parse(R"({"decision":"allow"})"));
    EXPECT_EQ(json::value(*parse_permission_reply("A")),
              json::parse(R"({"decision":"allow_always"})"));
    EXPECT_EQ(json::value(*parse_permission_reply("Always")),
              json::parse(R"({"decision":"allow_always"})"));
    EXPECT_EQ(json::value(*parse_permission_reply("d")), json::parse(R"({"decision":"deny"})"));
    EXPECT_EQ(json::value(*parse_permission_reply("d: use make clean")),
              json::parse(R"({"decision":"deny","message":"use make clean"})"));
    EXPECT_EQ(json::value(*parse_permission_reply("deny not today")),
              json::parse(R"({"decision":"deny","message":"not today"})"));
    EXPECT_FALSE(parse_permission_reply(""));
    EXPECT_FALSE(parse_permission_reply("maybe"));
    EXPECT_FALSE(parse_permission_reply("a b"));
}

TEST(parse_question_reply, numbers_pick_options_and_text_needs_custom) {
    auto const& qs = question.at("questions").as_array();
    auto const& one = qs[0].as_object();
    auto const& several = qs[1].as_object();
    EXPECT_EQ(parse_question_reply(one, "2").labels, std::vector<std::string>{"green"});
    EXPECT_EQ(parse_question_reply(one, "4").error, "pick options 1 to 3");
    EXPECT_EQ(parse_question_reply(one, "1,2").error, "this question takes one option");
    EXPECT_EQ(parse_question_reply(one, "purple").error, "pick an option, 1 to 3");
    EXPECT_FALSE(parse_question_reply(one, " ").error.empty());
    EXPECT_EQ(parse_question_reply(several, "1, 2").labels, (std::vector<std::string>{"S", "M"}));
    EXPECT_EQ(parse_question_reply(several, "2 1").labels, (std::vector<std::string>{"M", "S"}));
    EXPECT_EQ(parse_question_reply(several, "XL please").labels,
              std::vector<std::string>{"XL please"});
}

TEST(request_lines, carry_job_request_and_kind) {
    EXPECT_EQ(request_lines({"job_a", permission, {}}),
              std::vector<std::string>{"job_a  per_1  permission  bash  rm -rf build | ls"});
    EXPECT_EQ(request_lines({"job_a", question, {}}),
              (std::vector<std::string>{
                  "job_a  que_1  question 1/2  Colour: Which colour?  [red|green|blue]",
                  "job_a  que_1  question 2/2  Which sizes?  [S|M] (several) (or own text)"}));
    EXPECT_EQ(request_summary(permission), "bash `rm -rf build`, `ls`");
    EXPECT_EQ(request_summary(question), "question: Which colour? (+1 more)");
}

TEST(activity, text_count_and_pending_requests_of_a_view) {
    auto view = parse_object(R"({"id":"job_a","state":"waiting",
        "activity":{"steps":3,"tool":"bash","title":"npm\ttest","since":"…"},
        "requests":[{"id":"per_1","kind":"permission"},{"id":"que_1","kind":"question"}]})");
    EXPECT_EQ(activity_text(view), "bash: npm test");
    EXPECT_EQ(requests_count(view), "2 requests");
    auto requests = requests_of(view);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[1].job, "job_a");
    EXPECT_EQ(activity_text(parse_object(R"({"activity":{"tool":"read"}})")), "read");
    EXPECT_EQ(requests_count(parse_object(R"({"state":"running"})")), "");
    EXPECT_EQ(needs_input(parse_object(R"({"needs_input":["job_a"]})")),
              std::vector<std::string>{"job_a"});
    EXPECT_EQ(short_id("job_0123456789abcdef"), "job_012345\u2026");
}

TEST(ask, permission_prompt_asks_again_until_it_gets_an_answer) {
    std::istringstream in("what\nd: not now\n");
    std::ostringstream out;
    auto reply = ask({"job_0123456789abcdef", permission, {}}, in, out);
    ASSERT_TRUE(reply);
    EXPECT_EQ(json::value(*reply), json::parse(R"({"decision":"deny","message":"not now"})"));
    EXPECT_NE(out.str().find("job_012345\u2026 wants to run bash `rm -rf build`, `ls` \u2014 "
                             "[a]llow once, allow [A]lways, [d]eny"),
              std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("answer a, A or d"), std::string::npos);

    std::istringstream ended("");
    EXPECT_FALSE(ask({"job_a", permission, {}}, ended, out));
}

TEST(ask, questions_are_asked_in_turn_and_dash_dismisses) {
    std::istringstream in("3\n1,2\n");
    std::ostringstream out;
    auto reply = ask({"job_a", question, {}}, in, out);
    ASSERT_TRUE(reply);
    EXPECT_EQ(json::value(*reply), json::parse(R"({"answers":[["blue"],["S","M"]]})"));
    EXPECT_NE(
        out.str().find("job_a asks: Colour: Which colour?\n  1) red \u2014 warm\n  2) green\n"),
        std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("Which sizes?"), std::string::npos) << "one line";

    std::istringstream dismissed("-\n");
    reply = ask({"job_a", question, {}}, dismissed, out);
    ASSERT_TRUE(reply);
    EXPECT_EQ(json::value(*reply), json::parse(R"({"decision":"deny"})"));
}

invocation parsed(std::vector<char const*> args) {
    args.insert(args.begin(), "agentctl");
    auto result = parse_cli(static_cast<int>(args.size()), args.data());
    EXPECT_TRUE(std::holds_alternative<invocation>(result));
    return std::holds_alternative<invocation>(result) ? std::get<invocation>(result) : invocation{};
}

TEST(respond_cli, decisions_and_answers_become_agents_respond) {
    auto inv = parsed({"respond", "job_a", "per_1", "always"});
    auto request = build_request(inv, "");
    EXPECT_EQ(request.method, "agents_respond");
    EXPECT_EQ(json::value(request.params),
              json::parse(R"({"job":"job_a","request":"per_1","decision":"allow_always"})"));

    inv = parsed({"--session", "s", "respond", "job_a", "per_1", "deny", "-m", "why"});
    EXPECT_EQ(json::value(build_request(inv, "").params),
              json::parse(R"({"job":"job_a","request":"per_1","decision":"deny","message":"why",
                              "session":"s"})"));

    inv = parsed({"respond", "job_a", "que_1", "--answer", "red", "--answer", "2=S"});
    EXPECT_EQ(json::value(build_request(inv, "").params),
              json::parse(R"({"job":"job_a","request":"que_1","answers":[["red"],["S"]]})"));

    inv = parsed({"respond", "--answer", "1=blue", "job_a", "que_1"});
    EXPECT_EQ(json::value(build_request(inv, "").params),
              json::parse(R"({"job":"job_a","request":"que_1","answers":[["blue"]]})"));

    inv = parsed({"respond", "job_a", "per_1"});
    EXPECT_THROW(build_request(inv, ""), usage_error);
    inv = parsed({"respond", "job_a", "per_1", "allow", "--message", "x"});
    EXPECT_THROW(build_request(inv, ""), usage_error);
}

TEST(respond_cli, on_input_ignore_reaches_agents_wait) {
    auto inv = parsed({"wait", "--on-input", "ignore", "job_a"});
    EXPECT_EQ(json::value(build_request(inv, "").params),
              json::parse(R"({"jobs":["job_a"],"mode":"all","on_input":"ignore"})"));
    inv = parsed({"wait", "--on-input", "return", "job_a"});
    EXPECT_FALSE(build_request(inv, "").params.contains("on_input"));
}

}  // namespace
}  // namespace agentctl
