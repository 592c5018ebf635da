// HTTP layer of the fake OpenAI-compatible server: Beast HTTP/1.1 over plain TCP or TLS, one
// coroutine per connection, `POST …/chat/completions` (streamed as SSE or one JSON body) with the
// faults of directives.hpp, `GET …/models`, optional bearer-key auth, and the /_fake/
// test-control routes.
#include "directives.hpp"
#include "options.hpp"
#include "stats.hpp"

#include "fake_common/serve.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <variant>

namespace fake_openai {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_body_bytes = 16u << 20;

// A 4xx for the request itself, in OpenAI's error shape.
struct bad_request : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

json::object error_body(std::string_view message, std::string_view type,
                        json::value code = nullptr) {
    return {
        {"error",
         json::object{
             {"message", message}, {"type", type}, {"param", nullptr}, {"code", std::move(code)}}}};
}

response_t json_response(http::status status, json::value const& body) {
    response_t res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = json::serialize(body);
    return res;
}

response_t error_response(http::status status, std::string_view message, std::string_view type,
                          json::value code = nullptr) {
    return json_response(status, error_body(message, type, std::move(code)));
}

std::int64_t count_words(std::string_view s) {
    std::int64_t n = 0;
    bool in_word = false;
    for (char c : s) {
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in_word) ++n;
        in_word = !space;
    }
    return n;
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

// `s` in about `n` pieces, never splitting a UTF-8 character; at least one (maybe empty) piece.
std::vector<std::string> split(std::string const& s, std::int64_t n) {
    n = std::max<std::int64_t>(1, n);
    std::vector<std::string> pieces;
    std::size_t from = 0;
    for (std::int64_t i = 1; i <= n && from < s.size(); ++i) {
        auto to = static_cast<std::size_t>(static_cast<double>(s.size()) * i / n);
        while (to < s.size() && (static_cast<unsigned char>(s[to]) & 0xC0) == 0x80) ++to;
        if (to > from) pieces.push_back(s.substr(from, to - from));
        from = std::max(from, to);
    }
    if (pieces.empty()) pieces.emplace_back();
    return pieces;
}

// What a chat-completion request asks for, after validation and directives.
struct turn {
    std::string model;
    std::string prompt_key;  // the user message as sent: `times=` counts identical prompts
    std::string output;
    std::int64_t latency_ms = 0;
    std::int64_t chunks = 4;
    std::int64_t prompt_tokens = 0;
    std::int64_t retry_after = 1;
    std::optional<std::int64_t> times;
    fault what = fault::none;
    bool stream = false;
    bool include_usage = false;
};

std::string string_field(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (!v || !v->is_string()) throw bad_request(fmt::format("'{}' must be a string", key));
    return std::string(v->get_string());
}

bool bool_field(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (!v || v->is_null()) return false;
    if (!v->is_bool()) throw bad_request(fmt::format("'{}' must be a boolean", key));
    return v->get_bool();
}

// The last user message's text; every message is checked for the OpenAI shape on the way.
std::string user_text(json::value const* messages, std::int64_t& words) {
    if (!messages || !messages->is_array() || messages->get_array().empty())
        throw bad_request("'messages' must be a non-empty array");
    std::optional<std::string> user;
    for (auto const& m : messages->get_array()) {
        if (!m.is_object()) throw bad_request("each message must be an object");
        auto const* role = m.get_object().if_contains("role");
        auto const* content = m.get_object().if_contains("content");
        if (!role || !role->is_string() || !content || !content->is_string())
            throw bad_request("each message needs a string 'role' and 'content'");
        words += count_words(content->get_string());
        if (role->get_string() == "user") user = std::string(content->get_string());
    }
    if (!user) throw bad_request("'messages' has no user message");
    return *user;
}

turn parse_turn(json::value const& body, options const& opts) {
    if (!body.is_object()) throw bad_request("request body must be a JSON object");
    auto const& o = body.get_object();
    turn t;
    t.model = string_field(o, "model");
    if (t.model.empty()) throw bad_request("'model' must not be empty");
    t.stream = bool_field(o, "stream");
    if (auto const* so = o.if_contains("stream_options"); so && !so->is_null()) {
        if (!t.stream) throw bad_request("stream_options is only allowed when stream is true");
        if (!so->is_object()) throw bad_request("'stream_options' must be an object");
        t.include_usage = bool_field(so->get_object(), "include_usage");
    }
    std::int64_t words = 0;
    t.prompt_key = user_text(o.if_contains("messages"), words);
    directives d;
    std::string prompt;
    try {
        prompt = trim(strip_directives(t.prompt_key, d));
    } catch (std::invalid_argument const& e) {
        throw bad_request(e.what());
    }
    t.prompt_tokens = words - count_words(t.prompt_key) + count_words(prompt);
    t.latency_ms = d.latency_ms.value_or(opts.latency_ms);
    t.chunks = d.chunks.value_or(4);
    t.what = d.what;
    t.times = d.times;
    t.retry_after = d.retry_after.value_or(1);
    if (d.output_bytes) {
        static constexpr std::string_view pattern = "abcdefghij";
        for (std::int64_t i = 0; i < *d.output_bytes; ++i)
            t.output.push_back(pattern[static_cast<std::size_t>(i) % pattern.size()]);
    } else {
        t.output = "echo: " + prompt;
    }
    return t;
}

std::map<std::string, std::string> parse_query(std::string_view target) {
    std::map<std::string, std::string> out;
    auto q = target.find('?');
    if (q == std::string_view::npos) return out;
    auto query = target.substr(q + 1);
    while (!query.empty()) {
        auto amp = query.find('&');
        auto item = query.substr(0, amp);
        auto eq = item.find('=');
        out[std::string(item.substr(0, eq))] =
            eq == std::string_view::npos ? std::string() : std::string(item.substr(eq + 1));
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
    }
    return out;
}

std::int64_t query_number(std::map<std::string, std::string> const& q, std::string const& key,
                          std::int64_t fallback) {
    auto it = q.find(key);
    if (it == q.end()) return fallback;
    std::int64_t n = 0;
    auto const& s = it->second;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc{} || end != s.data() + s.size()) throw bad_request("bad " + key);
    return n;
}

// One `chat.completion.chunk` as an SSE frame.
class chunk_writer {
  public:
    explicit chunk_writer(turn const& t) : t_(t) {}

    std::string role() const {
        return frame(choice(json::object{{"role", "assistant"}, {"content", ""}}, nullptr));
    }
    std::string content(std::string const& piece) const {
        return frame(choice(json::object{{"content", piece}}, nullptr));
    }
    std::string finish() const { return frame(choice(json::object{}, "stop")); }
    std::string usage() const {
        auto c = base();
        c["choices"] = json::array{};
        c["usage"] = usage_of(t_);
        return "data: " + json::serialize(c) + "\n\n";
    }

    static json::object usage_of(turn const& t) {
        auto completion = static_cast<std::int64_t>((t.output.size() + 3) / 4);
        return {{"prompt_tokens", t.prompt_tokens},
                {"completion_tokens", completion},
                {"total_tokens", t.prompt_tokens + completion}};
    }

  private:
    json::object base() const {
        return {{"id", "chatcmpl-fake"},
                {"object", "chat.completion.chunk"},
                {"created", 1'700'000'000},
                {"model", t_.model}};
    }
    json::object choice(json::object delta, json::value finish_reason) const {
        auto c = base();
        c["choices"] = json::array{json::object{{"index", 0},
                                                {"delta", std::move(delta)},
                                                {"finish_reason", std::move(finish_reason)}}};
        return c;
    }
    // With include_usage, every chunk but the last carries `"usage": null` (as OpenAI's do).
    std::string frame(json::object c) const {
        if (t_.include_usage) c["usage"] = nullptr;
        return "data: " + json::serialize(c) + "\n\n";
    }

    turn const& t_;
};

json::object completion_body(turn const& t) {
    return {{"id", "chatcmpl-fake"},
            {"object", "chat.completion"},
            {"created", 1'700'000'000},
            {"model", t.model},
            {"choices", json::array{json::object{
                            {"index", 0},
                            {"message", json::object{{"role", "assistant"}, {"content", t.output}}},
                            {"finish_reason", "stop"}}}},
            {"usage", chunk_writer::usage_of(t)}};
}

template <class Stream>
struct connection {
    template <class... Args>
    explicit connection(Args&&... args) : stream(std::forward<Args>(args)...) {}
    beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }

    Stream stream;
    beast::flat_buffer buffer;
};

class server {
  public:
    server(asio::io_context& ioc, options const& opts) : opts_(opts), acceptor_(ioc) {
        tcp::endpoint ep(asio::ip::make_address(opts.host), opts.port);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        if (opts.tls_cert) {
            tls_.emplace(ssl::context::tls_server);
            tls_->use_certificate_chain_file(*opts.tls_cert);
            tls_->use_private_key_file(opts.tls_key.value_or(*opts.tls_cert), ssl::context::pem);
        }
    }

    std::string url() const {
        return fake_common::endpoint_url(tls_ ? "https" : "http", acceptor_.local_endpoint());
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
            if (ec) co_return;  // closed by stop()
            asio::co_spawn(
                acceptor_.get_executor(), start(std::move(socket)), [](std::exception_ptr e) {
                    if (!e) return;
                    try {
                        std::rethrow_exception(e);
                    } catch (std::exception const& x) {
                        fmt::print(stderr, "fake_openai: connection error: {}\n", x.what());
                    }
                });
        }
    }

    // Closing every socket and waking every waiter lets all coroutines end on their own.
    void stop() {
        stopping_ = true;
        boost::system::error_code ec;
        acceptor_.close(ec);
        stats_.shutdown();
        for (auto* s : open_) s->close();
    }

  private:
    // Keeps a connection's socket reachable by stop() for as long as it lives.
    struct registration {
        std::vector<beast::tcp_stream*>& list;
        beast::tcp_stream* self;
        registration(std::vector<beast::tcp_stream*>& l, beast::tcp_stream* s) : list(l), self(s) {
            list.push_back(s);
        }
        ~registration() { std::erase(list, self); }
    };

    asio::awaitable<void> start(tcp::socket socket) {
        if (!tls_) {
            connection<beast::tcp_stream> c(std::move(socket));
            registration r(open_, &c.tcp());
            co_await serve(c);
            co_return;
        }
        connection<tls_stream> c(std::move(socket), *tls_);
        registration r(open_, &c.tcp());
        c.tcp().expires_after(10s);
        auto [ec] = co_await c.stream.async_handshake(ssl::stream_base::server, use_tuple);
        if (ec) {
            stats_.add("tls_handshake_failures", 1);  // e.g. a client that rejected the cert
            co_return;
        }
        co_await serve(c);
    }

    template <class Stream>
    asio::awaitable<void> serve(connection<Stream>& c) {
        while (!stopping_) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_body_bytes);
            c.tcp().expires_after(300s);
            auto [ec, n] = co_await http::async_read(c.stream, c.buffer, parser, use_tuple);
            if (ec) break;
            c.tcp().expires_never();
            auto req = parser.release();
            auto keep = co_await handle(c, req);
            if (!keep) break;
        }
        c.tcp().close();
    }

    // Returns whether the connection stays open for another request.
    template <class Stream>
    asio::awaitable<bool> handle(connection<Stream>& c, request_t const& req) {
        std::string_view target = req.target();
        auto path = target.substr(0, target.find('?'));
        if (path.starts_with("/_fake/")) {
            auto query = parse_query(target);
            auto res = co_await control(path, query, req.method());
            co_return co_await respond(c, req, res);
        }
        stats_.add("requests_total", 1);
        if (opts_.api_key && req[http::field::authorization] != "Bearer " + *opts_.api_key) {
            auto res = error_response(http::status::unauthorized, "Incorrect API key provided.",
                                      "invalid_request_error", "invalid_api_key");
            co_return co_await respond(c, req, res);
        }
        if (req.method() == http::verb::post && path.ends_with("/chat/completions"))
            co_return co_await completion(c, req);
        if (req.method() == http::verb::get && path.ends_with("/models")) {
            auto res = models();
            co_return co_await respond(c, req, res);
        }
        auto res =
            error_response(http::status::not_found, fmt::format("Unknown request URL: {}", path),
                           "invalid_request_error");
        co_return co_await respond(c, req, res);
    }

    // GET /models as OpenAI lists them, or the --models-status failure.
    response_t models() {
        stats_.add("model_lists", 1);
        if (opts_.models_status != 200)
            return error_response(static_cast<http::status>(opts_.models_status),
                                  "fake models failure", "server_error");
        json::array data;
        for (auto const& id : opts_.models)
            data.push_back(json::object{
                {"id", id}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "fake"}});
        return json_response(http::status::ok,
                             json::object{{"object", "list"}, {"data", std::move(data)}});
    }

    template <class Stream>
    asio::awaitable<bool> respond(connection<Stream>& c, request_t const& req, response_t& res) {
        res.version(req.version());
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        auto [ec, n] = co_await http::async_write(c.stream, res, use_tuple);
        co_return !ec && res.keep_alive();
    }

    asio::awaitable<response_t> control(std::string_view path,
                                        std::map<std::string, std::string> const& query,
                                        http::verb method) {
        std::optional<std::string> rejected;  // no co_await in a handler: answer after it
        try {
            if (path == "/_fake/stats" && method == http::verb::get)
                co_return json_response(http::status::ok, stats_.to_json());
            if (path == "/_fake/reset" && method == http::verb::post) {
                stats_.reset();
                served_faults_.clear();
                co_return json_response(http::status::ok, json::object{{"ok", true}});
            }
            if (path == "/_fake/wait" && method == http::verb::get) co_return co_await wait(query);
        } catch (bad_request const& e) {
            rejected = e.what();
        }
        if (rejected)
            co_return error_response(http::status::bad_request, *rejected, "invalid_request_error");
        co_return error_response(http::status::not_found, "no such control route",
                                 "invalid_request_error");
    }

    // min alone waits for a rise; max (value <= max) waits for a gauge to come back down.
    asio::awaitable<response_t> wait(std::map<std::string, std::string> const& query) {
        auto name = query.find("counter");
        if (name == query.end() || !stats_.has(name->second))
            throw bad_request("counter must name a counter of /_fake/stats");
        bool has_max = query.contains("max");
        auto min =
            query_number(query, "min", has_max ? std::numeric_limits<std::int64_t>::min() : 1);
        auto max = query_number(query, "max", std::numeric_limits<std::int64_t>::max());
        auto timeout =
            std::clamp<std::int64_t>(query_number(query, "timeout_ms", 5000), 0, 600'000);
        auto [ok, value] =
            co_await stats_.wait_for(name->second, min, max, std::chrono::milliseconds(timeout));
        co_return json_response(http::status::ok, json::object{{"ok", ok}, {"value", value}});
    }

    // The request as a turn, or the 400 that rejects it.
    std::variant<turn, response_t> read_turn(request_t const& req) {
        try {
            boost::system::error_code ec;
            auto body = json::parse(req.body(), ec);
            if (ec) throw bad_request("request body is not valid JSON: " + ec.message());
            stats_.set_last_request_body(body);
            return parse_turn(body, opts_);
        } catch (bad_request const& e) {
            return error_response(http::status::bad_request, e.what(), "invalid_request_error");
        }
    }

    template <class Stream>
    asio::awaitable<bool> completion(connection<Stream>& c, request_t const& req) {
        auto read = read_turn(req);
        if (auto* rejected = std::get_if<response_t>(&read))
            co_return co_await respond(c, req, *rejected);
        auto& t = std::get<turn>(read);
        if (t.what != fault::none && t.times && served_faults_[t.prompt_key]++ >= *t.times)
            t.what = fault::none;
        co_return co_await answer(c, req, t);
    }

    template <class Stream>
    asio::awaitable<bool> answer(connection<Stream>& c, request_t const& req, turn const& t) {
        switch (t.what) {
            case fault::close:
                co_return false;
            case fault::reset:
                reset(c);
                co_return false;
            case fault::hang: {
                [[maybe_unused]] auto closed = co_await sleep_or_closed(c, 24 * 3'600'000);
                co_return false;
            }
            case fault::http_500: {
                auto res = error_response(http::status::internal_server_error,
                                          "fake internal error", "server_error");
                co_return co_await respond(c, req, res);
            }
            case fault::http_400: {
                auto res = error_response(http::status::bad_request, "fake bad request",
                                          "invalid_request_error");
                co_return co_await respond(c, req, res);
            }
            case fault::http_429: {
                stats_.add("rate_limited", 1);
                auto res =
                    error_response(http::status::too_many_requests, "Rate limit reached (fake)",
                                   "requests", "rate_limit_exceeded");
                res.set(http::field::retry_after, std::to_string(t.retry_after));
                co_return co_await respond(c, req, res);
            }
            case fault::garbage: {
                response_t res{http::status::ok, 11};
                res.set(http::field::content_type, "text/html");
                res.body() = "<html>oops</html>";
                co_return co_await respond(c, req, res);
            }
            default:
                break;
        }
        if (t.stream && t.what != fault::ignore_stream) {
            co_await stream(c, t);
            co_return false;
        }
        if (!co_await sleep_or_closed(c, t.latency_ms)) co_return false;
        stats_.add("completions", 1);
        auto res = json_response(http::status::ok, completion_body(t));
        co_return co_await respond(c, req, res);
    }

    template <class Stream>
    asio::awaitable<void> stream(connection<Stream>& c, turn const& t) {
        auto hold = stats_.hold("streams_in_flight");
        http::response<http::empty_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.keep_alive(false);
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        auto [hec, hn] = co_await http::async_write_header(c.stream, sr, use_tuple);
        if (hec) co_return;

        chunk_writer w(t);
        auto first = w.role();
        if (!co_await send(c, first)) co_return;
        auto pieces = split(t.output, t.chunks);
        auto pause = t.latency_ms / static_cast<std::int64_t>(pieces.size());
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            if (!co_await sleep_or_closed(c, pause)) co_return;
            auto frame = w.content(pieces[i]);
            if (!co_await send(c, frame)) co_return;
            stats_.add("chunks_sent", 1);
            if (i == 0 && co_await mid_stream_fault(c, t)) co_return;
        }
        auto finish = w.finish();
        if (!co_await send(c, finish)) co_return;
        if (t.include_usage) {
            auto usage = w.usage();
            if (!co_await send(c, usage)) co_return;
        }
        if (t.what != fault::no_done) {
            std::string done = "data: [DONE]\n\n";
            if (!co_await send(c, done)) co_return;
        }
        if (co_await end_body(c)) stats_.add("streams_completed", 1);
    }

    // The faults that strike after the first delta; true when one did (the stream is over).
    template <class Stream>
    asio::awaitable<bool> mid_stream_fault(connection<Stream>& c, turn const& t) {
        std::string frame;
        if (t.what == fault::bad_chunk) frame = "data: {\"choices\": [oops\n\n";
        if (t.what == fault::stream_error)
            frame = "data: " + json::serialize(error_body("fake stream error", "server_error")) +
                    "\n\n";
        if (t.what == fault::mid_reset) {
            reset(c);
            co_return true;
        }
        if (t.what == fault::endless_line || t.what == fault::huge_extension) {
            co_await send_endless(c, t.what);
            co_return true;
        }
        if (frame.empty()) co_return false;
        if (co_await send(c, frame)) {
            [[maybe_unused]] auto ended = co_await end_body(c);
        }
        co_return true;
    }

    // Framing that never ends, written until the client gives up: a `data:` line in chunks,
    // or the extension of one chunk header.
    template <class Stream>
    asio::awaitable<void> send_endless(connection<Stream>& c, fault what) {
        std::string const filler(64 << 10, 'a');
        if (what == fault::endless_line) {
            if (!co_await send(c, "data: ")) co_return;
            while (!stopping_ && co_await send(c, filler)) {
            }
            co_return;
        }
        auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer("1;x=", 4), use_tuple);
        while (!ec && !stopping_) {
            auto [wec, wn] = co_await asio::async_write(c.stream, asio::buffer(filler), use_tuple);
            ec = wec;
        }
    }

    template <class Stream>
    asio::awaitable<bool> send(connection<Stream>& c, std::string const& frame) {
        auto [ec, n] =
            co_await asio::async_write(c.stream, http::make_chunk(asio::buffer(frame)), use_tuple);
        if (ec && !stopping_) stats_.add("client_disconnects", 1);
        co_return !ec;
    }

    template <class Stream>
    asio::awaitable<bool> end_body(connection<Stream>& c) {
        auto [ec, n] = co_await asio::async_write(c.stream, http::make_chunk_last(), use_tuple);
        co_return !ec;
    }

    // False when the client went away (or the server is stopping) first: the socket turning
    // readable mid-reply can only mean the client closed, since it owes no more bytes.
    template <class Stream>
    asio::awaitable<bool> sleep_or_closed(connection<Stream>& c, std::int64_t ms) {
        if (ms <= 0) co_return !stopping_;
        asio::steady_timer timer(c.tcp().get_executor(), std::chrono::milliseconds(ms));
        auto r = co_await (timer.async_wait(use_tuple) ||
                           c.tcp().socket().async_wait(tcp::socket::wait_read, use_tuple));
        bool slept = r.index() == 0 && !stopping_;
        if (!slept && !stopping_) stats_.add("client_disconnects", 1);
        co_return slept;
    }

    // Linger 0 turns close() into an RST, the way a crashing upstream looks.
    template <class Stream>
    void reset(connection<Stream>& c) {
        boost::system::error_code ignored;
        c.tcp().socket().set_option(tcp::socket::linger(true, 0), ignored);
        c.tcp().socket().close(ignored);
    }

    options opts_;
    tcp::acceptor acceptor_;
    std::optional<ssl::context> tls_;
    stats stats_;
    std::map<std::string, std::int64_t> served_faults_;  // per prompt, for times=
    std::vector<beast::tcp_stream*> open_;
    bool stopping_ = false;
};

}  // namespace

int run_server(options const& opts) {
    asio::io_context ioc(1);
    server srv(ioc, opts);
    return fake_common::serve_until_signal(ioc, srv, "fake_openai", srv.url());
}

}  // namespace fake_openai
