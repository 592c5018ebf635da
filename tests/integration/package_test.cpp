// The .deb from CPack (built by the package_build test): its files and conffiles, the packaged
// agentd started from the extracted tree with the packaged example config, the generated manual
// pages, lintian without errors or warnings, the unit files through `systemd-analyze verify`, an
// install, removal and purge by dpkg into a throwaway root, and the maintainer scripts' calls.
#include "ops_support.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `program` found in $PATH, or empty.
std::string in_path(std::string const& program) {
    char const* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');)
        if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0)
            return dir + "/" + program;
    return {};
}

using environment = std::vector<std::pair<std::string, std::string>>;

// Runs `argv` with its stdout joined to its stderr; the exit status and all it printed.
std::pair<std::optional<int>, std::string> run(std::vector<std::string> argv,
                                               std::chrono::milliseconds timeout = 120s,
                                               environment env = {}) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", R"(exec "$0" "$@" 1>&2)"});
    child_process p(argv, std::move(env));
    auto status = p.wait_exit(timeout);
    p.wait_for_line(std::regex("(?!x)x"), 5s);  // matches nothing: reads to the end of the pipe
    return {status, p.stderr_text()};
}

std::string file_text(fs::path const& file) {
    std::ifstream in(file);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool contains(std::string const& text, std::string const& part) {
    return text.find(part) != std::string::npos;
}

// The paths under `root` with "agentd" in their name, relative to it.
std::vector<std::string> paths_named_agentd(fs::path const& root) {
    std::vector<std::string> found;
    for (auto const& entry : fs::recursive_directory_iterator(root))
        if (contains(entry.path().filename().string(), "agentd"))
            found.push_back(fs::relative(entry.path(), root).string());
    std::sort(found.begin(), found.end());
    return found;
}

// What the package installs besides the directories, relative to /.
std::vector<std::string> packaged_files() {
    std::vector<std::string> files{"usr/bin/agentd",
                                   "usr/bin/agentctl",
                                   "lib/systemd/system/agentd.service",
                                   "lib/systemd/system/agentd.socket",
                                   "usr/lib/systemd/user/agentd.service",
                                   "usr/lib/systemd/user/agentd.socket",
                                   "usr/lib/sysusers.d/agentd.conf",
                                   "usr/lib/tmpfiles.d/agentd.conf",
                                   "etc/agentd/agentd.toml",
                                   "usr/share/man/man8/agentd.8.gz",
                                   "usr/share/man/man1/agentctl.1.gz",
                                   "usr/share/agentd/opencode/agentd.ts",
                                   "usr/share/doc/agentd/copyright",
                                   "usr/share/doc/agentd/changelog.gz",
                                   "usr/share/doc/agentd/README.md"};
    for (auto const& snippet : fs::directory_iterator(PACKAGING_DIR "/mcp"))
        files.push_back("usr/share/agentd/mcp/" + snippet.path().filename().string());
    for (auto const& f : fs::recursive_directory_iterator(PACKAGING_DIR "/nvim"))
        if (f.is_regular_file())
            files.push_back("usr/share/agentd/nvim/" +
                            fs::relative(f.path(), PACKAGING_DIR "/nvim").string());
    return files;
}

class package_test : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ASSERT_TRUE(fs::exists(AGENTD_DEB)) << AGENTD_DEB << " (built by ctest -R package_build)";
    }

    // The package's files under root_, its control files under control_.
    void extract() {
        auto [x, xout] = run({"dpkg-deb", "-x", AGENTD_DEB, root_.string()});
        ASSERT_EQ(x, 0) << xout;
        auto [e, eout] = run({"dpkg-deb", "-e", AGENTD_DEB, control_.string()});
        ASSERT_EQ(e, 0) << eout;
    }

    temp_dir dir_;
    fs::path root_ = dir_.path() / "root";
    fs::path control_ = dir_.path() / "control";
};

TEST_F(package_test, holds_the_binaries_units_config_and_docs) {
    ASSERT_NO_FATAL_FAILURE(extract());
    for (auto const& file : packaged_files())
        EXPECT_TRUE(fs::is_regular_file(root_ / file)) << file;
    std::ifstream conffiles(control_ / "conffiles");
    std::string line;
    std::getline(conffiles, line);
    EXPECT_EQ(line, "/etc/agentd/agentd.toml");
    for (auto const* script : {"postinst", "prerm", "postrm"})
        EXPECT_TRUE(fs::status(control_ / script).permissions() == fs::perms(0755)) << script;
}

TEST_F(package_test, packaged_agentd_runs_with_the_packaged_config) {
    ASSERT_NO_FATAL_FAILURE(extract());
    auto agentd = (root_ / "usr/bin/agentd").string();
    auto config = (root_ / "etc/agentd/agentd.toml").string();
    auto [printed, toml] = run({agentd, "--config", config, "--print-config"});
    EXPECT_EQ(printed, 0) << toml;
    EXPECT_NE(toml.find("max_running = 16"), std::string::npos) << toml;

    // Flags win over the packaged config's listen = ["127.0.0.1:7077"].
    child_process p(
        {agentd, "--config", config, "--listen", "127.0.0.1:0", "--state-dir", dir_ / "state"});
    auto port =
        p.wait_for_line(std::regex(R"(agentd listening on http://127\.0\.0\.1:(\d+))"), 10s);
    ASSERT_TRUE(port) << p.stderr_text();
    auto health = http_request(static_cast<unsigned short>(std::stoi(*port)), "GET", "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(10s), 0) << p.stderr_text();
}

TEST_F(package_test, lintian_finds_no_errors_or_warnings) {
    if (in_path("lintian").empty()) GTEST_SKIP() << "lintian is not installed";
    auto [status, report] = run({"lintian", "--tag-display-limit", "0", "-i", AGENTD_DEB}, 170s);
    ASSERT_TRUE(status) << "lintian did not finish";
    EXPECT_FALSE(std::regex_search(report, std::regex("(^|\n)[EW]: "))) << report;
    std::cout << "lintian:\n" << report;  // its notes stay visible in the test log
}

TEST_F(package_test, manual_pages_come_from_help_with_the_prose) {
    ASSERT_NO_FATAL_FAILURE(extract());
    auto [d, agentd] = run({"gzip", "-dc", (root_ / "usr/share/man/man8/agentd.8.gz").string()});
    ASSERT_EQ(d, 0) << agentd;
    EXPECT_TRUE(contains(agentd, ".TH AGENTD \"8\"")) << agentd;
    EXPECT_TRUE(contains(agentd, "agentd " AGENTD_VERSION)) << agentd;
    EXPECT_TRUE(contains(agentd, "\\-\\-print\\-config")) << "from --help:\n" << agentd;
    EXPECT_TRUE(contains(agentd, ".SH FILES")) << "from agentd.h2m:\n" << agentd;
    EXPECT_TRUE(contains(agentd, "/etc/agentd/agentd.toml")) << agentd;

    auto [c, agentctl] =
        run({"gzip", "-dc", (root_ / "usr/share/man/man1/agentctl.1.gz").string()});
    ASSERT_EQ(c, 0) << agentctl;
    EXPECT_TRUE(contains(agentctl, ".TH AGENTCTL \"1\"")) << agentctl;
    EXPECT_TRUE(contains(agentctl, "agentctl " AGENTD_VERSION)) << agentctl;
    for (auto const* command : {"start", "status", "wait", "cancel", "watch", "respond"})
        EXPECT_TRUE(std::regex_search(agentctl, std::regex("\n" + std::string(command) + "\\b")))
            << command << " from --help:\n"
            << agentctl;
    EXPECT_TRUE(contains(agentctl, ".SH ENVIRONMENT")) << "from agentctl.h2m:\n" << agentctl;
    EXPECT_TRUE(contains(agentctl, "AGENTCTL_WAIT_SLICE_MS")) << agentctl;
}

// help2man runs both binaries at build time: --help and --version print and write nothing.
TEST_F(package_test, help_and_version_touch_no_state) {
    ASSERT_NO_FATAL_FAILURE(extract());
    auto home = dir_.path() / "home";
    fs::create_directories(home);
    environment env{{"HOME", home.string()},
                    {"XDG_STATE_HOME", (home / "state").string()},
                    {"STATE_DIRECTORY", (home / "service").string()},
                    {"AGENTD_STATE_DIR", (home / "agentctl").string()}};
    for (auto const* program : {"agentd", "agentctl"}) {
        auto binary = (root_ / "usr/bin" / program).string();
        auto [v, version] = run({binary, "--version"}, 10s, env);
        EXPECT_EQ(v, 0) << version;
        EXPECT_EQ(version, std::string(program) + " " AGENTD_VERSION "\n");
        auto [h, help] = run({binary, "--help"}, 10s, env);
        EXPECT_EQ(h, 0) << help;
        EXPECT_TRUE(contains(help, "Usage: ")) << help;
    }
    EXPECT_TRUE(fs::is_empty(home)) << "--help or --version wrote into " << home;
}

TEST_F(package_test, units_pass_systemd_analyze_verify) {
    fs::path const system_units = "/lib/systemd/system";
    if (in_path("systemd-analyze").empty() || !fs::is_directory(system_units))
        GTEST_SKIP() << "systemd is not installed";
    ASSERT_NO_FATAL_FAILURE(extract());
    // --root checks ExecStart= in the extracted tree; the targets and slices the units refer to
    // come from the host.
    auto units = root_ / "lib/systemd/system";
    for (auto const& entry : fs::directory_iterator(system_units)) {
        auto ext = entry.path().extension();
        if (ext == ".target" || ext == ".slice")
            fs::copy(entry.path(), units / entry.path().filename(),
                     fs::copy_options::copy_symlinks);
    }
    auto [status, report] =
        run({"systemd-analyze", "verify", "--root=" + root_.string(),
             (units / "agentd.service").string(), (units / "agentd.socket").string()});
    EXPECT_EQ(status, 0) << report;
    EXPECT_EQ(report, "") << "warnings, e.g. unknown keys";
}

// dpkg --root into an empty tree: the maintainer scripts run outside it
// (--force-script-chrootless, so the tree needs no shell) with $DPKG_ROOT set, which they honour;
// --force-depends because the tree has none of the libraries.
class package_install_test : public package_test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "dpkg --root needs root to set the files' owners";
        for (auto const* dir : {"updates", "info", "triggers"})
            fs::create_directories(sysroot_ / "var/lib/dpkg" / dir);
        std::ofstream(sysroot_ / "var/lib/dpkg/status").flush();
    }

    std::pair<std::optional<int>, std::string> dpkg(std::vector<std::string> args) {
        args.insert(args.begin(), {"dpkg", "--root=" + sysroot_.string(), "--log=/dev/null",
                                   "--force-script-chrootless", "--force-depends"});
        return run(args, 60s, {{"PATH", system_path}});
    }

    std::string status() {
        auto [q, out] = run({"dpkg-query", "--root=" + sysroot_.string(), "-W",
                             "-f=${Status}|${Conffiles}", "agentd"},
                            10s, {{"PATH", system_path}});
        return q == 0 ? out : "not known: " + out;
    }

    static constexpr char const* system_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";
    fs::path sysroot_ = dir_.path() / "sysroot";
};

TEST_F(package_install_test, installs_removes_and_purges_leaving_nothing) {
    auto [i, installed] = dpkg({"--install", AGENTD_DEB});
    ASSERT_EQ(i, 0) << installed;
    auto after_install = status();
    EXPECT_TRUE(contains(after_install, "install ok installed|")) << after_install;
    EXPECT_TRUE(contains(after_install, " /etc/agentd/agentd.toml ")) << "a conffile";
    for (auto const& file : packaged_files())
        EXPECT_TRUE(fs::is_regular_file(sysroot_ / file)) << file;
    // The scripts ran against the tree, not the host.
    if (!in_path("systemd-sysusers").empty()) {
        auto passwd = "\n" + file_text(sysroot_ / "etc/passwd");
        EXPECT_TRUE(contains(passwd, "\nagentd:")) << passwd;
    }

    auto [r, removed] = dpkg({"--remove", "agentd"});
    ASSERT_EQ(r, 0) << removed;
    auto after_remove = status();
    EXPECT_TRUE(contains(after_remove, "deinstall ok config-files")) << after_remove;
    EXPECT_FALSE(fs::exists(sysroot_ / "usr/bin/agentd"));
    EXPECT_TRUE(fs::exists(sysroot_ / "etc/agentd/agentd.toml")) << "a conffile stays until purge";

    fs::create_directories(sysroot_ / "var/lib/agentd");
    std::ofstream(sysroot_ / "var/lib/agentd/token") << "secret\n";
    auto [p, purged] = dpkg({"--purge", "agentd"});
    ASSERT_EQ(p, 0) << purged;
    auto after_purge = status();
    EXPECT_FALSE(contains(after_purge, "ok installed")) << after_purge;
    EXPECT_FALSE(contains(after_purge, "config-files")) << after_purge;
    auto left = paths_named_agentd(sysroot_);
    EXPECT_TRUE(left.empty()) << "left after purge: " << testing::PrintToString(left);
}

// The maintainer scripts from the .deb with stubs of the systemd tools on PATH that record their
// arguments. Each runs in a mount namespace with a fresh /run (holding /run/systemd/system when
// systemd is to seem running) and /var/lib, so nothing of the host is seen or touched.
class maintainer_scripts_test : public package_test {
  protected:
    struct state {
        bool systemd_running = true;
        bool installed_before = false;  // deb-systemd-helper debian-installed
        bool was_enabled = false;       // deb-systemd-helper was-enabled
        std::string dpkg_root;
    };

    static state upgrade(bool was_enabled) {
        state s;
        s.installed_before = true;
        s.was_enabled = was_enabled;
        return s;
    }

    static state in_root(std::string root) {
        state s;
        s.dpkg_root = std::move(root);
        return s;
    }

    static state without_systemd() {
        state s;
        s.systemd_running = false;
        return s;
    }

    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(extract());
        if (in_path("unshare").empty()) GTEST_SKIP() << "unshare is not installed";
        auto [u, why] = run(with_namespace({"true"}), 10s);
        if (u != 0) GTEST_SKIP() << "no mount namespace here: " << why;
        fs::create_directories(stubs_);
        for (auto const* tool : {"deb-systemd-invoke", "deb-systemd-helper", "systemctl",
                                 "systemd-sysusers", "systemd-tmpfiles"})
            write_stub(tool);
    }

    // The calls the script made, one line each ("tool arg..."), and its exit status.
    std::pair<std::optional<int>, std::string> script(std::string const& name,
                                                      std::vector<std::string> args, state s) {
        fs::remove(log_);
        std::vector<std::string> argv{(control_ / name).string()};
        argv.insert(argv.end(), args.begin(), args.end());
        environment env{{"PATH", stubs_.string() + ":/usr/sbin:/usr/bin:/sbin:/bin"},
                        {"STUB_LOG", log_.string()},
                        {"STUB_INSTALLED", s.installed_before ? "0" : "1"},
                        {"STUB_WAS_ENABLED", s.was_enabled ? "0" : "1"},
                        {"SIMULATED_SYSTEMD", s.systemd_running ? "yes" : "no"},
                        {"DPKG_ROOT", s.dpkg_root}};
        auto [status, out] = run(with_namespace(argv), 30s, env);
        EXPECT_EQ(status, 0) << name << " printed:\n" << out;
        return {status, file_text(log_)};
    }

    fs::path stubs_ = dir_.path() / "stubs";
    fs::path log_ = dir_.path() / "calls";

  private:
    static std::vector<std::string> with_namespace(std::vector<std::string> argv) {
        std::vector<std::string> wrapped{"unshare", "--mount", "--propagation", "private"};
        if (::geteuid() != 0) wrapped.push_back("--map-root-user");
        for (auto const* part : {"/bin/sh", "-c",
                                 "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && "
                                 "if [ \"$SIMULATED_SYSTEMD\" = yes ]; then "
                                 "mkdir -p /run/systemd/system; fi && exec \"$@\"",
                                 "sh"})
            wrapped.push_back(part);
        wrapped.insert(wrapped.end(), argv.begin(), argv.end());
        return wrapped;
    }

    // deb-systemd-helper answers debian-installed and was-enabled as the test says.
    void write_stub(std::string const& tool) {
        auto path = stubs_ / tool;
        std::ofstream(path) << "#!/bin/sh\n"
                               "echo \"${0##*/} $*\" >>\"$STUB_LOG\"\n"
                               "case \"$*\" in\n"
                               "debian-installed*) exit \"$STUB_INSTALLED\" ;;\n"
                               "*was-enabled*) exit \"$STUB_WAS_ENABLED\" ;;\n"
                               "esac\n";
        fs::permissions(path, fs::perms(0755));
    }
};

TEST_F(maintainer_scripts_test, fresh_install_enables_and_starts_nothing) {
    auto [status, calls] = script("postinst", {"configure", ""}, {});
    EXPECT_TRUE(contains(calls, "systemd-sysusers agentd.conf\n")) << calls;
    EXPECT_TRUE(contains(calls, "systemd-tmpfiles --create agentd.conf\n")) << calls;
    for (auto const* unit : {"agentd.socket", "agentd.service"})
        EXPECT_TRUE(contains(calls, std::string("deb-systemd-helper update-state ") + unit))
            << calls;
    EXPECT_TRUE(contains(calls, "systemctl --system daemon-reload\n")) << calls;
    EXPECT_FALSE(contains(calls, "deb-systemd-invoke")) << calls;
    EXPECT_FALSE(contains(calls, "deb-systemd-helper enable")) << calls;
}

TEST_F(maintainer_scripts_test, upgrade_restarts_only_a_running_service_and_keeps_enablement) {
    auto [status, calls] = script("postinst", {"configure", "0.9.0"}, upgrade(true));
    EXPECT_TRUE(contains(calls, "deb-systemd-helper unmask agentd.service\n")) << calls;
    EXPECT_TRUE(contains(calls, "deb-systemd-helper enable agentd.service\n")) << calls;
    EXPECT_TRUE(contains(calls, "deb-systemd-invoke try-restart agentd.service\n")) << calls;
    EXPECT_FALSE(contains(calls, "deb-systemd-invoke start")) << calls;

    auto [again, disabled] = script("postinst", {"configure", "0.9.0"}, upgrade(false));
    EXPECT_FALSE(contains(disabled, "deb-systemd-helper enable")) << "the operator disabled it";
}

TEST_F(maintainer_scripts_test, remove_stops_socket_and_service_and_upgrade_does_not) {
    auto [r, removed] = script("prerm", {"remove"}, {});
    EXPECT_EQ(removed, "deb-systemd-invoke stop agentd.socket agentd.service\n");
    auto [u, upgraded] = script("prerm", {"upgrade", "0.2.0"}, {});
    EXPECT_EQ(upgraded, "");
    auto [pr, after_remove] = script("postrm", {"remove"}, {});
    EXPECT_EQ(after_remove, "systemctl --system daemon-reload\n");
}

TEST_F(maintainer_scripts_test, purge_forgets_the_units_and_removes_the_state) {
    auto [p, calls] = script("postrm", {"purge"}, {});
    EXPECT_TRUE(contains(calls, "deb-systemd-helper purge agentd.socket agentd.service\n"))
        << calls;
    EXPECT_TRUE(contains(calls, "deb-systemd-helper unmask agentd.socket agentd.service\n"))
        << calls;
    EXPECT_TRUE(contains(calls, "systemctl --system daemon-reload\n")) << calls;

    auto root = dir_.path() / "target";
    fs::create_directories(root / "var/lib/agentd");
    std::ofstream(root / "var/lib/agentd/agentd.db") << "jobs";
    fs::create_directories(root / "run/agentd");
    auto [r, rooted] = script("postrm", {"purge"}, in_root(root.string()));
    EXPECT_FALSE(fs::exists(root / "var/lib/agentd"));
    EXPECT_FALSE(fs::exists(root / "run/agentd"));
    EXPECT_FALSE(contains(rooted, "systemctl")) << "no daemon-reload for another root";
}

TEST_F(maintainer_scripts_test, without_systemd_or_in_another_root_nothing_is_started) {
    for (auto s : {without_systemd(), in_root("/tmp/elsewhere")}) {
        s.installed_before = true;
        auto [i, calls] = script("postinst", {"configure", "0.9.0"}, s);
        EXPECT_FALSE(contains(calls, "systemctl")) << calls;
        EXPECT_FALSE(contains(calls, "deb-systemd-invoke")) << calls;
        EXPECT_TRUE(contains(calls, "systemd-sysusers")) << calls;
        auto [r, removed] = script("prerm", {"remove"}, s);
        EXPECT_EQ(removed, "");
    }
    auto [i, rooted] = script("postinst", {"configure", ""}, in_root("/tmp/elsewhere"));
    EXPECT_TRUE(contains(rooted, "systemd-sysusers --root=/tmp/elsewhere agentd.conf\n")) << rooted;
    EXPECT_TRUE(contains(rooted, "systemd-tmpfiles --root=/tmp/elsewhere --create agentd.conf\n"))
        << rooted;
}

}  // namespace
}  // namespace agentd::test
