// The `[[fake key=value ...]]` blocks both fake upstreams read from prompts and titles: finding
// and removing them, splitting their tokens, bounded numbers. Each fake keeps its own keys.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace fake_common {

// Called for each key=value token, in order (a later one wins); throws std::invalid_argument
// for an unknown key or a bad value.
using directive_key = std::function<void(std::string_view key, std::string_view value)>;

// `text` without its directive blocks. Throws std::invalid_argument, with a message meant for a
// 400 body, on an unterminated block or a token that is not key=value, so a typo in a test fails
// loudly instead of silently.
std::string strip_directive_blocks(std::string_view text, directive_key const& on_key);

// A number in 0..max; bounded so that a typo such as latency_ms=10000000000 fails instead of
// hanging a test run.
std::int64_t directive_count(std::string_view key, std::string_view value, std::int64_t max);

}  // namespace fake_common
