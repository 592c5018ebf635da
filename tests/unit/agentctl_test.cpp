// Unit tests of agentctl's pure parts: URL and token discovery, command-line parsing, request
// building (tasks from PROMPTs and --tasks JSON), reply decoding, rendering and wait exit codes.
// Discovery tests change the process environment, so each restores what it touched.
#include "agentctl/cli.hpp"
#include "agentctl/discover.hpp"
#include "agentctl/exit_codes.hpp"
#include "agentctl/render.hpp"
#include "agentctl/rpc.hpp"
#include "agentctl/ui.hpp"
#include "discovery_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <cmath>
#include <cstdlib>

namespace agentctl {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// The discovery variables are cleared for each test and restored after it.
class discovery : public agentd::test_support::discovery_env {};

TEST_F(discovery, url_precedence) {
    global_options g;
    EXPECT_EQ(resolve_url(g), "http://127.0.0.1:7077");
    setenv("AGENTD_URL", "http://10.0.0.1:1", 1);
    EXPECT_EQ(resolve_url(g), "http://10.0.0.1:1");
    g.url = "unix:/run/a.sock";
    EXPECT_EQ(resolve_url(g), "unix:/run/a.sock");
}

TEST_F(discovery, state_dir_precedence) {
    global_options g;
    EXPECT_EQ(resolve_state_dir(g), fs::path());
    setenv("HOME", "/home/u", 1);
    EXPECT_EQ(resolve_state_dir(g), fs::path("/home/u/.local/state/agentd"));
    setenv("XDG_STATE_HOME", "relative/ignored", 1);
    EXPECT_EQ(resolve_state_dir(g), fs::path("/home/u/.local/state/agentd"));
    setenv("XDG_STATE_HOME", "/xdg", 1);
    EXPECT_EQ(resolve_state_dir(g), fs::path("/xdg/agentd"));
    setenv("STATE_DIRECTORY", "/var/lib/agentd:/var/lib/other", 1);
    EXPECT_EQ(resolve_state_dir(g), fs::path("/var/lib/agentd"));
    setenv("AGENTD_STATE_DIR", "/custom", 1);
    EXPECT_EQ(resolve_state_dir(g), fs::path("/custom"));
    g.state_dir = "/flag";
    EXPECT_EQ(resolve_state_dir(g), fs::path("/flag"));
}

TEST_F(discovery, empty_variables_count_as_unset) {
    setenv("HOME", "/home/u", 1);
    setenv("AGENTD_STATE_DIR", "", 1);
    setenv("STATE_DIRECTORY", "", 1);
    EXPECT_EQ(resolve_state_dir(global_options{}), fs::path("/home/u/.local/state/agentd"));
}

TEST_F(discovery, token_from_state_dir_file_is_trimmed) {
    auto file = write("state/token", "  abc123\n");
    global_options g;
    g.state_dir = (dir_ / "state").string();
    auto creds = resolve_credentials(g);
    EXPECT_EQ(creds.token, "abc123");
    EXPECT_EQ(creds.source, file.string());
}

TEST_F(discovery, missing_default_token_file_sends_no_token) {
    setenv("HOME", dir_.c_str(), 1);
    auto creds = resolve_credentials(global_options{});
    EXPECT_FALSE(creds.token);
    EXPECT_NE(creds.source.find(".local/state/agentd/token"), std::string::npos);
}

// The system service's token (readable by group agentd) is the last place asked, and only for
// the default state dir; `source` names the file used. The candidates are injected: tests never
// write to /var/lib.
TEST_F(discovery, system_token_is_the_fallback_of_the_default_state_dir) {
    setenv("XDG_STATE_HOME", (dir_ / "xdg").c_str(), 1);
    auto system = write("system/token", "from_system\n");
    std::vector<fs::path> fallbacks{dir_ / "missing/token", system};
    auto found = resolve_credentials(global_options{}, fallbacks);
    EXPECT_EQ(found.token, "from_system");
    EXPECT_EQ(found.source, system.string());

    auto own = write("xdg/agentd/token", "from_state_dir\n");
    found = resolve_credentials(global_options{}, fallbacks);
    EXPECT_EQ(found.token, "from_state_dir");
    EXPECT_EQ(found.source, own.string());

    fs::remove(own);
    global_options named;
    named.state_dir = (dir_ / "xdg/agentd").string();
    EXPECT_FALSE(resolve_credentials(named, fallbacks).token);
    setenv("AGENTD_STATE_DIR", named.state_dir->c_str(), 1);
    EXPECT_FALSE(resolve_credentials(global_options{}, fallbacks).token);
}

TEST_F(discovery, an_unusable_system_token_is_reported_beside_the_missing_one) {
    setenv("HOME", dir_.c_str(), 1);
    auto system = write("system/token", "\n");
    auto found = resolve_credentials(global_options{}, {system});
    EXPECT_FALSE(found.token);
    EXPECT_NE(found.source.find(".local/state/agentd/token"), std::string::npos) << found.source;
    EXPECT_NE(found.source.find(system.string() + " is empty (members of group agentd"),
              std::string::npos)
        << found.source;
    EXPECT_FALSE(resolve_credentials(global_options{}, {}).token);
}

TEST_F(discovery, token_precedence) {
    write("state/token", "from_state_dir");
    global_options g;
    g.state_dir = (dir_ / "state").string();
    setenv("AGENTD_TOKEN", "from_env", 1);
    EXPECT_EQ(resolve_credentials(g).token, "from_env");
    g.token_file = write("flag_token", "from_file\n").string();
    EXPECT_EQ(resolve_credentials(g).token, "from_file");
    g.token = "from_flag";
    auto creds = resolve_credentials(g);
    EXPECT_EQ(creds.token, "from_flag");
    EXPECT_EQ(creds.source, "--token");
}

TEST_F(discovery, explicit_token_file_must_be_readable) {
    global_options g;
    g.token_file = (dir_ / "absent").string();
    EXPECT_THROW(resolve_credentials(g), usage_error);
}

TEST_F(discovery, token_with_inner_space_is_rejected) {
    global_options g;
    g.token = "two words";
    EXPECT_THROW(resolve_credentials(g), usage_error);
}

TEST(parse_url, tcp_ipv6_unix_and_prefix) {
    auto plain = parse_url("http://127.0.0.1:7077");
    EXPECT_EQ(plain.host, "127.0.0.1");
    EXPECT_EQ(plain.port, "7077");
    EXPECT_EQ(plain.target, "/rpc");
    EXPECT_EQ(plain.host_header, "127.0.0.1:7077");
    auto v6 = parse_url("http://[::1]:9/");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, "9");
    EXPECT_EQ(v6.host_header, "[::1]:9");
    EXPECT_EQ(v6.target, "/rpc");
    EXPECT_EQ(parse_url("http://localhost").port, "80");
    EXPECT_EQ(parse_url("http://h:1/agentd/").target, "/agentd/rpc");
    auto sock = parse_url("unix:/run/agentd/agentd.sock");
    EXPECT_TRUE(sock.is_unix());
    EXPECT_EQ(sock.socket_path, "/run/agentd/agentd.sock");
}

TEST(parse_url, rejects_bad_urls) {
    for (char const* url : {"https://h:1", "h:1", "http://::1:5", "http://h:0", "http://h:99999",
                            "http://h:x", "http://:5", "http://[::1", "unix:"}) {
        EXPECT_THROW(parse_url(url), usage_error) << url;
    }
}

std::variant<invocation, int> parse(std::vector<char const*> args) {
    args.insert(args.begin(), "agentctl");
    return parse_cli(static_cast<int>(args.size()), args.data());
}

TEST(parse_cli, globals_before_or_after_the_command) {
    auto parsed =
        parse({"--session", "s1", "wait", "--any", "--timeout-ms", "500", "--json", "a", "b"});
    auto const& inv = std::get<invocation>(parsed);
    EXPECT_EQ(inv.cmd.kind, command_kind::wait);
    EXPECT_EQ(inv.globals.session, "s1");
    EXPECT_TRUE(inv.globals.json);
    EXPECT_TRUE(inv.cmd.wait_any);
    EXPECT_EQ(inv.cmd.wait_timeout_ms, 500);
    EXPECT_EQ(inv.globals.http_timeout_ms, 30'000);
    EXPECT_EQ(inv.cmd.args, (std::vector<std::string>{"a", "b"}));
}

TEST(parse_cli, http_deadline_and_wait_timeout_are_two_flags) {
    auto both = std::get<invocation>(
        parse({"--http-timeout-ms", "5000", "wait", "--timeout-ms", "700", "a"}));
    EXPECT_EQ(both.globals.http_timeout_ms, 5000);
    EXPECT_EQ(both.cmd.wait_timeout_ms, 700);
    auto after = std::get<invocation>(parse({"status", "--http-timeout-ms", "9"}));
    EXPECT_EQ(after.globals.http_timeout_ms, 9);
    // A wait without --timeout has no end of its own: until the jobs end.
    EXPECT_EQ(std::get<invocation>(parse({"wait"})).cmd.wait_timeout_ms, std::nullopt);
    EXPECT_EQ(std::get<int>(parse({"status", "--timeout-ms", "5"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"--http-timeout-ms", "0", "status"})), exit_usage);
}

TEST(parse_cli, status_state_filter_takes_state_names) {
    auto inv = std::get<invocation>(parse({"status", "--state", "running,waiting"}));
    EXPECT_EQ(inv.cmd.states, (std::vector<std::string>{"running", "waiting"}));
    auto repeated =
        std::get<invocation>(parse({"status", "--state", "failed", "--state", "queued"}));
    EXPECT_EQ(repeated.cmd.states, (std::vector<std::string>{"failed", "queued"}));
    for (auto bad : {"runing", "running,", "not_found", "RUNNING", ""})
        EXPECT_EQ(std::get<int>(parse({"status", "--state", bad})), exit_usage) << bad;
}

TEST(parse_cli, cancel_takes_ids_or_all) {
    auto all = std::get<invocation>(parse({"cancel", "--all"}));
    EXPECT_TRUE(all.cmd.cancel_all);
    EXPECT_TRUE(all.cmd.args.empty());
    EXPECT_EQ(std::get<invocation>(parse({"cancel", "a"})).cmd.args,
              (std::vector<std::string>{"a"}));
    EXPECT_EQ(std::get<int>(parse({"cancel", "--all", "a"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"cancel"})), exit_usage);
}

TEST(parse_cli, usage_errors_exit_2_and_help_and_version_exit_0) {
    EXPECT_EQ(std::get<int>(parse({})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"cancel"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"peek", "a", "b"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"wait", "--timeout-ms", "-1"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"--token", "t", "--token-file", "f", "status"})), exit_usage);
    EXPECT_EQ(std::get<int>(parse({"status", "--help"})), exit_ok);
    EXPECT_EQ(std::get<int>(parse({"--version"})), exit_ok) << "without a command";
}

invocation start(std::vector<std::string> prompts) {
    invocation inv;
    inv.cmd.kind = command_kind::start;
    inv.cmd.args = std::move(prompts);
    return inv;
}

TEST(build_tasks, options_apply_to_prompts_and_fill_json_tasks) {
    auto inv = start({"third"});
    inv.cmd.task.model = "p/m";
    inv.cmd.task.timeout_ms = 5000;
    auto tasks =
        build_tasks(inv.cmd, R"([{"prompt":"first","model":"own/m"},{"prompt":"second"}])");
    EXPECT_EQ(tasks, json::parse(R"([{"prompt":"first","model":"own/m","timeout_ms":5000},
                                     {"prompt":"second","model":"p/m","timeout_ms":5000},
                                     {"prompt":"third","model":"p/m","timeout_ms":5000}])"));
}

TEST(build_tasks, continue_makes_a_follow_up) {
    auto parsed = parse({"start", "--continue", "job_abc", "and now the tests"});
    auto const& inv = std::get<invocation>(parsed);
    EXPECT_EQ(inv.cmd.task.continues, "job_abc");
    EXPECT_EQ(build_tasks(inv.cmd, ""),
              json::parse(R"([{"prompt":"and now the tests","continue":"job_abc"}])"));
}

TEST(build_tasks, rejects_no_tasks_and_bad_documents) {
    EXPECT_THROW(build_tasks(start({}).cmd, ""), usage_error);
    EXPECT_THROW(build_tasks(start({}).cmd, "[]"), usage_error);
    EXPECT_THROW(build_tasks(start({}).cmd, "{\"prompt\":\"x\"}"), usage_error);
    EXPECT_THROW(build_tasks(start({}).cmd, "[\"x\"]"), usage_error);
    EXPECT_THROW(build_tasks(start({}).cmd, "[{"), usage_error);
}

TEST(build_request, params_carry_only_what_was_given) {
    invocation inv;
    inv.cmd.kind = command_kind::status;
    auto status = build_request(inv, "");
    EXPECT_EQ(status.method, "agents_status");
    EXPECT_TRUE(status.params.empty());

    inv.cmd.kind = command_kind::wait;
    inv.cmd.args = {"job_a"};
    inv.globals.session = "s";
    auto wait = build_request(inv, "");
    EXPECT_EQ(json::value(wait.params),
              json::parse(R"({"jobs":["job_a"],"mode":"all","session":"s"})"));

    inv.cmd.kind = command_kind::peek;
    EXPECT_EQ(json::value(build_request(inv, "").params),
              json::parse(R"({"job":"job_a","session":"s"})"));
}

TEST(encode_request, is_a_jsonrpc_envelope_with_id_1) {
    auto body = encode_request({"agents_cancel", json::object{{"jobs", json::array{"x"}}}});
    EXPECT_EQ(json::parse(body), json::parse(R"({"jsonrpc":"2.0","id":1,"method":"agents_cancel",
                                                 "params":{"jobs":["x"]}})"));
}

TEST(decode_response, result_error_and_garbage) {
    auto ok = decode_response(R"({"jsonrpc":"2.0","id":1,"result":{"jobs":[]}})");
    EXPECT_EQ(std::get<json::value>(ok), json::parse(R"({"jobs":[]})"));

    auto failed = decode_response(R"({"jsonrpc":"2.0","id":1,"error":{"code":-32602,
        "message":"invalid params","data":{"field":"tasks[0].prompt","reason":"empty"}}})");
    auto const& error = std::get<rpc_error>(failed);
    EXPECT_EQ(describe(error), "error -32602: invalid params (field tasks[0].prompt: empty)");

    EXPECT_THROW(decode_response("<html>"), transport_error);
    EXPECT_THROW(decode_response("[1]"), transport_error);
}

TEST(describe, limit_errors_name_the_limit) {
    rpc_error error{-32001, "limit exceeded", json::parse(R"({"limit":"max_depth"})")};
    EXPECT_EQ(describe(error), "error -32001: limit exceeded (limit max_depth)");
}

TEST(format_elapsed, units) {
    EXPECT_EQ(format_elapsed(std::nullopt), "-");
    EXPECT_EQ(format_elapsed(1234), "1.2s");
    EXPECT_EQ(format_elapsed(59'999), "59.9s");
    EXPECT_EQ(format_elapsed(61'500), "1m01s");
    EXPECT_EQ(format_elapsed(7'380'000), "2h03m");
}

TEST(read_job, tolerates_missing_and_mistyped_fields) {
    auto minimal = read_job(json::parse(R"({"id":"job_x","state":"not_found"})"));
    EXPECT_EQ(minimal.id, "job_x");
    EXPECT_EQ(minimal.state, "not_found");
    EXPECT_FALSE(minimal.elapsed_ms);
    EXPECT_TRUE(minimal.error.empty());

    auto odd =
        read_job(json::parse(R"({"id":7,"elapsed_ms":"soon","error":"boom","truncated":1})"));
    EXPECT_TRUE(odd.id.empty());
    EXPECT_FALSE(odd.elapsed_ms);
    EXPECT_TRUE(odd.error.empty());
    EXPECT_FALSE(odd.truncated);
    EXPECT_TRUE(read_job(json::value(3)).id.empty());
}

TEST(read_job, error_summary_is_one_line) {
    auto job = read_job(json::parse(R"({"id":"j","state":"failed","error":{"kind":"upstream",
        "phase":"prompt","message":"rate\nlimited","http_status":429}})"));
    EXPECT_EQ(job.error, "upstream/prompt: rate limited (HTTP 429)");
    auto no_phase = read_job(json::parse(R"({"error":{"kind":"timeout","message":"late"}})"));
    EXPECT_EQ(no_phase.error, "timeout: late");
}

char const* const jobs_result = R"({"jobs":[
    {"id":"job_a","state":"completed","description":"sum","elapsed_ms":1234,"output":"hi"},
    {"id":"job_b","state":"failed","elapsed_ms":50,"error":{"kind":"transport","phase":"create","message":"reset"}},
    {"id":"job_c","state":"queued"}]})";

TEST(render, start_lines_skip_missing_fields) {
    auto text = render_result(command_kind::start, json::parse(jobs_result).as_object(), 80);
    EXPECT_EQ(text.out,
              "job_a  completed  sum\n"
              "job_b  failed  transport/create: reset\n"
              "job_c  queued\n");
}

TEST(render, status_table_puts_errors_under_their_row) {
    auto text = render_result(command_kind::status, json::parse(jobs_result).as_object(), 80);
    EXPECT_EQ(text.out,
              "ID     STATE      ELAPSED  DESCRIPTION\n"
              "job_a  completed  1.2s     sum\n"
              "job_b  failed     0.0s\n"
              "    error: transport/create: reset\n"
              "job_c  queued     -\n");
    auto plain =
        render_result(command_kind::status,
                      json::parse(R"({"jobs":[{"id":"j","state":"queued"}]})").as_object(), 80);
    EXPECT_EQ(plain.out, "ID  STATE   ELAPSED  DESCRIPTION\nj   queued  -\n");
}

TEST(render, wait_blocks_and_timeout_note) {
    auto result = json::parse(R"({"done":false,"timed_out":true,"jobs":[
        {"id":"job_a","state":"completed","description":"sum","elapsed_ms":1234,"output":"hi","truncated":true},
        {"id":"job_b","state":"failed","error":{"kind":"timeout","message":"late"}},
        {"id":"job_c","state":"running"}]})");
    auto text = render_result(command_kind::wait, result.as_object(), 80);
    EXPECT_EQ(text.out,
              "== job_a (completed, 1.2s, truncated) sum\nhi\n"
              "== job_b (failed)\nerror: timeout: late\n"
              "== job_c (running)\n");
    EXPECT_EQ(text.err, "agentctl: wait timed out; 1 job(s) not finished\n");
}

TEST(render, peek_prints_partial_output_and_state_on_stderr) {
    auto result = json::parse(R"({"job":{"id":"job_a","state":"running","elapsed_ms":500},
                                  "partial_output":"so far"})");
    auto text = render_result(command_kind::peek, result.as_object(), 80);
    EXPECT_EQ(text.out, "so far\n");
    EXPECT_EQ(text.err, "job_a: running, 0.5s\n");
}

TEST(pretty_json, indents_and_round_trips) {
    auto value = json::parse(R"({"jobs":[{"id":"a\"b","n":1.5,"e":{},"l":[]}],"x":null})");
    auto text = pretty_json(value);
    EXPECT_EQ(json::parse(text), value);
    EXPECT_EQ(text,
              "{\n  \"jobs\": [\n    {\n      \"id\": \"a\\\"b\",\n      \"n\": 1.5,\n"
              "      \"e\": {},\n      \"l\": []\n    }\n  ],\n  \"x\": null\n}\n");
}

TEST(pretty_json, prints_costs_as_plain_decimals) {
    auto value = json::parse(R"({"usage":{"cost":0.0012,"zero":0.0,"big":1e21,"s":"1E-3"}})");
    auto text = pretty_json(value);
    EXPECT_EQ(json::parse(text).at("usage").at("cost"), value.at("usage").at("cost"));
    EXPECT_NE(text.find("\"cost\": 0.0012,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"zero\": 0,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"big\": 1000000000000000000000,"), std::string::npos) << text;
    EXPECT_NE(text.find("\"s\": \"1E-3\""), std::string::npos) << "strings stay as sent";
}

TEST(plain_cost, never_uses_an_exponent) {
    EXPECT_EQ(plain_cost(0.0), "0");
    EXPECT_EQ(plain_cost(-0.0), "0");
    EXPECT_EQ(plain_cost(0.0012), "0.0012");
    EXPECT_EQ(plain_cost(0.0012 + 0.0012 + 0.0012), "0.0036");  // the float noise of a sum goes
    EXPECT_EQ(plain_cost(1.5e-7), "0.00000015");
    EXPECT_EQ(plain_cost(12.5), "12.5");
    EXPECT_EQ(plain_cost(std::nan("")), "-");
}

TEST(total_line, sums_from_the_results_usage) {
    auto listed = json::parse(R"({"jobs":[{"id":"a"},{"id":"b"},{"id":"c"}],
        "usage":{"input_tokens":1200,"output_tokens":340,"cost":3.6000000000000003E-3}})");
    EXPECT_EQ(total_line(listed.as_object(), 3),
              "total: 3 jobs, tokens 1200 in / 340 out, cost 0.0036\n");
    EXPECT_EQ(total_line(listed.as_object(), 1),
              "total: 3 jobs (1 shown), tokens 1200 in / 340 out, cost 0.0036\n");
    auto one = json::parse(
        R"({"jobs":[{"id":"a"}],"usage":{"input_tokens":0,"output_tokens":0,"cost":0}})");
    EXPECT_EQ(total_line(one.as_object(), 1), "total: 1 job, tokens 0 in / 0 out, cost 0\n");
    auto odd = json::parse(R"({"jobs":[],"usage":{"input_tokens":"many","cost":"free"}})");
    EXPECT_EQ(total_line(odd.as_object(), 0), "total: 0 jobs, tokens - in / - out, cost -\n");
    EXPECT_EQ(total_line(json::parse(R"({"jobs":[]})").as_object(), 0), "");
}

TEST(read_job, falls_back_to_the_prompt_preview) {
    auto with = read_job(json::parse(R"({"id":"j","description":"sum","task":{"prompt":"p"}})"));
    EXPECT_EQ(with.label, "sum");
    auto without = read_job(json::parse(R"({"id":"j","task":{"prompt":"Fix the\nbuild"}})"));
    EXPECT_EQ(without.label, "Fix the build");
    EXPECT_TRUE(without.description.empty()) << "the live view keeps its room for the step";
    std::string long_prompt;
    for (int i = 0; i < 70; ++i) long_prompt += "\u00e9";  // two bytes each: cut at characters
    auto cut = read_job(json::object{{"id", "j"}, {"task", json::object{{"prompt", long_prompt}}}});
    EXPECT_EQ(cut.label, long_prompt.substr(0, 59 * 2) + "\u2026");
    EXPECT_TRUE(read_job(json::parse(R"({"id":"j","task":7})")).label.empty());
}

TEST(error_lines, wrap_within_the_width_and_keep_every_character) {
    std::string message =
        "upstream/prompt: the provider refused the request because the context window of "
        "the model was exceeded by 12345 tokens (HTTP 400)";
    for (std::size_t columns : {80u, 40u, 24u}) {
        auto lines = error_lines(message, columns);
        ASSERT_GE(lines.size(), 2u) << columns;
        std::string joined;
        for (auto const& line : lines) {
            EXPECT_LT(line.size(), columns) << line;
            EXPECT_EQ(line.rfind("    ", 0), 0u) << line;
            joined += (joined.empty() ? "" : " ") + line.substr(4);
        }
        EXPECT_EQ(joined, "error: " + message) << columns;
    }
    // A word longer than a line is split; multi-byte characters stay whole.
    auto split = error_lines(std::string(50, 'x') + " \xc3\xa9\xc3\xa9", 20);
    EXPECT_EQ(split, (std::vector<std::string>{
                         "    error:", "    " + std::string(15, 'x'), "    " + std::string(15, 'x'),
                         "    " + std::string(15, 'x'), "    xxxxx \xc3\xa9\xc3\xa9"}));
    EXPECT_TRUE(error_lines("", 80).empty());
    EXPECT_FALSE(error_lines("tiny", 3).empty());  // no terminal is too narrow for the error
}

TEST(wait_exit_code, failure_outranks_timeout) {
    auto code = [](char const* text) { return wait_exit_code(json::parse(text).as_object()); };
    EXPECT_EQ(code(R"({"timed_out":false,"jobs":[{"state":"completed"}]})"), exit_ok);
    EXPECT_EQ(code(R"({"timed_out":false,"jobs":[{"state":"completed"},{"state":"running"}]})"),
              exit_ok);
    EXPECT_EQ(code(R"({"timed_out":true,"jobs":[{"state":"running"}]})"), exit_timed_out);
    EXPECT_EQ(code(R"({"timed_out":true,"jobs":[{"state":"cancelled"},{"state":"running"}]})"),
              exit_failed);
    for (char const* state : {"failed", "cancelled", "interrupted"}) {
        auto result = json::object{{"timed_out", false},
                                   {"jobs", json::array{json::object{{"state", state}}}}};
        EXPECT_EQ(wait_exit_code(result), exit_failed) << state;
    }
    // An unknown id outranks a failure: the caller asked for something that is not there.
    EXPECT_EQ(code(R"({"timed_out":false,"jobs":[{"state":"failed"},{"state":"not_found"}]})"),
              exit_unknown_job);
}

TEST(dashboard_url, token_in_the_fragment_never_the_query) {
    EXPECT_EQ(dashboard_url("http://127.0.0.1:7077", std::string("abc123")),
              "http://127.0.0.1:7077/ui#token=abc123");
    EXPECT_EQ(dashboard_url("http://[::1]:9/proxy/", std::string("a b&c")),
              "http://[::1]:9/proxy/ui#token=a%20b%26c");
    EXPECT_EQ(dashboard_url("http://localhost:7077", std::nullopt), "http://localhost:7077/ui");
    EXPECT_THROW(dashboard_url("unix:/run/agentd.sock", std::string("t")), usage_error);
    EXPECT_THROW(dashboard_url("ftp://x", std::string("t")), usage_error);
}

TEST(parse_cli, ui_takes_open) {
    char const* argv[] = {"agentctl", "ui", "--open"};
    auto parsed = parse_cli(3, argv);
    ASSERT_TRUE(std::holds_alternative<invocation>(parsed));
    EXPECT_EQ(std::get<invocation>(parsed).cmd.kind, command_kind::ui);
    EXPECT_TRUE(std::get<invocation>(parsed).cmd.open_browser);
}

TEST(parse_cli, diff_and_worktree_rm_take_one_job) {
    auto diff = parse({"diff", "job_a", "--json"});
    ASSERT_TRUE(std::holds_alternative<invocation>(diff));
    EXPECT_EQ(std::get<invocation>(diff).cmd.kind, command_kind::diff);
    EXPECT_EQ(std::get<invocation>(diff).cmd.args, std::vector<std::string>{"job_a"});
    EXPECT_TRUE(std::get<invocation>(diff).globals.json);
    auto rm = parse({"worktree", "rm", "job_b"});
    ASSERT_TRUE(std::holds_alternative<invocation>(rm));
    EXPECT_EQ(std::get<invocation>(rm).cmd.kind, command_kind::worktree_rm);
    EXPECT_EQ(std::get<invocation>(rm).cmd.args, std::vector<std::string>{"job_b"});
    for (auto bad : std::vector<std::vector<char const*>>{
             {"diff"}, {"worktree"}, {"worktree", "rm"}, {"diff", "a", "b"}}) {
        auto code = parse(bad);
        ASSERT_TRUE(std::holds_alternative<int>(code)) << bad.size();
        EXPECT_EQ(std::get<int>(code), exit_usage);
    }
}

TEST(render, diff_lists_files_then_patches) {
    auto result = json::parse(R"({"job":{"id":"job_a","state":"completed","elapsed_ms":1500},
        "changes":[{"file":"a.txt","status":"modified","additions":1,"deletions":1,
                    "patch":"-two\n+three\n"},
                   {"file":"n.txt","status":"added","additions":2,"deletions":0,
                    "patch":"+x\n+y"}]})");
    auto text = render_result(command_kind::diff, result.as_object(), 80);
    EXPECT_EQ(text.out,
              "modified  +1     -1      a.txt\nadded     +2     -0      n.txt\n\n"
              "-two\n+three\n+x\n+y\n");
    EXPECT_EQ(text.err, "job_a: completed, 1.5s\n");
    auto none = json::parse(R"({"job":{"id":"job_b","state":"completed"},"changes":[]})");
    EXPECT_EQ(render_result(command_kind::diff, none.as_object(), 80).err, "job_b: no changes\n");
    auto failed = json::parse(R"({"job":{"id":"job_c","state":"completed"},"diff_error":"boom"})");
    EXPECT_NE(render_result(command_kind::diff, failed.as_object(), 80).err.find("diff: boom"),
              std::string::npos);
}

TEST(render, worktree_rm_names_the_directory) {
    auto result = json::parse(R"({"job":{"id":"job_a","worktree":{"directory":"/w/x"}}})");
    EXPECT_EQ(render_result(command_kind::worktree_rm, result.as_object(), 80).out,
              "job_a: worktree /w/x removed\n");
}

}  // namespace
}  // namespace agentctl
