// Several upstream servers of one backend kind behind one backend (DESIGN §9, issue #19): the
// launch gate places each job on a healthy server with the fewest running jobs, and every call
// of the job then goes to that server. Health checks run in the background (pool.cpp).
#pragma once

#include "jobs/upstream/backend.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream {

struct pool_config {
    std::size_t max_running_per_server = 0;  // 0: no cap per server
    std::chrono::milliseconds health_interval{2000};
};

// One configured server: its URL as written in the configuration and its backend.
struct pool_member {
    std::string url;
    std::unique_ptr<backend> be;
};

// What the choice knows of a server.
struct server_state {
    std::string url;
    bool up = true;
    std::string why_down;  // "health check failed (…)" while !up
    std::size_t running = 0;
};

// The pure choice. `wanted` empty (a new job): among the healthy servers below `cap` (0: none),
// the one with the fewest running jobs, the lowest index on a tie; `wait` when every healthy one
// is full; `refuse` (transport) naming every server and why when none is healthy. `wanted` set
// (a follow-up): that server only, refused while it is down or no longer configured.
placement choose_server(std::span<server_state const> servers, std::string_view wanted,
                        std::size_t cap);

// With one member: no health checks and never marked down (today's single upstream).
std::unique_ptr<backend> make_pool(boost::asio::any_io_executor ex,
                                   std::vector<pool_member> members, pool_config cfg);

}  // namespace agentd::jobs::upstream
