// A small blocking WebSocket client for integration tests (Beast behind a pimpl): connect to
// agentd's /ws with headers, send text, receive with a timeout.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agentd::test {

class ws_client {
  public:
    // Throws std::runtime_error when the upgrade fails; `status()` of the refusal is in the text.
    ws_client(unsigned short port, std::vector<std::pair<std::string, std::string>> headers,
              std::string target = "/ws");
    ~ws_client();
    ws_client(ws_client const&) = delete;
    ws_client& operator=(ws_client const&) = delete;

    void send(std::string const& text);
    // The next text message, or nullopt when none arrives in time or the server closed.
    std::optional<std::string> receive(std::chrono::milliseconds timeout);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The HTTP status agentd answers an upgrade request with (101 when it upgrades).
int ws_upgrade_status(unsigned short port,
                      std::vector<std::pair<std::string, std::string>> headers);

}  // namespace agentd::test
