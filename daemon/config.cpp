// The configuration's one table of settings: each has a TOML key, a flag, a type and a range, so
// the file, the flags and --print-config cannot drift apart. Values are checked the same way from
// both sources; an error names the key or flag and leaves with exit code 2.
#include "daemon/config.hpp"

#include "common/names.hpp"
#include "common/state_dir.hpp"
#include "daemon/config_toml.hpp"
#include "daemon/server.hpp"
#include "protocol/enum_names.hpp"
#include "protocol/version.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

namespace agentd::daemon {

std::string default_state_dir() {
    auto dir = common::default_state_dir();
    // Without HOME agentd still starts, under its working directory.
    return dir.empty() ? "./.local/state/agentd" : dir.string();
}

namespace {

using value = toml_value;

enum class kind { integer, decimal, text, list };

struct setting {
    setting(std::string k, std::string f, std::string h, kind t)
        : key(std::move(k)), flag(std::move(f)), help(std::move(h)), type(t) {}

    std::string key;  // in the file, dotted: "limits.max_running"
    std::string flag;
    std::string help;
    kind type;
    std::int64_t min = 0;
    std::int64_t max = 0;
    std::vector<std::string> choices;  // text: the accepted words, or empty for any text
    bool one_or_many = false;          // list: the file may give one string for a list of one
    std::function<std::optional<std::string>(std::string const&)> check_item;  // text, list items
    std::function<void(config&, value const&)> set;                            // value is checked
    std::function<std::optional<value>(config const&)> get;                    // nullopt: unset
};

std::int64_t as_count(std::chrono::milliseconds ms) {
    return ms.count();
}
template <class T>
std::int64_t as_count(T n) {
    return static_cast<std::int64_t>(n);
}
void assign(std::chrono::milliseconds& field, std::int64_t v) {
    field = std::chrono::milliseconds(v);
}
template <class T>
void assign(T& field, std::int64_t v) {
    field = static_cast<T>(v);
}

std::optional<value> text_of(std::string const& s) {
    return value(s);
}
std::optional<value> text_of(std::optional<std::string> const& s) {
    if (!s) return std::nullopt;
    return value(*s);
}

// `field` is a generic lambda returning a reference into the config, for both constnesses.
template <class Field>
setting number(std::string key, std::string flag, std::string help, std::int64_t min,
               std::int64_t max, Field field) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::integer);
    s.min = min;
    s.max = max;
    s.set = [field](config& c, value const& v) { assign(field(c), std::get<std::int64_t>(v)); };
    s.get = [field](config const& c) -> std::optional<value> { return as_count(field(c)); };
    return s;
}

// A decimal that may be unset (`field` is a std::optional<double>&); an integer is accepted too.
// Bounds are whole numbers, which is all the decimal settings need.
template <class Field>
setting decimal(std::string key, std::string flag, std::string help, std::int64_t min,
                std::int64_t max, Field field) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::decimal);
    s.min = min;
    s.max = max;
    s.set = [field](config& c, value const& v) {
        auto const* n = std::get_if<std::int64_t>(&v);
        field(c) = n ? static_cast<double>(*n) : std::get<double>(v);
    };
    s.get = [field](config const& c) -> std::optional<value> {
        if (!field(c)) return std::nullopt;
        return value(*field(c));
    };
    return s;
}

template <class Field>
setting text(std::string key, std::string flag, std::string help, Field field,
             std::function<std::optional<std::string>(std::string const&)> check = {}) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::text);
    s.check_item = std::move(check);
    s.set = [field](config& c, value const& v) { field(c) = std::get<std::string>(v); };
    s.get = [field](config const& c) { return text_of(field(c)); };
    return s;
}

// The accepted words are the enum's wire names (protocol/enum_names.hpp), in declaration order.
template <class E, class Field>
setting choice(std::string key, std::string flag, std::string help, Field field) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::text);
    for (auto word : protocol::enum_names<E>) s.choices.emplace_back(word);
    s.set = [field](config& c, value const& v) {
        if (auto e = protocol::from_string<E>(std::get<std::string>(v))) field(c) = *e;
    };
    s.get = [field](config const& c) -> std::optional<value> {
        return value(std::string(protocol::to_string(field(c))));
    };
    return s;
}

template <class Field>
setting list(std::string key, std::string flag, std::string help, Field field,
             std::function<std::optional<std::string>(std::string const&)> check = {}) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::list);
    s.check_item = std::move(check);
    s.set = [field](config& c, value const& v) {
        if (auto const* one = std::get_if<std::string>(&v))
            field(c) = {*one};
        else
            field(c) = std::get<std::vector<std::string>>(v);
    };
    s.get = [field](config const& c) -> std::optional<value> { return field(c); };
    return s;
}

// An enum outside the wire protocol (the log's level and format): `words` name its values in
// declaration order.
template <class E, class Field>
setting ordinal(std::string key, std::string flag, std::string help, std::vector<std::string> words,
                Field field) {
    setting s(std::move(key), std::move(flag), std::move(help), kind::text);
    s.choices = words;
    s.set = [field, words](config& c, value const& v) {
        auto it = std::find(words.begin(), words.end(), std::get<std::string>(v));
        field(c) = static_cast<E>(it - words.begin());
    };
    s.get = [field, words](config const& c) -> std::optional<value> {
        return value(words[static_cast<std::size_t>(field(c))]);
    };
    return s;
}

std::optional<std::string> readable_file(std::string const& path) {
    if (std::ifstream(path)) return std::nullopt;
    return "cannot read " + path;
}

constexpr std::int64_t hour_ms = 3'600'000;

// Text, as modes are written in octal and a TOML 0640 would be the decimal 640.
setting token_mode() {
    setting s("token_mode", "--token-mode",
              "Mode of STATE_DIR/token: 0600 | 0640 (group-readable, for the system service's "
              "group agentd); an existing token is changed to it",
              kind::text);
    s.choices = {"0600", "0640"};
    s.set = [](config& c, value const& v) {
        c.token_mode = std::get<std::string>(v) == "0640" ? 0640 : 0600;
    };
    s.get = [](config const& c) -> std::optional<value> {
        return value(fmt::format("{:04o}", c.token_mode));
    };
    return s;
}

// The two places an API key may come from exclude each other: choosing one drops the other, so
// a flag replaces what the file chose (read_startup refuses a file that sets both).
setting api_key_source(std::string key, std::string flag, std::string help,
                       std::optional<std::string> config::*chosen,
                       std::optional<std::string> config::*other) {
    auto s = text(
        std::move(key), std::move(flag),
        std::move(help), [chosen](auto& c) -> auto& { return c.*chosen; });
    s.set = [chosen, other](config& c, value const& v) {
        c.*chosen = std::get<std::string>(v);
        (c.*other).reset();
    };
    return s;
}

// user:password@ in a URL, with the password replaced, for --print-config.
std::string mask_password(std::string const& url) {
    auto scheme = url.find("://");
    auto at = url.find('@', scheme == std::string::npos ? 0 : scheme + 3);
    if (scheme == std::string::npos || at == std::string::npos) return url;
    auto colon = url.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at) return url;
    return url.substr(0, colon + 1) + "***" + url.substr(at);
}

setting store_url() {
    auto s = text(
        "store.url", "--store", "PostgreSQL store: postgres://[USER[:PASSWORD]@]HOST[:PORT]/DB",
        [](auto& c) -> auto& { return c.store_url; },
        [](std::string const& url) -> std::optional<std::string> {
            if (url.starts_with("postgres://") || url.starts_with("postgresql://"))
                return std::nullopt;
            return "must be a postgres:// or postgresql:// URL";
        });
    s.get = [](config const& c) -> std::optional<value> {
        if (!c.store_url) return std::nullopt;
        return value(mask_password(*c.store_url));
    };
    return s;
}

// A string or an array of strings in the file (several servers: jobs/upstream/pool.hpp); the
// flag is repeatable, and the flags replace the file's whole list.
setting upstream_urls() {
    auto s = list(
        "upstream.url", "--upstream-url",
        "Upstream base URL (openai: e.g. http://127.0.0.1:8080/v1 or https://…/v1); repeatable: "
        "several servers of one backend, each job on the least busy healthy one",
        [](auto& c) -> auto& { return c.upstream_urls; });
    s.one_or_many = true;
    return s;
}

std::vector<setting> settings() {
    using planner::approval_mode;
    return {
        list(
            "listen", "--listen",
            "Address to listen on: 127.0.0.1:7077, [::1]:7077 (port 0 picks one), "
            "unix:/PATH; repeatable",
            [](auto& c) -> auto& { return c.listen; }, listen_spec_error),
        text(
            "state_dir", "--state-dir", "State directory (token, database)",
            [](auto& c) -> auto& { return c.state_dir; }),
        // Principals (issue #19): `auth = "token"` in a file is read as auth.mode (auth_key).
        choice<auth_mode>(
            "auth.mode", "--auth", "token | none (none only on loopback and unix:)",
            [](auto& c) -> auto& { return c.auth; }),
        text(
            "auth.tokens_file", "--tokens-file",
            "TOML file of named principals' token hashes (agentctl token add); default "
            "STATE_DIR/tokens.toml when it exists; reloaded on SIGHUP",
            [](auto& c) -> auto& { return c.tokens_file; }),
        choice<store_backend>(
            "store.backend", "--store-backend",
            "sqlite ($STATE_DIR/agentd.db) | postgres (store.url); --store URL implies postgres",
            [](auto& c) -> auto& { return c.store; }),
        store_url(),
        text(
            "store.instance", "--store-instance",
            "PostgreSQL: this instance's name, its jobs' lease owner ([A-Za-z0-9._-]{1,64}); "
            "default: kept in STATE_DIR/instance",
            [](auto& c) -> auto& { return c.store_instance; },
            [](std::string const& name) -> std::optional<std::string> {
                if (common::valid_name(name)) return std::nullopt;
                return "want 1 to 64 of [A-Za-z0-9._-]";
            }),
        number(
            "store.lease_ttl_ms", "--store-lease-ttl-ms",
            "PostgreSQL: a running job's lease; an instance silent this long loses its jobs to "
            "another",
            300, hour_ms, [](auto& c) -> auto& { return c.store_lease_ttl; }),
        token_mode(),
        number(
            "shutdown_grace_ms", "--shutdown-grace-ms",
            "On SIGTERM, how long running jobs may finish before they are interrupted", 0, hour_ms,
            [](auto& c) -> auto& { return c.shutdown_grace; }),
        choice<jobs::upstream::backend_kind>(
            "upstream.backend", "--upstream-backend",
            "opencode (an `opencode serve`) | openai (chat completions)",
            [](auto& c) -> auto& { return c.upstream_backend; }),
        upstream_urls(),
        number(
            "upstream.max_running_per_server", "--upstream-max-running-per-server",
            "Running jobs per upstream server (0: no cap; limits.max_running caps the instance)", 0,
            100'000, [](auto& c) -> auto& { return c.upstream_max_running_per_server; }),
        number(
            "upstream.health_interval_ms", "--upstream-health-interval-ms",
            "Several upstream servers: how often each one's health is checked", 10, hour_ms,
            [](auto& c) -> auto& { return c.upstream_health_interval; }),
        text(
            "upstream.model", "--upstream-model",
            "openai: model of tasks that name none (a task's model is sent verbatim)",
            [](auto& c) -> auto& { return c.upstream_model; }),
        api_key_source("upstream.api_key_env", "--upstream-api-key-env",
                       "openai: environment variable holding the API key",
                       &config::upstream_api_key_env, &config::upstream_api_key_file),
        api_key_source("upstream.api_key_file", "--upstream-api-key-file",
                       "openai: file holding the API key (sent as a bearer token, never logged)",
                       &config::upstream_api_key_file, &config::upstream_api_key_env),
        text(
            "upstream.ca_file", "--upstream-ca-file",
            "https upstream: extra CA bundle (PEM) trusted besides the system's",
            [](auto& c) -> auto& { return c.upstream_ca_file; }, readable_file),
        text(
            "upstream.username", "--upstream-username", "Upstream basic-auth user",
            [](auto& c) -> auto& { return c.upstream_username; }),
        text(
            "upstream.password_file", "--upstream-password-file",
            "File holding the upstream basic-auth password (else $OPENCODE_SERVER_PASSWORD)",
            [](auto& c) -> auto& { return c.upstream_password_file; }),
        choice<protocol::permission_policy>(
            "upstream.permissions", "--upstream-permissions",
            "Sub-agents' permission and question requests: ask (the caller answers) | allow | deny",
            [](auto& c) -> auto& { return c.limits.permissions; }),
        number(
            "upstream.timeout_ms", "--upstream-timeout-ms",
            "Deadline of session create, abort and read calls", 1, hour_ms,
            [](auto& c) -> auto& { return c.upstream_timeout; }),
        number(
            "limits.max_running", "--max-running", "Concurrent upstream prompts", 1, 100'000,
            [](auto& c) -> auto& { return c.limits.max_running; }),
        number(
            "limits.max_tasks_per_call", "--max-tasks-per-call", "Tasks per agents_start", 1,
            10'000, [](auto& c) -> auto& { return c.limits.max_tasks_per_call; }),
        number(
            "limits.max_queued", "--max-queued", "Jobs waiting for the launch gate", 0, 10'000'000,
            [](auto& c) -> auto& { return c.limits.max_queued; }),
        number(
            "limits.max_depth", "--max-depth", "Nesting depth of sub-agents", 1, 64,
            [](auto& c) -> auto& { return c.limits.max_depth; }),
        number(
            "limits.job_timeout_ms", "--job-timeout-ms", "Default wall-clock deadline of a job", 1,
            7 * 24 * hour_ms, [](auto& c) -> auto& { return c.limits.job_timeout; }),
        number(
            "limits.idle_timeout_ms", "--idle-timeout-ms",
            "A running job with no upstream progress this long fails (0: off)", 0, 7 * 24 * hour_ms,
            [](auto& c) -> auto& { return c.limits.idle_timeout; }),
        number(
            "limits.input_timeout_ms", "--input-timeout-ms",
            "A permission or question unanswered this long is rejected (0: never)", 0,
            7 * 24 * hour_ms, [](auto& c) -> auto& { return c.limits.input_timeout; }),
        // DESIGN §2 budget: tasks without a budget of their own get this max_cost.
        decimal(
            "limits.default_max_cost", "--default-max-cost",
            "Cost bound of tasks that set no budget; past it a job is aborted (default: none)", 0,
            1'000'000'000, [](auto& c) -> auto& { return c.limits.default_max_cost; }),
        number(
            "limits.max_output_bytes", "--max-output-bytes", "Cap of a job's output", 1, 1 << 30,
            [](auto& c) -> auto& { return c.limits.max_output_bytes; }),
        number(
            "limits.max_response_bytes", "--max-response-bytes",
            "Largest response; past it jobs come back with output_omitted", 1024, 1 << 30,
            [](auto& c) -> auto& { return c.max_response_bytes; }),
        number(
            "limits.max_mcp_sessions", "--max-mcp-sessions",
            "MCP sessions per principal; only idle ones are evicted for new ones", 1, 1'000'000,
            [](auto& c) -> auto& { return c.max_mcp_sessions; }),
        number(
            "limits.retention_ms", "--retention-ms", "How long finished jobs stay queryable", 1,
            365 * 24 * hour_ms, [](auto& c) -> auto& { return c.limits.retention; }),
        // Bounds memory and the database whatever the retention (issue #14).
        number(
            "limits.max_retained_jobs", "--max-retained-jobs",
            "Finished jobs kept; past it the oldest finished are reaped early", 1, 10'000'000,
            [](auto& c) -> auto& { return c.limits.max_retained_jobs; }),
        choice<approval_mode>(
            "approval.start", "--approval-start", "Approval of agents_start: auto | deny | ask",
            [](auto& c) -> auto& { return c.approval.start; }),
        number(
            "http.max_body_bytes", "--max-body-bytes", "Largest request body", 64, 1 << 30,
            [](auto& c) -> auto& { return c.max_body_bytes; }),
        number(
            "http.max_connections", "--max-connections", "Open client connections", 1, 1'000'000,
            [](auto& c) -> auto& { return c.max_connections; }),
        number(
            "http.read_timeout_ms", "--read-timeout-ms", "Deadline to read one request", 10,
            hour_ms, [](auto& c) -> auto& { return c.read_timeout; }),
        number(
            "http.first_request_timeout_ms", "--first-request-timeout-ms",
            "Deadline for a new connection's first request head", 10, hour_ms,
            [](auto& c) -> auto& { return c.first_request_timeout; }),
        list(
            "http.allow_hosts", "--allow-host", "Extra Host name to accept; repeatable",
            [](auto& c) -> auto& { return c.allowed_hosts; }),
        list(
            "http.allow_origins", "--allow-origin", "Extra Origin to accept; repeatable",
            [](auto& c) -> auto& { return c.allowed_origins; }),
        number(
            "websocket.max_outbox_bytes", "--ws-max-outbox-bytes",
            "WebSocket: unsent bytes a slow reader may hold before it is disconnected", 1024,
            1 << 30, [](auto& c) -> auto& { return c.ws_max_outbox_bytes; }),
        number(
            "websocket.idle_timeout_ms", "--ws-idle-timeout-ms",
            "WebSocket: silence before a ping (at half) and then a close", 100, hour_ms,
            [](auto& c) -> auto& { return c.ws_idle_timeout; }),
        ordinal<log::level>(
            "log.level", "--log-level", "Lines logged to stderr: error | warn | info | debug",
            {"error", "warn", "info", "debug"}, [](auto& c) -> auto& { return c.log_level; }),
        ordinal<log::format>(
            "log.format", "--log-format", "Log lines: text (logfmt) | json (one object per line)",
            {"text", "json"}, [](auto& c) -> auto& { return c.log_format; }),
    };
}

std::string type_name(value const& v) {
    return std::visit(
        [](auto const& x) -> std::string {
            using type = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<type, bool>) return "a boolean";
            if constexpr (std::is_same_v<type, std::int64_t>) return "an integer";
            if constexpr (std::is_same_v<type, double>) return "a float";
            if constexpr (std::is_same_v<type, std::string>) return "a string";
            if constexpr (std::is_same_v<type, std::vector<std::string>>)
                return "an array of strings";
            if constexpr (std::is_same_v<type, toml_other>) return x.type_name;
        },
        v);
}

// Why `v` does not fit `s`, or nullopt when it does.
std::optional<std::string> check(setting const& s, value const& v) {
    if (s.type == kind::integer) {
        auto const* n = std::get_if<std::int64_t>(&v);
        if (!n) return "expected an integer, got " + type_name(v);
        if (*n < s.min || *n > s.max)
            return fmt::format("{} is out of range [{}, {}]", *n, s.min, s.max);
        return std::nullopt;
    }
    if (s.type == kind::decimal) {
        auto const* n = std::get_if<std::int64_t>(&v);
        auto const* d = std::get_if<double>(&v);
        if (!n && !d) return "expected a number, got " + type_name(v);
        auto x = n ? static_cast<double>(*n) : *d;
        if (!(x >= static_cast<double>(s.min) && x <= static_cast<double>(s.max)))
            return fmt::format("{} is out of range [{}, {}]", x, s.min, s.max);
        return std::nullopt;
    }
    if (s.type == kind::list) {
        if (auto const* one = std::get_if<std::string>(&v); one && s.one_or_many)
            return s.check_item ? s.check_item(*one) : std::nullopt;
        auto const* items = std::get_if<std::vector<std::string>>(&v);
        if (!items) return "expected an array of strings, got " + type_name(v);
        if (s.one_or_many) {
            if (items->empty()) return std::string("expected at least one");
            for (auto it = items->begin(); it != items->end(); ++it)
                if (std::find(items->begin(), it, *it) != it)
                    return "'" + *it + "' is listed twice";
        }
        for (auto const& item : *items)
            if (auto why = s.check_item ? s.check_item(item) : std::nullopt) return why;
        return std::nullopt;
    }
    auto const* t = std::get_if<std::string>(&v);
    if (!t) return "expected a string, got " + type_name(v);
    if (!s.choices.empty() && std::find(s.choices.begin(), s.choices.end(), *t) == s.choices.end())
        return fmt::format("'{}' is not one of {}", *t, fmt::join(s.choices, ", "));
    return s.check_item ? s.check_item(*t) : std::nullopt;
}

// A flag's text as the setting's type; nullopt when an integer does not parse.
std::optional<value> from_flag(setting const& s, std::string const& text,
                               std::vector<std::string> const& items) {
    if (s.type == kind::list) return value(items);
    if (s.type == kind::text) return value(text);
    if (s.type == kind::decimal) {
        double d = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
        return value(d);
    }
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value(n);
}

std::string help_default(value const& v) {
    if (auto const* n = std::get_if<std::int64_t>(&v)) return std::to_string(*n);
    if (auto const* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
    if (auto const* t = std::get_if<std::string>(&v)) return *t;
    if (auto const* items = std::get_if<std::vector<std::string>>(&v))
        return fmt::format("{}", fmt::join(*items, " "));
    return {};
}

// Where each key's value came from ("--max-running", "config F: limits.max_running"), so errors
// found after merging (a missing key file) name what the operator wrote.
using value_sources = std::map<std::string, std::string>;

std::string source_of(value_sources const& from, std::string const& key, std::string const& flag) {
    auto it = from.find(key);
    return it == from.end() ? flag : it->second;
}

// A secret file's content without the trailing newline editors add; nullopt when unreadable.
std::optional<std::string> read_secret(std::string const& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    auto secret = text.str();
    while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back())))
        secret.pop_back();
    return secret;
}

// A bearer key goes into an HTTP header as it is: printable ASCII without spaces.
bool valid_key(std::string const& key) {
    return !key.empty() &&
           std::all_of(key.begin(), key.end(), [](char ch) { return ch > 0x20 && ch < 0x7f; });
}

// Loads the API key and the upstream password; an error message (never quoting a secret).
std::optional<std::string> load_secrets(config& c, value_sources const& from) {
    if (c.upstream_api_key_env) {
        auto where = source_of(from, "upstream.api_key_env", "--upstream-api-key-env");
        char const* v = std::getenv(c.upstream_api_key_env->c_str());
        if (!v || !*v) return where + ": $" + *c.upstream_api_key_env + " is not set or empty";
        if (!valid_key(v)) return where + ": the key is empty or has spaces or control characters";
        c.upstream_api_key = v;
    } else if (c.upstream_api_key_file) {
        auto where = source_of(from, "upstream.api_key_file", "--upstream-api-key-file");
        c.upstream_api_key = read_secret(*c.upstream_api_key_file);
        if (!c.upstream_api_key) return where + ": cannot read " + *c.upstream_api_key_file;
        if (!valid_key(*c.upstream_api_key))
            return where + ": the key is empty or has spaces or control characters";
    }
    if (c.upstream_password_file) {
        c.upstream_password = read_secret(*c.upstream_password_file);
        if (!c.upstream_password)
            return source_of(from, "upstream.password_file", "--upstream-password-file") +
                   ": cannot read " + *c.upstream_password_file;
    } else if (char const* pw = std::getenv("OPENCODE_SERVER_PASSWORD"); pw && *pw) {
        c.upstream_password = pw;
    }
    return std::nullopt;
}

startup failure(std::string const& message) {
    return {std::nullopt, 2, "agentd: " + message + "\n"};
}

// `auth` is a string (`auth = "token"`, as before principals) or a table (`[auth] mode = "token"`,
// `tokens_file = "…"`): the string is the table's `mode`. --print-config writes the table.
std::string const& auth_key(std::string const& key) {
    static std::string const mode = "auth.mode";
    return key == "auth" ? mode : key;
}

// Applies the file's keys to `c`; an error message naming the file and the key.
std::optional<std::string> apply_file(std::vector<setting> const& table, std::string const& path,
                                      config& c, value_sources& from) {
    auto where = "config " + path + ": ";
    auto read = read_toml_file(path);
    if (auto const* error = std::get_if<std::string>(&read)) return where + *error;
    auto const& entries = std::get<std::vector<toml_entry>>(read);
    auto in_file = [&](std::string_view key) {
        return std::any_of(entries.begin(), entries.end(),
                           [&](toml_entry const& e) { return e.key == key; });
    };
    if (in_file("upstream.api_key_env") && in_file("upstream.api_key_file"))
        return where + "upstream.api_key_env and upstream.api_key_file exclude each other";
    if (in_file("auth") && in_file("auth.mode"))
        return where + "auth and auth.mode name the same setting: keep one";
    for (auto const& [key, v] : entries) {
        auto const& name = auth_key(key);
        auto s =
            std::find_if(table.begin(), table.end(), [&](auto const& s) { return s.key == name; });
        if (s == table.end()) return where + "unknown key " + key;
        if (auto why = check(*s, v)) return where + key + ": " + *why;
        s->set(c, v);
        from[name] = where + key;
    }
    return std::nullopt;
}

// Every setting's flag, bound to text that apply_flags() converts and checks after parsing.
struct flag_values {
    std::vector<std::string> texts;
    std::vector<std::vector<std::string>> lists;
    std::vector<CLI::Option*> options;
};

void add_flags(CLI::App& app, std::vector<setting> const& table, flag_values& f) {
    config const defaults;
    f.texts.resize(table.size());
    f.lists.resize(table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto const& s = table[i];
        auto* opt = s.type == kind::list ? app.add_option(s.flag, f.lists[i], s.help)
                                         : app.add_option(s.flag, f.texts[i], s.help);
        if (s.type == kind::integer) opt->type_name("INT");
        if (s.type == kind::decimal) opt->type_name("NUMBER");
        if (auto v = s.get(defaults)) opt->default_str(help_default(*v));
        f.options.push_back(opt);
    }
    app.get_option("--upstream-api-key-env")->excludes("--upstream-api-key-file");
}

// Applies the flags given to `c`, over what the file set; an error message naming the flag.
std::optional<std::string> apply_flags(std::vector<setting> const& table, flag_values const& f,
                                       config& c, value_sources& from) {
    for (std::size_t i = 0; i < table.size(); ++i) {
        auto const& s = table[i];
        if (f.options[i]->count() == 0) continue;
        auto v = from_flag(s, f.texts[i], f.lists[i]);
        if (!v)
            return s.flag + ": '" + f.texts[i] + "' is not " +
                   (s.type == kind::decimal ? "a number" : "an integer");
        if (auto why = check(s, *v)) return s.flag + ": " + *why;
        s.set(c, *v);
        from[s.key] = s.flag;
    }
    return std::nullopt;
}

// --store URL implies store.backend = postgres; postgres needs a URL, sqlite takes none.
std::optional<std::string> check_store(config& c, value_sources const& from) {
    bool chosen = from.contains("store.backend");
    if (c.store_url && !chosen) c.store = store_backend::postgres;
    if (c.store == store_backend::postgres && !c.store_url)
        return "store.backend = postgres needs store.url (--store postgres://…)";
    if (c.store == store_backend::sqlite && c.store_url)
        return "store.url is for store.backend = postgres, not sqlite";
    return std::nullopt;
}

}  // namespace

startup read_startup(std::vector<std::string> const& args) {
    auto const table = settings();
    CLI::App app{"agentd: runs LLM sub-agent jobs on an upstream session API"};
    app.set_version_flag("--version", fmt::format("agentd {}", agentd::version));
    std::optional<std::string> config_file;
    bool print = false;
    app.add_option("--config", config_file, "TOML configuration file (flags win over it)");
    app.add_flag("--print-config", print, "Print the effective configuration as TOML and exit");
    flag_values flags;
    add_flags(app, table, flags);
    std::vector<char const*> argv;
    for (auto const& a : args) argv.push_back(a.c_str());
    try {
        app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (CLI::ParseError const& e) {
        std::ostringstream out;
        int code = app.exit(e, out, out);
        return {std::nullopt, code == 0 ? 0 : 2, out.str()};
    }

    config c;
    value_sources from;
    auto error = config_file ? apply_file(table, *config_file, c, from) : std::nullopt;
    if (!error) error = apply_flags(table, flags, c, from);
    if (c.state_dir.empty()) c.state_dir = default_state_dir();
    if (!error) error = check_store(c, from);
    if (!error) error = load_secrets(c, from);
    if (error) return failure(*error);
    if (print) return {std::nullopt, 0, config_to_toml(c)};
    return {std::move(c), 0, {}};
}

std::variant<config, int> parse_config(int argc, char** argv) {
    auto s = read_startup(std::vector<std::string>(argv, argv + argc));
    (s.exit_code == 0 ? std::cout : std::cerr) << s.output << std::flush;
    if (s.run) return std::move(*s.run);
    return s.exit_code;
}

std::string config_to_toml(config const& c) {
    std::vector<toml_entry> entries;
    for (auto const& s : settings())
        if (auto v = s.get(c)) entries.push_back({s.key, std::move(*v)});
    std::vector<std::string> comments{
        "agentd --print-config: the effective configuration (defaults, --config file, flags)"};
    if (c.upstream_api_key) comments.push_back("upstream API key: set (redacted)");
    if (c.upstream_password)
        comments.push_back(
            c.upstream_password_file
                ? "upstream password: set (redacted)"
                : "upstream password: set from $OPENCODE_SERVER_PASSWORD (redacted)");
    return write_toml(entries, comments);
}

}  // namespace agentd::daemon
