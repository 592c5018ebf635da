// OpenCode response and event parsing; see opencode_parse.hpp. Anything of the wrong shape is
// a `protocol` failure naming what was missing, never an exception.
#include "jobs/upstream/opencode_parse.hpp"

#include "jobs/upstream/json_read.hpp"
#include "protocol/utf8.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>

namespace agentd::jobs::upstream::opencode {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;

namespace {

upstream_error protocol_error(error_phase phase, std::string_view what) {
    return {error_kind::protocol, phase, std::string(what), std::nullopt};
}

bool ok_status(unsigned status) {
    return status >= 200 && status < 300;
}

// Concatenated `text` of the text parts.
std::string text_of(json::array const& parts) {
    std::string out;
    for (auto const& p : parts) {
        if (!p.is_object()) continue;
        auto const& po = p.get_object();
        if (string_at(po, "type") == "text") out += string_at(po, "text");
    }
    return out;
}

}  // namespace

upstream_error http_error(error_phase phase, unsigned status, std::string_view body) {
    std::string message = fmt::format("upstream answered HTTP {}", status);
    if (auto v = parse_json(body); v && v->is_object()) {
        auto const& o = v->get_object();
        auto const* data = object_at(o, "data");
        auto detail = data ? string_at(*data, "message") : std::string_view{};
        if (detail.empty()) detail = string_at(o, "name");
        if (!detail.empty()) message += ": " + excerpt(detail);
    } else if (!body.empty()) {
        message += ": " + excerpt(body);
    }
    return {error_kind::upstream, phase, std::move(message), static_cast<int>(status)};
}

up_result<std::string> parse_session(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::create, status, body);
    auto v = parse_json(body);
    if (!v) return protocol_error(error_phase::create, "session create: response is not JSON");
    if (!v->is_object())
        return protocol_error(error_phase::create, "session create: response is not an object");
    auto id = string_at(v->get_object(), "id");
    if (id.empty())
        return protocol_error(error_phase::create, "session create: response has no session id");
    // The id goes into request paths (/session/{id}/message): nothing but an id may pass.
    if (!valid_upstream_session_id(id))
        return protocol_error(error_phase::create, "session create: invalid session id");
    return std::string(id);
}

bool valid_upstream_session_id(std::string_view id) {
    constexpr std::string_view prefix = "ses";
    if (id.size() <= prefix.size() || id.size() > 256 || !id.starts_with(prefix)) return false;
    return std::all_of(id.begin() + prefix.size(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

up_result<prompt_outcome> parse_prompt(unsigned status, std::string_view body,
                                       std::size_t max_output) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v) return protocol_error(error_phase::prompt, "prompt: response is not JSON");
    auto const* root = v->if_object();
    auto const* info = root ? object_at(*root, "info") : nullptr;
    auto const* parts = root ? root->if_contains("parts") : nullptr;
    if (!info || !parts || !parts->is_array())
        return protocol_error(error_phase::prompt, "prompt: response has no info/parts");

    if (auto const* err = object_at(*info, "error")) {
        auto const* data = object_at(*err, "data");
        std::string name(string_at(*err, "name"));
        std::string detail(data ? string_at(*data, "message") : std::string_view{});
        upstream_error e{error_kind::upstream, error_phase::prompt,
                         excerpt(name.empty() ? "upstream error" : name), std::nullopt};
        if (!detail.empty()) e.message += ": " + excerpt(detail);
        if (data && data->contains("statusCode")) {
            auto code = int_at(data, "statusCode");
            if (code > 0 && code < 1000) e.http_status = static_cast<int>(code);
        }
        return e;
    }

    prompt_outcome out;
    out.output = text_of(parts->get_array());
    if (out.output.size() > max_output) {
        out.output.resize(protocol::utf8_prefix(out.output, max_output));
        out.truncated = true;
    }
    auto const* tokens = object_at(*info, "tokens");
    out.usage.input_tokens = int_at(tokens, "input");
    out.usage.output_tokens = int_at(tokens, "output");
    if (auto const* cost = info->if_contains("cost"); cost && cost->is_number())
        out.usage.cost = cost->to_number<double>();
    return out;
}

up_result<std::string> parse_partial(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    std::string text;
    for (auto const& m : v->get_array()) {
        auto const* mo = m.if_object();
        auto const* info = mo ? object_at(*mo, "info") : nullptr;
        auto const* parts = mo ? mo->if_contains("parts") : nullptr;
        if (!info || string_at(*info, "role") != "assistant" || !parts || !parts->is_array())
            continue;
        text = text_of(parts->get_array());  // the latest assistant message wins
    }
    return text;
}

up_result<std::optional<prompt_outcome>> parse_recovered(unsigned status, std::string_view body,
                                                         std::size_t max_output) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array())
        return protocol_error(error_phase::prompt, "messages: response is not a JSON array");
    json::value const* last = nullptr;
    for (auto const& m : v->get_array()) {
        auto const* mo = m.if_object();
        auto const* info = mo ? object_at(*mo, "info") : nullptr;
        if (info && string_at(*info, "role") == "assistant") last = &m;
    }
    if (!last) return std::optional<prompt_outcome>{};
    auto const* time = object_at(*object_at(last->get_object(), "info"), "time");
    if (!time || !time->contains("completed")) return std::optional<prompt_outcome>{};
    // A finished turn has the shape of a prompt response: reuse that parser.
    auto outcome = parse_prompt(200, json::serialize(*last), max_output);
    if (!outcome) return outcome.error();
    return std::optional<prompt_outcome>{std::move(*outcome)};
}

up_result<std::set<std::string>> parse_busy(unsigned status, std::string_view body) {
    if (!ok_status(status)) return http_error(error_phase::prompt, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_object())
        return protocol_error(error_phase::prompt, "session status: response is not an object");
    std::set<std::string> busy;
    for (auto const& [id, st] : v->get_object()) {
        auto const* o = st.if_object();
        // "busy" and "retry" both mean a turn is still running; idle ones are usually omitted.
        if (o && string_at(*o, "type") != "idle" && valid_upstream_session_id(id))
            busy.emplace(std::string_view(id));
    }
    return busy;
}

std::optional<event> parse_event(std::string_view data) {
    auto v = parse_json(data);
    if (!v || !v->is_object()) return std::nullopt;
    // /global/event wraps each event as {directory, payload}; /event sends it bare.
    auto const* wrapped = object_at(v->get_object(), "payload");
    auto const& o = wrapped ? *wrapped : v->get_object();
    auto const* props = object_at(o, "properties");
    if (!props) return std::nullopt;
    auto type = string_at(o, "type");
    event e;
    if (type == "message.part.delta") {
        if (string_at(*props, "field") != "text") return std::nullopt;
        e.what = event::kind::delta;
        e.session = string_at(*props, "sessionID");
        e.part_id = string_at(*props, "partID");
        e.delta = string_at(*props, "delta");
    } else if (type == "message.part.updated") {
        auto const* part = object_at(*props, "part");
        if (!part) return std::nullopt;
        e.what = event::kind::part_updated;
        e.session = string_at(*part, "sessionID");
        e.part_id = string_at(*part, "id");
        e.part_type = string_at(*part, "type");
    } else if (type == "session.idle") {
        e.what = event::kind::idle;
        e.session = string_at(*props, "sessionID");
    } else {
        return event{};
    }
    if (e.what != event::kind::other && e.session.empty()) return std::nullopt;
    return e;
}

}  // namespace agentd::jobs::upstream::opencode
