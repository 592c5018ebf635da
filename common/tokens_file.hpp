// The tokens file of several principals (auth.tokens_file, `agentctl token`): its TOML format
// `[principals.NAME] sha256 = "…", admin = false, max_running = N`, parsed and checked with the
// exact key in every message, read with the same safety checks as the token file, and edited
// (add/replace, remove) by agentctl. Only token hashes are ever stored.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agentd::common {

// The principal of the state-dir token: reserved, never a name in the file.
inline constexpr std::string_view local_principal = "local";

struct principal_entry {
    std::string name;
    std::string sha256;  // 64 lowercase hex digits: SHA-256 of the token
    bool admin = false;
    std::size_t max_running = 0;  // 0: only the instance's limits.max_running
};

// SHA-256 of `text`, and as 64 lowercase hex digits.
std::array<unsigned char, 32> sha256(std::string_view text);
std::string sha256_hex(std::string_view text);

// A new token: 32 random bytes (getrandom) as 64 hex digits, like the daemon's own token.
std::string new_token();

// The principals of the file's text, or an error naming the key ("principals.ci.sha256: …").
std::variant<std::vector<principal_entry>, std::string> parse_tokens(std::string_view text);

// STATE_DIR/tokens.toml: where agentd and agentctl look when no file is configured.
std::filesystem::path default_tokens_path(std::filesystem::path const& state_dir);

// Reads and parses `path`, refusing a symbolic link and a group- or other-writable file.
// A missing file is an empty list when `must_exist` is false. Errors name the file.
std::variant<std::vector<principal_entry>, std::string> read_tokens_file(
    std::filesystem::path const& path, bool must_exist);

// The file's text (empty: a new file) with principal `e` set: its sha256, admin and max_running
// replaced (its other keys and every other principal kept); or an error when the text does not
// parse.
std::variant<std::string, std::string> with_principal(std::string_view text,
                                                      principal_entry const& e);
// The text without principal `name`; nullopt when it has none of that name (or does not parse).
std::optional<std::string> without_principal(std::string_view text, std::string const& name);

// Replaces `path` with `text` atomically (a 0600 temp file in the same directory, fsync, rename);
// an error message, or nullopt.
std::optional<std::string> write_file_atomically(std::filesystem::path const& path,
                                                 std::string const& text);

}  // namespace agentd::common
