// The keys and faults of fake_opencode's `[[fake key=value ...]]` blocks (see directives.hpp);
// fake_common finds the blocks and splits their tokens.
#include "directives.hpp"

#include "fake_common/directive_blocks.hpp"

#include <array>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace fake {
namespace {

constexpr std::array<std::pair<std::string_view, fault>, 17> fault_names{{
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
    {"endless_trailer", fault::endless_trailer},
    {"huge_extension", fault::huge_extension},
    {"early_reset", fault::early_reset},
    {"too_big", fault::too_big},
    {"bad_id", fault::bad_id},
}};

fault parse_fault_value(std::string_view key, std::string_view value) {
    if (auto f = parse_fault(value)) return *f;
    throw std::invalid_argument("unknown fake fault " + std::string(key) + "=" +
                                std::string(value));
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// `a|b|c` as texts; an empty item is a typo, so it fails the request.
std::vector<std::string> directive_list(std::string_view value) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (;;) {
        auto next = value.find('|', pos);
        auto item = value.substr(pos, next == std::string_view::npos ? next : next - pos);
        if (item.empty()) {
            throw std::invalid_argument("empty item in fake directive list '" + std::string(value) +
                                        "'");
        }
        out.push_back(directive_text(item));
        if (next == std::string_view::npos) return out;
        pos = next + 1;
    }
}

// A cost: a decimal of 0 to 1 000 000.
double directive_amount(std::string_view key, std::string_view value) {
    double d = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), d);
    if (ec != std::errc{} || end != value.data() + value.size() || !(d >= 0 && d <= 1e6))
        throw std::invalid_argument("fake directive " + std::string(key) +
                                    " must be a decimal from 0 to 1000000");
    return d;
}

void apply_key(std::string_view key, std::string_view value, directives& out) {
    using fake_common::directive_count;
    constexpr std::int64_t max_ms = 3'600'000;
    if (key == "latency_ms") {
        out.latency_ms = directive_count(key, value, max_ms);
    } else if (key == "chunks") {
        out.chunks = directive_count(key, value, 100'000);
    } else if (key == "output_bytes") {
        out.output_bytes = directive_count(key, value, 64 << 20);
    } else if (key == "fault") {
        out.prompt_fault = parse_fault_value(key, value);
    } else if (key == "create_latency_ms") {
        out.create_latency_ms = directive_count(key, value, max_ms);
    } else if (key == "create_fault") {
        out.create_fault = parse_fault_value(key, value);
    } else if (key == "tool") {
        out.tool = directive_text(value);
    } else if (key == "steps") {
        out.steps = directive_count(key, value, 1000);
    } else if (key == "tool_title") {
        out.tool_title = directive_text(value);
    } else if (key == "tool_output") {
        out.tool_output = directive_text(value);
    } else if (key == "tool_ms") {
        out.tool_ms = directive_count(key, value, max_ms);
    } else if (key == "tool_fail") {
        out.tool_fail = directive_count(key, value, 1) == 1;
    } else if (key == "permission") {
        out.permission = directive_text(value);
    } else if (key == "patterns") {
        out.patterns = directive_list(value);
    } else if (key == "question") {
        out.question = directive_list(value);
    } else if (key == "multiple") {
        out.multiple = directive_count(key, value, 1) == 1;
    } else if (key == "question_text") {
        out.question_text = directive_text(value);
    } else if (key == "header") {
        out.header = directive_text(value);
    } else if (key == "silent_ms") {
        out.silent_ms = directive_count(key, value, max_ms);
    } else if (key == "usage_steps") {
        out.usage_steps = directive_count(key, value, 1000);
    } else if (key == "step_cost") {
        out.step_cost = directive_amount(key, value);
    } else if (key == "step_tokens") {
        out.step_tokens = directive_count(key, value, 1'000'000'000);
    } else if (key == "step_ms") {
        out.step_ms = directive_count(key, value, max_ms);
    } else if (key == "write") {
        out.write = directive_text(value);
    } else if (key == "write_text") {
        out.write_text = directive_list(value);
    } else if (key == "summary_ms") {
        out.summary_ms = directive_count(key, value, 5000);
    } else {
        throw std::invalid_argument("unknown fake directive key '" + std::string(key) + "'");
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

std::string directive_text(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '_') {
            out.push_back(' ');
        } else if (value[i] == '%' && i + 2 < value.size() && hex_digit(value[i + 1]) >= 0 &&
                   hex_digit(value[i + 2]) >= 0) {
            out.push_back(
                static_cast<char>(hex_digit(value[i + 1]) * 16 + hex_digit(value[i + 2])));
            i += 2;
        } else {
            out.push_back(value[i]);
        }
    }
    return out;
}

std::string strip_directives(std::string_view text, directives& out) {
    return fake_common::strip_directive_blocks(
        text, [&out](std::string_view key, std::string_view value) { apply_key(key, value, out); });
}

}  // namespace fake
