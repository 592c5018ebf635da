// Real git worktrees and diffs for the fake OpenCode server; see worktrees.hpp.
#include "worktrees.hpp"

#include "fake_state.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fake {
namespace json = boost::json;

namespace {

struct run_result {
    int exit = -1;
    std::string out;  // stdout and stderr together
};

// Runs `git args…` and collects what it prints; never through a shell.
run_result git(std::vector<std::string> args) {
    args.insert(args.begin(), "git");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return {};
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return {};
    }
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execvp("git", argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    run_result r;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, std::size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Counts a unified patch's added and removed lines (not its ---/+++ headers).
std::pair<std::int64_t, std::int64_t> count_lines(std::string const& patch) {
    std::int64_t add = 0, del = 0;
    std::istringstream in(patch);
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with("+++") || line.starts_with("---")) continue;
        if (line.starts_with("+")) ++add;
        if (line.starts_with("-")) ++del;
    }
    return {add, del};
}

}  // namespace

worktrees::worktrees() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fake-worktrees-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
}

worktrees::~worktrees() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
}

std::optional<worktree_plan> worktrees::plan_for(std::string const& repo) const {
    auto inside = git({"-C", repo, "rev-parse", "--is-inside-work-tree"});
    if (inside.exit != 0 || trimmed(inside.out) != "true") return std::nullopt;
    worktree_plan plan;
    std::ifstream in(std::filesystem::path(repo) / ".fake-worktree");
    for (std::string line; std::getline(in, line);) {
        if (line == "ready=before") plan.when = worktree_plan::ready::before;
        if (line == "ready=never") plan.when = worktree_plan::ready::never;
        if (line.starts_with("failed=")) plan.failed = line.substr(7);
    }
    return plan;
}

made_worktree worktrees::create(std::string const& repo, std::string& error) {
    made_worktree w;
    w.name = new_id("wt");
    w.branch = "opencode/" + w.name;
    w.directory = root_ + "/" + w.name;
    auto r = git({"-C", repo, "worktree", "add", "-b", w.branch, w.directory, "HEAD"});
    if (r.exit != 0) error = trimmed(r.out);
    return w;
}

bool worktrees::remove(std::string const& repo, std::string const& directory, std::string& error) {
    auto branch = git({"-C", directory, "rev-parse", "--abbrev-ref", "HEAD"});
    auto r = git({"-C", repo, "worktree", "remove", "--force", directory});
    if (r.exit != 0) {
        error = trimmed(r.out);
        return false;
    }
    if (branch.exit == 0) git({"-C", repo, "branch", "-D", trimmed(branch.out)});
    return true;
}

json::array file_diffs(std::string const& directory, std::vector<std::string> const& files) {
    json::array out;
    for (auto const& file : files) {
        bool in_head = git({"-C", directory, "cat-file", "-e", "HEAD:" + file}).exit == 0;
        bool exists = std::filesystem::exists(std::filesystem::path(directory) / file);
        auto r = in_head ? git({"-C", directory, "diff", "HEAD", "--", file})
                         : git({"-C", directory, "diff", "--no-index", "--", "/dev/null", file});
        // git diff exits 0 (--no-index: 1 when the files differ); anything else is git failing.
        if (r.exit != (in_head ? 0 : 1) || r.out.empty()) continue;
        auto [add, del] = count_lines(r.out);
        auto status = !in_head ? "added" : exists ? "modified" : "deleted";
        out.push_back(json::object{{"file", file},
                                   {"patch", r.out},
                                   {"additions", add},
                                   {"deletions", del},
                                   {"status", status}});
    }
    return out;
}

}  // namespace fake
