// Worktree isolation and diffs (issue #17 point 2), end to end: the real agentd binary against
// the fake OpenCode server, which makes real git worktrees of a real repository in a temp dir
// and diffs the files a turn wrote with git. Ready and failed events, a non-git directory,
// agents_peek {diff}, JobView diff_summary, agents_worktree_remove, and a restart.
#include "agentd_fixture.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace agentd::test {
namespace {

namespace fs = std::filesystem;

std::string read_file(fs::path const& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(fs::path const& p, std::string const& text) {
    std::ofstream(p, std::ios::trunc) << text;
}

// Runs a shell command (paths here are mkdtemp's: no spaces or quotes); its stdout, and its
// wait status in `status`.
std::string sh_status(std::string const& command, int& status) {
    std::string out;
    auto* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return out;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
    status = ::pclose(pipe);
    return out;
}

std::string sh(std::string const& command) {
    int status = 0;
    return sh_status(command, status);
}

// A temp dir removed at the end of the test.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "agentd-wt-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// A git repository with one commit of a.txt = "one\ntwo\n".
struct git_repo : temp_dir {
    git_repo() {
        write_file(path / "a.txt", "one\ntwo\n");
        sh(
            fmt::format("cd {} && git init -q && git add a.txt && git -c user.email=t@t -c "
                        "user.name=t commit -qm init",
                        path.string()));
    }
};

// agentctl with `args` against `a`; its exit code and stdout + stderr.
std::pair<int, std::string> agentctl(agentd_process& a, std::vector<std::string> const& args) {
    std::string cmd = fmt::format("{} --url http://127.0.0.1:{} --state-dir {}", AGENTCTL_PATH,
                                  a.port(), a.state_dir().string());
    for (auto const& arg : args) cmd += " " + arg;  // ids and flags: nothing to quote
    int status = 0;
    auto out = sh_status(cmd + " 2>&1", status);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class worktree_test : public agentd_test {
  protected:
    json::object isolated(std::string prompt, fs::path const& dir) {
        auto t = task(std::move(prompt));
        t["isolation"] = "worktree";
        t["directory"] = dir.string();
        return t;
    }

    // The worktree events reach agentd on its event stream: it must be following it first.
    std::vector<std::string> start(json::array tasks) {
        EXPECT_TRUE(fake_->wait_counter("event_subscribers", 1, std::chrono::seconds(5)));
        auto started = agentd_->call("agents_start", json::object{{"tasks", std::move(tasks)}});
        std::vector<std::string> ids;
        for (auto const& j : jobs_of(started)) ids.push_back(str(j, "id"));
        return ids;
    }

    json::object finished(std::string const& id) {
        auto w = agentd_->call("agents_wait", json::object{{"jobs", json::array{json::value(id)}},
                                                           {"timeout_ms", 15000}});
        EXPECT_TRUE(w.at("done").as_bool()) << json::serialize(w);
        return jobs_of(w).at(0).as_object();
    }

    json::object peek(std::string const& id, bool diff) {
        return agentd_->call("agents_peek", json::object{{"job", id}, {"diff", diff}});
    }

    // The ?directory= of the fake's calls of `method` whose path starts with `prefix`.
    std::vector<std::string> directories_of(std::string_view method, std::string_view prefix) {
        auto calls = http_request(fake_->port(), "GET", "/_fake/calls");
        std::vector<std::string> out;
        auto const list = json::parse(calls.body);
        for (auto const& c : list.as_array()) {
            if (str(c, "method") != method || !str(c, "path").starts_with(prefix)) continue;
            auto const& d = c.at("directory");
            out.push_back(d.is_string() ? std::string(d.get_string()) : "");
        }
        return out;
    }
};

TEST_F(worktree_test, IsolatedJobRunsInAWorktreeOfTheRepository) {
    git_repo repo;
    auto id = start({isolated("edit [[fake write=a.txt write_text=one|three]]", repo.path)})[0];
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "completed") << json::serialize(job);

    ASSERT_TRUE(job.contains("worktree")) << json::serialize(job);
    fs::path tree(str(job.at("worktree"), "directory"));
    EXPECT_TRUE(str(job.at("worktree"), "branch").starts_with("opencode/"));
    EXPECT_TRUE(fs::is_directory(tree));
    // A worktree of this repository: its git dir lives in the repository's.
    auto common = sh(fmt::format("git -C {} rev-parse --git-common-dir", tree.string()));
    EXPECT_EQ(fs::canonical(common.substr(0, common.find('\n'))),
              fs::canonical(repo.path / ".git"));
    EXPECT_EQ(str(job.at("task"), "directory"), repo.path.string());

    // The worktree was made from the task's directory; everything else ran in the worktree.
    EXPECT_EQ(directories_of("POST", "/experimental/worktree"),
              std::vector<std::string>{repo.path.string()});
    EXPECT_EQ(directories_of("POST", "/session"),
              (std::vector<std::string>{tree.string(), tree.string()}));  // create, prompt
    for (auto const& d : directories_of("GET", "/session/ses")) EXPECT_EQ(d, tree.string());

    // The edit landed in the worktree only.
    EXPECT_EQ(read_file(tree / "a.txt"), "one\nthree\n");
    EXPECT_EQ(read_file(repo.path / "a.txt"), "one\ntwo\n");

    ASSERT_TRUE(job.contains("diff_summary")) << json::serialize(job);
    EXPECT_EQ(job.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 1}, {"deletions", 1}}));

    auto plain = peek(id, false);
    EXPECT_FALSE(plain.contains("changes")) << json::serialize(plain);
    auto with_diff = peek(id, true);
    ASSERT_TRUE(with_diff.contains("changes")) << json::serialize(with_diff);
    auto const& changes = with_diff.at("changes").as_array();
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(str(changes[0], "file"), "a.txt");
    EXPECT_EQ(str(changes[0], "status"), "modified");
    EXPECT_EQ(changes[0].at("additions").as_int64(), 1);
    EXPECT_EQ(changes[0].at("deletions").as_int64(), 1);
    EXPECT_NE(str(changes[0], "patch").find("-two\n+three\n"), std::string::npos)
        << str(changes[0], "patch");
}

TEST_F(worktree_test, TwoIsolatedJobsEditingOneFileDoNotCollide) {
    git_repo repo;
    auto ids =
        start({isolated("[[fake write=a.txt write_text=left latency_ms=200]]", repo.path),
               isolated("[[fake write=a.txt write_text=right|more latency_ms=200]]", repo.path)});
    auto left = finished(ids[0]);
    auto right = finished(ids[1]);
    ASSERT_EQ(str(left, "state"), "completed") << json::serialize(left);
    ASSERT_EQ(str(right, "state"), "completed") << json::serialize(right);
    fs::path left_tree(str(left.at("worktree"), "directory"));
    fs::path right_tree(str(right.at("worktree"), "directory"));
    EXPECT_NE(left_tree, right_tree);
    EXPECT_EQ(read_file(left_tree / "a.txt"), "left\n");
    EXPECT_EQ(read_file(right_tree / "a.txt"), "right\nmore\n");
    EXPECT_EQ(read_file(repo.path / "a.txt"), "one\ntwo\n");
    EXPECT_EQ(left.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 1}, {"deletions", 2}}));
    EXPECT_EQ(right.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 2}, {"deletions", 2}}));
    auto peeked = peek(ids[1], true);
    EXPECT_NE(str(peeked.at("changes").at(0), "patch").find("+right\n+more\n"), std::string::npos);
}

TEST_F(worktree_test, AddedFileAndAJobThatChangedNothing) {
    git_repo repo;
    auto ids = start({isolated("[[fake write=new.txt write_text=a|b|c]]", repo.path),
                      isolated("just talk", repo.path)});
    auto added = finished(ids[0]);
    auto quiet = finished(ids[1]);
    EXPECT_EQ(added.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 3}, {"deletions", 0}}));
    EXPECT_EQ(str(peek(ids[0], true).at("changes").at(0), "status"), "added");
    // No file changed: no diff_summary, and an empty `changes`.
    EXPECT_FALSE(quiet.contains("diff_summary")) << json::serialize(quiet);
    // The event stream showed the turn without a patch part: its diff was not read as it
    // ended (the one read is peek's, below).
    auto session = str(quiet.at("upstream"), "session");
    EXPECT_TRUE(directories_of("GET", "/session/" + session + "/diff").empty());
    EXPECT_TRUE(peek(ids[1], true).at("changes").as_array().empty());
    EXPECT_EQ(directories_of("GET", "/session/" + session + "/diff").size(), 1u);
}

// Opencode computes a turn's diff summary in the background after the step that changed
// files; until it ends, GET /diff shows nothing. Here it ends 1.5 s after the reply: the job
// completes with its diff_summary all the same, once the summary's event came.
TEST_F(worktree_test, DiffSummaryWrittenAfterTheReplyIsWaitedFor) {
    git_repo repo;
    auto id = start(
        {isolated("[[fake write=a.txt write_text=one|three summary_ms=1500]]", repo.path)})[0];
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "completed") << json::serialize(job);
    ASSERT_TRUE(job.contains("diff_summary")) << json::serialize(job);
    EXPECT_EQ(job.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 1}, {"deletions", 1}}));
}

TEST_F(worktree_test, ReadyEventBeforeTheReplyIsNotLost) {
    git_repo repo;
    write_file(repo.path / ".fake-worktree", "ready=before\n");
    auto id = start({isolated("hello", repo.path)})[0];
    auto job = finished(id);
    EXPECT_EQ(str(job, "state"), "completed") << json::serialize(job);
    EXPECT_TRUE(job.contains("worktree"));
}

TEST_F(worktree_test, NotAGitRepositoryFailsAtCreateWithOpencodesMessage) {
    temp_dir plain;
    auto id = start({isolated("hello", plain.path)})[0];
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "failed") << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "kind"), "upstream");
    EXPECT_EQ(str(job.at("error"), "phase"), "create");
    EXPECT_NE(str(job.at("error"), "message").find("Worktrees are only supported for git projects"),
              std::string::npos)
        << json::serialize(job);
    EXPECT_FALSE(job.contains("worktree"));
    EXPECT_TRUE(directories_of("POST", "/session").empty());  // no session was made
}

TEST_F(worktree_test, WorktreeFailedEventFailsAtCreate) {
    git_repo repo;
    write_file(repo.path / ".fake-worktree", "failed=start command exited with 1\n");
    auto id = start({isolated("hello", repo.path)})[0];
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "failed") << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "kind"), "upstream");
    EXPECT_EQ(str(job.at("error"), "phase"), "create");
    EXPECT_EQ(str(job.at("error"), "message"), "start command exited with 1");
    EXPECT_TRUE(directories_of("POST", "/session").empty());
}

TEST_F(worktree_test, AWorktreeNeverReadyEndsAtTheJobsDeadline) {
    git_repo repo;
    write_file(repo.path / ".fake-worktree", "ready=never\n");
    auto t = isolated("hello", repo.path);
    t["timeout_ms"] = 800;
    auto job = finished(start({t})[0]);
    ASSERT_EQ(str(job, "state"), "failed") << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "kind"), "timeout");
    EXPECT_EQ(str(job.at("error"), "phase"), "create");
}

TEST_F(worktree_test, WorktreeRemoveRemovesItAndChecksTheJob) {
    git_repo repo;
    auto id = start({isolated("[[fake write=a.txt]]", repo.path)})[0];
    auto job = finished(id);
    fs::path tree(str(job.at("worktree"), "directory"));
    ASSERT_TRUE(fs::is_directory(tree));

    // A finished job's status text is kept (daemon/rpc.cpp): whatever the removal changes in its
    // view, agents_status shows it as the removal's reply does.
    agentd_->call("agents_status", json::object{{"jobs", json::array{json::value(id)}}});
    auto removed = agentd_->call("agents_worktree_remove", json::object{{"job", id}});
    EXPECT_EQ(str(removed.at("job"), "id"), id);
    auto status =
        agentd_->call("agents_status", json::object{{"jobs", json::array{json::value(id)}}});
    EXPECT_EQ(status.at("jobs").at(0), removed.at("job"));
    EXPECT_FALSE(fs::exists(tree));
    EXPECT_EQ(sh(fmt::format("git -C {} worktree list", repo.path.string())).find(tree.string()),
              std::string::npos);
    EXPECT_EQ(fake_->stats().at("worktrees_removed").as_int64(), 1);

    auto unknown = agentd_->error("agents_worktree_remove",
                                  json::object{{"job", "job_00000000000000000000000000000000"}});
    EXPECT_EQ(unknown.at("code").as_int64(), -32602);
    EXPECT_EQ(str(unknown.at("data"), "field"), "job");
    auto plain = start({task("no isolation")})[0];
    finished(plain);
    auto none = agentd_->error("agents_worktree_remove", json::object{{"job", plain}});
    EXPECT_EQ(str(none.at("data"), "field"), "job");
    EXPECT_EQ(str(none.at("data"), "reason"), "the job has no worktree");
}

TEST_F(worktree_test, BadIsolationAndDiffValuesAreInvalidParams) {
    auto t = task("x");
    t["isolation"] = "container";
    auto e = agentd_->error("agents_start", json::object{{"tasks", json::array{t}}});
    EXPECT_EQ(e.at("code").as_int64(), -32602);
    EXPECT_EQ(str(e.at("data"), "field"), "tasks[0].isolation");
    t["isolation"] = 1;
    e = agentd_->error("agents_start", json::object{{"tasks", json::array{t}}});
    EXPECT_EQ(str(e.at("data"), "field"), "tasks[0].isolation");
    e = agentd_->error("agents_peek", json::object{{"job", "job_x"}, {"diff", "yes"}});
    EXPECT_EQ(str(e.at("data"), "field"), "diff");
}

// A follow-up of an isolated job is the next turn in the same worktree (DESIGN §2: it runs where
// its job ran); its diff is its own turn's. It cannot ask for a worktree of its own.
TEST_F(worktree_test, AFollowUpRunsInTheWorktreeOfItsJob) {
    git_repo repo;
    auto id = start({isolated("[[fake write=a.txt write_text=one|three]]", repo.path)})[0];
    auto first = finished(id);
    ASSERT_EQ(str(first, "state"), "completed") << json::serialize(first);
    fs::path tree(str(first.at("worktree"), "directory"));

    auto again = task("[[fake write=b.txt write_text=x|y]]");
    again["continue"] = id;
    again["isolation"] = "worktree";
    auto e = agentd_->error("agents_start", json::object{{"tasks", json::array{again}}});
    EXPECT_EQ(e.at("code").as_int64(), -32602);
    EXPECT_EQ(str(e.at("data"), "field"), "tasks[0].isolation");
    EXPECT_EQ(str(e.at("data"), "reason"), "not allowed with continue");

    again.erase("isolation");
    auto next = finished(start({again})[0]);
    ASSERT_EQ(str(next, "state"), "completed") << json::serialize(next);
    EXPECT_EQ(str(next, "continues"), id);
    EXPECT_EQ(str(next.at("worktree"), "directory"), tree.string());
    EXPECT_EQ(read_file(tree / "b.txt"), "x\ny\n");
    EXPECT_FALSE(fs::exists(repo.path / "b.txt"));
    EXPECT_EQ(next.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 2}, {"deletions", 0}}));
    // One worktree; the session made in it once and prompted there twice.
    EXPECT_EQ(directories_of("POST", "/experimental/worktree").size(), 1u);
    EXPECT_EQ(directories_of("POST", "/session"),
              (std::vector<std::string>{tree.string(), tree.string(), tree.string()}));
}

TEST_F(worktree_test, WorktreeAndDiffSummarySurviveARestart) {
    git_repo repo;
    auto id = start({isolated("[[fake write=a.txt write_text=one|two|three]]", repo.path)})[0];
    auto before = finished(id);
    ASSERT_TRUE(before.contains("diff_summary")) << json::serialize(before);
    agentd_->kill_and_restart();
    auto after = jobs_of(agentd_->call("agents_status",
                                       json::object{{"jobs", json::array{json::value(id)}}}))
                     .at(0)
                     .as_object();
    EXPECT_EQ(after.at("worktree"), before.at("worktree"));
    EXPECT_EQ(after.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 1}, {"deletions", 0}}));
    // The diff is read again from the same user message after the restart.
    auto changes = peek(id, true).at("changes").as_array();
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].at("additions").as_int64(), 1);
}

TEST_F(worktree_test, AJobReattachedAfterARestartKeepsItsWorktreeAndGetsItsDiff) {
    git_repo repo;
    auto id = start({isolated("[[fake write=a.txt write_text=x latency_ms=2500]]", repo.path)})[0];
    ASSERT_TRUE(fake_->wait_counter("prompts_started", 1, std::chrono::seconds(5)));
    agentd_->kill_and_restart();
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "completed") << json::serialize(job);
    ASSERT_TRUE(job.contains("worktree"));
    fs::path tree(str(job.at("worktree"), "directory"));
    EXPECT_EQ(job.at("diff_summary"),
              (json::value{{"files", 1}, {"additions", 1}, {"deletions", 2}}));
    // Re-attached in the worktree: every call about the session named it, the status read too
    // (opencode answers it per directory).
    for (auto const& d : directories_of("GET", "/session/ses")) EXPECT_EQ(d, tree.string());
    EXPECT_EQ(directories_of("GET", "/session/status"), std::vector<std::string>{tree.string()});
}

TEST_F(worktree_test, AgentctlStartIsolatedThenDiffAndWorktreeRm) {
    git_repo repo;
    ASSERT_TRUE(fake_->wait_counter("event_subscribers", 1, std::chrono::seconds(5)));
    auto [start_code, started] = agentctl(
        *agentd_, {"start", "-q", "--isolation", "worktree", "--directory", repo.path.string(),
                   "'edit [[fake write=a.txt write_text=one|three]]'"});
    ASSERT_EQ(start_code, 0) << started;
    auto id = started.substr(0, started.find('\n'));
    auto job = finished(id);
    ASSERT_EQ(str(job, "state"), "completed") << json::serialize(job);
    fs::path tree(str(job.at("worktree"), "directory"));

    auto [diff_code, diff] = agentctl(*agentd_, {"diff", id});
    EXPECT_EQ(diff_code, 0) << diff;
    EXPECT_NE(diff.find("modified  +1     -1      a.txt\n"), std::string::npos) << diff;
    EXPECT_NE(diff.find("-two\n+three\n"), std::string::npos) << diff;

    auto [rm_code, rm] = agentctl(*agentd_, {"worktree", "rm", id});
    EXPECT_EQ(rm_code, 0) << rm;
    EXPECT_NE(rm.find(id + ": worktree " + tree.string() + " removed"), std::string::npos) << rm;
    EXPECT_FALSE(fs::exists(tree));
    // Removed already: opencode's error comes back, and agentctl fails.
    auto [again_code, again] = agentctl(*agentd_, {"worktree", "rm", id});
    EXPECT_NE(again_code, 0) << again;
    auto [unknown_code, unknown] =
        agentctl(*agentd_, {"diff", "job_00000000000000000000000000000000"});
    EXPECT_EQ(unknown_code, 6) << unknown;  // an unknown id
    // Only what DESIGN §2 knows is sent.
    auto [bad_code, bad] = agentctl(*agentd_, {"start", "--isolation", "container", "x"});
    EXPECT_EQ(bad_code, 2) << bad;
}

}  // namespace
}  // namespace agentd::test
