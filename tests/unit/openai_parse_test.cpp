// Unit tests of the openai backend's pure parts: the request body, streamed chunks folded into
// the outcome (text, usage, [DONE], in-stream errors, malformed chunks, UTF-8-safe truncation),
// whole completions, HTTP error bodies and Retry-After. Its base URL is common_test's.
#include "jobs/upstream/openai_parse.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream::openai {
namespace {

namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;

std::string chunk(std::string_view content) {
    json::object delta{{"content", content}};
    json::object c{{"id", "chatcmpl-1"},
                   {"object", "chat.completion.chunk"},
                   {"choices", json::array{json::object{
                                   {"index", 0}, {"delta", delta}, {"finish_reason", nullptr}}}}};
    return json::serialize(c);
}

constexpr std::string_view role_chunk =
    R"({"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})";
constexpr std::string_view finish_chunk =
    R"({"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})";
constexpr std::string_view usage_chunk =
    R"({"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})";

// Feeds every event; the first failure, else the text each event added.
up_result<std::vector<std::string>> feed_all(stream_reader& r,
                                             std::vector<std::string> const& events) {
    std::vector<std::string> added;
    for (auto const& e : events) {
        auto a = r.feed(e);
        if (!a) return a.error();
        added.emplace_back(*a);
    }
    return added;
}

// --- request body -----------------------------------------------------------------------------

TEST(openai_request, body_with_and_without_system) {
    auto v = json::parse(request_body("gpt-x", std::string("be brief"), {}, "hi \"there\""));
    auto const& o = v.as_object();
    EXPECT_EQ(o.at("model"), "gpt-x");
    EXPECT_EQ(o.at("stream"), true);
    EXPECT_EQ(o.at("stream_options").at("include_usage"), true);
    auto const& m = o.at("messages").as_array();
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].at("role"), "system");
    EXPECT_EQ(m[0].at("content"), "be brief");
    EXPECT_EQ(m[1].at("role"), "user");
    EXPECT_EQ(m[1].at("content"), "hi \"there\"");

    auto bare = json::parse(request_body("m", std::nullopt, {}, "p"));
    ASSERT_EQ(bare.at("messages").as_array().size(), 1u);
    EXPECT_EQ(bare.at("messages").at(0).at("role"), "user");
}

// A follow-up (DESIGN §5): the earlier turns come back as user/assistant pairs, oldest first.
TEST(openai_request, history_is_replayed_before_the_prompt) {
    std::vector<chat_turn> history{{"first", "echo: first"}, {"second", "echo: second"}};
    auto v = json::parse(request_body("m", std::string("sys"), history, "third"));
    auto const& m = v.at("messages").as_array();
    ASSERT_EQ(m.size(), 6u);
    std::vector<std::pair<std::string, std::string>> got;
    for (auto const& x : m) got.emplace_back(x.at("role").as_string(), x.at("content").as_string());
    EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{{"system", "sys"},
                                                                     {"user", "first"},
                                                                     {"assistant", "echo: first"},
                                                                     {"user", "second"},
                                                                     {"assistant", "echo: second"},
                                                                     {"user", "third"}}));
}

// --- stream chunks ----------------------------------------------------------------------------

TEST(openai_stream, text_usage_and_done) {
    stream_reader r(1 << 20);
    auto added = feed_all(r, {std::string(role_chunk), chunk("Hel"), chunk("lo"),
                              std::string(finish_chunk), std::string(usage_chunk)});
    ASSERT_TRUE(added);
    EXPECT_EQ(*added, (std::vector<std::string>{"", "Hel", "lo", "", ""}));
    EXPECT_FALSE(r.finished());
    auto done = r.feed("[DONE]");
    ASSERT_TRUE(done);
    EXPECT_TRUE(r.finished());
    // Data after the end changes nothing.
    EXPECT_TRUE(r.feed(chunk("late")));
    EXPECT_TRUE(r.feed("not json"));
    auto out = r.take();
    EXPECT_EQ(out.output, "Hello");
    EXPECT_FALSE(out.truncated);
    EXPECT_EQ(out.usage.input_tokens, 9);
    EXPECT_EQ(out.usage.output_tokens, 12);
}

TEST(openai_stream, usage_is_reported_fresh_as_each_chunk_carries_it) {
    stream_reader r(1 << 20);
    ASSERT_TRUE(r.feed(R"({"choices":[{"delta":{"content":"a"}}],"usage":null})"));
    EXPECT_FALSE(r.usage_fresh());
    // A server that reports usage as it grows (and a cost, as OpenRouter does).
    ASSERT_TRUE(r.feed(R"({"choices":[{"delta":{"content":"b"}}],
        "usage":{"prompt_tokens":3,"completion_tokens":2,"cost":0.004}})"));
    EXPECT_TRUE(r.usage_fresh());
    EXPECT_EQ(r.usage().input_tokens, 3);
    EXPECT_EQ(r.usage().output_tokens, 2);
    EXPECT_EQ(r.usage().cost, 0.004);
    ASSERT_TRUE(r.feed("[DONE]"));
    EXPECT_FALSE(r.usage_fresh());
}

TEST(openai_stream, chunks_without_text_and_null_content) {
    stream_reader r(100);
    // A usage-only chunk with `choices: null` (vLLM) or no choices key, a null content
    // (tool-call deltas), a chunk with an unknown extra field.
    auto added =
        feed_all(r, {R"({"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":2}})",
                     R"({"usage":null})", R"({"choices":[{"index":0,"delta":{"content":null}}]})",
                     R"({"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}],"extra":1})",
                     R"({"choices":[{"index":0}]})"});
    ASSERT_TRUE(added) << added.error().message;
    auto out = r.take();
    EXPECT_EQ(out.output, "");
    EXPECT_EQ(out.usage.input_tokens, 1);
    EXPECT_EQ(out.usage.output_tokens, 2);
}

TEST(openai_stream, malformed_chunks_are_protocol_errors) {
    for (std::string bad : {"{\"choices\": [oops", "<html>", "42", "[1,2]", R"({"choices":"x"})",
                            R"({"choices":[7]})", R"({"choices":[{"delta":"x"}]})",
                            R"({"choices":[{"delta":{"content":5}}]})"}) {
        stream_reader r(100);
        auto a = r.feed(bad);
        ASSERT_FALSE(a) << bad;
        EXPECT_EQ(a.error().kind, error_kind::protocol) << bad;
        EXPECT_EQ(a.error().phase, error_phase::prompt);
        EXPECT_NE(a.error().message.find("malformed stream chunk"), std::string::npos);
    }
}

TEST(openai_stream, error_event_is_an_upstream_failure) {
    stream_reader r(100);
    ASSERT_TRUE(r.feed(chunk("partial")));
    auto a = r.feed(R"({"error":{"message":"model overloaded","type":"server_error","code":503}})");
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().kind, error_kind::upstream);
    EXPECT_EQ(a.error().message, "upstream reported an error: model overloaded");
    EXPECT_EQ(a.error().http_status, 503);

    stream_reader s(100);
    auto b = s.feed(R"({"error":"plain text error"})");
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().message, "upstream reported an error: plain text error");
    EXPECT_FALSE(b.error().http_status);
    // A null error field is no error.
    stream_reader t(100);
    EXPECT_TRUE(t.feed(R"({"error":null,"choices":[]})"));
}

TEST(openai_stream, truncates_on_a_character_boundary_and_finishes) {
    stream_reader r(7);
    auto a = r.feed(chunk("abc"));
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, "abc");
    EXPECT_FALSE(r.finished());
    // "dé€" is d (1) é (2) € (3): 4 bytes of room fit "dé" only, never half of "€".
    auto b = r.feed(chunk("dé€"));
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, "dé");
    EXPECT_TRUE(r.finished());
    auto out = r.take();
    EXPECT_EQ(out.output, "abcdé");
    EXPECT_TRUE(out.truncated);
}

TEST(openai_stream, exactly_at_the_cap_is_not_truncated) {
    stream_reader r(4);
    ASSERT_TRUE(r.feed(chunk("abcd")));
    EXPECT_FALSE(r.finished());
    ASSERT_TRUE(r.feed(chunk("")));
    ASSERT_TRUE(r.feed("[DONE]"));
    auto out = r.take();
    EXPECT_EQ(out.output, "abcd");
    EXPECT_FALSE(out.truncated);
}

// --- whole completions ------------------------------------------------------------------------

TEST(openai_completion, message_and_usage) {
    auto r = parse_completion(
        R"({"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi all"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}})",
        100);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->output, "hi all");
    EXPECT_FALSE(r->truncated);
    EXPECT_EQ(r->usage.input_tokens, 3);
    EXPECT_EQ(r->usage.output_tokens, 2);

    auto cut = parse_completion(R"({"choices":[{"message":{"content":"héllo"}}]})", 2);
    ASSERT_TRUE(cut);
    EXPECT_EQ(cut->output, "h");
    EXPECT_TRUE(cut->truncated);
}

TEST(openai_completion, bad_bodies) {
    for (auto bad : {"", "<html>", "[]", R"({"choices":[{"message":{"content":1}}]})"}) {
        auto r = parse_completion(bad, 100);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().kind, error_kind::protocol) << bad;
    }
    auto e = parse_completion(R"({"error":{"message":"nope"}})", 100);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().kind, error_kind::upstream);
}

// --- HTTP errors and Retry-After --------------------------------------------------------------

TEST(openai_http_error, provider_message_and_status) {
    auto e = http_error(
        401,
        R"({"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}})");
    EXPECT_EQ(e.kind, error_kind::upstream);
    EXPECT_EQ(e.phase, error_phase::prompt);
    EXPECT_EQ(e.http_status, 401);
    EXPECT_EQ(e.message, "upstream answered HTTP 401: Incorrect API key provided.");

    EXPECT_EQ(http_error(400, R"({"object":"error","message":"bad model"})").message,
              "upstream answered HTTP 400: bad model");
    EXPECT_EQ(http_error(502, "<html>Bad\r\nGateway</html>").message,
              "upstream answered HTTP 502: <html>Bad  Gateway</html>");
    EXPECT_EQ(http_error(503, "").message, "upstream answered HTTP 503");
    EXPECT_EQ(http_error(500, R"({"detail":"x"})").message, "upstream answered HTTP 500");
    // Long bodies are cut short.
    EXPECT_LT(http_error(500, std::string(10'000, 'x')).message.size(), 300u);
}

TEST(openai_retry_after, delta_seconds_only) {
    EXPECT_EQ(parse_retry_after("3"), std::chrono::seconds(3));
    EXPECT_EQ(parse_retry_after(" 0 "), std::chrono::seconds(0));
    EXPECT_EQ(parse_retry_after("99999999"), std::chrono::seconds(86'400));
    EXPECT_FALSE(parse_retry_after(""));
    EXPECT_FALSE(parse_retry_after("-1"));
    EXPECT_FALSE(parse_retry_after("1.5"));
    EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
}

}  // namespace
}  // namespace agentd::jobs::upstream::openai
