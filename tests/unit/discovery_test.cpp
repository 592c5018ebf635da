// The daemon and agentctl agree on where the token is: for each environment the daemon resolves
// its state dir (read_startup) and writes its token there, and agentctl, given no flags, finds and
// reads that same file. A relative $XDG_STATE_HOME once split them (agentctl ignored it).
#include "agentctl/discover.hpp"
#include "common/state_dir.hpp"
#include "daemon/auth.hpp"
#include "daemon/config.hpp"
#include "discovery_env.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace agentd {
namespace {

namespace fs = std::filesystem;

class token_discovery : public test_support::discovery_env {
  protected:
    // The token the daemon creates with this environment, and what agentctl finds.
    void expect_agreement(fs::path const& expected_dir) {
        auto daemon_config = daemon::read_startup({"agentd"});
        ASSERT_TRUE(daemon_config.run) << daemon_config.output;
        EXPECT_EQ(fs::path(daemon_config.run->state_dir), expected_dir);
        auto token = daemon::load_or_create_token(daemon_config.run->state_dir);

        auto found = agentctl::resolve_credentials(agentctl::global_options{});
        EXPECT_EQ(found.token, token);
        EXPECT_EQ(found.source, common::token_path(expected_dir).string());
    }
};

TEST_F(token_discovery, home) {
    ::setenv("HOME", dir_.c_str(), 1);
    expect_agreement(dir_ / ".local/state/agentd");
}

TEST_F(token_discovery, a_relative_xdg_state_home_is_ignored_by_both) {
    ::setenv("HOME", dir_.c_str(), 1);
    ::setenv("XDG_STATE_HOME", "relative-state", 1);
    expect_agreement(dir_ / ".local/state/agentd");
    EXPECT_FALSE(fs::exists("relative-state"));
}

TEST_F(token_discovery, an_absolute_xdg_state_home) {
    ::setenv("HOME", (dir_ / "home").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (dir_ / "xdg").c_str(), 1);
    expect_agreement(dir_ / "xdg/agentd");
}

TEST_F(token_discovery, systemd_state_directory) {
    ::setenv("HOME", (dir_ / "home").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (dir_ / "xdg").c_str(), 1);
    ::setenv("STATE_DIRECTORY", (dir_ / "service:/elsewhere").c_str(), 1);
    expect_agreement(dir_ / "service");
}

}  // namespace
}  // namespace agentd
