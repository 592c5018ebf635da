// WebSocket transport of agentctl (GET /ws, DESIGN §6): one connection that sends the opening
// requests, then hands every message and a periodic tick to a handler until it says stop (it
// only listens after the opening, so no two writes ever overlap). Beast
// stays inside ws_client.cpp, the client's second Beast translation unit.
#pragma once

#include "discover.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentctl {

class ws_handler {
  public:
    virtual ~ws_handler() = default;
    // Requests to send once connected, in order.
    virtual std::vector<std::string> opening() = 0;
    // A message from the daemon; false ends the session.
    virtual bool on_message(std::string_view text) = 0;
    // Called every tick (redraws, deadlines); false ends the session.
    virtual bool on_tick() = 0;
};

// Connects (within `connect_deadline`) and runs until the handler stops it. Throws
// transport_error when the connection fails or the daemon closes it, and rethrows what the
// handler throws.
void run_ws(endpoint const& to, std::optional<std::string> const& bearer,
            std::chrono::milliseconds connect_deadline, std::chrono::milliseconds tick,
            ws_handler& handler);

}  // namespace agentctl
