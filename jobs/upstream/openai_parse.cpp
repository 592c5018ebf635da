// OpenAI chat-completions parsing; see openai_parse.hpp. Anything of the wrong shape is a
// `protocol` failure naming what was wrong, never an exception; fields a provider adds beyond
// the ones agentd reads are ignored.
#include "jobs/upstream/openai_parse.hpp"

#include "jobs/upstream/json_read.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>

namespace agentd::jobs::upstream::openai {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;

namespace {

upstream_error protocol_error(std::string message) {
    return {error_kind::protocol, error_phase::prompt, std::move(message), std::nullopt};
}

// The provider's own words in an error body: `error.message`, a bare `error` string, or a
// top-level `message` (vLLM and some proxies).
std::string_view error_detail(json::object const& o) {
    if (auto const* err = o.if_contains("error")) {
        if (err->is_string()) return err->get_string();
        if (err->is_object()) return string_at(err->get_object(), "message");
    }
    return string_at(o, "message");
}

// An `error` object inside a 200 stream or body: the provider failed after accepting the call.
upstream_error reported_error(json::object const& o) {
    std::string message = "upstream reported an error";
    if (auto detail = error_detail(o); !detail.empty()) message += ": " + excerpt(detail);
    upstream_error e{error_kind::upstream, error_phase::prompt, std::move(message), std::nullopt};
    if (auto const* err = o.at("error").if_object()) {
        auto code = int_at(err, "code");
        if (code >= 100 && code < 600) e.http_status = static_cast<int>(code);
    }
    return e;
}

// Whether the chunk carried usage. `cost` is not OpenAI's, but OpenRouter and some proxies
// report it there.
bool take_usage(json::object const& o, protocol::job_usage& usage) {
    auto const* u = o.if_contains("usage");
    if (!u || !u->is_object()) return false;  // null on every chunk but the last
    auto const& uo = u->get_object();
    usage.input_tokens = int_at(&uo, "prompt_tokens");
    usage.output_tokens = int_at(&uo, "completion_tokens");
    if (auto const* cost = uo.if_contains("cost"); cost && cost->is_number())
        usage.cost = std::max(cost->to_number<double>(), 0.0);
    return true;
}

// `choices[0].<field>.content` ("delta" when streamed, "message" otherwise); an empty view when
// the chunk carries no text (role, finish and usage chunks), nullopt when it has the wrong shape.
std::optional<std::string_view> content_of(json::object const& o, std::string_view field) {
    auto const* choices = o.if_contains("choices");
    if (!choices || choices->is_null()) return std::string_view{};
    if (!choices->is_array()) return std::nullopt;
    if (choices->get_array().empty()) return std::string_view{};
    auto const* choice = choices->get_array().front().if_object();
    if (!choice) return std::nullopt;
    auto const* part = choice->if_contains(field);
    if (!part || part->is_null()) return std::string_view{};
    if (!part->is_object()) return std::nullopt;
    auto const* content = part->get_object().if_contains("content");
    if (!content || content->is_null()) return std::string_view{};
    if (!content->is_string()) return std::nullopt;
    return std::string_view(content->get_string());
}

}  // namespace

std::string request_body(std::string_view model, std::optional<std::string> const& system,
                         std::span<chat_turn const> history, std::string_view prompt) {
    json::array messages;
    if (system) messages.push_back(json::object{{"role", "system"}, {"content", *system}});
    for (auto const& t : history) {
        messages.push_back(json::object{{"role", "user"}, {"content", t.user}});
        messages.push_back(json::object{{"role", "assistant"}, {"content", t.assistant}});
    }
    messages.push_back(json::object{{"role", "user"}, {"content", prompt}});
    json::object body{{"model", model},
                      {"messages", std::move(messages)},
                      {"stream", true},
                      {"stream_options", json::object{{"include_usage", true}}}};
    return json::serialize(body);
}

upstream_error http_error(unsigned status, std::string_view body) {
    std::string message = fmt::format("upstream answered HTTP {}", status);
    auto v = parse_json(body);
    std::string_view detail = v && v->is_object() ? error_detail(v->get_object()) : body;
    if (!detail.empty()) message += ": " + excerpt(detail);
    return {error_kind::upstream, error_phase::prompt, std::move(message),
            static_cast<int>(status)};
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (value.empty() || ec != std::errc{} || end != value.data() + value.size() || n < 0)
        return std::nullopt;
    return std::chrono::seconds(std::min<std::int64_t>(n, 86'400));
}

up_result<prompt_outcome> parse_completion(std::string_view body, std::size_t max_output) {
    auto v = parse_json(body);
    if (!v || !v->is_object()) return protocol_error("completion: response is not a JSON object");
    auto const& o = v->get_object();
    if (o.contains("error")) return reported_error(o);
    auto text = content_of(o, "message");
    if (!text) return protocol_error("completion: choices[0].message has the wrong shape");
    prompt_outcome out;
    out.output = std::string(text->substr(0, protocol::utf8_prefix(*text, max_output)));
    out.truncated = out.output.size() < text->size();
    take_usage(o, out.usage);
    return out;
}

up_result<std::string_view> stream_reader::feed(std::string_view data) {
    usage_fresh_ = false;
    if (finished()) return std::string_view{};
    if (data == "[DONE]") {
        done_ = true;
        return std::string_view{};
    }
    auto v = parse_json(data);
    if (!v || !v->is_object()) return protocol_error("malformed stream chunk: " + excerpt(data));
    auto const& o = v->get_object();
    if (auto const* err = o.if_contains("error"); err && !err->is_null()) return reported_error(o);
    usage_fresh_ = take_usage(o, out_.usage);
    auto text = content_of(o, "delta");
    if (!text) return protocol_error("malformed stream chunk: " + excerpt(data));
    auto room = max_output_ - std::min(max_output_, out_.output.size());
    auto n = protocol::utf8_prefix(*text, room);
    out_.truncated = n < text->size();
    auto at = out_.output.size();
    out_.output.append(text->substr(0, n));
    return std::string_view(out_.output).substr(at);
}

}  // namespace agentd::jobs::upstream::openai
