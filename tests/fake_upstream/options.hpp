// Command-line settings of the fake OpenCode server, shared by main, the HTTP layer and the
// model. Kept in its own header so main does not pull in Asio.
#pragma once

#include "directives.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace fake {

struct options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::int64_t latency_ms = 50;
    std::int64_t create_latency_ms = 0;
    std::int64_t heartbeat_ms = 10'000;
    std::optional<std::string> password;  // HTTP basic auth, username "opencode"
    // /event serves one directory's sessions (?directory=, else "/fake"), as the real server
    // does per instance (/global/event carries all); --unscoped-events makes /event carry all.
    // GET /permission and GET /question are scoped the same way.
    bool scoped_events = true;
    // Bound of one /event subscriber's backlog; a reader that falls further behind is dropped.
    std::size_t event_queue_bytes = 64u << 20;
    // Event streams send one `data:` line that never ends (a hostile upstream).
    bool endless_event_line = false;
    // GET /agent and GET /config/providers (catalog.hpp): how long they take, and an HTTP
    // fault (directives.hpp) that spoils both.
    std::int64_t lists_latency_ms = 0;
    fault lists_fault = fault::none;
};

// Serves until SIGTERM/SIGINT, then drains every connection and returns the exit status.
int run_server(options const& opts);

}  // namespace fake
