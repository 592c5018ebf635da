// The upstream backend interface (DESIGN §5): create a session, run a prompt to its final text,
// abort, read partial output, stream deltas for peek. opencode is the first implementation; a
// new backend (openai, Anthropic Messages) implements these five calls and nothing else changes.
#pragma once

#include "jobs/upstream/call_control.hpp"
#include "protocol/job_view.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream {

// How an upstream call failed; becomes the job's `error`.
struct upstream_error {
    protocol::error_kind kind = protocol::error_kind::transport;
    protocol::error_phase phase = protocol::error_phase::prompt;
    std::string message;
    std::optional<int> http_status;
};

template <class T>
using up_result = boost::system::result<T, upstream_error>;
[[noreturn]] void throw_exception_from_error(upstream_error const& e,
                                             boost::source_location const& loc);

struct session_request {
    std::string title;                   // empty: none sent
    std::optional<std::string> parent;   // upstream parent session id
    std::optional<std::string> directory;
};

struct prompt_request {
    std::string prompt;
    std::optional<std::string> agent;
    std::optional<std::string> model;  // "provider/model"
    std::optional<std::string> system;
    std::optional<std::string> directory;
};

struct prompt_outcome {
    std::string output;
    bool truncated = false;
    protocol::job_usage usage;
};

// Text streamed so far by an upstream session (session id, delta); fed to peek.
using delta_sink = std::function<void(std::string_view session, std::string_view delta)>;

class backend {
public:
    virtual ~backend() = default;
    virtual std::string_view name() const = 0;

    virtual boost::asio::awaitable<up_result<std::string>> create_session(
        session_request const& req, call_control& ctl) = 0;
    virtual boost::asio::awaitable<up_result<prompt_outcome>> prompt(std::string const& session,
                                                                     prompt_request const& req,
                                                                     call_control& ctl) = 0;
    // Best effort, bounded by its own short deadline; never throws.
    virtual boost::asio::awaitable<up_result<void>> abort(
        std::string const& session, std::optional<std::string> const& directory) = 0;
    // What the session has produced so far, read from the upstream (fallback when no deltas).
    virtual boost::asio::awaitable<up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const& directory) = 0;

    // Starts background work (the event stream) that reports deltas to `sink`.
    virtual void start(delta_sink sink) = 0;
    // Stops background work and closes pooled connections; pending calls fail promptly.
    virtual void stop() = 0;
};

}  // namespace agentd::jobs::upstream
