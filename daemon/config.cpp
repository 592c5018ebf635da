// Flag parsing with CLI11 into `config`, with validation that names the offending flag.
#include "daemon/config.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

namespace agentd::daemon {

std::string default_state_dir() {
    if (char const* d = std::getenv("STATE_DIRECTORY"); d && *d) {
        std::string s(d);
        return s.substr(0, s.find(':'));  // systemd may list several
    }
    if (char const* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/agentd";
    char const* home = std::getenv("HOME");
    return std::string(home && *home ? home : ".") + "/.local/state/agentd";
}

namespace {

// A bearer key goes into an HTTP header as it is: printable ASCII without spaces.
bool valid_key(std::string const& key) {
    return !key.empty() &&
           std::all_of(key.begin(), key.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
}

// The API key named by --upstream-api-key-env or --upstream-api-key-file; an error message
// (which never quotes the key) when it cannot be had.
std::variant<std::optional<std::string>, std::string> load_api_key(std::string const& env_var,
                                                                   std::string const& file) {
    std::string key;
    if (!env_var.empty()) {
        char const* v = std::getenv(env_var.c_str());
        if (!v || !*v) return "--upstream-api-key-env: $" + env_var + " is not set or empty";
        key = v;
    } else if (!file.empty()) {
        std::ifstream in(file);
        if (!in) return "--upstream-api-key-file: cannot read " + file;
        std::ostringstream text;
        text << in.rdbuf();
        key = text.str();
        while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    } else {
        return std::optional<std::string>{};
    }
    if (!valid_key(key))
        return std::string(env_var.empty() ? "--upstream-api-key-file" : "--upstream-api-key-env") +
               ": the key is empty or has spaces or control characters";
    return std::optional<std::string>(std::move(key));
}

}  // namespace

std::variant<config, int> parse_config(int argc, char** argv) {
    config c;
    CLI::App app{"agentd: runs LLM sub-agent jobs on an upstream session API"};
    app.set_version_flag("--version", "agentd 0.1.0");
    std::vector<std::string> listen;
    std::string auth = "token";
    std::string approval = "auto";
    std::string dispatch = "planned";
    std::int64_t job_timeout_ms = c.limits.job_timeout.count();
    std::int64_t retention_ms = c.limits.retention.count();
    std::int64_t upstream_timeout_ms = c.upstream_timeout.count();
    std::string api_key_env;
    std::string api_key_file;
    std::int64_t read_timeout_ms = c.read_timeout.count();
    std::int64_t shutdown_grace_ms = c.shutdown_grace.count();
    std::int64_t ws_idle_timeout_ms = c.ws_idle_timeout.count();

    app.add_option(
        "--listen", listen,
        "Address to listen on: 127.0.0.1:7077, [::1]:7077 (port 0 picks one); repeatable");
    app.add_option("--state-dir", c.state_dir, "State directory (token, database)");
    app.add_option("--auth", auth, "token | none (none only on loopback)")
        ->check(CLI::IsMember({"token", "none"}));
    app.add_option("--upstream-backend", c.upstream_backend,
                   "opencode (an `opencode serve`) | openai (chat completions)")
        ->check(CLI::IsMember({"opencode", "openai"}));
    app.add_option("--upstream-url", c.upstream_url,
                   "Upstream base URL (openai: e.g. http://127.0.0.1:8080/v1 or https://…/v1)");
    app.add_option("--upstream-model", c.upstream_model,
                   "openai: model of tasks that name none (a task's model is sent verbatim)");
    auto* key_env = app.add_option("--upstream-api-key-env", api_key_env,
                                   "openai: environment variable holding the API key");
    app.add_option("--upstream-api-key-file", api_key_file,
                   "openai: file holding the API key (sent as a bearer token, never logged)")
        ->excludes(key_env);
    app.add_option("--upstream-ca-file", c.upstream_ca_file,
                   "https upstream: extra CA bundle (PEM) trusted besides the system's")
        ->check(CLI::ExistingFile);
    app.add_option("--upstream-username", c.upstream_username,
                   "Upstream basic-auth user (password from $OPENCODE_SERVER_PASSWORD)");
    app.add_option("--upstream-timeout-ms", upstream_timeout_ms,
                   "Deadline of session create, abort and read calls")
        ->check(CLI::Range(1, 3'600'000));
    app.add_option("--max-running", c.limits.max_running, "Concurrent upstream prompts")
        ->check(CLI::Range(1, 100'000));
    app.add_option("--max-tasks-per-call", c.limits.max_tasks_per_call, "Tasks per agents_start")
        ->check(CLI::Range(1, 10'000));
    app.add_option("--max-queued", c.limits.max_queued, "Jobs waiting for the launch gate")
        ->check(CLI::Range(0, 10'000'000));
    app.add_option("--max-depth", c.limits.max_depth, "Nesting depth of sub-agents")
        ->check(CLI::Range(1, 64));
    app.add_option("--job-timeout-ms", job_timeout_ms, "Default wall-clock deadline of a job")
        ->check(CLI::Range(1LL, 7 * 24 * 3'600'000LL));
    app.add_option("--max-output-bytes", c.limits.max_output_bytes, "Cap of a job's output")
        ->check(CLI::Range(1, 1 << 30));
    app.add_option("--retention-ms", retention_ms, "How long finished jobs stay queryable")
        ->check(CLI::Range(1LL, 365 * 24 * 3'600'000LL));
    app.add_option("--max-body-bytes", c.max_body_bytes, "Largest request body")
        ->check(CLI::Range(64, 1 << 30));
    app.add_option("--max-connections", c.max_connections, "Open client connections")
        ->check(CLI::Range(1, 1'000'000));
    app.add_option("--read-timeout-ms", read_timeout_ms, "Deadline to read one request")
        ->check(CLI::Range(10, 3'600'000));
    app.add_option("--ws-max-outbox-bytes", c.ws_max_outbox_bytes,
                   "WebSocket: unsent bytes a slow reader may hold before it is disconnected")
        ->check(CLI::Range(1024, 1 << 30));
    app.add_option("--ws-idle-timeout-ms", ws_idle_timeout_ms,
                   "WebSocket: silence before a ping (at half) and then a close")
        ->check(CLI::Range(100, 3'600'000));
    app.add_option("--shutdown-grace-ms", shutdown_grace_ms,
                   "On SIGTERM, how long running jobs may finish before they are interrupted")
        ->check(CLI::Range(0LL, 3'600'000LL));
    app.add_option("--approval-start", approval, "Approval of agents_start: auto | deny | ask")
        ->check(CLI::IsMember({"auto", "deny", "ask"}));
    app.add_option("--dispatch", dispatch,
                   "planned | serial (serial: the benchmark baseline of a global launch lock)")
        ->check(CLI::IsMember({"planned", "serial"}));
    app.add_option("--allow-host", c.allowed_hosts, "Extra Host name to accept; repeatable");
    app.add_option("--allow-origin", c.allowed_origins, "Extra Origin to accept; repeatable");

    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    if (!listen.empty()) c.listen = listen;
    if (c.state_dir.empty()) c.state_dir = default_state_dir();
    c.auth = auth == "none" ? auth_mode::none : auth_mode::token;
    c.approval.start = approval == "deny"  ? planner::approval_mode::deny
                       : approval == "ask" ? planner::approval_mode::ask
                                           : planner::approval_mode::auto_approve;
    c.dispatch = dispatch == "serial" ? dispatch_mode::serial : dispatch_mode::planned;
    c.limits.job_timeout = std::chrono::milliseconds(job_timeout_ms);
    c.limits.retention = std::chrono::milliseconds(retention_ms);
    c.upstream_timeout = std::chrono::milliseconds(upstream_timeout_ms);
    c.read_timeout = std::chrono::milliseconds(read_timeout_ms);
    c.shutdown_grace = std::chrono::milliseconds(shutdown_grace_ms);
    c.ws_idle_timeout = std::chrono::milliseconds(ws_idle_timeout_ms);
    if (char const* pw = std::getenv("OPENCODE_SERVER_PASSWORD"); pw && *pw)
        c.upstream_password = pw;
    auto key = load_api_key(api_key_env, api_key_file);
    if (auto const* error = std::get_if<std::string>(&key)) {
        std::cerr << "agentd: " << *error << "\n";
        return 2;
    }
    c.upstream_api_key = std::get<std::optional<std::string>>(std::move(key));
    return c;
}

}  // namespace agentd::daemon
