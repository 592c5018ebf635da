// Per-request fault injection for the fake OpenCode server: `[[fake key=value ...]]` blocks in
// prompt text or session titles. Tests pick latency and failures through the request itself, so
// one server can serve many test cases at once without global switches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fake {

enum class fault {
    none,
    close,
    reset,
    hang,
    stall,
    http_500,
    http_404,
    http_400,
    http_503,
    garbage,
    wrong_shape,
    error,
    slow_headers,
    // Hostile replies (issue #14): a chunked body whose trailer never ends, a chunk extension
    // that never ends, a reset right after the request was read (no response byte), a session
    // reply of 128 KiB, a session id that is not one.
    endless_trailer,
    huge_extension,
    early_reset,
    too_big,
    bad_id,
};

std::optional<fault> parse_fault(std::string_view name);
std::string_view fault_name(fault f);

// Keys seen in the directive blocks of one text; unset keys fall back to server defaults.
struct directives {
    std::optional<std::int64_t> latency_ms;
    std::optional<std::int64_t> chunks;
    std::optional<std::int64_t> output_bytes;
    std::optional<fault> prompt_fault;
    std::optional<std::int64_t> create_latency_ms;
    std::optional<fault> create_fault;
};

// Returns `text` without its directive blocks and merges their keys into `out` (a later block
// wins). Throws std::invalid_argument, with a message meant for a 400 body, on an unterminated
// block, an unknown key or a bad value, so a typo in a test fails loudly instead of silently.
std::string strip_directives(std::string_view text, directives& out);

}  // namespace fake
