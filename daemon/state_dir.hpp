// Start-up checks of what the state dir holds (DESIGN §6): the directory must not be writable by
// anybody else, and the token must be a regular file of ours that nobody else can read (0600, or
// 0640 with the `agentd` group of the system service or token_mode 0640). Each failure throws a
// message that names the path, what is wrong and how to fix it.
#pragma once

#include <sys/types.h>

#include <filesystem>

struct stat;

namespace agentd::daemon {

void verify_state_dir(std::filesystem::path const& dir);
// A token file that does not exist yet passes: agentd creates it with `wanted` (token_mode).
// 0640 passes with group agentd, or whatever the group when `wanted` is 0640.
void verify_token_file(std::filesystem::path const& file, mode_t wanted = 0600);
// The same rules on what an open descriptor's fstat saw (the file actually read, not a name
// that may have been swapped since the check).
void verify_token_stat(std::filesystem::path const& file, struct stat const& st,
                       mode_t wanted = 0600);

}  // namespace agentd::daemon
