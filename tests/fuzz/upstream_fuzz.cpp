// libFuzzer target over everything agentd reads from an upstream: OpenCode session, prompt,
// message-list, pending-request and event bodies (tool steps, requests), OpenAI completions and
// streamed chunks through the SSE parser, error bodies, Retry-After and base URLs. The first
// input byte picks the parser, the next two the HTTP status; outputs must respect the output cap
// and stay valid UTF-8.
#include "common/url.hpp"
#include "jobs/upstream/openai_parse.hpp"
#include "jobs/upstream/opencode_parse.hpp"
#include "jobs/upstream/sse.hpp"
#include "protocol/utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

using namespace agentd;
using namespace agentd::jobs::upstream;
constexpr std::size_t max_output = 256;

void check_text(std::string_view s, std::size_t cap) {
    if (s.size() > cap || protocol::utf8_clean(s) != s) std::abort();
}

void check(up_result<prompt_outcome> const& r) {
    if (r) check_text(r->output, max_output);
}

// Steps stay within their caps as valid UTF-8; request ids are safe to put into a path.
void check_event(opencode::event const& e) {
    check_text(e.tool.output_tail, protocol::step::output_tail_bytes);
    check_text(e.tool.title, protocol::step::title_chars * 4);
    if ((e.what == opencode::event::kind::permission ||
         e.what == opencode::event::kind::question) &&
        !opencode::valid_request_id(e.request.id, e.request.kind))
        __builtin_trap();
}

// The body cut into chunks at positions taken from its own bytes, as a network would.
void stream(std::string_view body) {
    sse_parser sse(1 << 16);
    openai::stream_reader reader(max_output);
    std::size_t at = 0;
    while (at < body.size()) {
        std::size_t n = 1 + static_cast<unsigned char>(body[at]) % 64;
        auto chunk = body.substr(at, n);
        at += chunk.size();
        bool ok = sse.feed(chunk, [&](std::string_view data) {
            if (auto added = reader.feed(data)) check_text(*added, max_output);
            opencode::parse_event(data);
        });
        if (!ok) return;
    }
    check_text(reader.take().output, max_output);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size < 3) return 0;
    unsigned status = 100u + (data[1] << 8 | data[2]) % 500u;
    std::string_view body(reinterpret_cast<char const*>(data) + 3, size - 3);
    switch (data[0] % 10) {
        case 0:
            // Whatever is accepted as a session id is safe to put into a request path.
            if (auto id = opencode::parse_session(status, body);
                id && !opencode::valid_upstream_session_id(*id))
                __builtin_trap();
            if (auto busy = opencode::parse_busy(status, body))
                for (auto const& sid : *busy)
                    if (!opencode::valid_upstream_session_id(sid)) __builtin_trap();
            break;
        case 1:
            check(opencode::parse_prompt(status, body, max_output));
            break;
        case 2:
            opencode::parse_partial(status, body);
            if (auto list = opencode::parse_pending(status, body, protocol::request_kind::question,
                                                    "ses_1"))
                for (auto const& r : *list)
                    if (!opencode::valid_request_id(r.id, r.kind)) __builtin_trap();
            break;
        case 3:
            if (auto r = opencode::parse_recovered(status, body, max_output); r && *r)
                check_text((*r)->output, max_output);
            if (auto r = opencode::parse_turn_end(status, body, max_output, "msg_1"); r && *r)
                check_text((*r)->output, max_output);
            break;
        case 4:
            if (auto e = opencode::parse_event(body)) check_event(*e);
            break;
        case 5:
            check(openai::parse_completion(body, max_output));
            break;
        case 6:
            stream(body);
            break;
        case 7:
            openai::parse_retry_after(body);
            break;
        case 8:
            if (auto url = common::parse_url(body).value) url->host_header();
            break;
        default:
            openai::http_error(status, body);
            opencode::http_error(protocol::error_phase::prompt, status, body);
    }
    return 0;
}
