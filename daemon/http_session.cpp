// HTTP/1.1 sessions on Beast: keep-alive, a read deadline per request, header and body limits
// checked before the body is read (an unauthenticated client cannot make us buffer 1 MiB), and
// the status codes of DESIGN §2 (401, 403, 405, 413, 415, 204).
#include "daemon/http_session.hpp"

#include "daemon/auth.hpp"
#include "daemon/mcp_session.hpp"
#include "daemon/metrics.hpp"
#include "daemon/ui_assets.hpp"
#include "daemon/ws_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <chrono>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

using response = http::response<http::string_body>;

response plain(http::status status, std::string body, unsigned version) {
    response res{status, version};
    res.set(http::field::server, "agentd");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(body);
    return res;
}

bool is_json(std::string_view content_type) {
    auto semi = content_type.find(';');
    auto media = content_type.substr(0, semi);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    return beast::iequals(media, "application/json");
}

// The dashboard's files need no token (it lives in the URL fragment and reaches only /ws).
std::optional<response> screen_ui(http::request<http::string_body> const& req,
                                  std::string_view path) {
    auto v = req.version();
    if (req.method() != http::verb::get) {
        auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
        res.set(http::field::allow, "GET");
        return res;
    }
    if (!find_ui_asset(path)) return plain(http::status::not_found, "not found\n", v);
    return std::nullopt;
}

response ui_file(ui_asset const& asset, unsigned version) {
    response res{http::status::ok, version};
    res.set(http::field::server, "agentd");
    res.set(http::field::content_type, asset.content_type);
    res.set(http::field::cache_control, "no-store");
    res.set("Content-Security-Policy", ui_content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    res.body() = asset.body;
    return res;
}

// GET /metrics: the Prometheus text format, with the gauges read now. Behind the same token as
// /rpc: job counts and method timings are the daemon's business (Prometheus sends the token with
// `authorization: {credentials_file: …/token}`).
response scrape(http_context const& ctx, unsigned version) {
    auto const* m = ctx.rpc.metrics();
    if (!m) return plain(http::status::not_found, "not found\n", version);
    auto stats = ctx.rpc.jobs().stats();
    response res{http::status::ok, version};
    res.set(http::field::server, "agentd");
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = m->render({stats.by_state, stats.queued, ctx.connections.size()});
    return res;
}

// The guards that apply before the body is read; nullopt when the request may proceed.
std::optional<response> screen(http::request_parser<http::string_body> const& parser,
                               http_context const& ctx) {
    auto const& req = parser.get();
    auto v = req.version();
    auto target = req.target();
    if (target == "/healthz") {
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
            res.set(http::field::allow, "GET, HEAD");
            return res;
        }
        return std::nullopt;
    }
    if (!host_allowed(req[http::field::host], ctx.opts.allowed_hosts))
        return plain(http::status::forbidden, "forbidden host\n", v);
    if (auto origin = req[http::field::origin];
        !origin.empty() && !origin_allowed(origin, ctx.opts.allowed_origins))
        return plain(http::status::forbidden, "forbidden origin\n", v);
    auto path = target.substr(0, target.find('?'));
    if (is_ui_path(path)) return screen_ui(req, path);
    if (path != "/rpc" && path != "/ws" && path != "/mcp" && path != "/metrics")
        return plain(http::status::not_found, "not found\n", v);
    if (ctx.opts.token && !bearer_matches(req[http::field::authorization], *ctx.opts.token) &&
        !(path == "/ws" &&
          subprotocol_bearer_matches(req[http::field::sec_websocket_protocol], *ctx.opts.token))) {
        auto res = plain(http::status::unauthorized, "missing or bad token\n", v);
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    if (path == "/mcp") return screen_mcp(parser, ctx);
    if (path == "/metrics") {
        if (req.method() == http::verb::get) return std::nullopt;
        auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
        res.set(http::field::allow, "GET");
        return res;
    }
    if (path == "/ws") {
        if (req.method() != http::verb::get) {
            auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
            res.set(http::field::allow, "GET");
            return res;
        }
        if (!websocket::is_upgrade(req)) {
            auto res = plain(http::status::upgrade_required, "websocket upgrade required\n", v);
            res.set(http::field::upgrade, "websocket");
            return res;
        }
        return std::nullopt;
    }
    if (req.method() != http::verb::post) {
        auto res = plain(http::status::method_not_allowed, "method not allowed\n", v);
        res.set(http::field::allow, "POST");
        return res;
    }
    if (!is_json(req[http::field::content_type]))
        return plain(http::status::unsupported_media_type,
                     "content type must be application/json\n", v);
    if (auto len = parser.content_length(); len && *len > ctx.opts.max_body_bytes)
        return plain(http::status::payload_too_large, "body too large\n", v);
    return std::nullopt;
}

asio::awaitable<response> route(http::request<http::string_body> const& req, http_context& ctx) {
    auto v = req.version();
    if (req.target() == "/healthz") co_return plain(http::status::ok, "ok\n", v);
    auto path = req.target().substr(0, req.target().find('?'));
    if (auto asset = find_ui_asset(path)) co_return ui_file(*asset, v);
    if (path == "/metrics") co_return scrape(ctx, v);
    caller who;  // named: GCC 12 mishandles temporaries that live across a co_await
    auto answer = co_await ctx.rpc.handle(req.body(), who);
    if (!answer) co_return response{http::status::no_content, v};
    response res{http::status::ok, v};
    res.set(http::field::server, "agentd");
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = std::move(*answer);
    co_return res;
}

// The body mostly arrives in the same segment as the header: it is parsed from the buffer in
// place, and only a body still on its way costs a read (and a pass through the event loop).
asio::awaitable<beast::error_code> read_body(http_stream& stream, beast::flat_buffer& buffer,
                                             http::request_parser<http::string_body>& parser) {
    beast::error_code ec;
    if (buffer.size() != 0 && !parser.is_done()) {
        buffer.consume(parser.put(buffer.data(), ec));
        if (ec == http::error::need_more) ec = {};
    }
    if (!ec && !parser.is_done()) {
        auto [rec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
        ec = rec;
    }
    co_return ec;
}

// The head of a response as HTTP/1.x text. Beast's serializer is built for every kind of body
// (chunked, buffered, written in parts) and took a fifth of the instructions of a small request;
// a string body is complete, so head and body leave in one gathered write.
std::string encode_head(response const& res) {
    std::string head;
    head.reserve(128);
    head += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    head += std::to_string(res.result_int());
    head += ' ';
    head += res.reason();
    head += "\r\n";
    for (auto const& field : res) {
        head += field.name_string();
        head += ": ";
        head += field.value();
        head += "\r\n";
    }
    head += "\r\n";
    return head;
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

// A header over the limit gets a 431 (so the client learns why) and the connection closes.
asio::awaitable<void> refuse_header(http_stream& stream) {
    auto res = plain(http::status::request_header_fields_too_large, "header too large\n", 11);
    res.keep_alive(false);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, use_tuple);
    if (!ec) co_await linger(stream);
}

}  // namespace

asio::awaitable<void> serve_http(http_socket socket, std::shared_ptr<http_context> ctx) {
    http_stream stream(std::move(socket));
    // What stop() calls for this connection; the WebSocket session replaces it after upgrade.
    // On shutdown an idle connection closes at once; a busy one answers its request first.
    bool busy = false;
    bool stop_requested = false;
    std::function<void()> stop_current = [&] {
        stop_requested = true;
        if (busy) return;
        beast::error_code ignored;
        stream.socket().close(ignored);
    };
    auto registration =
        ctx->connections.insert(ctx->connections.end(), [&stop_current] { stop_current(); });
    struct unregister {
        http_context& ctx;
        std::list<std::function<void()>>::iterator it;
        ~unregister() { ctx.connections.erase(it); }
    } guard{*ctx, registration};
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        // Beast would reject a large Content-Length while reading the header, before we could
        // answer 413 (or 401 first); screen() checks it, and the limit is set before the body.
        parser.body_limit(boost::none);
        stream.expires_after(ctx->opts.read_timeout);
        auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        if (hec == http::error::header_limit) {
            co_await refuse_header(stream);
            break;
        }
        if (hec) break;  // end_of_stream, deadline, garbage: the connection is done

        response res;
        busy = true;
        bool keep_alive = parser.get().keep_alive();
        bool unread_body = false;
        if (auto refusal = screen(parser, *ctx)) {
            res = std::move(*refusal);
            unread_body = !parser.is_done();  // it would poison the next request: close
            keep_alive = keep_alive && !unread_body;
        } else {
            if (websocket::is_upgrade(parser.get())) {
                co_await serve_ws(std::move(stream), parser.release(), ctx, stop_current);
                co_return;
            }
            parser.body_limit(ctx->opts.max_body_bytes);
            if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
                // curl sends this for bodies over 1 KiB and would otherwise stall for a second.
                http::response<http::empty_body> go_on{http::status::continue_,
                                                       parser.get().version()};
                auto [cec, cn] = co_await http::async_write(stream, go_on, use_tuple);
                if (cec) break;
            }
            auto bec = co_await read_body(stream, buffer, parser);
            if (bec == http::error::body_limit) {
                res = plain(http::status::payload_too_large, "body too large\n",
                            parser.get().version());
                keep_alive = false;
                unread_body = true;
            } else if (bec) {
                break;
            } else if (is_mcp_target(parser.get().target())) {
                // serve_mcp writes the response itself, possibly as an SSE stream.
                bool reusable = co_await serve_mcp(stream, parser.get(), *ctx);
                busy = false;
                if (!reusable || stop_requested) break;
                continue;
            } else {
                stream.expires_never();  // a long agents_wait is not a slow client
                res = co_await route(parser.get(), *ctx);
            }
        }
        res.keep_alive(keep_alive);
        res.prepare_payload();
        stream.expires_after(ctx->opts.read_timeout);
        auto head = encode_head(res);
        std::array<asio::const_buffer, 2> wire{asio::buffer(head), asio::buffer(res.body())};
        auto [wec, wn] = co_await asio::async_write(stream, wire, use_tuple);
        if (!wec && unread_body) co_await linger(stream);
        busy = false;
        if (wec || !keep_alive || stop_requested) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

}  // namespace agentd::daemon
