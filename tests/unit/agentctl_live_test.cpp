// Unit tests of agentctl's live parts without a terminal or a server: the job board fed by
// snapshots and agents_event pushes, its table, progress lines and plain event lines, the ANSI
// redraw, the classification of /ws messages, durations, and the watch/--wait command lines.
#include "agentctl/cli.hpp"
#include "agentctl/exit_codes.hpp"
#include "agentctl/live_view.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace agentctl {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

json::object view(std::string id, std::string state, std::int64_t elapsed_ms,
                  std::string description = {}) {
    json::object v{{"id", id}, {"state", state}, {"elapsed_ms", elapsed_ms}};
    if (!description.empty()) v["description"] = description;
    return v;
}

TEST(job_board, tells_new_jobs_and_state_changes_apart_from_repeats) {
    job_board b;
    auto t0 = live_clock::now();
    EXPECT_TRUE(b.update(view("job_a", "queued", 0), t0));
    EXPECT_FALSE(b.update(view("job_a", "queued", 5), t0));
    EXPECT_TRUE(b.update(view("job_a", "running", 10), t0));
    EXPECT_FALSE(b.update(json::object{{"state", "running"}}, t0));  // no id: ignored
    EXPECT_FALSE(b.update(json::value("garbage"), t0));
    EXPECT_EQ(b.ids(), std::vector<std::string>{"job_a"});
    EXPECT_FALSE(b.idle());
    EXPECT_FALSE(b.terminal("job_a"));
    EXPECT_TRUE(b.terminal("job_unknown"));  // resolved, like not_found
    b.update(view("job_a", "failed", 20), t0);
    EXPECT_TRUE(b.idle());
}

TEST(job_board, advances_elapsed_only_while_unfinished) {
    job_board b;
    auto t0 = live_clock::now();
    b.take_snapshot(json::object{{"jobs", json::array{view("job_r", "running", 1000),
                                                      view("job_c", "completed", 1000)}}},
                    t0);
    EXPECT_EQ(b.at("job_r", t0 + 2500ms).at("elapsed_ms").as_int64(), 3500);
    EXPECT_EQ(b.at("job_c", t0 + 2500ms).at("elapsed_ms").as_int64(), 1000);
    EXPECT_EQ(b.at("job_x", t0).at("state").as_string(), "not_found");
}

TEST(job_board, snapshot_entries_are_job_and_session_and_never_undo_an_event) {
    job_board b;
    auto t0 = live_clock::now();
    b.update(view("job_a", "completed", 900), t0);  // an event that came before the answer
    auto answer = json::object{
        {"ok", true},
        {"jobs", json::array{json::object{{"job", view("job_a", "running", 100)}, {"session", "s"}},
                             json::object{{"job", view("job_b", "queued", 0)}, {"session", "s"}}}}};
    b.take_snapshot(answer, t0);
    EXPECT_EQ(b.at("job_a", t0).at("state").as_string(), "completed");
    EXPECT_EQ(b.at("job_b", t0).at("state").as_string(), "queued");
    EXPECT_EQ(b.ids(), (std::vector<std::string>{"job_a", "job_b"}));
}

TEST(live_render, progress_lines_spin_and_mark_the_end) {
    job_board b;
    auto t0 = live_clock::now();
    b.update(view("job_r", "running", 1200, "first"), t0);
    b.update(view("job_c", "completed", 800, "second"), t0);
    auto failed = view("job_f", "failed", 50);
    failed["error"] = json::object{{"kind", "upstream"}, {"phase", "prompt"}, {"message", "boom"}};
    b.update(failed, t0);
    std::vector<std::string> ids{"job_r", "job_c", "job_f"};
    auto lines = progress_lines(b, ids, t0, 0, 80);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0], "| job_r  running        1.2s  first");
    EXPECT_EQ(lines[1], "+ job_c  completed      0.8s  second");
    EXPECT_EQ(lines[2], "x job_f  failed         0.0s");
    EXPECT_EQ(lines[3], "    error: upstream/prompt: boom");  // its own line: never cut away
    EXPECT_EQ(progress_lines(b, ids, t0 + 1s, 1, 80)[0], "/ job_r  running        2.2s  first");
    EXPECT_EQ(progress_lines(b, ids, t0, 3, 80)[0][0], '\\');
}

TEST(live_render, redraw_goes_back_over_the_previous_block) {
    EXPECT_EQ(redraw(0, {"a", "b"}), "\x1b[2Ka\n\x1b[2Kb\n");
    EXPECT_EQ(redraw(2, {"a", "b"}), "\x1b[2F\x1b[2Ka\n\x1b[2Kb\n");
    EXPECT_EQ(redraw(3, {"a"}), "\x1b[3F\x1b[2Ka\n\x1b[J");
}

TEST(live_render, lines_fit_the_terminal_width_without_splitting_characters) {
    EXPECT_EQ(fit_width("abcdef", 4), "abc");
    EXPECT_EQ(fit_width("abc", 4), "abc");
    EXPECT_EQ(fit_width("ab\xc3\xa9\xc3\xa9x", 4), "ab\xc3\xa9");  // "abéé" -> "abé"
}

TEST(live_render, table_lists_newest_first_and_event_lines_are_plain) {
    job_board b;
    auto t0 = live_clock::now();
    b.update(view("job_old", "completed", 1000, "one"), t0);
    b.update(view("job_new", "running", 0, "two"), t0);
    EXPECT_EQ(board_table(b, t0, 80),
              "ID       STATE      ELAPSED  DESCRIPTION\n"
              "job_new  running    0.0s     two\n"
              "job_old  completed  1.0s     one\n");
    EXPECT_EQ(event_line(view("job_a", "running", 1500, "desc")), "job_a  running  1.5s  desc\n");
    EXPECT_EQ(event_line(json::object{{"id", "job_b"}, {"state", "queued"}}), "job_b  queued  -\n");
}

TEST(live_messages, classifies_events_responses_and_errors) {
    auto event = classify(
        R"({"jsonrpc":"2.0","method":"agents_event","params":{"job":{"id":"job_a","state":"running"},"session":"s"}})");
    EXPECT_EQ(event.what, ws_message::kind::event);
    EXPECT_EQ(event.job.at("id").as_string(), "job_a");

    auto response = classify(R"({"jsonrpc":"2.0","id":1,"result":{"ok":true,"jobs":[]}})");
    EXPECT_EQ(response.what, ws_message::kind::response);
    EXPECT_EQ(response.id, 1);
    EXPECT_TRUE(response.result.contains("jobs"));

    auto ask = classify(R"({"jsonrpc":"2.0","id":"approval-1","method":"approval/request"})");
    EXPECT_EQ(ask.what, ws_message::kind::other);

    EXPECT_THROW(classify(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}})"),
                 rpc_failure);
    EXPECT_THROW(classify("not json"), transport_error);
}

TEST(live_cli, durations) {
    EXPECT_EQ(parse_duration_ms("90s"), 90'000);
    EXPECT_EQ(parse_duration_ms("1500ms"), 1'500);
    EXPECT_EQ(parse_duration_ms("2m"), 120'000);
    EXPECT_EQ(parse_duration_ms("1h"), 3'600'000);
    EXPECT_EQ(parse_duration_ms("2.5"), 2'500);
    EXPECT_EQ(parse_duration_ms("0"), 0);
    for (auto bad : {"", "s", "-1s", "10sec", "1.5.2", "ms5"})
        EXPECT_EQ(parse_duration_ms(bad), std::nullopt) << bad;
}

std::variant<invocation, int> parse(std::vector<char const*> args) {
    args.insert(args.begin(), "agentctl");
    return parse_cli(static_cast<int>(args.size()), args.data());
}

TEST(live_cli, watch_and_wait_options) {
    auto watch = std::get<invocation>(parse({"watch", "--until-idle", "--all"}));
    EXPECT_EQ(watch.cmd.kind, command_kind::watch);
    EXPECT_TRUE(watch.cmd.until_idle);
    EXPECT_TRUE(watch.cmd.watch_all);

    auto start = std::get<invocation>(parse({"start", "--wait", "--timeout", "2s", "p"}));
    EXPECT_TRUE(start.cmd.start_wait);
    EXPECT_EQ(start.cmd.wait_timeout_ms, 2000);
    EXPECT_TRUE(std::get<invocation>(parse({"start", "-q", "p"})).cmd.quiet);
    EXPECT_EQ(std::get<invocation>(parse({"wait", "--timeout", "1m"})).cmd.wait_timeout_ms, 60'000);

    EXPECT_EQ(std::get<int>(parse({"wait", "--timeout", "1m", "--timeout-ms", "5"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"wait", "--timeout", "2h"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"start", "--timeout", "2s", "p"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"start", "--wait", "-q", "p"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"watch", "--once", "--until-idle"})), exit_usage);
}

}  // namespace
}  // namespace agentctl
