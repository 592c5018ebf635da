// agentd's log (DESIGN §8): structured events (a name and key=value fields) written to stderr as
// logfmt-style text or one JSON object per line, journald-aware. spdlog and fmt stay in log.cpp:
// this header is included widely and must stay cheap to compile.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace agentd::log {

enum class level { error, warn, info, debug };
enum class format { text, json };

// One key=value. Values are views: fields live for the one call that writes them.
struct field {
    field(std::string_view k, std::string_view v) : key(k), value(v) {}
    field(std::string_view k, char const* v) : key(k), value(std::string_view(v)) {}
    field(std::string_view k, std::string const& v) : key(k), value(std::string_view(v)) {}
    template <std::integral T>
    field(std::string_view k, T v) : key(k), value(static_cast<std::int64_t>(v)) {}

    std::string_view key;
    std::variant<std::string_view, std::int64_t> value;
};
using fields = std::initializer_list<field>;

// What a line looks like; `journald` drops the timestamp and adds a syslog priority prefix.
struct style {
    format fmt = format::text;
    bool journald = false;
};

// Sets the threshold and the style (main, once, before any line is written).
void configure(level threshold, style s);

// Whether a line at `l` is written: callers that build a field's value check it first.
bool enabled(level l);

// Writes one line at `l` when enabled.
void write(level l, std::string_view event, fields f);
// The same with fields decided at run time (some present only sometimes).
void write(level l, std::string_view event, std::vector<field> const& f);

inline void error(std::string_view event, fields f = {}) {
    if (enabled(level::error)) write(level::error, event, f);
}
inline void warn(std::string_view event, fields f = {}) {
    if (enabled(level::warn)) write(level::warn, event, f);
}
inline void info(std::string_view event, fields f = {}) {
    if (enabled(level::info)) write(level::info, event, f);
}
inline void debug(std::string_view event, fields f = {}) {
    if (enabled(level::debug)) write(level::debug, event, f);
}

// For a warning a peer can trigger at will (refused connections, oversized bodies): at most one
// line a second per throttle; the lines in between are counted and the next one written says how
// many were dropped (`suppressed=N`), so a flood costs the journal a line a second, not one each.
class throttle {
  public:
    void warn(std::string_view event, fields f);
    // Whether a line at `now` is written; `dropped` gets the count since the last one written.
    bool admit(std::chrono::steady_clock::time_point now, std::int64_t& dropped);

  private:
    std::mutex mutex_;
    std::chrono::steady_clock::time_point next_{};
    std::int64_t suppressed_ = 0;
};

// A line as it is, whatever the level and format (the listener lines scripts read).
void raw(std::string_view line);

// systemd's check that stderr is connected to journald: $JOURNAL_STREAM ("DEV:INODE", from
// `journal_stream`; null when unset) names the device and inode of `fd`.
bool is_journal_stream(char const* journal_stream, int fd);

// The line without its newline (exposed for tests).
std::string format_line(level l, std::string_view event, fields f, style s,
                        std::chrono::system_clock::time_point now);

std::string_view to_string(level l);
std::string_view to_string(format f);

}  // namespace agentd::log
