// Parser for `[[fake key=value ...]]` directive blocks (see directives.hpp). Pure string
// handling: no I/O, so it is cheap to compile and easy to reason about.
#include "directives.hpp"

#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace fake {
namespace {

constexpr std::array<std::pair<std::string_view, fault>, 12> fault_names{{
    {"close", fault::close},
    {"reset", fault::reset},
    {"hang", fault::hang},
    {"stall", fault::stall},
    {"500", fault::http_500},
    {"404", fault::http_404},
    {"400", fault::http_400},
    {"503", fault::http_503},
    {"garbage", fault::garbage},
    {"wrong_shape", fault::wrong_shape},
    {"error", fault::error},
    {"slow_headers", fault::slow_headers},
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
    if (ec != std::errc{} || end != value.data() + value.size() || n < 0 || n > max) {
        throw std::invalid_argument("bad fake directive value " + std::string(key) + "=" +
                                    std::string(value));
    }
    return n;
}

fault parse_fault_value(std::string_view key, std::string_view value) {
    if (auto f = parse_fault(value)) return *f;
    throw std::invalid_argument("unknown fake fault " + std::string(key) + "=" +
                                std::string(value));
}

void apply_token(std::string_view token, directives& out) {
    auto eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0) {
        throw std::invalid_argument("bad fake directive token '" + std::string(token) +
                                    "' (want key=value)");
    }
    auto key = token.substr(0, eq);
    auto value = token.substr(eq + 1);
    constexpr std::int64_t max_ms = 3'600'000;
    if (key == "latency_ms") {
        out.latency_ms = parse_count(key, value, max_ms);
    } else if (key == "chunks") {
        out.chunks = parse_count(key, value, 100'000);
    } else if (key == "output_bytes") {
        out.output_bytes = parse_count(key, value, 64 << 20);
    } else if (key == "fault") {
        out.prompt_fault = parse_fault_value(key, value);
    } else if (key == "create_latency_ms") {
        out.create_latency_ms = parse_count(key, value, max_ms);
    } else if (key == "create_fault") {
        out.create_fault = parse_fault_value(key, value);
    } else {
        throw std::invalid_argument("unknown fake directive key '" + std::string(key) + "'");
    }
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

std::optional<fault> parse_fault(std::string_view name) {
    for (auto const& [n, f] : fault_names) {
        if (n == name) return f;
    }
    return std::nullopt;
}

std::string_view fault_name(fault f) {
    for (auto const& [n, v] : fault_names) {
        if (v == f) return n;
    }
    return "none";
}

std::string strip_directives(std::string_view text, directives& out) {
    std::string result;
    result.reserve(text.size());
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
        if (close == std::string_view::npos) {
            throw std::invalid_argument("unterminated [[fake ...]] directive");
        }
        result.append(text.substr(pos, open - pos));
        apply_block(text.substr(open + block_open.size(), close - open - block_open.size()), out);
        pos = close + block_close.size();
    }
    result.append(text.substr(pos));
    return result;
}

}  // namespace fake
