// agentd as a systemd user service: the unit files, finding agentd, and systemctl --user run
// without a shell (output captured so its own words explain a failure). See service.hpp.
#include "service.hpp"

#include "client.hpp"
#include "discover.hpp"
#include "exit_codes.hpp"
#include "user_units.hpp"

#include "common/state_dir.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace agentctl {
namespace {

namespace fs = std::filesystem;
using agentd::common::env;

constexpr char const* unit_names[] = {"agentd.service", "agentd.socket"};

// `specials` doubled: `%` starts a specifier in every unit setting, `$` a variable in ExecStart.
std::string doubled(std::string_view text, std::string_view specials) {
    std::string out;
    for (char c : text) {
        if (specials.find(c) != std::string_view::npos) out += c;
        out += c;
    }
    return out;
}

// One ExecStart word, quoted when it holds blanks or quotes.
std::string exec_word(std::string_view word) {
    auto plain = doubled(word, "%$");
    if (plain.find_first_of(" \t\"'\\;") == std::string::npos && !plain.empty()) return plain;
    std::string quoted = "\"";
    for (char c : plain) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return quoted + "\"";
}

// `text` with the line that starts with `key` replaced by `line`.
std::string with_line(std::string_view text, std::string_view key, std::string const& line) {
    auto at = text.starts_with(key) ? 0 : text.find(fmt::format("\n{}", key));
    if (at == std::string_view::npos) return std::string(text);
    if (text[at] == '\n') ++at;
    auto end = text.find('\n', at);
    return fmt::format("{}{}{}", text.substr(0, at), line,
                       end == std::string_view::npos ? "" : text.substr(end));
}

bool executable_file(fs::path const& path) {
    std::error_code ec;
    return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<fs::path> in_path(std::string const& program) {
    std::stringstream dirs(env("PATH").value_or(""));
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && dir.front() == '/' && executable_file(fs::path(dir) / program))
            return fs::path(dir) / program;
    return std::nullopt;
}

struct command_run {
    std::optional<int> status;  // nullopt: it did not run, or ended by a signal
    std::string output;         // stdout and stderr together
};

std::string systemctl_program() {
    return env("AGENTCTL_SYSTEMCTL").value_or("systemctl");
}

std::string read_all(int fd) {
    std::string text;
    std::array<char, 4096> buffer{};
    for (;;) {
        auto n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return text;
        text.append(buffer.data(), static_cast<std::size_t>(n));
    }
}

// `systemctl --user ARGS…`, stdin from /dev/null.
command_run systemctl(std::vector<std::string> args) {
    auto program = systemctl_program();
    args.insert(args.begin(), {program, "--user"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return {std::nullopt, std::strerror(errno)};
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    pid_t pid = 0;
    int err = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    auto output = err == 0 ? read_all(pipe_fds[0]) : std::string{};
    ::close(pipe_fds[0]);
    if (err != 0)
        return {std::nullopt, fmt::format("cannot run {}: {}", program, std::strerror(err))};
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status)) return {std::nullopt, output};
    return {WEXITSTATUS(status), output};
}

std::string trimmed(std::string text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    return text;
}

// Runs `systemctl --user ARGS…`; on failure says so with systemctl's own words.
bool systemctl_ok(std::vector<std::string> const& args) {
    auto run = systemctl(args);
    if (run.status == 0) return true;
    fmt::print(stderr, "agentctl: `{} --user {}` failed ({}): {}\n", systemctl_program(),
               fmt::join(args, " "),
               run.status ? fmt::format("exit {}", *run.status) : std::string("did not run"),
               trimmed(run.output));
    return false;
}

// Replaces `path` whole, so a unit is never seen half-written.
void write_file(fs::path const& path, std::string const& text) {
    auto temporary = path;
    temporary += ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
        if (!out.flush()) throw usage_error(fmt::format("cannot write {}", temporary.string()));
    }
    fs::rename(temporary, path);
}

std::string exec_start(fs::path const& agentd, service_options const& o) {
    auto line = "ExecStart=" + exec_word(agentd.string());
    if (o.upstream_url) line += " --upstream-url " + exec_word(*o.upstream_url);
    return line;
}

void print_manual_start(fs::path const& dir, fs::path const& agentd, service_options const& o) {
    auto command = agentd.string() + (o.upstream_url ? " --upstream-url " + *o.upstream_url : "");
    fmt::print(stderr,
               "agentctl: the unit files stay in {}. Without a user manager (no login session: "
               "`loginctl enable-linger $USER` keeps one), start agentd by hand:\n  {}\nor, once "
               "`systemctl --user` works:\n  systemctl --user daemon-reload && systemctl --user "
               "enable --now agentd.socket\n",
               dir.string(), command);
}

int install(invocation const& inv) {
    auto const& o = inv.cmd.service;
    auto agentd = find_agentd(o.agentd, fs::read_symlink("/proc/self/exe"));
    if (!agentd) {
        fmt::print(stderr, "agentctl: {}\n",
                   o.agentd ? fmt::format("--agentd {}: not an executable file", *o.agentd)
                            : std::string("no agentd found beside agentctl nor in $PATH; name "
                                          "it with --agentd PATH"));
        return exit_failed;
    }
    auto dir = user_unit_dir();
    fs::create_directories(dir);
    auto units = make_user_units(*agentd, o);
    write_file(dir / unit_names[0], units.service);
    write_file(dir / unit_names[1], units.socket);
    fmt::print("wrote {} and {} (ExecStart={})\n", (dir / unit_names[0]).string(),
               (dir / unit_names[1]).string(), agentd->string());
    if (!systemctl_ok({"daemon-reload"}) ||
        (!o.no_start && !systemctl_ok({"enable", "--now", "agentd.socket"}))) {
        print_manual_start(dir, *agentd, o);
        return exit_failed;
    }
    if (!o.no_start)
        fmt::print("agentd.socket is enabled and listening; see agentctl service status\n");
    return exit_ok;
}

int uninstall() {
    auto dir = user_unit_dir();
    bool present = false;
    for (auto const* name : unit_names) present = present || fs::exists(dir / name);
    if (!present) {
        fmt::print("not installed: no agentd units in {}\n", dir.string());
        return exit_ok;
    }
    bool ok = systemctl_ok({"disable", "--now", "agentd.socket", "agentd.service"});
    for (auto const* name : unit_names) fs::remove(dir / name);
    fmt::print("removed {}/agentd.service and agentd.socket\n", dir.string());
    ok = systemctl_ok({"daemon-reload"}) && ok;
    return ok ? exit_ok : exit_failed;
}

// /healthz at the URL agentctl uses; whether it answered 200.
bool healthy(invocation const& inv) {
    auto url = resolve_url(inv.globals);
    try {
        auto reply = get_path(parse_url(url), "/healthz",
                              std::chrono::milliseconds(inv.globals.http_timeout_ms));
        fmt::print("healthz: {} answers {} {}\n", url, reply.status, reply.reason);
        return reply.status == 200;
    } catch (transport_error const& e) {
        fmt::print("healthz: {}: {}\n", url, e.what());
        return false;
    }
}

// Whether systemd calls `unit` active; prints what it says.
bool active(char const* unit) {
    auto run = systemctl({"is-active", unit});
    auto said = trimmed(run.output);
    fmt::print("{}: {}\n", unit, said.empty() ? "(systemctl said nothing)" : said);
    return run.status == 0;
}

int status(invocation const& inv) {
    auto dir = user_unit_dir();
    for (auto const* name : unit_names)
        fmt::print("{}: {}\n", (dir / name).string(),
                   fs::exists(dir / name) ? "present" : "missing");
    bool answers = healthy(inv);  // first: it starts a socket-activated service
    bool running = active("agentd.socket");
    running = active("agentd.service") || running;
    fmt::print("token: {}\n", resolve_credentials(inv.globals).source);
    return answers && running ? exit_ok : exit_not_running;
}

}  // namespace

user_unit_texts make_user_units(fs::path const& agentd, service_options const& o) {
    constexpr std::string_view header =
        "# Written by `agentctl service install`, which rewrites it (run it again to change it).\n";
    auto service = with_line(user_service_unit, "ExecStart=", exec_start(agentd, o));
    std::string socket(user_socket_unit);
    if (o.listen) {
        std::string_view address = *o.listen;
        if (address.starts_with("unix:")) address.remove_prefix(5);
        socket = with_line(socket, "ListenStream=", "ListenStream=" + doubled(address, "%"));
    }
    return {std::string(header) + service, std::string(header) + socket};
}

std::optional<fs::path> find_agentd(std::optional<std::string> const& given, fs::path const& self) {
    if (given) {
        if (!executable_file(*given)) return std::nullopt;
        return fs::absolute(*given).lexically_normal();
    }
    auto dir = self.parent_path();
    for (auto const& candidate : {dir / "agentd", dir / ".." / "daemon" / "agentd"})
        if (executable_file(candidate)) return candidate.lexically_normal();
    return in_path("agentd");
}

fs::path user_unit_dir() {
    auto config = env("XDG_CONFIG_HOME");
    if (config && config->front() == '/') return fs::path(*config) / "systemd" / "user";
    if (auto home = env("HOME")) return fs::path(*home) / ".config" / "systemd" / "user";
    return {};
}

int run_service(invocation const& inv) {
    if (user_unit_dir().empty())
        throw usage_error("no unit directory: neither XDG_CONFIG_HOME nor HOME is set");
    try {
        if (inv.cmd.kind == command_kind::service_install) return install(inv);
        if (inv.cmd.kind == command_kind::service_uninstall) return uninstall();
        return status(inv);
    } catch (fs::filesystem_error const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_failed;
    }
}

}  // namespace agentctl
