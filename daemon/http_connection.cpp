// HTTP/1.1 sessions on Beast: keep-alive, a read deadline per request, a bounded read buffer
// (headers, chunk extensions and trailers cannot grow it), admission by the route table before
// the body is read (an unauthenticated client cannot make us buffer 1 MiB), and the status codes
// of DESIGN §2 (400, 401, 403, 405, 413, 415, 431, 501, 204).
#include "daemon/http_connection.hpp"
#include "common/log.hpp"

#include "daemon/mcp_endpoint.hpp"
#include "daemon/metrics.hpp"
#include "daemon/request_reader.hpp"
#include "daemon/routes.hpp"
#include "daemon/ui_assets.hpp"
#include "daemon/ws_connection.hpp"
#include "jobs/wake_signal.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Warnings a peer can trigger at will: a line a second each (log::throttle).
log::throttle body_limit_log;
log::throttle connection_limit_log;

using response = string_response;

response ui_file(ui_asset const& asset, unsigned version) {
    auto res =
        make_response(http::status::ok, version, asset.content_type, std::string(asset.body));
    res.set("Content-Security-Policy", ui_content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    return res;
}

// GET /metrics: the Prometheus text format, with the gauges read now. Behind an admin token (the
// route table): job counts and method timings of every principal are the operator's business
// (Prometheus sends the token with `authorization: {credentials_file: …/token}`).
response scrape(http_context const& ctx, unsigned version) {
    auto const* m = ctx.rpc.metrics();
    if (!m) return plain(http::status::not_found, "not found\n", version);
    auto stats = ctx.rpc.jobs().stats();
    return make_response(http::status::ok, version, "text/plain; version=0.0.4; charset=utf-8",
                         m->render({stats.by_state, stats.queued, ctx.connections.size()}));
}

// The answer of an admitted request other than /mcp and /ws (which write their own).
asio::awaitable<response> dispatch(endpoint handler, http::request<http::string_body> const& req,
                                   principal const& caller_principal, http_context& ctx) {
    auto v = req.version();
    auto path = req.target().substr(0, req.target().find('?'));
    switch (handler) {
        case endpoint::healthz:
            co_return plain(http::status::ok, "ok\n", v);
        case endpoint::metrics:
            co_return scrape(ctx, v);
        case endpoint::ui: {
            auto asset = find_ui_asset(path);
            if (!asset) co_return plain(http::status::not_found, "not found\n", v);
            co_return ui_file(*asset, v);
        }
        default:
            break;
    }
    caller who;  // named: GCC 12 mishandles temporaries that live across a co_await
    who.principal = caller_principal.name;
    auto answer = co_await ctx.rpc.handle(req.body(), who);
    if (!answer) co_return make_response(http::status::no_content, v, {}, {});
    co_return make_response(http::status::ok, v, "application/json", std::move(*answer));
}

// A call that is answered without suspending (a lone agents_status), or nullopt: dispatch()
// then runs it under unless_abandoned(), whose watch on the client (a second coroutine, a wait
// on the socket and its cancellation) cost more than the status call itself.
// Its answer is a 200 application/json body, whose head json_ok_head() writes without Beast's
// fields.
std::optional<std::string> answer_at_once(endpoint handler,
                                          http::request<http::string_body> const& req,
                                          principal const& caller_principal, http_context& ctx) {
    if (handler != endpoint::rpc) return std::nullopt;
    caller who;
    who.principal = caller_principal.name;
    return ctx.rpc.answer_at_once(req.body(), who);
}

// What a failed read tells the client before the connection closes; nullopt when the client
// is gone or silent (end of stream, reset, deadline) and nothing can be said.
std::optional<response> read_failure(beast::error_code ec) {
    auto status = read_failure_status(ec);
    if (!status) return std::nullopt;
    switch (*status) {
        case http::status::request_header_fields_too_large:
            return plain(*status, "header, chunk extension or trailer too large\n", 11);
        case http::status::payload_too_large:
            body_limit_log.warn("limit", {{"limit", "max_body_bytes"}, {"status", 413}});
            return plain(*status, "body too large\n", 11);
        default:
            return plain(*status, "malformed request\n", 11);
    }
}

// The body mostly arrives in the same segment as the header: it is parsed from the buffer in
// place, and only a body still on its way costs a read (and a pass through the event loop).
// Every byte of the chunked framing (sizes, extensions, trailers) counts against `budget`, so a
// client cannot keep one request going forever on framing alone. (Beast's own read loops until
// the parser has a whole element, and with a stream of chunks that is never: we read here.)
asio::awaitable<beast::error_code> read_body(http_stream& stream, beast::flat_buffer& buffer,
                                             request_parser& parser, std::size_t budget) {
    parser.eager(true);
    std::size_t used = 0;
    for (;;) {
        beast::error_code ec;
        used += parse_buffered(buffer, parser, ec);
        if (ec || parser.is_done()) co_return ec;
        if (used > budget) co_return http::error::body_limit;
        auto space = std::min<std::size_t>(buffer.max_size() - buffer.size(), 64 * 1024);
        if (space == 0) co_return http::error::buffer_overflow;  // a chunk header or trailer
        auto [rec, n] = co_await stream.async_read_some(buffer.prepare(space), use_tuple);
        if (rec == asio::error::eof) co_return http::error::partial_message;
        if (rec) co_return rec;
        buffer.commit(n);
    }
}

// Before closing on a request whose body we refused to read, drain what the client is still
// sending for a moment (a "lingering close", as nginx does): closing with unread data makes the
// kernel send RST, and the client would lose our 413/401 before it reads it.
asio::awaitable<void> linger(http_stream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(2));
    std::array<char, 16 * 1024> sink;
    for (std::size_t drained = 0; drained < (64u << 20);) {
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
        if (ec) break;
        drained += n;
    }
}

// A request we will not read to its end (over a limit, malformed) gets its answer, and the
// connection closes.
asio::awaitable<void> refuse(http_stream& stream, response res) {
    res.keep_alive(false);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (!ec) co_await linger(stream);
}

// Completes when the client is gone (EOF or reset) while a call is in flight. Bytes of a
// pipelined request mean it is still there: then only the call's end stops the watch.
asio::awaitable<void> watch_peer(http_socket& socket) {
    for (;;) {
        auto [ec] = co_await socket.async_wait(http_socket::wait_read, use_tuple);
        if (ec) co_return;
        char byte = 0;
        auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) co_return;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) co_return;
        if (n > 0) break;
    }
    jobs::wake_signal never(socket.get_executor());  // parks until the call's end cancels us
    co_await never.wait();
}

// Runs a call (an agents_wait may take minutes) and cancels it when its client goes away, so
// the connection slot is freed within a moment, not at the call's timeout. nullopt: abandoned.
template <class T>
asio::awaitable<std::optional<T>> unless_abandoned(http_stream& stream, asio::awaitable<T> call) {
    using namespace asio::experimental::awaitable_operators;
    auto outcome = co_await (std::move(call) || watch_peer(stream.socket()));
    if (outcome.index() != 0) co_return std::nullopt;
    co_return std::move(std::get<0>(outcome));
}

bool reserve_may_serve(endpoint handler) {
    return handler == endpoint::healthz || handler == endpoint::metrics;
}

response connection_limit(unsigned version) {
    connection_limit_log.warn("limit", {{"limit", "max_connections"}, {"status", 503}});
    auto res = plain(http::status::service_unavailable, "connection limit reached\n", version);
    res.set(http::field::retry_after, "1");
    return res;
}

}  // namespace

bool evict_silent(http_context& ctx) {
    for (auto it = ctx.silent.begin(); it != ctx.silent.end(); ++it) {
        if (!(*it)()) continue;  // it spoke: its read comes next
        ctx.silent.erase(it);
        return true;
    }
    return false;
}

asio::awaitable<void> serve_http(http_socket socket, std::shared_ptr<http_context> ctx,
                                 bool reserve_slot) {
    http_stream stream(std::move(socket));
    // How this connection stops when its group does; the WebSocket session replaces it after
    // upgrade. On shutdown an idle connection closes at once; a busy one answers its request
    // first.
    bool busy = false;
    bool stop_requested = false;
    std::function<void()> stop_current = [&] {
        stop_requested = true;
        if (busy) return;
        beast::error_code ignored;
        stream.socket().close(ignored);
    };
    std::stop_callback on_stop(ctx->connections.stop_token(), [&stop_current] { stop_current(); });
    // Past the shutdown's bound: close now, even mid-request (the WebSocket replaces it too).
    std::function<void()> abort_current = [&stream] {
        beast::error_code ignored;
        stream.socket().close(ignored);
    };
    std::stop_callback on_abort(ctx->connections.abort_token(),
                                [&abort_current] { abort_current(); });
    bool silent = true;  // until the first request head is read (or the accept loop evicts us)
    auto silent_entry = ctx->silent.insert(ctx->silent.end(), [&silent, &stream] {
        // Bytes waiting in the socket: the client spoke in time, and only its read has not run
        // yet (an accept was handled first). Closing now would reset a request that came.
        beast::error_code unknown;
        if (stream.socket().available(unknown) > 0) return false;
        silent = false;
        beast::error_code ignored;
        stream.socket().close(ignored);
        return true;
    });
    struct end_silence {
        http_context& ctx;
        bool& silent;
        std::list<std::function<bool()>>::iterator it;
        void operator()() {
            if (silent) ctx.silent.erase(it);
            silent = false;
        }
        ~end_silence() { (*this)(); }
    } spoke{*ctx, silent, silent_entry};
    beast::flat_buffer buffer(read_buffer_limit);
    auth_memo memo;  // the token of this connection's last request, hashed once
    bool first = true;
    for (;;) {
        request_parser parser;
        prepare_parser(parser);
        // The first head gets the shorter of the two: the first-request deadline only ever
        // tightens what read_timeout allows.
        stream.expires_after(first
                                 ? std::min(ctx->opts.first_request_timeout, ctx->opts.read_timeout)
                                 : ctx->opts.read_timeout);
        first = false;
        auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        spoke();
        if (hec) {
            if (auto failure = read_failure(hec)) co_await refuse(stream, std::move(*failure));
            break;  // end_of_stream, deadline, reset: the connection is done
        }

        response res;
        std::optional<std::string> json_body;  // an answer at once: no response object
        busy = true;
        bool keep_alive = parser.get().keep_alive();
        bool unread_body = false;
        auto admitted = admit(parser, ctx->opts, &memo);
        if (!admitted.refusal && reserve_slot && !reserve_may_serve(admitted.match->handler))
            admitted.refusal = connection_limit(parser.get().version());
        if (!admitted.refusal && admitted.match->handler == endpoint::mcp)
            admitted.refusal = screen_mcp(parser, *ctx);
        keep_alive = keep_alive && !reserve_slot;
        if (admitted.refusal) {
            res = std::move(*admitted.refusal);
            // An unread body would poison the next request, and after a framing error (400,
            // 501) we cannot tell where the next one starts: close.
            unread_body = !parser.is_done() || res.result() == http::status::bad_request ||
                          res.result() == http::status::not_implemented;
            keep_alive = keep_alive && !unread_body;
        } else if (admitted.upgrade) {
            co_await serve_ws(std::move(stream), parser.release(), admitted.who.name, ctx,
                              stop_current, abort_current);
            co_return;
        } else {
            parser.body_limit(ctx->opts.max_body_bytes);
            if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
                // curl sends this for bodies over 1 KiB and would otherwise stall for a second.
                http::response<http::empty_body> go_on{http::status::continue_,
                                                       parser.get().version()};
                auto [cec, cn] = co_await http::async_write(stream, go_on, use_tuple);
                if (cec) break;
            }
            auto bec = co_await read_body(stream, buffer, parser,
                                          framing_budget(ctx->opts.max_body_bytes));
            if (bec) {
                if (auto failure = read_failure(bec)) co_await refuse(stream, std::move(*failure));
                break;
            }
            if (admitted.match->handler == endpoint::mcp) {
                // serve_mcp writes the response itself, possibly as an SSE stream.
                auto reusable = co_await unless_abandoned(
                    stream, serve_mcp(stream, parser.get(), admitted.who.name, *ctx));
                busy = false;
                if (!reusable || !*reusable || stop_requested) break;
                continue;
            }
            json_body = answer_at_once(admitted.match->handler, parser.get(), admitted.who, *ctx);
            if (!json_body) {
                stream.expires_never();  // a long agents_wait is not a slow client
                auto answer = co_await unless_abandoned(
                    stream, dispatch(admitted.match->handler, parser.get(), admitted.who, *ctx));
                if (!answer) break;  // the client went away; its call was cancelled
                res = std::move(*answer);
            }
        }
        std::string head;
        std::string_view body;
        if (json_body) {
            head = json_ok_head(parser.get().version(), keep_alive, json_body->size());
            body = *json_body;
        } else {
            res.keep_alive(keep_alive);
            res.prepare_payload();
            head = encode_head(res);
            body = res.body();
        }
        stream.expires_after(ctx->opts.read_timeout);
        // A response to HEAD has the headers of the GET, Content-Length included, and no body.
        if (parser.get().method() == http::verb::head) body = {};
        std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(body)};
        auto [wec, wn] = co_await asio::async_write(stream, wire, use_tuple);
        if (!wec && unread_body) co_await linger(stream);
        busy = false;
        if (wec || !keep_alive || stop_requested) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

}  // namespace agentd::daemon
