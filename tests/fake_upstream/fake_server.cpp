// HTTP layer of the fake OpenCode server: Beast HTTP/1.1 with keep-alive, one coroutine per
// connection, the OpenCode routes agentd uses, the /_fake/ test-control routes, and the
// transport-level faults (close, reset, hang, slow_headers) that only this layer can produce.
#include "catalog.hpp"
#include "fake_state.hpp"
#include "options.hpp"
#include "worktrees.hpp"

#include "fake_common/serve.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>

namespace fake {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

// Results of co_await are always bound to a name: g++ 12 crashes on a discarded one.
using use_tuple_t = asio::as_tuple_t<asio::use_awaitable_t<>>;
using stream_t = use_tuple_t::as_default_on_t<beast::tcp_stream>;
using acceptor_t = use_tuple_t::as_default_on_t<tcp::acceptor>;
using request_t = http::request<http::string_body>;
using response_t = http::response<http::string_body>;

constexpr std::string_view opencode_version = "1.18.33";
constexpr std::size_t max_body_bytes = 64u << 20;
constexpr auto idle_timeout = 300s;
// The directory of sessions created without ?directory=, standing in for the server's cwd.
constexpr std::string_view default_directory = "/fake";

// Thrown by handlers for a 4xx answer in OpenCode's error shape.
struct request_error : std::runtime_error {
    request_error(http::status s, std::string_view name, std::string const& message)
        : std::runtime_error(message), status(s), error_name(name) {}
    http::status status;
    std::string error_name;
};

[[noreturn]] void bad_request(std::string const& message) {
    throw request_error(http::status::bad_request, "BadRequest", message);
}

struct connection {
    explicit connection(stream_t s) : stream(std::move(s)) {}
    stream_t stream;
    beast::flat_buffer buffer;
};

enum class action {
    respond,
    close,
    reset,
    hang,
    slow_headers,
    reset_now,
    endless_trailer,
    huge_extension
};

struct reply {
    action act = action::respond;
    response_t res;
    std::shared_ptr<void> hold;  // keeps an in-flight gauge up until the reply is carried out
};

struct target {
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};

std::string percent_decode(std::string_view in, bool plus_is_space) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size()) {
            unsigned value = 0;
            auto [end, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
            if (ec == std::errc{} && end == in.data() + i + 3) {
                out.push_back(static_cast<char>(value));
                i += 2;
                continue;
            }
        }
        out.push_back(plus_is_space && in[i] == '+' ? ' ' : in[i]);
    }
    return out;
}

target parse_target(std::string_view raw) {
    target t;
    auto q = raw.find('?');
    auto path = raw.substr(0, q);
    std::size_t pos = 0;
    while (pos < path.size()) {
        auto next = path.find('/', pos);
        if (next == std::string_view::npos) next = path.size();
        if (next > pos) t.segments.push_back(percent_decode(path.substr(pos, next - pos), false));
        pos = next + 1;
    }
    if (q == std::string_view::npos) return t;
    auto query = raw.substr(q + 1);
    pos = 0;
    while (pos <= query.size()) {
        auto next = query.find('&', pos);
        if (next == std::string_view::npos) next = query.size();
        auto item = query.substr(pos, next - pos);
        if (!item.empty()) {
            auto eq = item.find('=');
            auto key = percent_decode(item.substr(0, eq), true);
            auto value = eq == std::string_view::npos ? std::string()
                                                      : percent_decode(item.substr(eq + 1), true);
            t.query.emplace(std::move(key), std::move(value));
        }
        pos = next + 1;
    }
    return t;
}

std::string base64(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned n = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        for (int shift : {18, 12, 6, 0}) out.push_back(alphabet[(n >> shift) & 63]);
    }
    if (auto rest = in.size() - i; rest > 0) {
        unsigned n = static_cast<unsigned char>(in[i]) << 16;
        if (rest == 2) n |= static_cast<unsigned char>(in[i + 1]) << 8;
        out.push_back(alphabet[(n >> 18) & 63]);
        out.push_back(alphabet[(n >> 12) & 63]);
        out.push_back(rest == 2 ? alphabet[(n >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

reply json_reply(http::status status, json::value const& body) {
    reply r;
    r.res.result(status);
    r.res.set(http::field::content_type, "application/json");
    r.res.body() = json::serialize(body);
    return r;
}

reply text_reply(http::status status, std::string body) {
    reply r;
    r.res.result(status);
    r.res.set(http::field::content_type, "text/plain; charset=UTF-8");
    r.res.body() = std::move(body);
    return r;
}

reply error_reply(http::status status, std::string_view name, std::string_view message) {
    return json_reply(status, error_body(name, message));
}

// The reply a fault directive asks for. `body` is what a healthy answer would have carried;
// `reset` and `slow_headers` send part of it (or nothing) after honest headers.
reply fault_reply(fault f, std::string body) {
    switch (f) {
        case fault::close:
            return reply{action::close, {}, {}};
        case fault::hang:
            return reply{action::hang, {}, {}};
        case fault::reset:
        case fault::slow_headers: {
            if (body.size() < 2) body = R"({"padding":"fake reset"})";
            auto r = json_reply(http::status::ok, json::value(nullptr));
            r.res.body() = std::move(body);
            r.act = f == fault::reset ? action::reset : action::slow_headers;
            return r;
        }
        case fault::early_reset:
            return reply{action::reset_now, {}, {}};
        case fault::endless_trailer:
        case fault::huge_extension: {
            auto r = json_reply(http::status::ok, json::value(nullptr));
            r.res.body() = std::move(body);
            r.act = f == fault::endless_trailer ? action::endless_trailer : action::huge_extension;
            return r;
        }
        case fault::too_big:
            return json_reply(
                http::status::ok,
                json::object{{"id", new_id("ses")}, {"title", std::string(128 << 10, 'x')}});
        case fault::bad_id:
            return json_reply(http::status::ok,
                              json::object{{"id", "ses_1/../../global/health?x="}});
        case fault::http_500:
            return error_reply(http::status::internal_server_error, "UnknownError",
                               "fake internal error");
        case fault::http_404:
            return error_reply(http::status::not_found, "NotFoundError", "fake not found");
        case fault::http_400:
            return error_reply(http::status::bad_request, "BadRequest", "fake bad request");
        case fault::http_503:
            return text_reply(http::status::service_unavailable, "Service Unavailable (fake)");
        case fault::garbage: {
            auto r = json_reply(http::status::ok, json::value(nullptr));
            r.res.body() = "<html>oops";
            return r;
        }
        case fault::wrong_shape:
            return json_reply(http::status::ok, json::object{{"unexpected", true}});
        case fault::none:
        case fault::stall:
        case fault::error:
            break;
    }
    throw std::logic_error("fault " + std::string(fault_name(f)) + " has no HTTP reply");
}

bool is_http_fault(fault f) {
    return f != fault::none && f != fault::error && f != fault::stall;
}

json::value parse_body(request_t const& req) {
    if (req.body().empty()) return json::object{};
    boost::system::error_code ec;
    auto value = json::parse(req.body(), ec);
    if (ec) bad_request("request body is not valid JSON: " + ec.message());
    return value;
}

json::object const& require_object(json::value const& body) {
    if (!body.is_object()) bad_request("request body must be a JSON object");
    return body.get_object();
}

void reject_unknown_keys(json::object const& obj, std::initializer_list<std::string_view> known) {
    for (auto const& [key, value] : obj) {
        if (std::find(known.begin(), known.end(), key) == known.end()) {
            bad_request(fmt::format("Unrecognized key: \"{}\"", std::string_view(key)));
        }
    }
}

std::optional<std::string> optional_string(json::object const& obj, std::string_view key) {
    auto const* v = obj.if_contains(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) bad_request(fmt::format("\"{}\" must be a string", key));
    return std::string(v->get_string());
}

std::string trim(std::string_view s) {
    auto const ws = " \t\r\n";
    auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(ws);
    return std::string(s.substr(b, e - b + 1));
}

// A validated prompt body and the turn it asks for.
struct prompt_request {
    turn_spec spec;
    fault requested = fault::none;
};

prompt_request parse_prompt(json::object const& obj, options const& opts) {
    reject_unknown_keys(obj, {"parts", "agent", "model", "system"});
    optional_string(obj, "agent");
    optional_string(obj, "system");
    if (auto const* model = obj.if_contains("model")) {
        if (!model->is_object()) bad_request("\"model\" must be an object");
        reject_unknown_keys(model->get_object(), {"providerID", "modelID"});
        if (!optional_string(model->get_object(), "providerID") ||
            !optional_string(model->get_object(), "modelID")) {
            bad_request("\"model\" needs providerID and modelID");
        }
    }
    auto const* parts = obj.if_contains("parts");
    if (!parts || !parts->is_array() || parts->get_array().empty()) {
        bad_request("\"parts\" must be a non-empty array");
    }
    directives d;
    std::string prompt;
    for (auto const& part : parts->get_array()) {
        if (!part.is_object()) bad_request("each part must be an object");
        auto const& p = part.get_object();
        auto type = optional_string(p, "type");
        auto text = optional_string(p, "text");
        if (type != "text" || !text) bad_request("only parts of type \"text\" with a text");
        try {
            if (!prompt.empty()) prompt += '\n';
            prompt += strip_directives(*text, d);
        } catch (std::invalid_argument const& e) {
            bad_request(e.what());
        }
    }
    prompt = trim(prompt);

    prompt_request out;
    out.requested = d.prompt_fault.value_or(fault::none);
    out.spec.latency_ms = d.latency_ms.value_or(opts.latency_ms);
    out.spec.chunks = d.chunks.value_or(4);
    out.spec.input_tokens = count_words(prompt);
    if (d.output_bytes) {
        static constexpr std::string_view pattern = "abcdefghij";
        out.spec.output.reserve(static_cast<std::size_t>(*d.output_bytes));
        for (std::int64_t i = 0; i < *d.output_bytes; ++i) {
            out.spec.output.push_back(pattern[static_cast<std::size_t>(i) % pattern.size()]);
        }
    } else {
        out.spec.output = "echo: " + prompt;
    }
    out.spec.fixed_output = d.output_bytes.has_value();
    out.spec.silent_ms = d.silent_ms.value_or(0);
    out.spec.usage_steps = d.usage_steps.value_or(0);
    out.spec.step_cost = d.step_cost.value_or(out.spec.step_cost);
    out.spec.step_tokens = d.step_tokens.value_or(out.spec.step_tokens);
    out.spec.step_ms = d.step_ms.value_or(0);
    if (!d.usage_steps && (d.step_cost || d.step_tokens || d.step_ms))
        bad_request("step_cost, step_tokens and step_ms need usage_steps=N");
    auto const tool_output = [&](bool fail) {
        return d.tool_output.value_or(fail ? "fake tool failed" : "ok");
    };
    if (d.tool) {
        tool_step step{*d.tool, d.tool_title.value_or("echo ok"), tool_output(d.tool_fail),
                       d.tool_ms.value_or(0), d.tool_fail};
        out.spec.tools.assign(static_cast<std::size_t>(d.steps.value_or(1)), step);
    } else if (d.steps || d.tool_title || d.tool_ms || d.tool_fail) {
        bad_request("steps, tool_title, tool_ms and tool_fail need tool=NAME");
    }
    if (d.permission) {
        auto patterns = d.patterns;
        if (patterns.empty()) patterns.emplace_back("echo permitted");
        out.spec.permission =
            permission_step{*d.permission, std::move(patterns), tool_output(false)};
    } else if (!d.patterns.empty()) {
        bad_request("patterns needs permission=NAME");
    }
    if (!d.question.empty()) {
        out.spec.question = question_step{d.question_text.value_or("Which colour?"),
                                          d.header.value_or("Colour"), d.question, d.multiple};
    } else if (d.multiple || d.question_text || d.header) {
        bad_request("multiple, question_text and header need question=A|B");
    }
    if (d.write) {
        if (d.write->empty() || d.write->front() == '/' || d.write->find("..") != std::string::npos)
            bad_request("write must be a relative path inside the directory");
        out.spec.write_file = *d.write;
        if (d.write_text.empty()) d.write_text.emplace_back("written by the fake");
        for (auto const& line : d.write_text) out.spec.write_text += line + "\n";
        out.spec.summary_ms = d.summary_ms.value_or(0);
    } else if (!d.write_text.empty() || d.summary_ms) {
        bad_request("write_text and summary_ms need write=FILE");
    }
    if (out.requested == fault::error || out.requested == fault::hang ||
        out.requested == fault::stall) {
        out.spec.mode = out.requested;
    }
    return out;
}

class server {
  public:
    server(asio::io_context& ioc, options const& opts)
        : state_(ioc.get_executor(), opts), acceptor_(ioc) {
        tcp::endpoint ep(asio::ip::make_address(opts.host), opts.port);
        acceptor_.open(ep.protocol());
        acceptor_.set_option(tcp::acceptor::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        if (opts.password) expected_auth_ = "Basic " + base64("opencode:" + *opts.password);
    }

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept();
            if (ec) co_return;  // closed by stop()
            // Event frames are small writes: without this one waits for agentd's delayed ACK.
            boost::system::error_code ignored;
            socket.set_option(asio::ip::tcp::no_delay(true), ignored);
            asio::co_spawn(acceptor_.get_executor(), serve(stream_t(std::move(socket))),
                           [](std::exception_ptr e) {
                               if (!e) return;
                               try {
                                   std::rethrow_exception(e);
                               } catch (std::exception const& x) {
                                   fmt::print(stderr, "fake_opencode: connection error: {}\n",
                                              x.what());
                               }
                           });
        }
    }

    // Closing every socket and cancelling every timer lets all coroutines end on their own, so
    // run() returns with nothing left half-destroyed.
    void stop() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        state_.shutdown();
        for (auto* c : connections_) c->stream.close();
    }

  private:
    asio::awaitable<void> serve(stream_t stream) {
        // Connections accepted, and open now: how a client pools its keep-alive connections.
        state_.counters().add("connections_total", 1);
        auto open = gauge_hold("connections_open");
        connection c(std::move(stream));
        connections_.push_back(&c);
        struct unregister {
            std::vector<connection*>& list;
            connection* self;
            ~unregister() { std::erase(list, self); }
        } guard{connections_, &c};

        while (!state_.stopping()) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_body_bytes);
            c.stream.expires_after(idle_timeout);
            auto [ec, n] = co_await http::async_read(c.stream, c.buffer, parser);
            if (ec) {
                if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                    ec != asio::error::operation_aborted && c.stream.socket().is_open()) {
                    auto r = text_reply(http::status::bad_request, "Bad Request");
                    r.res.keep_alive(false);
                    r.res.prepare_payload();
                    [[maybe_unused]] auto [wec, wn] = co_await http::async_write(c.stream, r.res);
                }
                break;
            }
            c.stream.expires_never();
            auto req = parser.release();
            reply r;
            try {
                r = co_await dispatch(c, req);
            } catch (std::exception const& e) {
                r = error_reply(http::status::internal_server_error, "UnknownError", e.what());
            }
            if (!co_await carry_out(c, req, r)) break;
        }
        boost::system::error_code ignored;
        c.stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        c.stream.close();
    }

    // Returns whether the connection stays open for another request.
    asio::awaitable<bool> carry_out(connection& c, request_t const& req, reply& r) {
        auto& socket = c.stream.socket();
        boost::system::error_code ignored;
        switch (r.act) {
            case action::respond: {
                r.res.version(req.version());
                r.res.keep_alive(req.keep_alive());
                r.res.prepare_payload();
                auto [ec, n] = co_await http::async_write(c.stream, r.res);
                co_return !ec && r.res.keep_alive();
            }
            case action::close:
                co_return false;
            case action::reset: {
                r.res.prepare_payload();
                auto const& body = r.res.body();
                http::response_serializer<http::string_body> sr{r.res};
                if (auto [ec, n] = co_await http::async_write_header(c.stream, sr); !ec) {
                    [[maybe_unused]] auto [wec, wn] = co_await asio::async_write(
                        c.stream, asio::buffer(body.data(), body.size() / 2));
                }
                // Linger 0 turns close() into an RST, the way a crashing upstream looks.
                socket.set_option(tcp::socket::linger(true, 0), ignored);
                socket.close(ignored);
                co_return false;
            }
            case action::hang:
                co_await watch_closed(c);
                co_return false;
            case action::reset_now:
                socket.set_option(tcp::socket::linger(true, 0), ignored);
                socket.close(ignored);
                co_return false;
            case action::endless_trailer:
            case action::huge_extension:
                co_await send_endless(c, r);
                co_return false;
            case action::slow_headers: {
                r.res.prepare_payload();
                http::response_serializer<http::string_body> sr{r.res};
                if (auto [ec, n] = co_await http::async_write_header(c.stream, sr); !ec) {
                    co_await watch_closed(c);
                }
                co_return false;
            }
        }
        co_return false;
    }

    // A chunked 200 whose framing never ends: after the body, trailer fields without end; or a
    // first chunk whose extension has no end. Written until the client gives up.
    asio::awaitable<void> send_endless(connection& c, reply const& r) {
        auto const& body = r.res.body();
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: "
            "chunked\r\n\r\n";
        std::string filler;
        if (r.act == action::endless_trailer) {
            head += fmt::format("{:x}\r\n{}\r\n0\r\n", body.size(), body);
            for (int i = 0; i < 64; ++i) filler += "X-Pad: " + std::string(1000, 'a') + "\r\n";
        } else {
            head += "1;pad=";
            filler.assign(64 << 10, 'a');
        }
        auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(head));
        while (!ec && !state_.stopping()) {
            auto [wec, wn] = co_await asio::async_write(c.stream, asio::buffer(filler));
            ec = wec;
        }
    }

    // Reads (keeping the bytes) until the peer closes: how a connection that owes no answer yet
    // notices its client is gone, so no coroutine outlives its client.
    asio::awaitable<void> watch_closed(connection& c) {
        for (;;) {
            auto [ec, n] = co_await c.stream.async_read_some(c.buffer.prepare(4096));
            if (ec) co_return;
            c.buffer.commit(n);
            if (c.buffer.size() > max_body_bytes) c.buffer.consume(c.buffer.size());
            if (co_await cancel_requested()) co_return;
        }
    }

    // False when the client went away first.
    asio::awaitable<bool> sleep_or_closed(connection& c, std::int64_t ms) {
        if (ms <= 0) co_return true;
        asio::steady_timer timer(c.stream.get_executor(), std::chrono::milliseconds(ms));
        auto r = co_await (timer.async_wait(use_tuple_t{}) || watch_closed(c));
        co_return r.index() == 0 && !state_.stopping();
    }

    std::shared_ptr<void> gauge_hold(std::string_view name) {
        state_.counters().add(name, 1);
        return std::shared_ptr<void>(nullptr,
                                     [this, name](void*) { state_.counters().add(name, -1); });
    }

    asio::awaitable<reply> dispatch(connection& c, request_t const& req) {
        auto const t = parse_target(req.target());
        auto const& seg = t.segments;
        auto const method = req.method();
        bool const control = !seg.empty() && seg[0] == "_fake";
        if (!control) {
            state_.counters().add("requests_total", 1);
            if (!expected_auth_.empty() && req[http::field::authorization] != expected_auth_) {
                auto r = text_reply(http::status::unauthorized, "Unauthorized");
                r.res.set(http::field::www_authenticate, R"(Basic realm="Secure Area")");
                co_return r;
            }
        }
        auto const directory = t.query.find("directory");
        if (directory != t.query.end()) state_.counters().record_directory(directory->second);
        if (!control) {
            auto const raw = std::string_view(req.target());
            state_.counters().record_call(
                std::string_view(req.method_string()), raw.substr(0, raw.find('?')),
                directory == t.query.end() ? std::nullopt
                                           : std::optional<std::string>(directory->second));
        }

        std::optional<reply> out;
        try {
            if (control) {
                out = co_await control_route(c, req, t);
            } else if (seg.size() == 2 && seg[0] == "global" && seg[1] == "health" &&
                       method == http::verb::get) {
                out = json_reply(http::status::ok,
                                 json::object{{"healthy", true}, {"version", opencode_version}});
            } else if (seg.size() == 1 && seg[0] == "event" && method == http::verb::get) {
                // Real OpenCode serves /event per instance (?directory=, else its cwd); the
                // fake does so unless --unscoped-events, which sends everything.
                std::optional<std::string> directory;
                if (state_.opts().scoped_events) {
                    auto it = t.query.find("directory");
                    directory = it == t.query.end() ? default_directory : it->second;
                }
                co_await stream_events(c, std::move(directory), false);
                out = reply{action::close, {}, {}};
            } else if (seg.size() == 2 && seg[0] == "global" && seg[1] == "event" &&
                       method == http::verb::get) {
                co_await stream_events(c, std::nullopt, true);
                out = reply{action::close, {}, {}};
            } else if (seg.size() == 1 && seg[0] == "session" && method == http::verb::post) {
                out = co_await create_session(c, req, t);
            } else if (seg.size() == 2 && seg[0] == "session" && seg[1] == "status" &&
                       method == http::verb::get) {
                auto dir = t.query.find("directory");
                out = json_reply(
                    http::status::ok,
                    state_.busy_sessions(dir == t.query.end() ? default_directory : dir->second));
            } else if (seg.size() >= 2 && seg[0] == "session") {
                out = co_await session_route(c, req, t);
            } else if (method == http::verb::get &&
                       ((seg.size() == 1 && seg[0] == "agent") ||
                        (seg.size() == 2 && seg[0] == "config" && seg[1] == "providers"))) {
                out = co_await list_route(c, seg[0] == "agent");
            } else if (seg.size() == 2 && seg[0] == "experimental" && seg[1] == "worktree" &&
                       (method == http::verb::post || method == http::verb::delete_)) {
                out = worktree_route(req, t);
            } else if (!seg.empty() && (seg[0] == "permission" || seg[0] == "question")) {
                out = request_route(req, t);
            }
        } catch (request_error const& e) {
            out = error_reply(e.status, e.error_name, e.what());
        }
        if (!out) {
            out = error_reply(http::status::not_found, "NotFoundError",
                              fmt::format("Not found: {} {}", std::string_view(req.method_string()),
                                          std::string_view(req.target())));
        }
        co_return std::move(*out);
    }

    // GET /agent or GET /config/providers, after --lists-latency-ms and spoiled by --lists-fault.
    asio::awaitable<reply> list_route(connection& c, bool agents) {
        state_.counters().add(agents ? "agent_lists" : "provider_lists", 1);
        if (!co_await sleep_or_closed(c, state_.opts().lists_latency_ms))
            co_return reply{action::close, {}, {}};
        json::value body = agents ? json::value(agents_json()) : json::value(providers_json());
        if (state_.opts().lists_fault != fault::none)
            co_return fault_reply(state_.opts().lists_fault, json::serialize(body));
        co_return json_reply(http::status::ok, body);
    }

    // A prompt naming an unknown agent or model: the real server's bare 500, with the reason
    // only in a session.error event.
    // An unknown agent or model: the real reason goes out as session.error, and the synchronous
    // prompt gets a bare 500 (prompt_async its 204, and no turn starts).
    bool report_unknown(session const& s, json::object const& prompt) {
        auto why = unknown_in_prompt(prompt);
        if (!why) return false;
        state_.counters().add("unknown_prompts", 1);
        state_.bus().publish(
            s.directory, "session.error",
            {{"sessionID", s.id},
             {"error", {{"name", "UnknownError"}, {"data", {{"message", *why}}}}}});
        return true;
    }

    std::optional<reply> refuse_unknown(session const& s, json::object const& prompt) {
        if (!report_unknown(s, prompt)) return std::nullopt;
        return json_reply(
            http::status::internal_server_error,
            json::object{{"name", "UnknownError"},
                         {"data",
                          {{"message", "Unexpected server error. Check server logs for details."},
                           {"ref", new_id("err")}}}});
    }

    // A list is per instance like the real server's: ?directory=, else the server's own
    // directory (unless --unscoped-events, where it lists all).
    std::optional<std::string> instance_of(target const& t) const {
        if (!state_.opts().scoped_events) return std::nullopt;
        auto it = t.query.find("directory");
        return it == t.query.end() ? std::string(default_directory) : it->second;
    }

    // GET /permission, POST /permission/{id}/reply, GET /question, POST /question/{id}/reply and
    // POST /question/{id}/reject, with the real server's error shapes.
    std::optional<reply> request_route(request_t const& req, target const& t) {
        auto const& seg = t.segments;
        auto const method = req.method();
        bool const is_permission = seg[0] == "permission";
        auto const type =
            is_permission ? pending_request::kind::permission : pending_request::kind::question;
        if (seg.size() == 1 && method == http::verb::get) {
            return json_reply(http::status::ok, state_.pending(type, instance_of(t)));
        }
        if (seg.size() != 3 || method != http::verb::post) return std::nullopt;
        auto const& id = seg[1];
        auto const& verb = seg[2];
        auto const payload_error = [](std::string const& message) {
            return json_reply(http::status::bad_request,
                              json::object{{"name", "BadRequest"},
                                           {"data", {{"message", message}, {"kind", "Payload"}}}});
        };
        auto const not_found = [&] {
            auto const tag = is_permission ? "PermissionNotFoundError" : "QuestionNotFoundError";
            auto const what = is_permission ? "Permission" : "Question";
            return json_reply(
                http::status::not_found,
                json::object{{"_tag", tag},
                             {"requestID", id},
                             {"message", fmt::format("{} request not found: {}", what, id)}});
        };
        auto const done = [&](bool found) {
            return found ? json_reply(http::status::ok, json::value(true)) : not_found();
        };
        auto body = parse_body(req);
        if (is_permission && verb == "reply") {
            // The payload is checked before the id, as the real server does.
            auto const* obj = body.if_object();
            auto const* r = obj ? obj->if_contains("reply") : nullptr;
            if (!r || !r->is_string() ||
                (r->get_string() != "once" && r->get_string() != "always" &&
                 r->get_string() != "reject")) {
                auto got = r ? json::serialize(*r) : std::string("undefined");
                return payload_error(fmt::format(R"(Expected "once" | "always" | "reject", got {})"
                                                 "\n  at [\"reply\"]",
                                                 got));
            }
            json::object answer{{"reply", *r}};
            if (auto const* m = obj->if_contains("message")) {
                if (!m->is_string()) {
                    return payload_error(fmt::format("Expected string, got {}\n  at [\"message\"]",
                                                     json::serialize(*m)));
                }
                answer["message"] = *m;
            }
            return done(
                state_.answer(type, id, "permission.replied", {{"reply", *r}}, std::move(answer)));
        }
        if (!is_permission && verb == "reply") {
            auto const* obj = body.if_object();
            auto const* answers = obj ? obj->if_contains("answers") : nullptr;
            bool valid = answers && answers->is_array();
            if (valid) {
                for (auto const& a : answers->get_array()) {
                    valid = valid && a.is_array() &&
                            std::all_of(a.get_array().begin(), a.get_array().end(),
                                        [](json::value const& v) { return v.is_string(); });
                }
            }
            if (!valid) {
                return payload_error(fmt::format(
                    "Expected ReadonlyArray<ReadonlyArray<string>>, got {}\n  at [\"answers\"]",
                    answers ? json::serialize(*answers) : std::string("undefined")));
            }
            return done(state_.answer(type, id, "question.replied", {{"answers", *answers}},
                                      {{"answers", *answers}}));
        }
        if (!is_permission && verb == "reject") {
            return done(state_.answer(type, id, "question.rejected", {}, {}));
        }
        return std::nullopt;
    }

    session& require_session(std::string const& id) {
        auto* s = state_.find_session(id);
        if (!s) {
            throw request_error(http::status::not_found, "NotFoundError",
                                "Session not found: " + id);
        }
        return *s;
    }

    asio::awaitable<std::optional<reply>> session_route(connection& c, request_t const& req,
                                                        target const& t) {
        auto const& seg = t.segments;
        auto const& id = seg[1];
        auto const method = req.method();
        if (seg.size() == 2 && method == http::verb::get) {
            co_return json_reply(http::status::ok, require_session(id).info);
        }
        if (seg.size() != 3) co_return std::nullopt;
        auto const& verb = seg[2];
        if (verb == "message" && method == http::verb::get) {
            auto const& all = require_session(id).messages;
            auto limit = t.query.find("limit");
            if (limit == t.query.end()) co_return json_reply(http::status::ok, all);
            // ?limit=N: the newest N messages, oldest first, as the real server answers.
            std::size_t n = 0;
            auto const& text = limit->second;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc{} || end != text.data() + text.size() || n == 0)
                bad_request("limit must be a positive integer");
            json::array newest(all.end() - static_cast<std::ptrdiff_t>(std::min(n, all.size())),
                               all.end());
            co_return json_reply(http::status::ok, newest);
        }
        if (verb == "message" && method == http::verb::post) co_return co_await prompt(c, req, id);
        if (verb == "prompt_async" && method == http::verb::post) {
            co_return co_await prompt_async(c, req, id);
        }
        if (verb == "abort" && method == http::verb::post) {
            state_.abort(id);
            co_return json_reply(http::status::ok, json::value(true));
        }
        if (verb == "diff" && method == http::verb::get) co_return session_diff(id, t);
        co_return std::nullopt;
    }

    // Like the real server: without messageID, or for a message that wrote nothing, `[]`.
    reply session_diff(std::string const& id, target const& t) {
        auto& s = require_session(id);
        auto message = t.query.find("messageID");
        if (message != t.query.end() && !message->second.starts_with("msg"))
            bad_request("messageID must start with msg");
        auto written = message == t.query.end() ? s.written.end() : s.written.find(message->second);
        if (written == s.written.end()) return json_reply(http::status::ok, json::array{});
        return json_reply(http::status::ok, file_diffs(s.directory, written->second));
    }

    // POST /experimental/worktree: a real `git worktree add`, then worktree.ready (or .failed)
    // on the event stream with the worktree as the frame's directory; DELETE removes one.
    reply worktree_route(request_t const& req, target const& t) {
        auto dir = t.query.find("directory");
        auto repo = dir == t.query.end() ? std::string(default_directory) : dir->second;
        auto const not_git = [] {
            return error_reply(http::status::bad_request, "WorktreeNotGitError",
                               "Worktrees are only supported for git projects");
        };
        auto plan = worktrees_.plan_for(repo);
        if (!plan) return not_git();
        std::string error;
        if (req.method() == http::verb::delete_) {
            auto body = parse_body(req);
            auto target_dir = optional_string(require_object(body), "directory");
            if (!target_dir) bad_request("\"directory\" is required");
            if (!worktrees_.remove(repo, *target_dir, error))
                return error_reply(http::status::bad_request, "WorktreeRemoveFailedError", error);
            state_.counters().add("worktrees_removed", 1);
            return json_reply(http::status::ok, json::value(true));
        }
        auto made = worktrees_.create(repo, error);
        if (!error.empty())
            return error_reply(http::status::bad_request, "WorktreeCreateFailedError", error);
        state_.counters().add("worktrees_created", 1);
        json::object event = plan->failed
                                 ? json::object{{"message", *plan->failed}}
                                 : json::object{{"name", made.name}, {"branch", made.branch}};
        auto type = plan->failed ? "worktree.failed" : "worktree.ready";
        if (plan->when == worktree_plan::ready::before)
            state_.bus().publish(made.directory, type, std::move(event));
        else if (plan->when == worktree_plan::ready::after)
            asio::co_spawn(acceptor_.get_executor(),
                           publish_later(made.directory, type, std::move(event)), asio::detached);
        return json_reply(http::status::ok, json::object{{"name", made.name},
                                                         {"branch", made.branch},
                                                         {"directory", made.directory}});
    }

    asio::awaitable<void> publish_later(std::string directory, std::string type,
                                        json::object event) {
        asio::steady_timer timer(acceptor_.get_executor(), std::chrono::milliseconds(50));
        auto [ec] = co_await timer.async_wait(use_tuple_t{});
        if (!ec && !state_.stopping()) state_.bus().publish(directory, type, std::move(event));
    }

    asio::awaitable<reply> create_session(connection& c, request_t const& req, target const& t) {
        auto body = parse_body(req);
        state_.counters().set_last_create_body(body);
        auto const& obj = require_object(body);
        reject_unknown_keys(obj, {"title", "parentID"});
        auto title = optional_string(obj, "title");
        auto parent = optional_string(obj, "parentID");
        directives d;
        if (title) {
            try {
                strip_directives(*title, d);
            } catch (std::invalid_argument const& e) {
                bad_request(e.what());
            }
        }
        auto const create_fault = d.create_fault.value_or(fault::none);
        if (create_fault == fault::error || create_fault == fault::stall) {
            bad_request("create_fault=" + std::string(fault_name(create_fault)) +
                        " exists only for prompts");
        }
        if (parent && !state_.find_session(*parent)) {
            bad_request("parentID is not an existing session: " + *parent);
        }
        auto dir = t.query.find("directory");
        auto directory = dir == t.query.end() ? std::string(default_directory) : dir->second;

        state_.counters().add("creates_started", 1);
        auto hold = gauge_hold("creates_in_flight");
        if (!co_await sleep_or_closed(
                c, d.create_latency_ms.value_or(state_.opts().create_latency_ms))) {
            co_return reply{action::close, {}, {}};
        }
        if (create_fault != fault::none) {
            auto r = fault_reply(create_fault,
                                 json::serialize(json::object{{"id", new_id("ses")},
                                                              {"title", title.value_or("")}}));
            r.hold = std::move(hold);
            co_return r;
        }
        auto& s = state_.create_session(std::move(title), std::move(parent), std::move(directory));
        co_return json_reply(http::status::ok, s.info);
    }

    asio::awaitable<reply> prompt(connection& c, request_t const& req, std::string const& id) {
        auto body = parse_body(req);
        state_.counters().set_last_prompt_body(body);
        auto const& obj = require_object(body);
        auto p = parse_prompt(obj, state_.opts());
        auto& s = require_session(id);
        if (auto refused = refuse_unknown(s, obj)) co_return std::move(*refused);
        auto t = state_.start_turn(s, std::move(p.spec), obj);
        // The upstream got the prompt and runs it; only the connection dies.
        if (p.requested == fault::early_reset) co_return reply{action::reset_now, {}, {}};
        auto r = co_await (state_.wait_done(t) || watch_closed(c));
        if (r.index() == 1 || !t->done) co_return reply{action::close, {}, {}};
        if (is_http_fault(p.requested) && p.requested != fault::hang) {
            co_return fault_reply(p.requested, json::serialize(t->result));
        }
        co_return json_reply(http::status::ok, t->result);
    }

    asio::awaitable<reply> prompt_async(connection& c, request_t const& req,
                                        std::string const& id) {
        auto body = parse_body(req);
        state_.counters().set_last_prompt_body(body);
        auto const& obj = require_object(body);
        auto p = parse_prompt(obj, state_.opts());
        auto& s = require_session(id);
        reply accepted;
        accepted.res.result(http::status::no_content);
        if (report_unknown(s, obj)) co_return accepted;
        // The upstream got the prompt and runs it; only the connection dies.
        if (p.requested == fault::early_reset) {
            state_.start_turn(s, std::move(p.spec), obj);
            co_return reply{action::reset_now, {}, {}};
        }
        // A spoiled reply means the prompt was not accepted, so no turn starts.
        if (is_http_fault(p.requested) && p.requested != fault::hang) {
            if (!co_await sleep_or_closed(c, p.spec.latency_ms))
                co_return reply{action::close, {}, {}};
            co_return fault_reply(p.requested, "{}");
        }
        state_.start_turn(s, std::move(p.spec), obj);
        if (p.requested == fault::hang) co_return reply{action::hang, {}, {}};
        co_return accepted;
    }

    asio::awaitable<void> stream_events(connection& c, std::optional<std::string> directory,
                                        bool global) {
        auto handle = state_.bus().subscribe(c.stream.get_executor(), std::move(directory), global);
        auto& sub = handle->get();
        sub.on_drop = [&c] { c.stream.socket().cancel(); };
        http::response<http::empty_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.keep_alive(true);
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        if (auto [ec, n] = co_await http::async_write_header(c.stream, sr); ec) co_return;
        if (state_.opts().endless_event_line) {
            co_await send_endless_line(c);
            co_return;
        }
        [[maybe_unused]] auto ended = co_await (pump_events(c, sub) || watch_closed(c));
    }

    // --endless-event-line: one `data:` line, in chunks, that never ends.
    asio::awaitable<void> send_endless_line(connection& c) {
        if (!co_await write_chunk(c, "data: ")) co_return;
        std::string const filler(64 << 10, 'a');
        while (!state_.stopping() && co_await write_chunk(c, filler)) {
        }
    }

    // Server-level events; /global/event wraps them like the others, without a directory.
    static std::string server_frame(event_bus::subscriber const& sub, std::string_view type) {
        auto ev = event_bus::event(type, {});
        return event_bus::frame(sub.global ? json::value(json::object{{"payload", ev}})
                                           : json::value(ev));
    }

    static asio::awaitable<bool> write_chunk(connection& c, std::string const& frame) {
        auto [ec, n] = co_await asio::async_write(c.stream, http::make_chunk(asio::buffer(frame)));
        co_return !ec;
    }

    // Writes the frames queued for `sub` (up to 256 KiB of them), each its own HTTP chunk as
    // the real server sends them, in one gathered write: a flood is not one syscall per event.
    static asio::awaitable<bool> write_queued(connection& c, event_bus::subscriber& sub) {
        constexpr std::size_t max_bytes = 256 << 10;
        static constexpr std::string_view crlf = "\r\n";
        std::vector<std::shared_ptr<std::string const>> frames;
        std::vector<std::string> heads;
        std::size_t bytes = 0;
        while (!sub.frames.empty() && (frames.empty() || bytes < max_bytes)) {
            frames.push_back(std::move(sub.frames.front()));
            sub.frames.pop_front();
            sub.bytes -= frames.back()->size();
            bytes += frames.back()->size();
            heads.push_back(fmt::format("{:x}\r\n", frames.back()->size()));
        }
        std::vector<asio::const_buffer> buffers;
        buffers.reserve(frames.size() * 3);
        for (std::size_t i = 0; i < frames.size(); ++i) {
            buffers.push_back(asio::buffer(heads[i]));
            buffers.push_back(asio::buffer(*frames[i]));
            buffers.push_back(asio::buffer(crlf.data(), crlf.size()));
        }
        auto [ec, n] = co_await asio::async_write(c.stream, buffers);
        co_return !ec;
    }

    asio::awaitable<void> pump_events(connection& c, event_bus::subscriber& sub) {
        auto const heartbeat =
            std::chrono::milliseconds(std::max<std::int64_t>(1, state_.opts().heartbeat_ms));
        if (!co_await write_chunk(c, server_frame(sub, "server.connected"))) co_return;
        auto next_heartbeat = std::chrono::steady_clock::now() + heartbeat;
        for (;;) {
            while (!sub.frames.empty() && !sub.dropped) {
                if (!co_await write_queued(c, sub)) co_return;
            }
            if (sub.dropped || state_.stopping()) co_return;
            if (std::chrono::steady_clock::now() >= next_heartbeat) {
                if (!co_await write_chunk(c, server_frame(sub, "server.heartbeat"))) co_return;
                next_heartbeat = std::chrono::steady_clock::now() + heartbeat;
                continue;
            }
            sub.wake.expires_at(next_heartbeat);
            [[maybe_unused]] auto [ec] = co_await sub.wake.async_wait(use_tuple_t{});
            if (co_await cancel_requested()) co_return;
        }
    }

    asio::awaitable<std::optional<reply>> control_route(connection& c, request_t const& req,
                                                        target const& t) {
        auto const& seg = t.segments;
        auto const method = req.method();
        if (seg.size() != 2) co_return std::nullopt;
        if (seg[1] == "calls" && method == http::verb::get) {
            co_return json_reply(http::status::ok, state_.counters().calls());
        }
        if (seg[1] == "stats" && method == http::verb::get) {
            co_return json_reply(http::status::ok, state_.counters().to_json());
        }
        if (seg[1] == "reset" && method == http::verb::post) {
            state_.counters().reset();
            co_return json_reply(http::status::ok, json::object{{"ok", true}});
        }
        if (seg[1] == "wait" && method == http::verb::get) co_return co_await wait_counter(c, t);
        if (seg[1] == "flood" && method == http::verb::post) {
            co_return json_reply(http::status::ok, start_flood(c, t));
        }
        if (seg[1] == "drop_events" && method == http::verb::post) {
            auto dropped = static_cast<std::int64_t>(state_.bus().drop_all());
            co_return json_reply(http::status::ok, json::object{{"dropped", dropped}});
        }
        if (seg[1] == "throw") throw std::runtime_error("fake handler failure (/_fake/throw)");
        co_return std::nullopt;
    }

    // POST /_fake/flood (see flood_spec in fake_state.hpp): starts it in the background.
    json::object start_flood(connection& c, target const& t) {
        auto number = [&](std::string const& key) -> std::int64_t {
            auto it = t.query.find(key);
            if (it == t.query.end()) return 0;
            std::int64_t n = 0;
            auto const& v = it->second;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc{} || end != v.data() + v.size() || n < 0) bad_request("bad " + key);
            return n;
        };
        flood_spec spec;
        spec.events = number("events");
        if (spec.events <= 0) bad_request("flood needs events=N");
        spec.rate = static_cast<double>(number("rate"));
        spec.tool_gap_ms = number("tool_gap_ms");
        spec.end_mark = number("end_mark") != 0;
        auto kind = t.query.find("kind");
        std::string const k = kind == t.query.end() ? "reasoning" : kind->second;
        if (k == "reasoning") {
            spec.what = flood_spec::kind::reasoning;
        } else if (k == "delta") {
            spec.what = flood_spec::kind::delta;
        } else if (k == "tool") {
            spec.what = flood_spec::kind::tool;
        } else if (k == "mixed") {
            spec.what = flood_spec::kind::mixed;
        } else {
            bad_request("kind must be reasoning, delta, tool or mixed");
        }
        auto sessions = t.query.find("sessions");
        bool const live = sessions != t.query.end() && sessions->second == "all";
        if (sessions != t.query.end() && !live) bad_request("sessions must be all");
        if (spec.what != flood_spec::kind::reasoning && !live)
            bad_request("kind delta, tool and mixed need sessions=all");
        auto const busy = static_cast<std::int64_t>(state_.busy_sessions(std::nullopt).size());
        asio::co_spawn(c.stream.get_executor(), state_.flood(spec), asio::detached);
        return {{"ok", true}, {"sessions", spec.what == flood_spec::kind::reasoning ? 0 : busy}};
    }

    asio::awaitable<reply> wait_counter(connection& c, target const& t) {
        auto number = [&](std::string const& key, std::int64_t fallback) {
            auto it = t.query.find(key);
            if (it == t.query.end()) return fallback;
            std::int64_t n = 0;
            auto const& s = it->second;
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
            if (ec != std::errc{} || end != s.data() + s.size()) bad_request("bad " + key);
            return n;
        };
        auto name = t.query.find("counter");
        if (name == t.query.end() || !state_.counters().get(name->second)) {
            bad_request("counter must name a numeric counter of /_fake/stats");
        }
        // min alone waits for a rise; max (value <= max) waits for a gauge to come back down.
        auto const has_max = t.query.contains("max");
        auto const min = number("min", has_max ? std::numeric_limits<std::int64_t>::min() : 1);
        auto const max = number("max", std::numeric_limits<std::int64_t>::max());
        auto const timeout = std::clamp<std::int64_t>(number("timeout_ms", 5000), 0, 600'000);
        auto r = co_await (state_.counters().wait_for(name->second, min, max,
                                                      std::chrono::milliseconds(timeout)) ||
                           watch_closed(c));
        if (r.index() == 1) co_return reply{action::close, {}, {}};
        auto [ok, value] = std::get<0>(r);
        co_return json_reply(http::status::ok, json::object{{"ok", ok}, {"value", value}});
    }

    fake_state state_;
    worktrees worktrees_;
    acceptor_t acceptor_;
    std::vector<connection*> connections_;
    std::string expected_auth_;
};

}  // namespace

int run_server(options const& opts) {
    asio::io_context ioc(1);
    server srv(ioc, opts);
    return fake_common::serve_until_signal(ioc, srv, "fake_opencode",
                                           fake_common::endpoint_url("http", srv.local_endpoint()));
}

}  // namespace fake
