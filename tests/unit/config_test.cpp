// Configuration: the TOML file (every section), each class of error naming the key or flag,
// flags winning over the file, secrets staying out of --print-config, and --print-config output
// reading back to the same configuration.
#include "daemon/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace agentd::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class config_test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("agentd-config-test-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        path_ = (dir_ / "agentd.toml").string();
        ::unsetenv("OPENCODE_SERVER_PASSWORD");
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string write(std::string const& name, std::string const& text) {
        auto path = (dir_ / name).string();
        std::ofstream(path) << text;
        return path;
    }

    // read_startup on `flags` after `--config FILE` with `toml` in FILE.
    startup with_file(std::string const& toml, std::vector<std::string> flags = {}) {
        write("agentd.toml", toml);
        std::vector<std::string> args{"agentd", "--config", path_};
        args.insert(args.end(), flags.begin(), flags.end());
        return read_startup(args);
    }

    // The message of a start-up error, which must exit 2 and not run.
    std::string error_of(startup const& s) {
        EXPECT_FALSE(s.run);
        EXPECT_EQ(s.exit_code, 2);
        return s.output;
    }

    fs::path dir_;
    std::string path_;  // the --config file of with_file()
};

constexpr char const* full_file = R"(
listen = ["127.0.0.1:0", "unix:/tmp/agentd-test.sock"]
state_dir = "/var/lib/agentd-test"
auth = "none"
shutdown_grace_ms = 2500

[upstream]
backend = "openai"
url = "http://127.0.0.1:8080/v1"
model = "qwen"
username = "bob"
timeout_ms = 1234

[limits]
max_running = 4
max_tasks_per_call = 5
max_queued = 6
max_depth = 3
job_timeout_ms = 7000
max_output_bytes = 8000
retention_ms = 9000
default_max_cost = 0.25

[approval]
start = "ask"

[http]
max_body_bytes = 4096
max_connections = 10
read_timeout_ms = 500
allow_hosts = ["agentd.internal"]
allow_origins = ["https://app.example"]

[websocket]
max_outbox_bytes = 2048
idle_timeout_ms = 1500
)";

TEST_F(config_test, every_section_of_a_good_file_is_read) {
    auto s = with_file(full_file);
    ASSERT_TRUE(s.run) << s.output;
    auto const& c = *s.run;
    EXPECT_EQ(c.listen, (std::vector<std::string>{"127.0.0.1:0", "unix:/tmp/agentd-test.sock"}));
    EXPECT_EQ(c.state_dir, "/var/lib/agentd-test");
    EXPECT_EQ(c.auth, auth_mode::none);
    EXPECT_EQ(c.shutdown_grace, 2500ms);
    EXPECT_EQ(c.upstream_backend, jobs::upstream::backend_kind::openai);
    EXPECT_EQ(c.upstream_urls, std::vector<std::string>{"http://127.0.0.1:8080/v1"});
    EXPECT_EQ(c.upstream_model, "qwen");
    EXPECT_EQ(c.upstream_username, "bob");
    EXPECT_EQ(c.upstream_timeout, 1234ms);
    EXPECT_EQ(c.limits.max_running, 4u);
    EXPECT_EQ(c.limits.max_tasks_per_call, 5u);
    EXPECT_EQ(c.limits.max_queued, 6u);
    EXPECT_EQ(c.limits.max_depth, 3);
    EXPECT_EQ(c.limits.job_timeout, 7000ms);
    EXPECT_EQ(c.limits.max_output_bytes, 8000u);
    EXPECT_EQ(c.limits.retention, 9000ms);
    EXPECT_EQ(c.limits.default_max_cost, 0.25);
    EXPECT_EQ(c.approval.start, planner::approval_mode::ask);
    EXPECT_EQ(c.max_body_bytes, 4096u);
    EXPECT_EQ(c.max_connections, 10u);
    EXPECT_EQ(c.read_timeout, 500ms);
    EXPECT_EQ(c.allowed_hosts, std::vector<std::string>{"agentd.internal"});
    EXPECT_EQ(c.allowed_origins, std::vector<std::string>{"https://app.example"});
    EXPECT_EQ(c.ws_max_outbox_bytes, 2048u);
    EXPECT_EQ(c.ws_idle_timeout, 1500ms);
}

TEST_F(config_test, no_file_and_no_flags_give_the_defaults) {
    auto s = read_startup({"agentd"});
    ASSERT_TRUE(s.run) << s.output;
    config const defaults;
    EXPECT_EQ(s.run->listen, defaults.listen);
    EXPECT_EQ(s.run->limits.max_running, defaults.limits.max_running);
    EXPECT_EQ(s.run->state_dir, default_state_dir());
}

TEST_F(config_test, an_unknown_key_is_named) {
    auto s = with_file("[limits]\nmax_runing = 4\n");
    EXPECT_EQ(error_of(s), "agentd: config " + path_ + ": unknown key limits.max_runing\n");
    EXPECT_EQ(error_of(with_file("colour = \"blue\"\n")),
              "agentd: config " + path_ + ": unknown key colour\n");
}

TEST_F(config_test, a_wrong_type_is_named) {
    EXPECT_EQ(
        error_of(with_file("[limits]\nmax_running = \"4\"\n")),
        "agentd: config " + path_ + ": limits.max_running: expected an integer, got a string\n");
    EXPECT_EQ(
        error_of(with_file("[limits]\nmax_running = 1.5\n")),
        "agentd: config " + path_ + ": limits.max_running: expected an integer, got a float\n");
    EXPECT_EQ(error_of(with_file("listen = \"127.0.0.1:0\"\n")),
              "agentd: config " + path_ + ": listen: expected an array of strings, got a string\n");
    EXPECT_EQ(error_of(with_file("auth = true\n")),
              "agentd: config " + path_ + ": auth: expected a string, got a boolean\n");
    EXPECT_EQ(error_of(with_file("[upstream.url]\nhost = \"x\"\n")),
              "agentd: config " + path_ + ": unknown key upstream.url.host\n");
}

TEST_F(config_test, an_out_of_range_value_is_named) {
    EXPECT_EQ(error_of(with_file("[limits]\nmax_running = 0\n")),
              "agentd: config " + path_ + ": limits.max_running: 0 is out of range [1, 100000]\n");
    EXPECT_EQ(error_of(with_file("auth = \"maybe\"\n")),
              "agentd: config " + path_ + ": auth: 'maybe' is not one of token, none\n");
    auto bad_listen = error_of(with_file("listen = [\"localhost:80\"]\n"));
    EXPECT_NE(bad_listen.find(": listen: 'localhost:80': localhost is not an IP address"),
              std::string::npos)
        << bad_listen;
    EXPECT_NE(error_of(with_file("listen = [\"unix:\"]\n")).find("listen: 'unix:': no socket path"),
              std::string::npos);
}

TEST_F(config_test, a_syntax_error_has_its_line_and_a_missing_file_is_named) {
    auto syntax = error_of(with_file("[limits]\nmax_running = = 4\n"));
    EXPECT_EQ(syntax.rfind("agentd: config " + path_ + ": line 2, column ", 0), 0u) << syntax;
    auto missing = error_of(read_startup({"agentd", "--config", (dir_ / "nope.toml").string()}));
    EXPECT_NE(missing.find("nope.toml: cannot read: No such file or directory"), std::string::npos)
        << missing;
}

TEST_F(config_test, flags_win_over_the_file) {
    auto s = with_file(full_file, {"--max-running", "9", "--listen", "[::1]:0", "--auth", "token",
                                   "--allow-host", "a.test", "--allow-host", "b.test"});
    ASSERT_TRUE(s.run) << s.output;
    EXPECT_EQ(s.run->limits.max_running, 9u);
    EXPECT_EQ(s.run->listen, std::vector<std::string>{"[::1]:0"});
    EXPECT_EQ(s.run->auth, auth_mode::token);
    EXPECT_EQ(s.run->allowed_hosts, (std::vector<std::string>{"a.test", "b.test"}));
    EXPECT_EQ(s.run->limits.max_queued, 6u);  // the file's, where no flag was given
}

// Several upstream servers (issue #19): one string or an array in the file; the repeatable flag
// replaces the file's whole list.
TEST_F(config_test, upstream_url_is_a_string_or_an_array_and_the_flags_replace_the_list) {
    auto one = with_file("[upstream]\nurl = \"http://127.0.0.1:1\"\n");
    ASSERT_TRUE(one.run) << one.output;
    EXPECT_EQ(one.run->upstream_urls, std::vector<std::string>{"http://127.0.0.1:1"});
    auto toml = std::string(
        "[upstream]\nurl = [\"http://127.0.0.1:1\", \"http://127.0.0.1:2\"]\n"
        "max_running_per_server = 3\nhealth_interval_ms = 500\n");
    auto many = with_file(toml);
    ASSERT_TRUE(many.run) << many.output;
    EXPECT_EQ(many.run->upstream_urls,
              (std::vector<std::string>{"http://127.0.0.1:1", "http://127.0.0.1:2"}));
    EXPECT_EQ(many.run->upstream_max_running_per_server, 3u);
    EXPECT_EQ(many.run->upstream_health_interval, 500ms);
    auto flags = with_file(toml, {"--upstream-url", "http://127.0.0.1:3", "--upstream-url",
                                  "http://127.0.0.1:4", "--upstream-max-running-per-server", "1"});
    ASSERT_TRUE(flags.run) << flags.output;
    EXPECT_EQ(flags.run->upstream_urls,
              (std::vector<std::string>{"http://127.0.0.1:3", "http://127.0.0.1:4"}));
    EXPECT_EQ(flags.run->upstream_max_running_per_server, 1u);
    EXPECT_EQ(read_startup({"agentd"}).run->upstream_max_running_per_server, 0u);
    EXPECT_EQ(read_startup({"agentd"}).run->upstream_health_interval, 2000ms);
    EXPECT_EQ(error_of(with_file("[upstream]\nurl = []\n")),
              "agentd: config " + path_ + ": upstream.url: expected at least one\n");
    EXPECT_EQ(error_of(with_file("[upstream]\nurl = [\"http://a:1\", \"http://a:1\"]\n")),
              "agentd: config " + path_ + ": upstream.url: 'http://a:1' is listed twice\n");
}

TEST_F(config_test, a_bad_flag_is_named) {
    EXPECT_EQ(error_of(read_startup({"agentd", "--max-running", "lots"})),
              "agentd: --max-running: 'lots' is not an integer\n");
    EXPECT_EQ(error_of(read_startup({"agentd", "--ws-idle-timeout-ms", "5"})),
              "agentd: --ws-idle-timeout-ms: 5 is out of range [100, 3600000]\n");
    EXPECT_EQ(read_startup({"agentd", "--no-such-flag"}).exit_code, 2);
}

TEST_F(config_test, token_mode_is_0600_or_0640_from_the_file_or_the_flag) {
    EXPECT_EQ(read_startup({"agentd"}).run->token_mode, 0600u);
    auto file = with_file("auth = \"token\"\ntoken_mode = \"0640\"\n");
    ASSERT_TRUE(file.run) << file.output;
    EXPECT_EQ(file.run->token_mode, 0640u);
    auto flag = with_file("token_mode = \"0640\"\n", {"--token-mode", "0600"});
    ASSERT_TRUE(flag.run) << flag.output;
    EXPECT_EQ(flag.run->token_mode, 0600u);
    EXPECT_EQ(error_of(read_startup({"agentd", "--token-mode", "0644"})),
              "agentd: --token-mode: '0644' is not one of 0600, 0640\n");
    EXPECT_EQ(error_of(with_file("token_mode = \"0666\"\n")),
              "agentd: config " + path_ + ": token_mode: '0666' is not one of 0600, 0640\n");
    EXPECT_EQ(error_of(with_file("token_mode = 640\n")),
              "agentd: config " + path_ + ": token_mode: expected a string, got an integer\n");
}

TEST_F(config_test, default_max_cost_is_a_number_from_the_file_or_the_flag) {
    EXPECT_FALSE(read_startup({"agentd"}).run->limits.default_max_cost);
    auto whole = with_file("[limits]\ndefault_max_cost = 2\n");
    ASSERT_TRUE(whole.run) << whole.output;
    EXPECT_EQ(whole.run->limits.default_max_cost, 2.0);
    auto flag = with_file("[limits]\ndefault_max_cost = 2\n", {"--default-max-cost", "0.05"});
    ASSERT_TRUE(flag.run) << flag.output;
    EXPECT_EQ(flag.run->limits.default_max_cost, 0.05);
    EXPECT_EQ(error_of(read_startup({"agentd", "--default-max-cost", "cheap"})),
              "agentd: --default-max-cost: 'cheap' is not a number\n");
    EXPECT_EQ(error_of(read_startup({"agentd", "--default-max-cost=-1"})),
              "agentd: --default-max-cost: -1 is out of range [0, 1000000000]\n");
    EXPECT_EQ(error_of(read_startup({"agentd", "--default-max-cost", "nan"})),
              "agentd: --default-max-cost: nan is out of range [0, 1000000000]\n");
    EXPECT_EQ(
        error_of(with_file("[limits]\ndefault_max_cost = \"1\"\n")),
        "agentd: config " + path_ + ": limits.default_max_cost: expected a number, got a string\n");
}

TEST_F(config_test, the_api_key_sources_exclude_each_other_and_a_flag_replaces_the_file) {
    auto key_file = write("key", "sk-from-file\n");
    auto both = with_file("[upstream]\napi_key_env = \"X\"\napi_key_file = \"" + key_file + "\"\n");
    EXPECT_NE(error_of(both).find("upstream.api_key_env and upstream.api_key_file exclude"),
              std::string::npos);
    ::setenv("AGENTD_TEST_KEY", "sk-from-env", 1);
    auto s = with_file("[upstream]\napi_key_file = \"" + key_file + "\"\n",
                       {"--upstream-api-key-env", "AGENTD_TEST_KEY"});
    ASSERT_TRUE(s.run) << s.output;
    EXPECT_EQ(s.run->upstream_api_key, "sk-from-env");
    EXPECT_FALSE(s.run->upstream_api_key_file);
    auto from_file = with_file("[upstream]\napi_key_file = \"" + key_file + "\"\n");
    ASSERT_TRUE(from_file.run) << from_file.output;
    EXPECT_EQ(from_file.run->upstream_api_key, "sk-from-file");
    ::unsetenv("AGENTD_TEST_KEY");
    EXPECT_EQ(error_of(with_file("[upstream]\napi_key_env = \"AGENTD_TEST_KEY\"\n")),
              "agentd: config " + path_ +
                  ": upstream.api_key_env: $AGENTD_TEST_KEY is not set or empty\n");
}

TEST_F(config_test, print_config_redacts_secrets) {
    ::setenv("AGENTD_TEST_KEY", "sk-very-secret", 1);
    auto password = write("password", "hunter2-secret\n");
    auto s = with_file(
        "[upstream]\napi_key_env = \"AGENTD_TEST_KEY\"\npassword_file = \"" + password + "\"\n",
        {"--print-config"});
    ::unsetenv("AGENTD_TEST_KEY");
    EXPECT_FALSE(s.run);
    EXPECT_EQ(s.exit_code, 0);
    EXPECT_EQ(s.output.find("sk-very-secret"), std::string::npos) << s.output;
    EXPECT_EQ(s.output.find("hunter2"), std::string::npos) << s.output;
    EXPECT_NE(s.output.find("# upstream API key: set (redacted)"), std::string::npos) << s.output;
    EXPECT_NE(s.output.find("# upstream password: set (redacted)"), std::string::npos) << s.output;
    EXPECT_NE(s.output.find("api_key_env = 'AGENTD_TEST_KEY'"), std::string::npos) << s.output;
}

TEST_F(config_test, log_level_and_format_come_from_the_file_or_the_flags) {
    auto defaults = read_startup({"agentd"});
    ASSERT_TRUE(defaults.run) << defaults.output;
    EXPECT_EQ(defaults.run->log_level, log::level::info);
    EXPECT_EQ(defaults.run->log_format, log::format::text);
    auto file = with_file("[log]\nlevel = \"debug\"\nformat = \"json\"\n");
    ASSERT_TRUE(file.run) << file.output;
    EXPECT_EQ(file.run->log_level, log::level::debug);
    EXPECT_EQ(file.run->log_format, log::format::json);
    auto flags = with_file("[log]\nlevel = \"debug\"\n", {"--log-level", "warn"});
    ASSERT_TRUE(flags.run) << flags.output;
    EXPECT_EQ(flags.run->log_level, log::level::warn);
    EXPECT_EQ(
        error_of(with_file("[log]\nlevel = \"loud\"\n")),
        "agentd: config " + path_ + ": log.level: 'loud' is not one of error, warn, info, debug\n");
    EXPECT_EQ(error_of(read_startup({"agentd", "--log-format", "xml"})),
              "agentd: --log-format: 'xml' is not one of text, json\n");
    auto help = read_startup({"agentd", "--help"});
    EXPECT_NE(help.output.find("--log-level"), std::string::npos) << help.output;
    EXPECT_NE(help.output.find("--log-format"), std::string::npos) << help.output;
}

TEST_F(config_test, print_config_reads_back_to_the_same_config) {
    auto first = with_file(full_file, {"--max-queued", "77", "--print-config"});
    ASSERT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("[limits]"), std::string::npos);
    EXPECT_NE(first.output.find("max_queued = 77"), std::string::npos) << first.output;
    auto printed = write("printed.toml", first.output);
    auto again = read_startup({"agentd", "--config", printed});
    ASSERT_TRUE(again.run) << again.output;
    EXPECT_EQ(config_to_toml(*again.run), first.output);
    EXPECT_EQ(again.run->limits.max_queued, 77u);
    EXPECT_EQ(again.run->listen,
              (std::vector<std::string>{"127.0.0.1:0", "unix:/tmp/agentd-test.sock"}));
    // The defaults print and read back too: every key has a printable default.
    auto defaults = read_startup({"agentd", "--print-config"});
    auto reread = read_startup({"agentd", "--config", write("defaults.toml", defaults.output)});
    ASSERT_TRUE(reread.run) << reread.output;
    EXPECT_EQ(config_to_toml(*reread.run), defaults.output);
}

}  // namespace
}  // namespace agentd::daemon
