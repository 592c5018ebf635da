// Per-request behaviour of the fake OpenAI server: `[[fake key=value ...]]` blocks in the user
// message pick latency, chunking, output size and faults, so one server serves many test cases
// at once without global switches.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fake_openai {

enum class fault {
    none,
    close,  // close the connection without answering
    reset,  // RST without answering
    hang,   // never answer
    http_500,
    http_400,
    http_429,        // with Retry-After: retry_after (default 1)
    garbage,         // 200 text/html
    bad_chunk,       // streams one delta, then a data line that is not JSON
    no_done,         // streams everything but `data: [DONE]`
    stream_error,    // streams one delta, then an `{"error":…}` event
    mid_reset,       // streams one delta, then RST
    ignore_stream,   // answers one JSON body although asked to stream (as some servers do)
    endless_line,    // streams one delta, then a `data:` line that never ends
    huge_extension,  // streams one delta, then a chunk header whose extension never ends
};

struct directives {
    std::optional<std::int64_t> latency_ms;
    std::optional<std::int64_t> chunks;
    std::optional<std::int64_t> output_bytes;
    fault what = fault::none;
    std::optional<std::int64_t> times;        // the fault only for the first N identical prompts
    std::optional<std::int64_t> retry_after;  // seconds, for fault=429
};

// `text` without its directive blocks; their keys are merged into `out` (a later block wins).
// Throws std::invalid_argument, with a message meant for a 400 body, on an unterminated block,
// an unknown key or a bad value, so a typo in a test fails loudly.
std::string strip_directives(std::string_view text, directives& out);

}  // namespace fake_openai
