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

// `paused`: the client reads nothing (and so answers no ping) until resume_reading(), like a
// peer that stopped reading.
enum class read_mode { eager, paused };

class ws_client {
  public:
    // Throws std::runtime_error when the upgrade fails; `status()` of the refusal is in the text.
    ws_client(unsigned short port, std::vector<std::pair<std::string, std::string>> headers,
              std::string target = "/ws", read_mode mode = read_mode::eager);
    ~ws_client();
    ws_client(ws_client const&) = delete;
    ws_client& operator=(ws_client const&) = delete;

    void send(std::string const& text);
    // Writes `text` `count` times, back to back, until all are written or no write completes
    // for `stall` (the server stopped reading). The number of frames written; a write left
    // pending ends with the client.
    std::size_t flood(std::string text, std::size_t count, std::chrono::milliseconds stall);
    // The next text message, or nullopt when none arrives in time or the server closed.
    std::optional<std::string> receive(std::chrono::milliseconds timeout);
    void resume_reading();
    // Reads until the server closes; the number of messages read, nullopt if still open.
    std::optional<std::size_t> drain_until_closed(std::chrono::milliseconds timeout);
    // Pings received from the server so far (answered automatically while reading).
    int pings() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The HTTP status agentd answers an upgrade request with (101 when it upgrades).
int ws_upgrade_status(unsigned short port,
                      std::vector<std::pair<std::string, std::string>> headers);

}  // namespace agentd::test
