// The JSON-RPC service shared by every transport: parses a message, plans its calls (parallel
// batches and serial barriers, DESIGN §4), runs the agents_* methods on the job manager and
// renders exactly one response per request id, in request order.
#pragma once

#include "jobs/manager.hpp"
#include "planner/plan.hpp"
#include "planner/traits.hpp"
#include "protocol/errors.hpp"
#include "protocol/job_view.hpp"
#include "protocol/params.hpp"
#include "protocol/rpc.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace agentd::daemon {

// Who is calling, and over what.
struct caller {
    std::string principal = "local";
    // The owner session of calls that name none: the MCP session's id over MCP.
    std::string default_session{protocol::default_session};
    bool can_ask = false;  // a channel exists to ask the user for approval
    // Asks the client to approve a call (params: what would run); true when approved.
    std::function<boost::asio::awaitable<bool>(boost::json::value)> ask;
    // Connections that push events (WebSocket): their id tags the jobs they start, and
    // agents_subscribe/agents_unsubscribe change which sessions they follow.
    std::uint64_t connection = 0;
    std::function<void(protocol::subscribe_params const&, bool on)> subscribe;
    // Transports that send requests (WebSocket approval/request) take the client's replies
    // (an object with `id` and no `method`): true when it answered one of theirs; otherwise it
    // is refused as an invalid request.
    std::function<bool(boost::json::object const&)> take_reply;
    // A call another instance forwarded to the one holding its job (DESIGN §9): answered here,
    // never forwarded again (a lease that moved meanwhile must not bounce it around).
    bool forwarded = false;

    // The owner of a call's jobs: the session the call names, else this caller's default. The
    // one place the default applies (params keep an absent session absent).
    jobs::owner owner(std::optional<std::string> const& session) const {
        return {principal, session.value_or(default_session)};
    }
};

class metrics;

class rpc_service {
  public:
    rpc_service(jobs::manager& jobs, planner::policy policy, protocol::codec_limits codec,
                daemon::metrics* metrics = nullptr);

    // The serialized response, or nullopt when there is nothing to answer (notifications only,
    // or a reply the caller took). The message is parsed once, here. When the awaiting
    // coroutine is cancelled (its client went away) this throws boost::system::system_error
    // (operation_aborted) instead of answering: nobody reads the answer, and it is not an error.
    boost::asio::awaitable<std::optional<std::string>> handle(std::string_view body,
                                                              caller const& who);
    // A lone agents_status answered without suspending, or nullopt for any other body (handle()
    // answers it). The hottest call (a status poll) then costs no coroutine frames and no watch
    // on its client; its answer, log line and metrics are handle()'s.
    std::optional<std::string> answer_at_once(std::string_view body, caller const& who);

    jobs::manager& jobs() const { return jobs_; }
    // Null when the daemon keeps no metrics (unit tests); GET /metrics renders it.
    daemon::metrics* metrics() const { return metrics_; }

    // One method call, for transports that frame calls themselves (MCP tools). The result lives
    // in `sp`; job outputs past `budget` (by default max_response_bytes) are omitted.
    boost::asio::awaitable<protocol::result<boost::json::value>> invoke(
        std::string_view method, boost::json::value const& params, caller const& who,
        boost::json::storage_ptr sp = {}, protocol::response_budget* budget = nullptr);
    // agents_wait with params already typed (the MCP progress loop's last check), answered as
    // invoke() answers it.
    boost::asio::awaitable<protocol::result<boost::json::value>> wait(
        protocol::wait_params const& p, caller const& who);
    // Several instances on one store: answers a call another instance forwarded here
    // ({method, params, principal, session} → {result} or {error}).
    boost::asio::awaitable<std::string> answer_forwarded(std::string request);

  private:
    struct call_context;
    // invoke() without its log line.
    boost::asio::awaitable<protocol::result<boost::json::value>> dispatch(
        std::string_view method, boost::json::value const& params, caller const& who,
        boost::json::storage_ptr sp, protocol::response_budget* budget);
    // One agents_* method on the manager: its params parsed (a deny policy applied first), the
    // owner resolved once, then run(). invoke()'s method table lists one instance per method.
    template <auto Parse>
    boost::asio::awaitable<protocol::result<boost::json::value>> method(
        boost::json::value const& params, call_context& c);
    template <class Parse>
    auto parse(Parse parser, boost::json::value const& params) const;
    boost::asio::awaitable<protocol::result<boost::json::value>> run(
        protocol::start_params const& p, call_context& c);
    protocol::result<boost::json::value> run(protocol::status_params const& p, call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> run(protocol::wait_params const& p,
                                                                     call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> run(
        protocol::cancel_params const& p, call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> run(protocol::peek_params const& p,
                                                                     call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> run(
        protocol::respond_params const& p, call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> run(
        protocol::worktree_remove_params const& p, call_context& c);

    // Several instances on one store: the call as the instance holding the job answers it, or
    // nullopt when this instance holds it (cancel splits its ids by instance).
    template <class Params>
    boost::asio::awaitable<std::optional<protocol::result<boost::json::value>>> forward(
        Params const& p, call_context& c);
    boost::asio::awaitable<std::optional<protocol::result<boost::json::value>>> forward(
        protocol::cancel_params const& p, call_context& c);
    boost::asio::awaitable<protocol::result<boost::json::value>> call_instance(
        std::string const& to, boost::json::value const& params, call_context& c);

    // Batches of parallel calls and serial barriers (DESIGN §4).
    std::vector<planner::batch> plan_for(
        std::vector<protocol::request_or_error> const& elements) const;
    boost::asio::awaitable<boost::json::value> answer(protocol::request const& req,
                                                      caller const& who,
                                                      boost::json::storage_ptr sp,
                                                      protocol::response_budget& budget);

    // answer_at_once()'s agents_status response as text, and one job's view in it: a finished
    // job's text comes from view_texts_ while its view is unchanged.
    std::string status_text(boost::json::value const& id, std::vector<jobs::job_entry> const& found,
                            boost::json::storage_ptr const& sp, protocol::response_budget& budget);
    void append_view(std::string& text, protocol::job_view const& v, protocol::wall_time now,
                     boost::json::storage_ptr const& sp, protocol::response_budget& budget);

    jobs::manager& jobs_;
    planner::policy policy_;
    protocol::codec_limits codec_;
    daemon::metrics* metrics_;
    // The texts of finished jobs' views with the view each was written from, by job id.
    struct kept_view {
        protocol::job_view view;
        std::string text;
    };
    static constexpr std::size_t max_kept_view_bytes = 64 << 10;
    static constexpr std::size_t max_kept_views_bytes = 8 << 20;
    static constexpr std::size_t max_kept_views = 4096;
    std::unordered_map<std::string, kept_view> view_texts_;
    std::size_t view_texts_bytes_ = 0;
};

}  // namespace agentd::daemon
