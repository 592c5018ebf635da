// Integration-test fixture: starts the fake OpenCode upstream and the real agentd binary on
// port 0 in a fresh state dir, reads the port from agentd's "listening on" line and the token
// from $STATE_DIR/token, and offers JSON-RPC helpers over real loopback HTTP.
#pragma once

#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace agentd::test {

namespace json = boost::json;

class agentd_process {
  public:
    // Starts agentd against `upstream_url` with extra flags; fails the test if it does not start.
    agentd_process(std::string const& upstream_url, std::vector<std::string> extra = {});
    ~agentd_process();

    // SIGKILL (no chance to clean up), then start again on the same state dir and flags.
    void kill_and_restart();
    // Start again on the same state dir after the process ended by itself.
    void start_again();

    int port() const { return port_; }
    std::string const& token() const { return token_; }
    std::filesystem::path const& state_dir() const { return state_dir_; }
    child_process& process() { return *proc_; }

    // POST /rpc with the token; raw HTTP.
    http_response post(std::string const& body,
                       std::vector<std::pair<std::string, std::string>> headers = {});
    // One JSON-RPC request; the whole response object.
    json::object rpc(std::string const& method, json::value params);
    // One JSON-RPC request expected to succeed; its `result` (test fails on an error).
    json::object call(std::string const& method, json::value params);
    // The JSON-RPC error of a request expected to fail (test fails on success).
    json::object error(std::string const& method, json::value params);

  private:
    void launch();

    std::string upstream_url_;
    std::vector<std::string> extra_;
    std::filesystem::path state_dir_;
    std::unique_ptr<child_process> proc_;
    int port_ = 0;
    std::string token_;
    int next_id_ = 1;
};

// Fixture with one fake upstream and one agentd per test.
class agentd_test : public ::testing::Test {
  protected:
    void SetUp() override;
    // Restarts agentd with extra flags (same fake upstream).
    void restart_agentd(std::vector<std::string> extra);

    std::unique_ptr<fake_upstream> fake_;
    std::unique_ptr<agentd_process> agentd_;
};

// A loopback port nothing listens on (bound, read, closed).
int unused_port();

// Helpers over results.
json::array const& jobs_of(json::object const& result);
std::string str(json::value const& v, std::string_view key);
json::object task(std::string prompt, std::string description = {});
json::value ids_of(json::array const& jobs);

}  // namespace agentd::test
