// The fake's git side (DESIGN §5 worktrees and diffs): real `git worktree add/remove` under a
// temporary root, and per-file diffs computed by git, in the shapes `opencode serve` 1.18.33
// answers. Blocking git runs on the server's thread: fine for a test double.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace fake {

// How a repository's worktrees come up, from its `.fake-worktree` file (key=value lines):
// `ready=after` (default: worktree.ready some ms after the reply, as opencode does),
// `ready=before` (the event goes out before the reply), `ready=never`, or `failed=MESSAGE`
// (worktree.failed with that message instead).
struct worktree_plan {
    enum class ready { after, before, never } when = ready::after;
    std::optional<std::string> failed;
};

struct made_worktree {
    std::string name;
    std::string branch;
    std::string directory;
};

class worktrees {
  public:
    worktrees();
    ~worktrees();
    worktrees(worktrees const&) = delete;
    worktrees& operator=(worktrees const&) = delete;

    // The repository's plan, or nullopt when `repo` is not a git work tree (opencode's
    // WorktreeNotGitError).
    std::optional<worktree_plan> plan_for(std::string const& repo) const;
    // `git worktree add -b opencode/<name> <root>/<name> HEAD` in `repo`; the git error text
    // when it fails.
    made_worktree create(std::string const& repo, std::string& error);
    // `git worktree remove --force` and the branch deleted, as opencode's DELETE does.
    bool remove(std::string const& repo, std::string const& directory, std::string& error);

  private:
    std::string root_;
};

// [{file, patch, additions, deletions, status}] of `files` (relative to `directory`) against
// the HEAD of `directory`'s repository: modified, added (not in HEAD) or deleted (gone).
boost::json::array file_diffs(std::string const& directory, std::vector<std::string> const& files);

}  // namespace fake
