// A test fixture for code that reads agentd's discovery variables ($HOME, $XDG_STATE_HOME, …):
// each test starts with them unset and a fresh temp dir, and gets back what it found.
// The daemon's and agentctl's discovery tests share it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace agentd::test_support {

class discovery_env : public ::testing::Test {
  protected:
    static constexpr char const* vars[] = {"AGENTD_URL",      "AGENTD_TOKEN",   "AGENTD_STATE_DIR",
                                           "STATE_DIRECTORY", "XDG_STATE_HOME", "HOME"};

    void SetUp() override {
        for (char const* name : vars) {
            if (char const* value = std::getenv(name)) saved_[name] = value;
            ::unsetenv(name);
        }
        char tmpl[] = "/tmp/agentd_discovery.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        for (char const* name : vars) ::unsetenv(name);
        for (auto const& [name, value] : saved_) ::setenv(name.c_str(), value.c_str(), 1);
        std::filesystem::remove_all(dir_);
    }
    std::filesystem::path write(std::filesystem::path const& relative, std::string const& text) {
        auto path = dir_ / relative;
        std::filesystem::create_directories(path.parent_path());
        std::ofstream(path) << text;
        return path;
    }

    std::filesystem::path dir_;
    std::map<std::string, std::string> saved_;
};

}  // namespace agentd::test_support
