// CLI11 definition of agentctl's options and subcommands, and the mapping of its errors to exit 2.
// Global options may also follow the command (fallthrough), so `agentctl status --json` works.
#include "cli.hpp"

#include "exit_codes.hpp"

#include "protocol/job_view.hpp"
#include "protocol/params.hpp"
#include "protocol/version.hpp"

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <charconv>
#include <limits>
#include <utility>

namespace agentctl {
namespace {

constexpr std::int64_t max_wait_ms = agentd::protocol::max_wait_timeout_ms;

const CLI::Range positive_ms{std::int64_t{1}, std::numeric_limits<std::int64_t>::max()};

constexpr char const* footer =
    R"(Environment: AGENTD_URL, AGENTD_TOKEN, AGENTD_STATE_DIR, STATE_DIRECTORY,
XDG_STATE_HOME, HOME. The token is read from --token, --token-file, $AGENTD_TOKEN, then
STATE_DIR/token, then /var/lib/agentd/token (the system service's, readable by the agentd
group); without one no Authorization header is sent. AGENTCTL_WAIT_SLICE_MS: the longest
single agents_wait request of a long wait (default 300000; lower it behind a proxy that cuts
idle requests). service: XDG_CONFIG_HOME, and AGENTCTL_SYSTEMCTL (default systemctl in PATH).
Exit codes:
  0    success
  1    a job did not complete (failed, cancelled, interrupted), or a JSON-RPC error
  2    usage error
  3    wait timed out (the jobs go on); service status: agentd not running or not healthy
  4    cannot connect, HTTP error, or a reply that is not JSON-RPC
  5    input needed: a job waits for a permission or an answer nobody could give here
       (answer with `agentctl respond`)
  6    unknown job id (never existed, expired, or another owner's); token revoke: unknown NAME
  130  interrupted (Ctrl-C) while waiting or watching: agentctl stops, the jobs go on)";

constexpr char const* on_input_help =
    "when a job waits for a permission or an answer: `return` (default) asks inline on a "
    "terminal, else prints the request and exits 5; `ignore` waits on (someone else or the "
    "input timeout settles it)";

void add_globals(CLI::App& app, global_options& g) {
    app.add_option("--url", g.url,
                   "http://HOST:PORT, http://[IPV6]:PORT or unix:/PATH "
                   "(default $AGENTD_URL, else http://127.0.0.1:7077)")
        ->option_text("URL");
    auto* token = app.add_option("--token", g.token, "bearer token (visible in ps; prefer a file)")
                      ->option_text("TOKEN");
    app.add_option("--token-file", g.token_file, "file holding the bearer token")
        ->excludes(token)
        ->option_text("FILE");
    app.add_option("--state-dir", g.state_dir, "agentd's state directory, to find STATE_DIR/token")
        ->option_text("DIR");
    app.add_option("--session", g.session,
                   "caller session owning the jobs (server default \"default\")")
        ->option_text("SESSION");
    app.add_flag("--json", g.json, "print the JSON-RPC result as JSON instead of text");
    app.add_option("--http-timeout-ms", g.http_timeout_ms,
                   "deadline of each HTTP request (and of connecting to /ws); a wait's requests "
                   "get it on top of the time the daemon holds them")
        ->check(positive_ms)
        ->option_text("MS (default 30000)");
}

void add_task_options(CLI::App& sub, task_options& t) {
    sub.add_option("--description", t.description, "short description shown in status")
        ->option_text("TEXT");
    sub.add_option("--agent", t.agent, "upstream agent name")->option_text("AGENT");
    sub.add_option("--model", t.model, "model of the sub-agent")->option_text("PROVIDER/MODEL");
    sub.add_option("--system", t.system, "system prompt")->option_text("TEXT");
    sub.add_option("--directory", t.directory, "working directory of the sub-agent")
        ->option_text("DIR");
    sub.add_option("--isolation", t.isolation,
                   "worktree: each job works in its own git worktree of --directory (see "
                   "`agentctl diff` and `agentctl worktree rm`)")
        ->check(CLI::IsMember({"worktree"}))
        ->option_text("worktree");
    sub.add_option("--task-timeout-ms", t.timeout_ms, "wall-clock limit of each job")
        ->check(positive_ms)
        ->option_text("MS");
    sub.add_option("--continue", t.continues,
                   "follow-up: the next turn of finished job JOB, in its upstream session, "
                   "directory, agent and model (only the latest job of a chain; not with "
                   "--directory or --isolation)")
        ->option_text("JOB");
}

CLI::App* add_command(CLI::App& app, command& cmd, command_kind kind, char const* name,
                      char const* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->callback([&cmd, kind] { cmd.kind = kind; });
    return sub;
}

// --timeout DURATION: how long a wait lasts, in the units people type.
CLI::Option* add_duration(CLI::App& sub, command& cmd) {
    CLI::Validator duration(
        [](std::string& text) {
            auto ms = parse_duration_ms(text);
            return ms && *ms <= max_wait_ms ? std::string{}
                                            : "want a duration such as 90s, 1500ms or 2m (max 1h)";
        },
        "DURATION");
    return sub
        .add_option_function<std::string>(
            "--timeout",
            [&cmd](std::string const& text) { cmd.wait_timeout_ms = parse_duration_ms(text); },
            "how long to wait: 90s, 1500ms, 2m, or seconds (max 1h, 0 = check now; default: "
            "until the jobs end)")
        ->check(duration)
        ->option_text("DURATION");
}

// --on-input return|ignore.
CLI::Option* add_on_input(CLI::App& sub, command& cmd) {
    return sub
        .add_option_function<std::string>(
            "--on-input", [&cmd](std::string const& mode) { cmd.ignore_input = mode == "ignore"; },
            on_input_help)
        ->check(CLI::IsMember({"return", "ignore"}))
        ->option_text("return|ignore");
}

void add_start(CLI::App& app, command& cmd) {
    auto* sub = add_command(app, cmd, command_kind::start, "start",
                            "start one job per PROMPT (quote each prompt) and per --tasks entry");
    add_task_options(*sub, cmd.task);
    sub->add_option("--tasks", cmd.tasks_file,
                    "JSON array of Task objects from FILE or - (stdin); the options above fill "
                    "fields a task leaves out")
        ->option_text("FILE|-");
    sub->add_option("PROMPT", cmd.args, "prompt text, one job each");
    auto* wait =
        sub->add_flag("--wait", cmd.start_wait,
                      "then wait for these jobs like `wait` (live progress on a terminal)");
    add_duration(*sub, cmd)->needs(wait);
    add_on_input(*sub, cmd)->needs(wait);
    sub->add_flag("-q,--quiet", cmd.quiet, "print only the job ids, one per line")->excludes(wait);
}

void add_wait(CLI::App& app, command& cmd) {
    auto* sub = add_command(app, cmd, command_kind::wait, "wait",
                            "wait until all (or --any) of the jobs finish and print their output; "
                            "shows each job's current tool step on a terminal and asks there "
                            "when one needs a permission or an answer; Ctrl-C stops waiting, "
                            "not the jobs");
    sub->add_flag("--any", cmd.wait_any, "return as soon as one job finishes");
    auto* ms =
        sub->add_option("--timeout-ms", cmd.wait_timeout_ms,
                        "how long to wait in ms (0 = check now; default: until the jobs end)")
            ->check(CLI::Range(std::int64_t{0}, max_wait_ms))
            ->option_text("MS");
    add_duration(*sub, cmd)->excludes(ms);
    add_on_input(*sub, cmd);
    sub->add_option("ID", cmd.args, "job ids (default: the session's unfinished jobs)");
}

// "a,b" -> {"a", "b"}; an empty name stays, so that it is reported.
std::vector<std::string> split_commas(std::string_view list) {
    std::vector<std::string> names;
    for (;;) {
        auto comma = list.find(',');
        names.emplace_back(list.substr(0, comma));
        if (comma == std::string_view::npos) return names;
        list.remove_prefix(comma + 1);
    }
}

// --state running,waiting: names as DESIGN §2 JobView `state` spells them.
void add_status(CLI::App& app, command& cmd) {
    auto* sub = add_command(
        app, cmd, command_kind::status, "status",
        "show jobs (default: all of the session), with pending requests and tool steps");
    CLI::Validator state_names(
        [](std::string& list) {
            for (auto const& name : split_commas(list))
                if (!agentd::protocol::from_string<agentd::protocol::job_state>(name))
                    return "unknown state \"" + name +
                           "\" (queued, running, waiting, completed, failed, cancelled, "
                           "interrupted)";
            return std::string{};
        },
        "STATE");
    sub->add_option_function<std::vector<std::string>>(
           "--state",
           [&cmd](std::vector<std::string> const& lists) {
               for (auto const& list : lists)
                   for (auto& name : split_commas(list)) cmd.states.push_back(std::move(name));
           },
           "only jobs in these states, comma-separated: queued, running, waiting, completed, "
           "failed, cancelled, interrupted")
        ->check(state_names)
        ->allow_extra_args(false)  // one list per --state: job ids may follow
        ->option_text("STATE[,STATE...]");
    sub->add_option("ID", cmd.args, "job ids");
}

void add_cancel(CLI::App& app, command& cmd) {
    auto* sub = add_command(app, cmd, command_kind::cancel, "cancel",
                            "cancel jobs (and the jobs their sub-agents started)");
    auto* ids = sub->add_option("ID", cmd.args, "job ids");
    sub->add_flag("--all", cmd.cancel_all, "every unfinished job of the session")->excludes(ids);
}

void add_watch(CLI::App& app, command& cmd) {
    auto* sub = add_command(app, cmd, command_kind::watch, "watch",
                            "follow the session's jobs live over WebSocket: a table redrawn on "
                            "every change on a terminal (with each job's tool step and pending "
                            "requests, asked inline), else one line per change");
    sub->add_flag("--all", cmd.watch_all, "every session of this token, not just --session");
    auto* idle = sub->add_flag("--until-idle", cmd.until_idle,
                               "exit once no job is queued or running (1 if one of those that "
                               "ran did not complete)");
    sub->add_flag("--once", cmd.watch_once, "print the table once and exit")->excludes(idle);
    add_on_input(*sub, cmd);
}

void add_respond(CLI::App& app, command& cmd) {
    auto* sub = add_command(
        app, cmd, command_kind::respond, "respond",
        "answer a waiting job's request (its id as status, wait or watch show it): a "
        "permission with allow, always or deny; a question with --answer (or deny to dismiss it)");
    sub->add_option_function<std::string>(
           "JOB", [&cmd](std::string const& job) { cmd.args = {job}; }, "the waiting job's id")
        ->required();
    sub->add_option("REQUEST", cmd.request, "the request's id (per_… or que_…)")->required();
    auto* decision = sub->add_option("DECISION", cmd.decision,
                                     "allow (once), always (this and later matching calls) or deny")
                         ->check(CLI::IsMember({"allow", "always", "allow_always", "deny"}));
    sub->add_option("-m,--message", cmd.message,
                    "with deny: tell the sub-agent why (permissions only)")
        ->needs(decision)
        ->option_text("TEXT");
    sub->add_option("--answer", cmd.answers,
                    "a question's answer: an option's label, or free text where the question "
                    "allows it; repeat for several labels; with several questions write N=LABEL "
                    "for question N (1 = the first)")
        ->excludes(decision)
        ->allow_extra_args(false)  // one label per --answer: positionals may follow
        ->option_text("LABEL|N=LABEL");
}

// diff JOB and worktree rm JOB (DESIGN §2 isolation).
void add_worktree(CLI::App& app, command& cmd) {
    add_command(app, cmd, command_kind::diff, "diff",
                "print the files a job changed (status, +added -removed, path), then each patch")
        ->add_option("JOB", cmd.args, "job id")
        ->required()
        ->expected(1);
    auto* tree = app.add_subcommand("worktree", "the git worktree of an isolated job");
    tree->require_subcommand(1);
    add_command(*tree, cmd, command_kind::worktree_rm, "rm",
                "remove the job's worktree and its branch (the job keeps its record)")
        ->add_option("JOB", cmd.args, "job id")
        ->required()
        ->expected(1);
}

// service install|uninstall|status: agentd as a systemd user service (service.hpp).
void add_service(CLI::App& app, command& cmd) {
    auto* service =
        app.add_subcommand("service", "run agentd as a systemd user service (no root needed)");
    service->require_subcommand(1);
    auto* install = add_command(*service, cmd, command_kind::service_install, "install",
                                "write ~/.config/systemd/user/agentd.{service,socket}, reload the "
                                "user manager and enable agentd.socket (again: rewrite, reload)");
    auto& o = cmd.service;
    install->add_option("--agentd", o.agentd, "agentd to run (default: beside agentctl, or PATH)")
        ->option_text("PATH");
    install->add_option("--upstream-url", o.upstream_url, "agentd --upstream-url in ExecStart")
        ->option_text("URL");
    install->add_option("--listen", o.listen, "the socket's address (default 127.0.0.1:7077)")
        ->option_text("HOST:PORT|unix:/PATH");
    install->add_flag("--no-start", o.no_start, "only write the files and reload");
    add_command(*service, cmd, command_kind::service_uninstall, "uninstall",
                "disable and stop agentd.socket and agentd.service, remove their files");
    add_command(*service, cmd, command_kind::service_status, "status",
                "the unit files, whether the units are active, /healthz and the token path "
                "(exit 0: running and healthy, else 3)");
}

// token add|list|revoke: agentd's named principals (tokens.hpp); works on the file, not the daemon.
void add_token(CLI::App& app, command& cmd) {
    auto* token = app.add_subcommand(
        "token",
        "manage agentd's principals: tokens of other people or services, whose jobs "
        "they alone see (the file keeps only SHA-256 hashes; reload agentd after)");
    token->require_subcommand(1);
    auto& o = cmd.token;
    token
        ->add_option("--tokens-file", o.tokens_file,
                     "the tokens file (default STATE_DIR/tokens.toml, agentd's default)")
        ->option_text("PATH");
    auto* add = add_command(*token, cmd, command_kind::token_add, "add",
                            "create principal NAME (again: a new token replaces its old one) and "
                            "print its token once on stdout");
    add->add_option("NAME", cmd.args, "[A-Za-z0-9_.-]{1,64}; \"local\" is reserved")
        ->required()
        ->expected(1);
    add->add_flag("--admin", o.admin, "may read /metrics");
    add->add_option("--max-running", o.max_running,
                    "at most N of its jobs run at once; the rest wait queued (0: no quota)")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{100'000}))
        ->option_text("N");
    add_command(*token, cmd, command_kind::token_list, "list",
                "the principals: NAME, ADMIN, MAX_RUNNING (never hashes)");
    add_command(*token, cmd, command_kind::token_revoke, "revoke",
                "remove principal NAME (exit 6 when there is none); after a reload its token "
                "gets 401 and its connections close")
        ->add_option("NAME", cmd.args, "the principal")
        ->required()
        ->expected(1);
}

void add_commands(CLI::App& app, command& cmd) {
    add_start(app, cmd);
    add_status(app, cmd);
    add_wait(app, cmd);
    add_cancel(app, cmd);
    add_command(app, cmd, command_kind::peek, "peek",
                "print a job's tool steps and the output it has produced so far")
        ->add_option("ID", cmd.args, "job id")
        ->required()
        ->expected(1);
    add_watch(app, cmd);
    add_respond(app, cmd);
    add_worktree(app, cmd);
    add_service(app, cmd);
    add_token(app, cmd);
    add_command(app, cmd, command_kind::ui, "ui",
                "print the dashboard's URL (the token rides in its #fragment)")
        ->add_flag("--open", cmd.open_browser, "also open it with xdg-open");
}

}  // namespace

std::optional<std::int64_t> parse_duration_ms(std::string_view text) {
    static const std::pair<std::string_view, double> units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"", 1000}};
    for (auto [suffix, scale] : units) {
        if (!text.ends_with(suffix)) continue;
        auto number = text.substr(0, text.size() - suffix.size());
        double value = 0;
        auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
        if (number.empty() || ec != std::errc{} || ptr != number.data() + number.size() ||
            value < 0 || value * scale > 1e15)
            return std::nullopt;
        return static_cast<std::int64_t>(value * scale + 0.5);
    }
    return std::nullopt;
}

std::variant<invocation, int> parse_cli(int argc, char const* const* argv) {
    invocation inv;
    CLI::App app{"agentctl: command-line client of agentd", "agentctl"};
    app.footer(footer);
    // "agentctl VERSION", the form help2man reads for the manual page.
    app.set_version_flag("--version", fmt::format("agentctl {}", agentd::version));
    app.fallthrough();  // inherited by the subcommands added below
    app.require_subcommand(1);
    add_globals(app, inv.globals);
    add_commands(app, inv.cmd);
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        // CLI11 would exit with its own codes (105, 106, …); scripts are promised 2.
        return app.exit(e) == 0 ? exit_ok : exit_usage;
    }
    if (inv.cmd.kind == command_kind::cancel && !inv.cmd.cancel_all && inv.cmd.args.empty()) {
        fmt::print(stderr,
                   "cancel: give job ids or --all\nRun with --help for more information.\n");
        return exit_usage;
    }
    return inv;
}

}  // namespace agentctl
