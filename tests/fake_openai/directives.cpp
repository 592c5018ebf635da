// Parser of `[[fake key=value ...]]` blocks (see directives.hpp). Pure string handling, with
// bounded numbers, so it is cheap to compile and a typo fails the request with a 400.
#include "directives.hpp"

#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace fake_openai {
namespace {

constexpr std::array<std::pair<std::string_view, fault>, 12> fault_names{{
    {"close", fault::close},
    {"reset", fault::reset},
    {"hang", fault::hang},
    {"500", fault::http_500},
    {"400", fault::http_400},
    {"429", fault::http_429},
    {"garbage", fault::garbage},
    {"bad_chunk", fault::bad_chunk},
    {"no_done", fault::no_done},
    {"stream_error", fault::stream_error},
    {"mid_reset", fault::mid_reset},
    {"ignore_stream", fault::ignore_stream},
}};

constexpr std::string_view block_open = "[[fake";
constexpr std::string_view block_close = "]]";

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Bounded so that a typo such as latency_ms=10000000000 fails instead of hanging a test run.
std::int64_t parse_count(std::string_view key, std::string_view value, std::int64_t max) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 0 || n > max)
        throw std::invalid_argument("bad fake directive value " + std::string(key) + "=" +
                                    std::string(value));
    return n;
}

fault parse_fault(std::string_view value) {
    for (auto const& [name, f] : fault_names)
        if (name == value) return f;
    throw std::invalid_argument("unknown fake fault " + std::string(value));
}

void apply_token(std::string_view token, directives& out) {
    auto eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0)
        throw std::invalid_argument("bad fake directive token '" + std::string(token) +
                                    "' (want key=value)");
    auto key = token.substr(0, eq);
    auto value = token.substr(eq + 1);
    if (key == "latency_ms")
        out.latency_ms = parse_count(key, value, 3'600'000);
    else if (key == "chunks")
        out.chunks = parse_count(key, value, 100'000);
    else if (key == "output_bytes")
        out.output_bytes = parse_count(key, value, 64 << 20);
    else if (key == "fault")
        out.what = parse_fault(value);
    else if (key == "times")
        out.times = parse_count(key, value, 1'000'000);
    else if (key == "retry_after")
        out.retry_after = parse_count(key, value, 3'600);
    else
        throw std::invalid_argument("unknown fake directive key '" + std::string(key) + "'");
}

void apply_block(std::string_view body, directives& out) {
    std::size_t i = 0;
    while (i < body.size()) {
        while (i < body.size() && is_space(body[i])) ++i;
        std::size_t start = i;
        while (i < body.size() && !is_space(body[i])) ++i;
        if (i > start) apply_token(body.substr(start, i - start), out);
    }
}

}  // namespace

std::string strip_directives(std::string_view text, directives& out) {
    std::string result;
    std::size_t pos = 0;
    for (;;) {
        auto open = text.find(block_open, pos);
        // "[[fakeX" is ordinary text: a block needs whitespace or the closing "]]" after "fake".
        while (open != std::string_view::npos) {
            auto after = open + block_open.size();
            if (after < text.size() && (is_space(text[after]) || text[after] == ']')) break;
            open = text.find(block_open, open + 1);
        }
        if (open == std::string_view::npos) break;
        auto close = text.find(block_close, open + block_open.size());
        if (close == std::string_view::npos)
            throw std::invalid_argument("unterminated [[fake ...]] directive");
        result.append(text.substr(pos, open - pos));
        apply_block(text.substr(open + block_open.size(), close - open - block_open.size()), out);
        pos = close + block_close.size();
    }
    result.append(text.substr(pos));
    return result;
}

}  // namespace fake_openai
