// Unit tests of the pure planner: the DESIGN §4 traits table (method and params under each
// approval policy), the join rule, and how plan() groups calls into parallel and serial batches.
#include "planner/plan.hpp"
#include "planner/traits.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <ostream>
#include <string_view>
#include <utility>
#include <vector>

namespace agentd::planner {

// gtest prints failing plans readably through ADL.
void PrintTo(batch const& b, std::ostream* os) {
    if (auto const* serial = std::get_if<serial_batch>(&b)) {
        *os << "S{" << serial->call << "}";
        return;
    }
    *os << "P{";
    for (auto call : std::get<parallel_batch>(b).calls) *os << call << ",";
    *os << "}";
}

void PrintTo(call_traits const& t, std::ostream* os) {
    *os << "{ro=" << t.read_only << " ps=" << t.parallel_safe << " ds=" << t.detached_start
        << " ar=" << t.approval_required << " ia=" << t.interactive << "}";
}

namespace {

namespace json = boost::json;

constexpr call_traits reader{.read_only = true, .parallel_safe = true};
constexpr call_traits starter{.detached_start = true};

policy with(approval_mode start) {
    return policy{.start = start};
}

json::value const start_params = json::parse(R"({"tasks":[{"prompt":"hi"}]})");
json::value const cancel_params = json::parse(R"({"jobs":["job_1"]})");

// The traits of a call whose params fit its method.
call_traits traits_of(std::string_view method, policy const& p = {}) {
    json::value params = json::object{};
    if (method == "agents_start") params = start_params;
    if (method == "agents_peek") params = json::parse(R"({"job":"job_1"})");
    if (method == "agents_cancel") params = cancel_params;
    return traits_for(method, &params, p);
}

std::vector<batch> plan_of(std::vector<std::string_view> const& methods, policy const& p = {}) {
    std::vector<call_traits> traits;
    for (auto method : methods) traits.push_back(traits_of(method, p));
    return plan(traits);
}

TEST(traits, table_under_auto_policy) {
    EXPECT_EQ(traits_of("agents_status"), reader);
    EXPECT_EQ(traits_of("agents_peek"), reader);
    EXPECT_EQ(traits_of("agents_wait"), reader);
    EXPECT_EQ(traits_of("agents_start"), starter);
    EXPECT_EQ(traits_of("agents_cancel"), call_traits{});
}

TEST(traits, start_under_deny_and_ask_needs_approval) {
    EXPECT_EQ(traits_of("agents_start", with(approval_mode::deny)),
              (call_traits{.detached_start = true, .approval_required = true}));
    EXPECT_EQ(
        traits_of("agents_start", with(approval_mode::ask)),
        (call_traits{.detached_start = true, .approval_required = true, .interactive = true}));
}

TEST(traits, policy_does_not_touch_other_methods) {
    for (auto mode : {approval_mode::deny, approval_mode::ask}) {
        EXPECT_EQ(traits_of("agents_status", with(mode)), reader);
        EXPECT_EQ(traits_of("agents_peek", with(mode)), reader);
        EXPECT_EQ(traits_of("agents_wait", with(mode)), reader);
        EXPECT_EQ(traits_of("agents_cancel", with(mode)), call_traits{});
    }
}

TEST(traits, unknown_methods_are_conservative) {
    for (auto method :
         {"agents_frobnicate", "", "AGENTS_STATUS", "agents_status ", "tools/call", "initialize"}) {
        EXPECT_EQ(traits_of(method), call_traits{}) << method;
    }
}

TEST(traits, absent_and_null_params_mean_empty_object) {
    json::value const null_params;
    EXPECT_EQ(traits_for("agents_status", nullptr, {}), reader);
    EXPECT_EQ(traits_for("agents_status", &null_params, {}), reader);
    EXPECT_EQ(traits_for("agents_wait", &null_params, {}), reader);
    // An empty object lacks what start and peek require.
    EXPECT_EQ(traits_for("agents_start", nullptr, {}), call_traits{});
    EXPECT_EQ(traits_for("agents_start", &null_params, {}), call_traits{});
    EXPECT_EQ(traits_for("agents_peek", &null_params, {}), call_traits{});
}

TEST(traits, params_that_are_not_an_object_are_conservative) {
    for (auto text : {"[]", R"(["job_1"])", "42", R"("agents")", "true"}) {
        auto const params = json::parse(text);
        for (auto method : {"agents_status", "agents_peek", "agents_wait", "agents_start"}) {
            EXPECT_EQ(traits_for(method, &params, {}), call_traits{}) << method << " " << text;
        }
    }
}

TEST(traits, obviously_wrong_shapes_are_conservative) {
    std::vector<std::pair<std::string_view, std::string_view>> const cases = {
        {"agents_start", R"({"session":"s"})"},
        {"agents_start", R"({"tasks":{"prompt":"hi"}})"},
        {"agents_start", R"({"tasks":"hi"})"},
        {"agents_start", R"({"tasks":[{"prompt":"hi"}],"session":7})"},
        {"agents_status", R"({"jobs":"job_1"})"},
        {"agents_status", R"({"session":["s"]})"},
        {"agents_wait", R"({"jobs":{"id":"job_1"}})"},
        {"agents_peek", R"({})"},
        {"agents_peek", R"({"job":["job_1"]})"},
    };
    for (auto const& [method, text] : cases) {
        auto const params = json::parse(text);
        EXPECT_EQ(traits_for(method, &params, {}), call_traits{}) << method << " " << text;
    }
}

TEST(traits, well_shaped_variants_keep_their_traits) {
    auto const status = json::parse(R"({"session":"chat-1","jobs":["job_1","job_2"]})");
    auto const wait = json::parse(R"({"jobs":[],"mode":"any","timeout_ms":0})");
    auto const peek = json::parse(R"({"session":"s","job":"job_1"})");
    auto const start = json::parse(R"({"session":"s","tasks":[],"upstream_parent":"ses_1"})");
    EXPECT_EQ(traits_for("agents_status", &status, {}), reader);
    EXPECT_EQ(traits_for("agents_wait", &wait, {}), reader);
    EXPECT_EQ(traits_for("agents_peek", &peek, {}), reader);
    EXPECT_EQ(traits_for("agents_start", &start, {}), starter);
}

TEST(traits, join_rule) {
    EXPECT_TRUE(can_join_parallel(reader));
    EXPECT_TRUE(can_join_parallel(starter));
    EXPECT_FALSE(can_join_parallel(call_traits{}));
    EXPECT_FALSE(can_join_parallel({.read_only = true}));
    EXPECT_FALSE(can_join_parallel({.parallel_safe = true}));
    EXPECT_FALSE(
        can_join_parallel({.read_only = true, .parallel_safe = true, .approval_required = true}));
    EXPECT_FALSE(
        can_join_parallel({.read_only = true, .parallel_safe = true, .interactive = true}));
    EXPECT_FALSE(can_join_parallel({.detached_start = true, .approval_required = true}));
    EXPECT_FALSE(can_join_parallel({.detached_start = true, .interactive = true}));
}

TEST(plan, empty_input_gives_empty_plan) {
    EXPECT_TRUE(plan({}).empty());
}

TEST(plan, four_starts_form_one_parallel_batch) {
    EXPECT_EQ(plan_of({"agents_start", "agents_start", "agents_start", "agents_start"}),
              (std::vector<batch>{parallel_batch{{0, 1, 2, 3}}}));
}

TEST(plan, reads_and_starts_share_a_parallel_batch) {
    EXPECT_EQ(plan_of({"agents_status", "agents_start", "agents_status"}),
              (std::vector<batch>{parallel_batch{{0, 1, 2}}}));
    EXPECT_EQ(plan_of({"agents_wait", "agents_peek", "agents_status"}),
              (std::vector<batch>{parallel_batch{{0, 1, 2}}}));
}

TEST(plan, a_single_joinable_call_is_still_a_parallel_batch) {
    EXPECT_EQ(plan_of({"agents_status"}), (std::vector<batch>{parallel_batch{{0}}}));
}

TEST(plan, starts_needing_approval_are_serial) {
    for (auto mode : {approval_mode::deny, approval_mode::ask}) {
        EXPECT_EQ(plan_of({"agents_start", "agents_start"}, with(mode)),
                  (std::vector<batch>{serial_batch{0}, serial_batch{1}}));
        EXPECT_EQ(plan_of({"agents_status", "agents_start", "agents_status"}, with(mode)),
                  (std::vector<batch>{parallel_batch{{0}}, serial_batch{1}, parallel_batch{{2}}}));
    }
}

TEST(plan, cancel_is_serial_and_a_barrier) {
    EXPECT_EQ(plan_of({"agents_status", "agents_cancel", "agents_status"}),
              (std::vector<batch>{parallel_batch{{0}}, serial_batch{1}, parallel_batch{{2}}}));
    EXPECT_EQ(plan_of({"agents_cancel", "agents_cancel"}),
              (std::vector<batch>{serial_batch{0}, serial_batch{1}}));
}

TEST(plan, unknown_method_is_serial_and_a_barrier) {
    EXPECT_EQ(
        plan_of({"agents_start", "agents_start", "nope", "agents_start", "agents_wait"}),
        (std::vector<batch>{parallel_batch{{0, 1}}, serial_batch{2}, parallel_batch{{3, 4}}}));
}

TEST(plan, malformed_params_make_a_barrier) {
    auto const bad_start = json::parse(R"({"prompt":"hi"})");
    std::vector<call_traits> const traits = {traits_of("agents_start"),
                                             traits_for("agents_start", &bad_start, {}),
                                             traits_of("agents_start")};
    EXPECT_EQ(plan(traits),
              (std::vector<batch>{parallel_batch{{0}}, serial_batch{1}, parallel_batch{{2}}}));
}

TEST(plan, every_call_appears_once_in_order) {
    auto const batches = plan_of({"agents_cancel", "agents_status", "agents_start", "x",
                                  "agents_peek", "agents_cancel", "agents_wait", "agents_wait"});
    EXPECT_EQ(batches,
              (std::vector<batch>{serial_batch{0}, parallel_batch{{1, 2}}, serial_batch{3},
                                  parallel_batch{{4}}, serial_batch{5}, parallel_batch{{6, 7}}}));
}

}  // namespace
}  // namespace agentd::planner
