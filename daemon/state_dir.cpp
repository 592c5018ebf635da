// State dir and token checks; see state_dir.hpp. lstat, so a symlink is seen as what it is.
#include "daemon/state_dir.hpp"

#include <fmt/format.h>

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace agentd::daemon {

namespace {

std::string mode_text(mode_t m) {
    return fmt::format("{:04o}", m & 07777);
}

bool group_is_agentd(gid_t gid) {
    auto const* g = ::getgrgid(gid);
    return g && std::string(g->gr_name) == "agentd";
}

}  // namespace

void verify_state_dir(std::filesystem::path const& dir) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        throw std::runtime_error(
            fmt::format("cannot use state directory {}: {}", dir.string(), std::strerror(errno)));
    if (!S_ISDIR(st.st_mode))
        throw std::runtime_error(
            fmt::format("state directory {} is not a directory", dir.string()));
    // Anybody who can write there could plant a token or a database for agentd to trust.
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        throw std::runtime_error(fmt::format(
            "state directory {} is writable by group or others (mode {}); run chmod 700 {}",
            dir.string(), mode_text(st.st_mode), dir.string()));
}

void verify_token_file(std::filesystem::path const& file, mode_t wanted) {
    struct stat st {};
    if (::lstat(file.c_str(), &st) != 0) {
        if (errno == ENOENT) return;
        throw std::runtime_error(
            fmt::format("cannot use token file {}: {}", file.string(), std::strerror(errno)));
    }
    verify_token_stat(file, st, wanted);
}

void verify_token_stat(std::filesystem::path const& file, struct stat const& st, mode_t wanted) {
    auto refuse = [&](std::string const& why) {
        throw std::runtime_error(
            fmt::format("token file {} {}; remove it to have a new one created, or fix it",
                        file.string(), why));
    };
    if (S_ISLNK(st.st_mode)) refuse("is a symbolic link");
    if (!S_ISREG(st.st_mode)) refuse("is not a regular file");
    if (st.st_uid != ::geteuid())
        refuse(fmt::format("is owned by uid {}, not by agentd's uid {}", st.st_uid, ::geteuid()));
    auto mode = st.st_mode & 07777;
    bool service_group = mode == 0640 && (wanted == 0640 || group_is_agentd(st.st_gid));
    if (mode != 0600 && !service_group)
        refuse(fmt::format("has mode {} (want 0600, or 0640 with group agentd)", mode_text(mode)));
}

}  // namespace agentd::daemon
