// The opencode backend (DESIGN §5): sessions and prompts on an `opencode serve` (prompt_async
// whose turn ends on the server's event stream, the synchronous prompt while the stream is
// down), the stream also feeding live partial text, tool steps and requests, and replies to
// permissions and questions.
#pragma once

#include "jobs/http_client.hpp"
#include "jobs/upstream/backend.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <memory>

namespace agentd::jobs::upstream {

struct opencode_config {
    common::url target;  // http://
    std::optional<std::string> username;
    std::optional<std::string> password;
    std::chrono::milliseconds request_timeout{30'000};     // create, abort, read (not the prompt)
    std::chrono::milliseconds event_idle_timeout{35'000};  // > the server's 10 s heartbeat
    std::size_t max_output = 1 << 20;
    // Idle keep-alive connections kept: as many as jobs may run at once, since a wave of jobs
    // has that many calls in flight together (their session creates and prompts; a synchronous
    // prompt holds its connection for the turn), or a burst closes what the next wave reopens.
    std::size_t max_idle_connections = 64;
};

std::unique_ptr<backend> make_opencode_backend(boost::asio::any_io_executor ex,
                                               opencode_config cfg);

}  // namespace agentd::jobs::upstream
