// Unit tests of the checks before launch: opencode's agent and provider lists parsed in the
// shapes a real server sends, a task's agent and model checked with messages that list what
// exists, an OpenAI server's GET /models and the model picked from it; and shared_lookup on a
// real io_context: one fetch for concurrent callers, a fresh answer reused, failures not kept,
// a stopped fetcher's waiters fetching again, and a waiter's own stop.
#include "jobs/upstream/catalog.hpp"
#include "jobs/upstream/shared_lookup.hpp"
#include "tests/unit/io_fixture.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <string>

namespace agentd::jobs::upstream {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
using protocol::error_kind;

// What `opencode serve` 1.18.33 answered (tests/e2e/captured/bad_agent_model.jsonl), trimmed.
constexpr std::string_view agents_body = R"([
  {"name":"build","description":"The default agent.","mode":"primary","native":true,
   "permission":[{"permission":"*","pattern":"*","action":"allow"}],"options":{}},
  {"name":"compaction","mode":"primary","native":true,"hidden":true,"permission":[],"options":{}},
  {"name":"explore","mode":"subagent","native":true,"permission":[],"options":{}},
  {"name":"general","mode":"subagent","native":true,"permission":[],"options":{}},
  {"name":"plan","mode":"primary","native":true,"permission":[],"options":{}},
  {"name":"title","mode":"primary","native":true,"hidden":true,"permission":[],"options":{}}])";

constexpr std::string_view providers_body = R"({"providers":[
  {"id":"scripted","name":"Scripted LLM","source":"config","env":[],"options":{},
   "models":{"scripted-2":{"id":"scripted-2","providerID":"scripted"},
             "scripted-1":{"id":"scripted-1","providerID":"scripted","limit":{"context":1}}}},
  {"id":"other","name":"Other","source":"env","env":["X"],"options":{},"models":{}}],
  "default":{"scripted":"scripted-1"}})";

opencode_catalog real_catalog() {
    auto c = parse_opencode_agents(200, agents_body);
    EXPECT_TRUE(c);
    auto p = parse_opencode_providers(200, providers_body, *c);
    EXPECT_TRUE(p);
    return *c;
}

TEST(opencode_catalog, parses_the_real_shapes) {
    auto c = real_catalog();
    EXPECT_EQ(c.agents.size(), 6u);
    EXPECT_EQ(c.shown_agents, (std::vector<std::string>{"build", "explore", "general", "plan"}));
    EXPECT_EQ(c.models.at("scripted"), (std::vector<std::string>{"scripted-1", "scripted-2"}));
    EXPECT_TRUE(c.models.at("other").empty());
}

TEST(opencode_catalog, known_names_pass) {
    auto c = real_catalog();
    EXPECT_FALSE(check_opencode_task(c, std::nullopt, std::nullopt));
    EXPECT_FALSE(check_opencode_task(c, "explore", "scripted/scripted-2"));
    EXPECT_FALSE(check_opencode_task(c, "title", std::nullopt));  // hidden, but it exists
}

TEST(opencode_catalog, unknown_agent_lists_the_shown_agents) {
    auto why = check_opencode_task(real_catalog(), "no-such-agent", std::nullopt);
    ASSERT_TRUE(why);
    EXPECT_EQ(*why,
              R"(unknown agent "no-such-agent"; the upstream has build, explore, general, plan)");
}

TEST(opencode_catalog, unknown_model_lists_its_providers_models) {
    auto why = check_opencode_task(real_catalog(), std::nullopt, "scripted/nope");
    ASSERT_TRUE(why);
    EXPECT_EQ(*why,
              R"(unknown model "scripted/nope": provider "scripted" has scripted/scripted-1, )"
              "scripted/scripted-2");
    why = check_opencode_task(real_catalog(), std::nullopt, "other/x");
    ASSERT_TRUE(why);
    EXPECT_EQ(*why, R"(unknown model "other/x": provider "other" has none)");
}

TEST(opencode_catalog, unknown_provider_lists_every_model) {
    auto why = check_opencode_task(real_catalog(), "build", "nobody/x");
    ASSERT_TRUE(why);
    EXPECT_EQ(*why, R"(unknown model "nobody/x": no provider "nobody"; the upstream has )"
                    "scripted/scripted-1, scripted/scripted-2");
}

TEST(opencode_catalog, both_unknown_are_both_named) {
    auto why = check_opencode_task(real_catalog(), "ghost", "nobody/x");
    ASSERT_TRUE(why);
    EXPECT_NE(why->find(R"(unknown agent "ghost")"), std::string::npos) << *why;
    EXPECT_NE(why->find(R"(; and unknown model "nobody/x")"), std::string::npos) << *why;
}

TEST(opencode_catalog, hostile_names_are_printable_and_the_list_is_bounded) {
    opencode_catalog c;
    for (int i = 0; i < 80; ++i) c.shown_agents.push_back("a\n" + std::to_string(i));
    c.agents = c.shown_agents;
    auto why = check_opencode_task(c, std::string("x\x01y"), std::nullopt);
    ASSERT_TRUE(why);
    EXPECT_EQ(why->find('\n'), std::string::npos);
    EXPECT_EQ(why->find('\x01'), std::string::npos);
    EXPECT_NE(why->find("… (30 more)"), std::string::npos) << *why;
}

TEST(opencode_catalog, failures_and_wrong_shapes) {
    auto e = parse_opencode_agents(500, R"({"name":"UnknownError","data":{"message":"boom"}})");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().kind, error_kind::upstream);
    EXPECT_EQ(e.error().http_status, 500);
    EXPECT_NE(e.error().message.find("boom"), std::string::npos);
    EXPECT_FALSE(parse_opencode_agents(200, "<html>"));
    EXPECT_EQ(parse_opencode_agents(200, R"({"agents":[]})").error().kind, error_kind::protocol);
    opencode_catalog c;
    EXPECT_FALSE(parse_opencode_providers(200, R"({"default":{}})", c));
    EXPECT_FALSE(parse_opencode_providers(200, "[]", c));
    // Odd entries are skipped, not fatal.
    auto odd = parse_opencode_agents(200, R"([1, {"name":7}, {"name":"ok","hidden":"yes"}])");
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->agents, std::vector<std::string>{"ok"});
    EXPECT_EQ(odd->shown_agents, std::vector<std::string>{"ok"});
}

TEST(openai_models, parse_and_pick) {
    auto listed = parse_openai_models(
        200, R"({"object":"list","data":[{"id":"qwen","object":"model"},{"object":"model"},3]})");
    ASSERT_TRUE(listed);
    EXPECT_EQ(*listed, std::vector<std::string>{"qwen"});
    auto picked = pick_openai_model(*listed);
    ASSERT_TRUE(picked);
    EXPECT_EQ(*picked, "qwen");

    auto several = pick_openai_model({"a", "b", "c"});
    ASSERT_FALSE(several);
    EXPECT_EQ(several.error().kind, error_kind::upstream);
    EXPECT_NE(several.error().message.find("serves 3 models, name one: a, b, c"), std::string::npos)
        << several.error().message;
    auto none = pick_openai_model({});
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("GET /models lists none"), std::string::npos);

    auto failed = parse_openai_models(401, R"({"error":{"message":"Incorrect API key"}})");
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().http_status, 401);
    EXPECT_NE(failed.error().message.find("Incorrect API key"), std::string::npos);
    EXPECT_EQ(parse_openai_models(200, R"({"models":[]})").error().kind, error_kind::protocol);
}

// shared_lookup -------------------------------------------------------------------------------

class shared_lookup_test : public test::io_fixture {
  protected:
    using lookup = shared_lookup<int>;
    using clock = std::chrono::steady_clock;

    // A fetch that takes `delay` and answers `value` (a failure when negative), counted.
    asio::awaitable<up_result<int>> fetch(std::chrono::milliseconds delay, int value) {
        ++fetches_;
        asio::steady_timer t(ioc_, delay);
        [[maybe_unused]] auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        if (value < 0)
            co_return upstream_error{error_kind::upstream, protocol::error_phase::create, "no",
                                     500};
        co_return value;
    }

    asio::awaitable<int> get(lookup& l, call_control& ctl, int value,
                             std::chrono::milliseconds delay = 50ms) {
        auto got = co_await l.get("k", ctl, clock::now() + 2s,
                                  [&, value, delay] { return fetch(delay, value); });
        co_return got ? **got : -static_cast<int>(got.error().kind) - 1;
    }

    call_control ctl() { return call_control(clock::now() + 10s); }

    int fetches_ = 0;
};

TEST_F(shared_lookup_test, concurrent_callers_share_one_fetch_and_its_answer_is_kept) {
    lookup l(ioc_.get_executor(), 30s, 4);
    auto a = ctl(), b = ctl(), c = ctl();
    auto all = run([&]() -> asio::awaitable<int> {
        auto r = co_await (get(l, a, 7) && get(l, b, 8));
        auto later = co_await get(l, c, 9);
        co_return std::get<0>(r) * 10000 + std::get<1>(r) * 100 + later;
    }());
    EXPECT_EQ(all, 70707);
    EXPECT_EQ(fetches_, 1);
}

TEST_F(shared_lookup_test, a_failure_reaches_the_waiters_but_is_not_kept) {
    lookup l(ioc_.get_executor(), 30s, 4);
    auto a = ctl(), b = ctl(), c = ctl();
    int const failed = -static_cast<int>(error_kind::upstream) - 1;
    auto all = run([&]() -> asio::awaitable<int> {
        auto r = co_await (get(l, a, -1) && get(l, b, 8));
        auto later = co_await get(l, c, 5);
        co_return (std::get<0>(r) == failed && std::get<1>(r) == failed) ? later : -100;
    }());
    EXPECT_EQ(all, 5);
    EXPECT_EQ(fetches_, 2);
}

TEST_F(shared_lookup_test, a_stopped_fetcher_hands_over_to_a_waiter) {
    lookup l(ioc_.get_executor(), 30s, 4);
    auto a = ctl(), b = ctl();
    auto both = run([&]() -> asio::awaitable<int> {
        // a fetches for 200 ms but is stopped at 20 ms: its fetch fails as stopped ones do.
        asio::steady_timer t(ioc_, 20ms);
        t.async_wait([&](auto) { a.stop(stop_reason::cancelled); });
        auto stopping_fetch = [&]() -> asio::awaitable<int> {
            auto got =
                co_await l.get("k", a, clock::now() + 2s, [&]() -> asio::awaitable<up_result<int>> {
                    ++fetches_;
                    asio::steady_timer slow(ioc_, 200ms);
                    [[maybe_unused]] auto [ec] =
                        co_await slow.async_wait(asio::as_tuple(asio::use_awaitable));
                    co_return upstream_error{
                        error_kind::cancelled, protocol::error_phase::create, "stopped", {}};
                });
            co_return got ? **got : -1;
        };
        auto r = co_await (stopping_fetch() && get(l, b, 4));
        co_return std::get<0>(r) * 100 + std::get<1>(r);
    }());
    EXPECT_EQ(both, -100 + 4);
    EXPECT_EQ(fetches_, 2);
}

TEST_F(shared_lookup_test, a_waiter_stops_on_its_own_cancel) {
    lookup l(ioc_.get_executor(), 30s, 4);
    auto a = ctl(), b = ctl();
    auto both = run([&]() -> asio::awaitable<int> {
        asio::steady_timer t(ioc_, 20ms);
        t.async_wait([&](auto) { b.stop(stop_reason::cancelled); });
        auto r = co_await (get(l, a, 3, 200ms) && get(l, b, 4));
        co_return std::get<0>(r) * 100 + std::get<1>(r);
    }());
    EXPECT_EQ(both, 300 - static_cast<int>(error_kind::cancelled) - 1);
    EXPECT_EQ(fetches_, 1);
}

}  // namespace
}  // namespace agentd::jobs::upstream
