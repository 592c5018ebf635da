// The log's line formats (common/log.hpp): logfmt quoting, JSON escaping, journald's priority
// prefix and the level threshold.
#include "common/log.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <sys/stat.h>
#include <cstdio>
#include <string>

namespace agentd::log {
namespace {

using namespace std::chrono_literals;
// 2026-12-06T04:55:00.123Z
auto const when = std::chrono::system_clock::time_point(1'796'532'900'123ms);

std::string text(level l, std::string_view event, fields f, bool journald = false) {
    return format_line(l, event, f, {format::text, journald}, when);
}

std::string json(level l, std::string_view event, fields f, bool journald = false) {
    return format_line(l, event, f, {format::json, journald}, when);
}

TEST(LogText, TimestampLevelEventAndFields) {
    EXPECT_EQ(text(level::info, "job", {{"job", "job_1"}, {"state", "failed"}, {"elapsed_ms", 42}}),
              "2026-12-06T04:55:00.123Z INFO job job=job_1 state=failed elapsed_ms=42");
    EXPECT_EQ(text(level::warn, "limit", {{"n", -3}}), "2026-12-06T04:55:00.123Z WARN limit n=-3");
}

TEST(LogText, QuotesWhatWouldNotReadBackAsOneToken) {
    EXPECT_EQ(
        text(level::error, "e", {{"a", "two words"}, {"b", "k=v"}, {"c", "say \"hi\""}}, true),
        R"(<3>ERROR e a="two words" b="k=v" c="say \"hi\"")");
    EXPECT_EQ(text(level::info, "e", {{"a", ""}, {"b", "back\\slash"}}, true),
              R"(<6>INFO e a="" b="back\\slash")");
}

TEST(LogText, EscapesControlCharactersKeepsUtf8) {
    EXPECT_EQ(text(level::info, "e", {{"a", "l1\nl2\tx\r\x01\x7f"}, {"b", "héllo→"}}, true),
              R"(<6>INFO e a="l1\nl2\tx\r\x01\x7f" b=héllo→)");
}

TEST(LogText, JournaldPrefixPerLevelAndNoTimestamp) {
    EXPECT_EQ(text(level::error, "x", {}, true), "<3>ERROR x");
    EXPECT_EQ(text(level::warn, "x", {}, true), "<4>WARN x");
    EXPECT_EQ(text(level::info, "x", {}, true), "<6>INFO x");
    EXPECT_EQ(text(level::debug, "x", {}, true), "<7>DEBUG x");
    EXPECT_EQ(text(level::debug, "x", {}, false), "2026-12-06T04:55:00.123Z DEBUG x");
}

TEST(LogJson, OneObjectIntegersAsNumbers) {
    auto line = json(level::info, "job", {{"job", "job_1"}, {"elapsed_ms", 7}});
    EXPECT_EQ(line,
              R"({"ts":"2026-12-06T04:55:00.123Z","level":"info","event":"job","job":"job_1",)"
              R"("elapsed_ms":7})");
    auto v = boost::json::parse(line);
    EXPECT_EQ(v.at("elapsed_ms").as_int64(), 7);
}

TEST(LogJson, EscapesQuotesNewlinesControlsAndKeepsNonAscii) {
    auto line = json(level::warn, "e", {{"a", "q\"b\\s\nn\x01\x1f"}, {"b", "日本 é"}});
    EXPECT_EQ(line.substr(line.find("\"a\"")), R"("a":"q\"b\\s\nn\u0001\u001f","b":"日本 é"})");
    auto v = boost::json::parse(line);
    EXPECT_EQ(v.at("a").as_string(), "q\"b\\s\nn\x01\x1f");
    EXPECT_EQ(v.at("b").as_string(), "日本 é");
}

TEST(LogJson, InvalidUtf8BecomesReplacementCharacter) {
    auto line = json(level::info, "e", {{"a", "x\xff\xc3y\xed\xa0\x80"}});
    auto v = boost::json::parse(line);  // throws on invalid JSON or UTF-8
    EXPECT_EQ(v.at("a").as_string(),
              "x\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(LogJson, JournaldPrefixBeforeTheObject) {
    EXPECT_EQ(json(level::warn, "e", {}, true).substr(0, 5), "<4>{\"");
}

TEST(LogLevel, ThresholdFiltersLowerLevels) {
    configure(level::warn, {});
    EXPECT_TRUE(enabled(level::error));
    EXPECT_TRUE(enabled(level::warn));
    EXPECT_FALSE(enabled(level::info));
    EXPECT_FALSE(enabled(level::debug));
    configure(level::debug, {});
    EXPECT_TRUE(enabled(level::debug));
    configure(level::info, {});
    EXPECT_FALSE(enabled(level::debug));
    EXPECT_TRUE(enabled(level::info));
}

TEST(LogJournal, MatchesOnlyTheDeviceAndInodeOfTheFd) {
    auto* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    struct stat st {};
    ASSERT_EQ(fstat(fileno(f), &st), 0);
    auto match = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    EXPECT_TRUE(is_journal_stream(match.c_str(), fileno(f)));
    auto other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
    EXPECT_FALSE(is_journal_stream(other.c_str(), fileno(f)));
    EXPECT_FALSE(is_journal_stream(nullptr, fileno(f)));
    EXPECT_FALSE(is_journal_stream("", fileno(f)));
    EXPECT_FALSE(is_journal_stream((match + "x").c_str(), fileno(f)));
    std::fclose(f);
}

TEST(LogThrottle, OneLineASecondAndTheNextSaysHowManyWereDropped) {
    throttle t;
    auto t0 = std::chrono::steady_clock::now();
    std::int64_t dropped = -1;
    ASSERT_TRUE(t.admit(t0, dropped));
    EXPECT_EQ(dropped, 0);
    for (int i = 1; i <= 5; ++i)
        EXPECT_FALSE(t.admit(t0 + std::chrono::milliseconds(i * 100), dropped));
    EXPECT_FALSE(t.admit(t0 + std::chrono::milliseconds(999), dropped));
    ASSERT_TRUE(t.admit(t0 + std::chrono::seconds(1), dropped));
    EXPECT_EQ(dropped, 6);
    ASSERT_TRUE(t.admit(t0 + std::chrono::seconds(5), dropped));
    EXPECT_EQ(dropped, 0);
}

}  // namespace
}  // namespace agentd::log
