// The pieces both fakes share, without sockets: the `[[fake ...]]` block scanner (what counts as
// a block, token errors, order of keys), bounded counts and the listen address.
#include "fake_common/directive_blocks.hpp"
#include "fake_common/fake_main.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>
#include <vector>

namespace fake_common {
namespace {

using keys = std::vector<std::pair<std::string, std::string>>;

std::pair<std::string, keys> strip(std::string_view text) {
    keys seen;
    auto rest = strip_directive_blocks(
        text, [&](std::string_view k, std::string_view v) { seen.emplace_back(k, v); });
    return {rest, seen};
}

TEST(directive_blocks, AreRemovedAndTheirKeysReportedInOrder) {
    auto [rest, seen] = strip("a [[fake x=1 y=2]] b [[fake\tx=3]]");
    EXPECT_EQ(rest, "a  b ");
    EXPECT_EQ(seen, (keys{{"x", "1"}, {"y", "2"}, {"x", "3"}}));
}

TEST(directive_blocks, FakeFollowedByALetterIsOrdinaryText) {
    auto [rest, seen] = strip("[[fakeX y=1]] and [[fake]]");
    EXPECT_EQ(rest, "[[fakeX y=1]] and ");
    EXPECT_TRUE(seen.empty());
}

TEST(directive_blocks, MalformedBlocksThrow) {
    EXPECT_THROW(strip("[[fake x=1"), std::invalid_argument);
    EXPECT_THROW(strip("[[fake x]]"), std::invalid_argument);
    EXPECT_THROW(strip("[[fake =1]]"), std::invalid_argument);
}

TEST(directive_blocks, CountsAreBounded) {
    EXPECT_EQ(directive_count("k", "0", 5), 0);
    EXPECT_EQ(directive_count("k", "5", 5), 5);
    EXPECT_THROW(directive_count("k", "6", 5), std::invalid_argument);
    EXPECT_THROW(directive_count("k", "-1", 5), std::invalid_argument);
    EXPECT_THROW(directive_count("k", "1x", 5), std::invalid_argument);
    EXPECT_THROW(directive_count("k", "", 5), std::invalid_argument);
}

TEST(fake_flags, ListenAddressesAndCounts) {
    auto v4 = parse_listen("127.0.0.1:4096");
    EXPECT_EQ(v4.host, "127.0.0.1");
    EXPECT_EQ(v4.port, 4096);
    auto v6 = parse_listen("[::1]:0");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 0);
    EXPECT_THROW(parse_listen("127.0.0.1"), std::invalid_argument);
    EXPECT_THROW(parse_listen("127.0.0.1:65536"), std::invalid_argument);
    EXPECT_EQ(flag_count("--n", "12"), 12);
    EXPECT_THROW(flag_count("--n", "-3"), std::invalid_argument);
}

TEST(fake_flags, ValuesSwitchesAndEqualsForms) {
    char const* args[] = {"fake", "--a", "1", "--on", "--b=2", "--c"};
    std::vector<char*> argv;
    for (auto const* a : args) argv.push_back(const_cast<char*>(a));
    keys seen;
    auto collect = [&](std::string_view f, std::string_view v) { seen.emplace_back(f, v); };
    EXPECT_THROW(parse_flags(6, argv.data(), "", {"--on"}, collect), std::invalid_argument);
    EXPECT_EQ(seen, (keys{{"--a", "1"}, {"--on", ""}, {"--b", "2"}}));  // --c lacks its value
}

}  // namespace
}  // namespace fake_common
