// The log's formatting (logfmt text, JSON) and its one sink: spdlog's stderr sink, written
// synchronously, with the line formatted here so the two formats and journald's prefix are ours.
#include "common/log.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>
#include <span>
#include <utility>

namespace agentd::log {
namespace {

std::atomic<level> threshold_{level::info};
style style_{};

spdlog::logger& sink() {
    static auto const logger = [] {
        auto l = std::make_shared<spdlog::logger>(
            "agentd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        l->set_pattern("%v");
        l->set_level(spdlog::level::trace);
        l->flush_on(spdlog::level::trace);
        return l;
    }();
    return *logger;
}

spdlog::level::level_enum spdlog_level(level l) {
    switch (l) {
        case level::error:
            return spdlog::level::err;
        case level::warn:
            return spdlog::level::warn;
        case level::info:
            return spdlog::level::info;
        case level::debug:
            break;
    }
    return spdlog::level::debug;
}

// syslog priorities (sd-daemon(3)): journald reads the level from this prefix.
std::string_view priority(level l) {
    switch (l) {
        case level::error:
            return "<3>";
        case level::warn:
            return "<4>";
        case level::info:
            return "<6>";
        case level::debug:
            break;
    }
    return "<7>";
}

std::string_view upper(level l) {
    switch (l) {
        case level::error:
            return "ERROR";
        case level::warn:
            return "WARN";
        case level::info:
            return "INFO";
        case level::debug:
            break;
    }
    return "DEBUG";
}

// RFC 3339, UTC, milliseconds: 2026-12-06T04:55:00.123Z.
std::string timestamp(std::chrono::system_clock::time_point now) {
    auto const ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
    auto const secs = static_cast<std::time_t>(ms.count() / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[96];  // room for any int the format's fields could hold
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms.count() % 1000));
    return buf;
}

void append_hex(std::string& out, std::string_view prefix, unsigned char c, int width) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%0*x", width, c);
    out += prefix;
    out += buf;
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

// logfmt: bare when it can be read back as one token, else quoted with escapes.
void append_logfmt(std::string& out, std::string_view v) {
    bool const bare = !v.empty() && v.find_first_of(" =\"\\") == std::string_view::npos &&
                      std::none_of(v.begin(), v.end(), [](char c) {
                          return is_control(static_cast<unsigned char>(c));
                      });
    if (bare) {
        out += v;
        return;
    }
    out += '"';
    for (char ch : v) {
        auto const c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (is_control(c)) {
            append_hex(out, "\\x", c, 2);
        } else {
            out += ch;
        }
    }
    out += '"';
}

// Length of the valid UTF-8 sequence at the start of `s`, 0 when it is not one.
std::size_t utf8_sequence(std::string_view s) {
    auto const c = static_cast<unsigned char>(s[0]);
    std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5 || n == 0 || s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
    auto const c1 = static_cast<unsigned char>(s[1]);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 > 0x8f))
        return 0;  // overlong, surrogate or past U+10FFFF
    return n;
}

// A JSON string whatever the bytes: invalid UTF-8 becomes U+FFFD.
void append_json(std::string& out, std::string_view v) {
    out += '"';
    for (std::size_t i = 0; i < v.size();) {
        auto const c = static_cast<unsigned char>(v[i]);
        if (c >= 0x80) {
            auto n = utf8_sequence(v.substr(i));
            out += n ? v.substr(i, n) : std::string_view("\\ufffd");
            i += n ? n : 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            append_hex(out, "\\u", c, 4);
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    out += '"';
}

using field_span = std::span<field const>;

std::string text_line(level l, std::string_view event, field_span f, style s,
                      std::chrono::system_clock::time_point now) {
    std::string out;
    if (s.journald) {
        out += priority(l);
    } else {
        out += timestamp(now);
        out += ' ';
    }
    out += upper(l);
    out += ' ';
    append_logfmt(out, event);
    for (auto const& x : f) {
        out += ' ';
        out += x.key;
        out += '=';
        if (auto const* n = std::get_if<std::int64_t>(&x.value))
            out += std::to_string(*n);
        else
            append_logfmt(out, std::get<std::string_view>(x.value));
    }
    return out;
}

std::string json_line(level l, std::string_view event, field_span f, style s,
                      std::chrono::system_clock::time_point now) {
    std::string out(s.journald ? priority(l) : "");
    out += "{\"ts\":\"" + timestamp(now) + "\",\"level\":\"";
    out += to_string(l);
    out += "\",\"event\":";
    append_json(out, event);
    for (auto const& x : f) {
        out += ',';
        append_json(out, x.key);
        out += ':';
        if (auto const* n = std::get_if<std::int64_t>(&x.value))
            out += std::to_string(*n);
        else
            append_json(out, std::get<std::string_view>(x.value));
    }
    out += '}';
    return out;
}

void write_span(level l, std::string_view event, field_span f) {
    if (!enabled(l)) return;
    auto const now = std::chrono::system_clock::now();
    auto line = style_.fmt == format::json ? json_line(l, event, f, style_, now)
                                           : text_line(l, event, f, style_, now);
    sink().log(spdlog_level(l), std::string_view(line));
}

}  // namespace

bool throttle::admit(std::chrono::steady_clock::time_point now, std::int64_t& dropped) {
    std::lock_guard lock(mutex_);
    if (now < next_) {
        ++suppressed_;
        return false;
    }
    next_ = now + std::chrono::seconds(1);
    dropped = std::exchange(suppressed_, 0);
    return true;
}

void throttle::warn(std::string_view event, fields f) {
    std::int64_t dropped = 0;
    if (!enabled(level::warn) || !admit(std::chrono::steady_clock::now(), dropped)) return;
    if (dropped == 0) return write(level::warn, event, f);
    std::vector<field> all(f);
    all.emplace_back("suppressed", dropped);
    write(level::warn, event, all);
}

void configure(level threshold, style s) {
    style_ = s;
    threshold_.store(threshold, std::memory_order_relaxed);
}

bool enabled(level l) {
    return l <= threshold_.load(std::memory_order_relaxed);
}

void write(level l, std::string_view event, fields f) {
    write_span(l, event, field_span(f.begin(), f.size()));
}

void write(level l, std::string_view event, std::vector<field> const& f) {
    write_span(l, event, f);
}

void raw(std::string_view line) {
    sink().log(spdlog::level::critical, line);
}

bool is_journal_stream(char const* journal_stream, int fd) {
    if (!journal_stream) return false;
    unsigned long long dev = 0, ino = 0;
    char tail = 0;
    if (std::sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2) return false;
    struct stat st {};
    if (fstat(fd, &st) != 0) return false;
    return static_cast<unsigned long long>(st.st_dev) == dev &&
           static_cast<unsigned long long>(st.st_ino) == ino;
}

std::string format_line(level l, std::string_view event, fields f, style s,
                        std::chrono::system_clock::time_point now) {
    field_span span(f.begin(), f.size());
    return s.fmt == format::json ? json_line(l, event, span, s, now)
                                 : text_line(l, event, span, s, now);
}

std::string_view to_string(level l) {
    switch (l) {
        case level::error:
            return "error";
        case level::warn:
            return "warn";
        case level::info:
            return "info";
        case level::debug:
            break;
    }
    return "debug";
}

std::string_view to_string(format f) {
    return f == format::json ? "json" : "text";
}

}  // namespace agentd::log
