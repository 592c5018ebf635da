// MCP sessions (Mcp-Session-Id): opened by initialize, ended by DELETE, by idle expiry or by
// eviction at a principal's cap. Each session lists its in-flight requests so that
// notifications/cancelled and the session's end can stop them, and agentd's own requests to the
// client (elicitation/create) that await its response. No sockets: http_connection.hpp holds one
// registry.
#pragma once

#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace agentd::daemon {

struct mcp_session {
    using clock = std::chrono::steady_clock;

    std::string id;  // random; also the default owner session of the jobs it starts
    std::string principal;
    clock::time_point last_used;
    // Called a tool since initialize: a client at work, evicted only after sessions that never
    // did (a flood of initializes then evicts its own sessions, not its neighbours').
    bool used = false;
    // Serialized JSON-RPC request id -> what stops that request.
    std::multimap<std::string, std::function<void()>> in_flight;
    bool ended = false;

    // Negotiated at initialize: the protocol version, and whether the client takes form
    // elicitation/create requests.
    std::string version;
    bool elicits = false;
    // agentd's requests to the client awaiting its response: serialized id -> who takes it.
    std::map<std::string, std::function<void(boost::json::object const&)>> awaiting;
    std::uint64_t requests_sent = 0;

    // Stops the in-flight requests with this id (a client may reuse an id; all of them stop).
    void cancel(std::string const& request_id);
    // Hands a client's response to the request of agentd it answers; false when it answers
    // none (unknown, or no longer awaited): it is then ignored.
    bool take_reply(boost::json::object const& response);
    // Records that a job's request was put to the person; false when it already was (a request
    // is elicited at most once per session). Remembers the last max_elicited.
    static constexpr std::size_t max_elicited = 1024;
    bool mark_elicited(std::string const& job, std::string const& request);

  private:
    std::unordered_set<std::string> elicited_;
    std::deque<std::string> elicited_order_;
};

// Registers one in-flight request of a session for its lifetime. When the session has already
// ended, `stop` runs at once.
class mcp_in_flight {
  public:
    mcp_in_flight(std::shared_ptr<mcp_session> session, std::string request_id,
                  std::function<void()> stop);
    ~mcp_in_flight();
    mcp_in_flight(mcp_in_flight const&) = delete;
    mcp_in_flight& operator=(mcp_in_flight const&) = delete;

  private:
    std::shared_ptr<mcp_session> session_;
    std::multimap<std::string, std::function<void()>>::iterator it_;
};

class mcp_sessions {
  public:
    struct options {
        std::size_t max_sessions = 1024;  // per principal
        std::chrono::milliseconds idle_timeout{3'600'000};
        std::string id_prefix;  // before the random part of each id
    };

    explicit mcp_sessions(options opts);

    // A new session of `principal`. At its cap one of its idle sessions ends: one that never
    // called a tool first, then the least recently used. Null when all of them are busy (the
    // caller refuses with 503): a session with a request in flight is never evicted.
    std::shared_ptr<mcp_session> open(std::string const& principal);
    // The live session with this id (and marks it used), or null when unknown, ended or expired.
    std::shared_ptr<mcp_session> find(std::string_view id);
    // Ends a session and stops its in-flight requests; false when there was none.
    bool end(std::string_view id);
    // Ends every session of `principal` (its token was revoked).
    void end_all(std::string const& principal);

  private:
    bool expired(mcp_session const& s, mcp_session::clock::time_point now) const;
    void end_session(std::shared_ptr<mcp_session> const& s);
    // False when the principal is at its cap with no idle session to evict.
    bool make_room(std::string const& principal);

    options opts_;
    std::unordered_map<std::string, std::shared_ptr<mcp_session>> sessions_;
};

}  // namespace agentd::daemon
