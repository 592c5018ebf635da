// openai backend: each prompt is one `POST {base}/chat/completions` with `stream: true` on a
// fresh connection (TLS, verified, for https), read incrementally so every delta reaches peek at
// once. A 429 naming a Retry-After is retried a bounded number of times; a stop closes the socket.
#include "jobs/upstream/openai.hpp"

#include "jobs/bounded_read.hpp"
#include "jobs/endpoints.hpp"
#include "jobs/random.hpp"
#include "jobs/upstream/catalog.hpp"
#include "jobs/upstream/openai_parse.hpp"
#include "jobs/upstream/shared_lookup.hpp"
#include "jobs/upstream/sse.hpp"
#include "jobs/wake_signal.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <type_traits>

namespace agentd::jobs::upstream {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using protocol::error_kind;
using protocol::error_phase;
using clock = std::chrono::steady_clock;
using tcp = asio::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
using reply_parser = http::response_parser<http::buffer_body>;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_error_body = 64 << 10;
// How long GET /models is trusted: a server restarted with another model is noticed soon.
constexpr auto models_ttl = std::chrono::seconds(30);

upstream_error stopped() {
    return {error_kind::cancelled, error_phase::prompt, "stopped", std::nullopt};
}

upstream_error protocol_error(std::string message) {
    return {error_kind::protocol, error_phase::prompt, std::move(message), std::nullopt};
}

// An I/O failure `during` one step of the exchange; a stop (cancel, job deadline) closed the
// socket on purpose, so it is reported as such and the manager names the real cause.
upstream_error io_error(beast::error_code ec, call_control const& ctl, std::string_view during) {
    if (ctl.stopped() != stop_reason::none) return stopped();
    if (reply_too_large(ec)) return protocol_error("upstream response too large");
    if (ec == beast::error::timeout)
        return {error_kind::timeout, error_phase::prompt,
                fmt::format("upstream timed out {}", during), std::nullopt};
    return {error_kind::transport, error_phase::prompt,
            fmt::format("upstream connection failed {}: {}", during, ec.message()), std::nullopt};
}

ssl::context make_tls_context(std::optional<std::string> const& ca_file) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.set_default_verify_paths();
    if (ca_file) {
        boost::system::error_code ec;
        ctx.load_verify_file(*ca_file, ec);
        if (ec)
            throw std::runtime_error(
                fmt::format("cannot load the CA file {}: {}", *ca_file, ec.message()));
    }
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
}

// Everything one prompt's attempts share.
struct call {
    openai_config const& cfg;
    std::string const& session;
    std::string const& body;
    std::optional<std::string> const& auth;
    event_sink* sink;
    call_control& ctl;
};

// What one request produced, and for a 429 the delay it asked for.
struct attempt {
    up_result<prompt_outcome> result;
    std::optional<std::chrono::seconds> retry_after;
};

http::request<http::string_body> make_request(call const& c, http::verb verb,
                                              std::string_view path) {
    http::request<http::string_body> req{verb, c.cfg.target.base_path + std::string(path), 11};
    req.set(http::field::host, c.cfg.target.host_header());
    req.set(http::field::user_agent, "agentd");
    if (c.auth) req.set(http::field::authorization, *c.auth);
    req.keep_alive(false);  // one request per connection: nothing to keep it for
    if (verb == http::verb::post) {
        req.set(http::field::content_type, "application/json");
        req.set(http::field::accept, "text/event-stream");
        req.body() = c.body;
    }
    req.prepare_payload();
    return req;
}

// A header value, lower-cased and cut short: fit for comparing and for an error message.
std::string header_text(std::string_view s) {
    std::string out = protocol::utf8_clean(s.substr(0, protocol::utf8_prefix(s, 80)));
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

// Reads the body as it arrives (not waiting for a buffer to fill, unlike http::async_read) and
// hands every piece to `on_bytes` until it returns false or the body ends. An error after the
// last piece is returned; silence longer than the idle timeout is one; framing beyond the
// bound (bounded_read.hpp: endless trailers, huge chunk extensions) is buffer_overflow.
template <class Stream, class OnBytes>
asio::awaitable<beast::error_code> read_body(Stream& s, beast::flat_buffer& buf, reply_parser& p,
                                             std::chrono::milliseconds idle, OnBytes on_bytes) {
    char chunk[16 << 10];
    framing_meter meter;
    while (!p.is_done()) {
        p.get().body().data = chunk;
        p.get().body().size = sizeof chunk;
        beast::get_lowest_layer(s).expires_after(idle);
        auto [ec, n] = co_await http::async_read_some(s, buf, p, use_tuple);
        std::string_view piece(chunk, sizeof chunk - p.get().body().size);
        if (!piece.empty() && !on_bytes(piece)) co_return beast::error_code{};
        if (ec && ec != http::error::need_buffer) co_return ec;
        if (!meter.add(n, piece.size())) co_return http::error::buffer_overflow;
    }
    co_return beast::error_code{};
}

template <class Stream>
asio::awaitable<attempt> read_error(Stream& s, beast::flat_buffer& buf, reply_parser& p,
                                    call const& c) {
    std::string body;
    auto on_bytes = [&](std::string_view piece) {
        body.append(piece.substr(0, max_error_body - std::min(max_error_body, body.size())));
        return body.size() < max_error_body;
    };
    // The status alone is the answer; a body cut short only loses detail.
    [[maybe_unused]] auto ec = co_await read_body(s, buf, p, c.cfg.idle_timeout, on_bytes);
    auto status = p.get().result_int();
    attempt a{openai::http_error(status, body), std::nullopt};
    if (status == 429) a.retry_after = openai::parse_retry_after(p.get()[http::field::retry_after]);
    co_return a;
}

// A server that ignored `stream: true` and sent one `chat.completion` body.
template <class Stream>
asio::awaitable<up_result<prompt_outcome>> read_whole(Stream& s, beast::flat_buffer& buf,
                                                      reply_parser& p, call const& c) {
    std::string body;
    auto const limit = 2 * c.cfg.max_output + (1 << 20);
    auto on_bytes = [&](std::string_view piece) {
        body.append(piece);
        return body.size() <= limit;
    };
    auto ec = co_await read_body(s, buf, p, c.cfg.idle_timeout, on_bytes);
    if (body.size() > limit) co_return protocol_error("upstream response too large");
    if (ec) co_return io_error(ec, c.ctl, "reading the response");
    co_return openai::parse_completion(body, c.cfg.max_output);
}

template <class Stream>
asio::awaitable<up_result<prompt_outcome>> read_stream(Stream& s, beast::flat_buffer& buf,
                                                       reply_parser& p, call const& c) {
    openai::stream_reader reader(c.cfg.max_output);
    sse_parser sse;
    std::optional<upstream_error> failed;
    auto on_event = [&](std::string_view data) {
        if (failed || reader.finished()) return;
        auto added = reader.feed(data);
        if (added && c.sink && reader.usage_fresh())
            c.sink->on_usage(c.session, "", reader.usage());
        if (!added)
            failed = added.error();
        else if (c.sink && !added->empty())
            c.sink->on_text(c.session, *added);
        else if (c.sink)
            c.sink->on_progress(c.session);  // a chunk without text still shows the stream lives
    };
    auto on_bytes = [&](std::string_view piece) {
        if (!sse.feed(piece, on_event) && !failed)
            failed = protocol_error("upstream response too large: a stream event without end");
        return !failed && !reader.finished();
    };
    auto ec = co_await read_body(s, buf, p, c.cfg.idle_timeout, on_bytes);
    if (failed) co_return *failed;
    // At the output cap the rest is not wanted: closing the socket stops the generation too.
    if (reader.finished()) co_return reader.take();
    if (ec) co_return io_error(ec, c.ctl, "mid-stream");
    co_return protocol_error("stream ended early, without [DONE]");
}

template <class Stream>
asio::awaitable<attempt> read_reply(Stream& s, beast::flat_buffer& buf, reply_parser& p,
                                    call const& c) {
    auto status = p.get().result_int();
    if (status < 200 || status >= 300) {
        auto failed = co_await read_error(s, buf, p, c);
        co_return failed;
    }
    auto type = header_text(p.get()[http::field::content_type]);
    if (type.starts_with("application/json")) {
        auto whole = co_await read_whole(s, buf, p, c);
        co_return attempt{std::move(whole), {}};
    }
    // Some servers send no Content-Type at all; anything else is not a chat stream.
    if (!type.empty() && !type.starts_with("text/event-stream"))
        co_return attempt{
            protocol_error(
                fmt::format("upstream answered with Content-Type '{}', not an event stream", type)),
            {}};
    auto streamed = co_await read_stream(s, buf, p, c);
    co_return attempt{std::move(streamed), {}};
}

asio::awaitable<std::optional<upstream_error>> handshake(tls_stream& s, call const& c) {
    auto const& host = c.cfg.target.host;
    boost::system::error_code not_ip;
    [[maybe_unused]] auto addr = asio::ip::make_address(host, not_ip);
    // SNI carries names only (RFC 6066). OpenSSL checks the name (or IP literal) against the
    // certificate during verification, like asio's host_name_verification, but then reports
    // "hostname mismatch" instead of an unspecified failure.
    auto* tls = s.native_handle();
    bool named =
        not_ip ? SSL_set_tlsext_host_name(tls, host.c_str()) && SSL_set1_host(tls, host.c_str())
               : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls), host.c_str());
    if (!named) co_return protocol_error("cannot set the TLS server name");
    auto [ec] = co_await s.async_handshake(ssl::stream_base::client, use_tuple);
    if (!ec) co_return std::nullopt;
    auto e = io_error(ec, c.ctl, "during the TLS handshake");
    // OpenSSL's code says only "certificate verify failed"; the verify result says why.
    if (auto v = SSL_get_verify_result(tls); v != X509_V_OK && e.kind == error_kind::transport)
        e.message += fmt::format(": {}", X509_verify_cert_error_string(v));
    co_return e;
}

template <class R>
R failed(upstream_error e) {
    if constexpr (std::is_same_v<R, attempt>)
        return attempt{std::move(e), {}};
    else
        return R{std::move(e)};
}

// One request on a fresh connection: resolve, connect, TLS, send `req`, then `read` the reply as
// it comes; R is what `read` yields (an attempt, or a parsed list).
template <class R, class Stream, class Read>
asio::awaitable<R> exchange(Stream& s, call const& c, http::request<http::string_body> const& req,
                            Read read) {
    auto& sock = beast::get_lowest_layer(s);
    tcp::resolver resolver(sock.get_executor());
    std::stop_callback hook(c.ctl.stop_token(), [&] {
        resolver.cancel();
        sock.close();
    });
    if (c.ctl.stopped() != stop_reason::none) co_return failed<R>(stopped());

    sock.expires_after(c.cfg.request_timeout);
    auto [rec, eps] = co_await endpoints_of(resolver, c.cfg.target.host, c.cfg.target.port);
    if (rec) co_return failed<R>(io_error(rec, c.ctl, "resolving the host"));
    auto [cec, ep] = co_await sock.async_connect(eps, use_tuple);
    if (cec) co_return failed<R>(io_error(cec, c.ctl, "while connecting"));
    beast::error_code ignored;
    sock.socket().set_option(tcp::no_delay(true), ignored);
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        auto refused = co_await handshake(s, c);
        if (refused) co_return failed<R>(std::move(*refused));
    }
    auto [wec, wn] = co_await http::async_write(s, req, use_tuple);
    if (wec) co_return failed<R>(io_error(wec, c.ctl, "sending the request"));

    beast::flat_buffer buf(read_buffer_bytes);
    reply_parser parser;
    parser.body_limit(boost::none);  // the readers bound what they keep
    auto [hec, hn] = co_await http::async_read_header(s, buf, parser, use_tuple);
    if (hec) co_return failed<R>(io_error(hec, c.ctl, "before answering"));
    R reply = co_await read(s, buf, parser, c);
    co_return reply;
}

// GET {base}/models: the ids the server lists (a failure's message from its error body).
template <class Stream>
asio::awaitable<up_result<std::vector<std::string>>> read_models(Stream& s, beast::flat_buffer& buf,
                                                                 reply_parser& p, call const& c) {
    constexpr std::size_t limit = 4 << 20;
    std::string body;
    auto on_bytes = [&](std::string_view piece) {
        body.append(piece);
        return body.size() <= limit;
    };
    auto ec = co_await read_body(s, buf, p, c.cfg.idle_timeout, on_bytes);
    if (body.size() > limit) co_return protocol_error("upstream response too large");
    if (ec) co_return io_error(ec, c.ctl, "reading the response");
    co_return parse_openai_models(p.get().result_int(), body);
}

class openai_backend final : public backend {
  public:
    openai_backend(asio::any_io_executor ex, openai_config cfg)
        : ex_(ex),
          cfg_(std::move(cfg)),
          tls_(make_tls_context(cfg_.ca_file)),
          models_(ex, models_ttl, 1) {
        if (cfg_.api_key) auth_ = "Bearer " + *cfg_.api_key;
    }

    std::string_view name() const override { return protocol::to_string(backend_kind::openai); }
    bool replays_transcript() const override { return true; }

    // The transcript lives in agentd (the manager replays a chain's turns), so a session is only
    // a local name for the job's conversation: no network.
    asio::awaitable<up_result<std::string>> create_upstream_session(
        upstream_session_request const& req, call_control& ctl) override {
        auto model = co_await model_for(req.model, ctl);
        if (!model) co_return model.error();
        co_return "chat_" + random_hex(12);
    }

    asio::awaitable<up_result<prompt_outcome>> prompt(std::string const& session,
                                                      prompt_request const& req,
                                                      call_control& ctl) override {
        auto model = co_await model_for(req.model, ctl);
        if (!model) co_return model.error();
        auto body = openai::request_body(
            *model, req.system,
            req.history ? std::span<chat_turn const>(*req.history) : std::span<chat_turn const>{},
            req.prompt);
        call c{cfg_, session, body, auth_, sink_.get(), ctl};
        for (int retry = 0;; ++retry) {
            auto a = co_await attempt_once(c);
            if (a.result || !a.retry_after || retry >= cfg_.max_retries)
                co_return std::move(a.result);
            auto delay = std::min<std::chrono::milliseconds>(*a.retry_after, cfg_.max_retry_delay);
            if (clock::now() + delay >= ctl.deadline()) co_return std::move(a.result);
            auto slept = co_await pause(delay, ctl);
            if (!slept) co_return stopped();
        }
    }

    // The stop that preceded an abort closed the stream, and a closed stream is how an
    // OpenAI-compatible server learns to stop generating: nothing is left to tell it.
    asio::awaitable<up_result<void>> abort(std::string const&,
                                           std::optional<std::string> const&) override {
        co_return up_result<void>{};
    }

    // Every streamed delta already went to the sink; the upstream keeps no session to ask.
    asio::awaitable<up_result<std::string>> read_partial(
        std::string const&, std::optional<std::string> const&) override {
        co_return std::string{};
    }

    // A server that lists its models serves (GET /models, as for a task naming no model).
    asio::awaitable<up_result<void>> health(clock::time_point deadline) override {
        call_control ctl(deadline);
        auto listed = co_await list_models(ctl);
        if (!listed) co_return listed.error();
        co_return up_result<void>{};
    }

    void start(std::shared_ptr<event_sink> sink) override { sink_ = std::move(sink); }

    // No background work: each prompt owns its socket, and the manager's stop of every job
    // closes them.
    void stop() override {}

  private:
    asio::awaitable<attempt> attempt_once(call const& c) {
        auto req = make_request(c, http::verb::post, "/chat/completions");
        auto read = [](auto& s, auto& buf, auto& p, call const& cc) {
            return read_reply(s, buf, p, cc);
        };
        if (cfg_.target.tls()) {
            tls_stream s(ex_, tls_);
            auto a = co_await exchange<attempt>(s, c, req, read);
            co_return a;
        }
        beast::tcp_stream s(ex_);
        auto a = co_await exchange<attempt>(s, c, req, read);
        co_return a;
    }

    asio::awaitable<up_result<std::vector<std::string>>> list_models(call_control& ctl) {
        std::string const none;
        call c{cfg_, none, none, auth_, nullptr, ctl};
        auto req = make_request(c, http::verb::get, "/models");
        auto read = [](auto& s, auto& buf, auto& p, call const& cc) {
            return read_models(s, buf, p, cc);
        };
        using listed = up_result<std::vector<std::string>>;
        if (cfg_.target.tls()) {
            tls_stream s(ex_, tls_);
            auto got = co_await exchange<listed>(s, c, req, read);
            co_return got;
        }
        beast::tcp_stream s(ex_);
        auto got = co_await exchange<listed>(s, c, req, read);
        co_return got;
    }

    // The model of a task that names none (DESIGN §5): --upstream-model, else the only one the
    // server lists (asked once per ttl, one question shared by concurrent launches).
    asio::awaitable<up_result<std::string>> model_for(std::optional<std::string> const& named,
                                                      call_control& ctl) {
        if (named && !named->empty()) co_return *named;
        if (cfg_.default_model && !cfg_.default_model->empty()) co_return *cfg_.default_model;
        auto deadline = std::min(ctl.deadline(), clock::now() + cfg_.request_timeout);
        auto served = co_await models_.get("", ctl, deadline, [&] { return list_models(ctl); });
        if (!served) co_return served.error();
        co_return pick_openai_model(**served);
    }

    // False when the call was stopped while waiting.
    asio::awaitable<bool> pause(std::chrono::milliseconds delay, call_control& ctl) {
        jobs::wake_signal stopping(ex_);
        std::stop_callback hook(ctl.stop_token(), [&stopping] { stopping.fire(); });
        if (ctl.stopped() != stop_reason::none) co_return false;
        [[maybe_unused]] auto early = co_await stopping.wait_for(delay);
        co_return ctl.stopped() == stop_reason::none;
    }

    asio::any_io_executor ex_;
    openai_config cfg_;
    ssl::context tls_;
    std::optional<std::string> auth_;  // "Bearer …"
    std::shared_ptr<event_sink> sink_;
    shared_lookup<std::vector<std::string>> models_;
};

}  // namespace

std::unique_ptr<backend> make_openai_backend(asio::any_io_executor ex, openai_config cfg) {
    return std::make_unique<openai_backend>(std::move(ex), std::move(cfg));
}

}  // namespace agentd::jobs::upstream
