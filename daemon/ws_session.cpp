// WebSocket sessions: every text message is a JSON-RPC request or batch. Messages are scheduled
// by the planner's rule across messages too: a message whose calls may all join runs alongside
// the running ones when those may join as well; anything else waits its turn, in arrival order.
// One writer coroutine owns all writes; a reader that does not keep up is disconnected. The
// server asks the client for approval with `approval/request` (DESIGN §4, approval.start=ask).
#include "daemon/ws_session.hpp"

#include "daemon/auth.hpp"
#include "jobs/manager.hpp"
#include "protocol/job_view.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json.hpp>

#include <deque>
#include <iostream>
#include <map>
#include <set>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr auto approval_timeout = std::chrono::minutes(2);

class ws_connection : public std::enable_shared_from_this<ws_connection> {
  public:
    ws_connection(http_stream stream, std::shared_ptr<http_context> ctx)
        : ws_(std::move(stream)), ctx_(std::move(ctx)), wake_writer_(ws_.get_executor()) {
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
            res.set(http::field::server, "agentd");
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

        beast::flat_buffer buffer;
        for (;;) {
            auto [ec, n] = co_await ws_.async_read(buffer, use_tuple);
            if (ec) break;  // closed, timed out, too large, or dropped by the writer
            std::string text = beast::buffers_to_string(buffer.data());
            buffer.consume(buffer.size());
            if (!ws_.got_text()) continue;
            if (!route_response(text) && !stopping_) enqueue(std::move(text));
        }
        close();
    }

    // Shutdown: take no new calls, answer the ones in flight, then close.
    void stop() {
        stopping_ = true;
        pending_.clear();
        wake_writer_.cancel();  // the writer closes once nothing runs and all is written
    }

  private:
    struct unit {
        std::string text;
        bool joinable = false;
    };
    struct approval {
        explicit approval(asio::any_io_executor ex) : timer(std::move(ex)) {}
        asio::steady_timer timer;
        std::optional<bool> approved;
    };

    // --- incoming calls, scheduled by the planner's join rule -----------------------------

    void enqueue(std::string text) {
        bool joinable = ctx_->rpc.joinable(text);
        pending_.push_back({std::move(text), joinable});
        schedule();
    }

    void schedule() {
        while (!closed_ && !pending_.empty()) {
            bool fits = running_ == 0 || (pending_.front().joinable && running_exclusive_ == 0);
            if (!fits) return;
            // Popped before spawning: co_spawn may run the call inline, and it re-enters here.
            auto next = std::move(pending_.front());
            pending_.pop_front();
            ++running_;
            if (!next.joinable) ++running_exclusive_;
            asio::co_spawn(ws_.get_executor(), process(shared_from_this(), std::move(next)),
                           asio::detached);
        }
    }

    // --- server push: agents_event ------------------------------------------------------

    void on_job(jobs::job const& j) {
        if (closed_ || j.own.principal != principal_) return;
        bool mine = j.origin == id_ || all_sessions_ || sessions_.contains(j.own.session);
        if (!mine) return;
        json::object params{{"job", protocol::to_json(j.view, std::chrono::system_clock::now())}};
        params["session"] = j.own.session;
        send(json::serialize(json::object{
            {"jsonrpc", "2.0"}, {"method", "agents_event"}, {"params", std::move(params)}}));
    }

    void subscribe(protocol::subscribe_params const& p, bool on) {
        if (p.all) all_sessions_ = on;
        if (p.session && on) sessions_.insert(*p.session);
        if (p.session && !on) sessions_.erase(*p.session);
    }

    static asio::awaitable<void> process(std::shared_ptr<ws_connection> self, unit u) {
        caller who;
        who.principal = self->principal_;
        who.connection = self->id_;
        who.can_ask = true;
        who.subscribe = [weak = std::weak_ptr<ws_connection>(self)](
                            protocol::subscribe_params const& p, bool on) {
            if (auto conn = weak.lock()) conn->subscribe(p, on);
        };
        std::weak_ptr<ws_connection> weak = self;
        who.ask = [weak](json::value request) -> asio::awaitable<bool> {
            auto conn = weak.lock();
            if (!conn) co_return false;
            co_return co_await conn->ask(std::move(request));
        };
        try {
            auto answer = co_await self->ctx_->rpc.handle(u.text, who);
            if (answer) self->send(std::move(*answer));
        } catch (std::exception const& e) {
            std::cerr << "agentd: websocket call failed: " << e.what() << "\n";
        }
        --self->running_;
        if (!u.joinable) --self->running_exclusive_;
        self->schedule();
        if (self->stopping_ && self->running_ == 0) self->wake_writer_.cancel();  // flush, close
    }

    // --- server → client requests -------------------------------------------------------

    asio::awaitable<bool> ask(json::value params) {
        auto id = fmt::format("approval-{}", ++next_request_);
        approval pending(ws_.get_executor());
        approvals_[id] = &pending;
        send(json::serialize(json::object{{"jsonrpc", "2.0"},
                                          {"id", id},
                                          {"method", "approval/request"},
                                          {"params", std::move(params)}}));
        pending.timer.expires_after(approval_timeout);
        [[maybe_unused]] auto [waited] = co_await pending.timer.async_wait(use_tuple);
        approvals_.erase(id);
        co_return pending.approved.value_or(false);
    }

    // A response to one of our requests; false when `text` is not one.
    bool route_response(std::string const& text) {
        boost::system::error_code ec;
        auto v = json::parse(text, ec);
        auto const* o = v.if_object();
        if (ec || !o || o->contains("method") || !o->contains("id")) return false;
        auto const* id = o->if_contains("id");
        if (!id->is_string()) return true;
        auto it = approvals_.find(std::string(id->get_string()));
        if (it == approvals_.end()) return true;  // late or unknown: nothing waits for it
        auto const* result = o->if_contains("result");
        auto const* obj = result ? result->if_object() : nullptr;
        auto const* yes = obj ? obj->if_contains("approved") : nullptr;
        it->second->approved = yes && yes->is_bool() && yes->get_bool();
        it->second->timer.cancel();
        return true;
    }

    // --- the single writer --------------------------------------------------------------

    void send(std::string text) {
        if (closed_) return;
        outbox_bytes_ += text.size();
        outbox_.push_back(std::move(text));
        if (outbox_bytes_ > ctx_->opts.ws_max_outbox_bytes && outbox_.size() > 1) {
            // A client that does not read must not make us buffer without bound. One message
            // alone may exceed the cap (a large reply to a client that reads is fine).
            std::cerr << "agentd: websocket client too slow, disconnecting\n";
            close();
            return;
        }
        wake_writer_.cancel();
    }

    static asio::awaitable<void> writer(std::shared_ptr<ws_connection> self) {
        while (!self->closed_) {
            if (self->outbox_.empty() && self->stopping_ && self->running_ == 0) {
                self->close();
                break;
            }
            if (self->outbox_.empty()) {
                self->wake_writer_.expires_at(asio::steady_timer::time_point::max());
                [[maybe_unused]] auto [waited] = co_await self->wake_writer_.async_wait(use_tuple);
                continue;
            }
            auto text = std::move(self->outbox_.front());
            self->outbox_.pop_front();
            self->outbox_bytes_ -= text.size();
            self->ws_.text(true);
            auto [ec, n] = co_await self->ws_.async_write(asio::buffer(text), use_tuple);
            if (ec) {
                self->close();
                break;
            }
        }
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        listening_.reset();
        outbox_.clear();
        outbox_bytes_ = 0;
        wake_writer_.cancel();
        for (auto& [id, a] : approvals_) a->timer.cancel();  // unanswered: denied
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
    }

    websocket::stream<http_stream> ws_;
    std::shared_ptr<http_context> ctx_;
    asio::steady_timer wake_writer_;
    std::deque<std::string> outbox_;
    std::size_t outbox_bytes_ = 0;
    std::deque<unit> pending_;
    int running_ = 0;
    int running_exclusive_ = 0;
    std::map<std::string, approval*> approvals_;
    std::uint64_t next_request_ = 0;
    bool closed_ = false;
    bool stopping_ = false;
    std::uint64_t id_ = 0;
    std::string principal_ = caller{}.principal;
    std::shared_ptr<void> listening_;
    std::set<std::string> sessions_;
    bool all_sessions_ = false;
};

}  // namespace

asio::awaitable<void> serve_ws(http_stream stream, http::request<http::string_body> req,
                               std::shared_ptr<http_context> ctx, std::function<void()>& stop) {
    auto conn = std::make_shared<ws_connection>(std::move(stream), std::move(ctx));
    stop = [conn] { conn->stop(); };
    co_await conn->run(std::move(req));
}

}  // namespace agentd::daemon
