// WebSocket sessions: every text message is a JSON-RPC request or batch, and separate messages
// are independent (DESIGN §4): each runs as soon as it is read, like a separate HTTP request,
// so a cancel never waits behind an earlier long agents_wait. Read-ahead is bounded in messages
// and bytes held by calls in flight; past it the reader stops reading (TCP pushes back) instead
// of buffering. Closing cancels every call in flight. One writer coroutine owns all writes; a
// reader that does not keep up is disconnected. The server asks the client for approval with
// `approval/request` (DESIGN §4, approval.start=ask).
#include "daemon/ws_connection.hpp"

#include "common/log.hpp"
#include "daemon/auth.hpp"
#include "daemon/principals.hpp"
#include "daemon/routes.hpp"
#include "jobs/manager.hpp"
#include "jobs/wake_signal.hpp"
#include "protocol/job_view.hpp"
#include "protocol/json_text.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>

#include <poll.h>

#include <charconv>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto approval_timeout = std::chrono::minutes(2);
// Read-ahead bound per connection: messages whose calls are still in flight, and their bytes
// (a message is at most max_body_bytes; each holds its text and its parsed form while it runs).
constexpr std::size_t max_messages_in_flight = 64;
constexpr std::size_t max_bytes_in_flight_bodies = 4;  // times max_body_bytes

class ws_connection : public std::enable_shared_from_this<ws_connection> {
  public:
    ws_connection(http_stream stream, std::string principal, std::shared_ptr<http_context> ctx)
        : ws_(std::move(stream)),
          ctx_(std::move(ctx)),
          wake_writer_(ws_.get_executor()),
          principal_(std::move(principal)) {
        static std::uint64_t next_id = 0;
        id_ = ++next_id;
    }

    asio::awaitable<void> run(http::request<http::string_body> req) {
        beast::get_lowest_layer(ws_).expires_never();  // websocket timeouts take over
        auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
        timeouts.idle_timeout = ctx_->opts.ws_idle_timeout;
        ws_.set_option(timeouts);
        // A browser that offered subprotocols (the token rides in one) needs one selected.
        bool v1 = subprotocol_offered(req[http::field::sec_websocket_protocol], ws_subprotocol);
        ws_.set_option(websocket::stream_base::decorator([v1](websocket::response_type& res) {
            set_common_headers(res);
            if (v1) res.set(http::field::sec_websocket_protocol, ws_subprotocol);
        }));
        ws_.read_message_max(ctx_->opts.max_body_bytes);
        auto [aec] = co_await ws_.async_accept(req, use_tuple);
        if (aec) co_return;
        asio::co_spawn(ws_.get_executor(), writer(shared_from_this()), asio::detached);
        std::weak_ptr<ws_connection> weak = shared_from_this();
        listening_ = ctx_->rpc.jobs().listen([weak](jobs::job const& j) {
            if (auto self = weak.lock()) self->on_job(j);
        });
        if (ctx_->opts.principals)
            revocation_ = ctx_->opts.principals->on_revoked([weak](std::string const& name) {
                auto self = weak.lock();
                if (self && name == self->principal_) self->close();
            });

        beast::flat_buffer buffer;
        for (;;) {
            co_await wait_for_room();
            if (closed_) break;
            auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
            if (ec) break;  // closed, timed out, too large, or dropped by the writer
            std::string text = beast::buffers_to_string(buffer.data());
            buffer.consume(buffer.size());
            if (ws_.got_text() && !stopping_) start_call(std::move(text));
        }
        close();
    }

    http_context& ctx() { return *ctx_; }

    // Shutdown: take no new calls, answer the ones in flight, then close.
    void stop() {
        stopping_ = true;
        wake_writer_.notify();  // the writer closes once nothing runs and all is written
    }

    // Closes now: pending answers are dropped, the calls in flight end.
    void close() {
        if (closed_) return;
        closed_ = true;
        listening_.reset();
        revocation_.reset();
        outbox_.clear();
        queued_push_.clear();
        outbox_bytes_ = 0;
        wake_writer_.notify();
        for (auto& [id, a] : approvals_) a->answered.fire();  // unanswered: denied
        // Nobody will read the answers: the calls in flight end now and free what they hold.
        closing_.fire();
        room_.notify();
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

  private:
    struct approval {
        explicit approval(asio::any_io_executor ex) : answered(std::move(ex)) {}
        jobs::wake_signal answered;
        std::optional<bool> approved;
    };

    // --- incoming calls: each message runs at once, within the read-ahead bound -----------

    bool has_room() const {
        return in_flight_ < max_messages_in_flight &&
               bytes_in_flight_ < max_bytes_in_flight_bodies * ctx_->opts.max_body_bytes;
    }

    // Holds the reader while the calls in flight fill the bound; a finishing call wakes it.
    // Not reading, the stream would not see the client go away (its close waits behind the
    // bytes we do not read): every second meanwhile the socket is checked for a hang-up and a
    // ping goes out, which a closed peer answers with a reset. So its calls are cancelled
    // within seconds, as they are when reading.
    asio::awaitable<void> wait_for_room() {
        while (!closed_ && !has_room()) {
            [[maybe_unused]] auto woken = co_await room_.wait_for(std::chrono::seconds(1));
            if (closed_ || has_room()) break;
            if (peer_hung_up()) {
                close();
            } else if (!pinging_) {
                pinging_ = true;
                ws_.async_ping(
                    {}, [self = shared_from_this()](beast::error_code) { self->pinging_ = false; });
            }
        }
    }

    // The peer shut down its side or reset, even with unread bytes still queued here.
    bool peer_hung_up() {
        pollfd p{beast::get_lowest_layer(ws_).socket().native_handle(), POLLRDHUP, 0};
        return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    }

    void start_call(std::string text) {
        ++in_flight_;
        bytes_in_flight_ += text.size();
        asio::co_spawn(ws_.get_executor(), process(shared_from_this(), std::move(text)),
                       asio::detached);
    }

    void finish_call(std::size_t bytes) {
        --in_flight_;
        bytes_in_flight_ -= bytes;
        room_.notify();
        if (stopping_ && in_flight_ == 0) wake_writer_.notify();  // flush, then close
    }

    // --- server push: agents_event ------------------------------------------------------

    void on_job(jobs::job const& j) {
        if (closed_ || j.own.principal != principal_) return;
        bool mine = j.connection_id == id_ || all_sessions_ || sessions_.contains(j.own.session);
        if (!mine) return;
        json::object params{{"job", protocol::to_json(j.view, std::chrono::system_clock::now())}};
        params["session"] = j.own.session;
        send(protocol::to_text(json::object{
                 {"jsonrpc", "2.0"}, {"method", "agents_event"}, {"params", std::move(params)}}),
             j.view.id);
    }

    void subscribe(protocol::subscribe_params const& p, bool on) {
        if (p.all) all_sessions_ = on;
        if (p.session && on) sessions_.insert(*p.session);
        if (p.session && !on) sessions_.erase(*p.session);
    }

    caller make_caller() {
        caller who;
        who.principal = principal_;
        who.connection = id_;
        who.can_ask = true;
        std::weak_ptr<ws_connection> weak = shared_from_this();
        who.subscribe = [weak](protocol::subscribe_params const& p, bool on) {
            if (auto conn = weak.lock()) conn->subscribe(p, on);
        };
        who.ask = [weak](json::value request) -> asio::awaitable<bool> {
            auto conn = weak.lock();
            if (!conn) co_return false;
            co_return co_await conn->ask(std::move(request));
        };
        who.take_reply = [weak](json::object const& reply) {
            auto conn = weak.lock();
            return conn && conn->take_reply(reply);
        };
        return who;
    }

    static asio::awaitable<void> process(std::shared_ptr<ws_connection> self, std::string text) {
        auto who = self->make_caller();
        try {
            // The close signal wins the race when the connection goes away, cancelling the call.
            auto raced = co_await (self->ctx_->rpc.handle(text, who) || self->until_closed());
            if (auto* answer = std::get_if<0>(&raced); answer && *answer)
                self->send(std::move(**answer));
        } catch (std::exception const& e) {
            log::error("internal_error", {{"transport", "websocket"}, {"error", e.what()}});
        }
        self->finish_call(text.size());
    }

    asio::awaitable<void> until_closed() { co_await closing_.wait(); }

    // --- server → client requests -------------------------------------------------------

    asio::awaitable<bool> ask(json::value params) {
        auto id = fmt::format("approval-{}", ++next_request_);
        approval pending(ws_.get_executor());
        approvals_[id] = &pending;
        send(json::serialize(json::object{{"jsonrpc", "2.0"},
                                          {"id", id},
                                          {"method", "approval/request"},
                                          {"params", std::move(params)}}));
        [[maybe_unused]] auto in_time = co_await pending.answered.wait_for(approval_timeout);
        approvals_.erase(id);
        co_return pending.approved.value_or(false);
    }

    // A reply (id, no method) to one of our requests; false when it answers nothing we asked,
    // which the caller then refuses as an invalid request (DESIGN §6). A late answer to a
    // request we did send (timed out meanwhile) is accepted and dropped.
    bool take_reply(json::object const& reply) {
        auto const* id = reply.if_contains("id");
        if (!id || !id->is_string()) return false;
        std::string_view text = id->get_string();
        auto it = approvals_.find(std::string(text));
        if (it == approvals_.end()) return sent_request(text);
        auto const* result = reply.if_contains("result");
        auto const* obj = result ? result->if_object() : nullptr;
        auto const* yes = obj ? obj->if_contains("approved") : nullptr;
        it->second->approved = yes && yes->is_bool() && yes->get_bool();
        it->second->answered.fire();
        return true;
    }

    // Whether `id` names a request this connection sent (approval-1 … approval-N).
    bool sent_request(std::string_view id) const {
        constexpr std::string_view prefix = "approval-";
        if (!id.starts_with(prefix)) return false;
        auto digits = id.substr(prefix.size());
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        return ec == std::errc{} && end == digits.data() + digits.size() && n >= 1 &&
               n <= next_request_ && digits.front() != '0';
    }

    // --- the single writer --------------------------------------------------------------

    // `job`: the job an agents_event is about. A newer view of a job replaces its push that is
    // not written yet: the client gets the latest state, and a reader that falls behind a flood
    // of changes costs one queued message per job, not one per change (DESIGN §6 throttle).
    void send(std::string text, std::string job = {}) {
        if (closed_) return;
        if (!job.empty()) {
            if (auto it = queued_push_.find(job); it != queued_push_.end()) {
                auto& queued = outbox_[it->second - written_].text;
                outbox_bytes_ = outbox_bytes_ - queued.size() + text.size();
                queued = std::move(text);
                return;  // the writer is already due to send it
            }
            queued_push_.emplace(job, written_ + outbox_.size());
        }
        outbox_bytes_ += text.size();
        outbox_.push_back({std::move(text), std::move(job)});
        if (outbox_bytes_ > ctx_->opts.ws_max_outbox_bytes && outbox_.size() > 1) {
            // A client that does not read must not make us buffer without bound. One message
            // alone may exceed the cap (a large reply to a client that reads is fine).
            log::warn("limit", {{"limit", "ws_max_outbox_bytes"}, {"action", "disconnected"}});
            close();
            return;
        }
        wake_writer_.notify();
    }

    static asio::awaitable<void> writer(std::shared_ptr<ws_connection> self) {
        while (!self->closed_) {
            if (self->outbox_.empty() && self->stopping_ && self->in_flight_ == 0) {
                self->close();
                break;
            }
            if (self->outbox_.empty()) {
                co_await self->wake_writer_.wait();
                continue;
            }
            auto [text, job] = std::move(self->outbox_.front());
            self->outbox_.pop_front();
            ++self->written_;
            if (!job.empty()) self->queued_push_.erase(job);
            self->outbox_bytes_ -= text.size();
            self->ws_.text(true);
            auto [ec, n] = co_await self->ws_.async_write(asio::buffer(text), use_tuple);
            if (ec) {
                self->close();
                break;
            }
        }
    }

    websocket::stream<http_stream> ws_;
    std::shared_ptr<http_context> ctx_;
    jobs::wake_signal wake_writer_;
    struct outgoing {
        std::string text;
        std::string job;  // an agents_event's job, else empty
    };
    std::deque<outgoing> outbox_;
    std::uint64_t written_ = 0;  // messages taken off the outbox: the front's sequence number
    std::unordered_map<std::string, std::uint64_t> queued_push_;  // job -> its push's number
    std::size_t outbox_bytes_ = 0;
    // Wakes the reader when a call ends (room under the read-ahead bound).
    jobs::wake_signal room_{ws_.get_executor()};
    // Fired by close(), which ends every call still racing it.
    jobs::wake_signal closing_{ws_.get_executor()};
    std::size_t in_flight_ = 0;  // messages whose calls run
    bool pinging_ = false;       // a ping of wait_for_room() is being written
    std::size_t bytes_in_flight_ = 0;
    std::map<std::string, approval*> approvals_;
    std::uint64_t next_request_ = 0;
    bool closed_ = false;
    bool stopping_ = false;
    std::uint64_t id_ = 0;
    std::string principal_;
    std::shared_ptr<void> listening_;
    std::shared_ptr<void> revocation_;  // closes the connection when its token is revoked
    std::set<std::string> sessions_;
    bool all_sessions_ = false;
};

}  // namespace

asio::awaitable<void> serve_ws(http_stream stream, http::request<http::string_body> req,
                               std::string principal, std::shared_ptr<http_context> ctx,
                               std::function<void()>& stop, std::function<void()>& abort) {
    auto conn =
        std::make_shared<ws_connection>(std::move(stream), std::move(principal), std::move(ctx));
    stop = [conn] { conn->stop(); };
    abort = [conn] { conn->close(); };
    if (conn->ctx().connections.stop_requested()) conn->stop();  // upgraded during shutdown
    co_await conn->run(std::move(req));
}

}  // namespace agentd::daemon
