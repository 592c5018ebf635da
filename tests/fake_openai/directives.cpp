// The keys and faults of fake_openai's `[[fake key=value ...]]` blocks (see directives.hpp);
// fake_common finds the blocks, splits their tokens and bounds the numbers, so a typo fails the
// request with a 400.
#include "directives.hpp"

#include "fake_common/directive_blocks.hpp"

#include <array>
#include <stdexcept>
#include <utility>

namespace fake_openai {
namespace {

constexpr std::array<std::pair<std::string_view, fault>, 14> fault_names{{
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
    {"endless_line", fault::endless_line},
    {"huge_extension", fault::huge_extension},
    {"ignore_stream", fault::ignore_stream},
}};

fault parse_fault(std::string_view value) {
    for (auto const& [name, f] : fault_names)
        if (name == value) return f;
    throw std::invalid_argument("unknown fake fault " + std::string(value));
}

void apply_key(std::string_view key, std::string_view value, directives& out) {
    using fake_common::directive_count;
    if (key == "latency_ms")
        out.latency_ms = directive_count(key, value, 3'600'000);
    else if (key == "chunks")
        out.chunks = directive_count(key, value, 100'000);
    else if (key == "output_bytes")
        out.output_bytes = directive_count(key, value, 64 << 20);
    else if (key == "fault")
        out.what = parse_fault(value);
    else if (key == "times")
        out.times = directive_count(key, value, 1'000'000);
    else if (key == "retry_after")
        out.retry_after = directive_count(key, value, 3'600);
    else
        throw std::invalid_argument("unknown fake directive key '" + std::string(key) + "'");
}

}  // namespace

std::string strip_directives(std::string_view text, directives& out) {
    return fake_common::strip_directive_blocks(
        text, [&out](std::string_view key, std::string_view value) { apply_key(key, value, out); });
}

}  // namespace fake_openai
