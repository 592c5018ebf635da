// Task budgets (DESIGN §2 `budget`, --default-max-cost) end to end through the real agentd and
// the fake OpenCode server, whose turns bill LLM steps as messages of their own: usage summed
// over the turn's messages, a job past its cost or token bound failed `limit` and aborted
// upstream, the default bound and a task's own, and invalid budgets named to the field.
#include "agentd_fixture.hpp"

#include <algorithm>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

json::object budget_task(std::string prompt, json::object budget) {
    auto t = task(std::move(prompt));
    t["budget"] = std::move(budget);
    return t;
}

json::object run(agentd_process& a, json::object t) {
    auto started = a.call("agents_start", json::object{{"tasks", json::array{std::move(t)}}});
    auto id = str(jobs_of(started).at(0), "id");
    auto done = a.call("agents_wait",
                       json::object{{"jobs", json::array{json::value(id)}}, {"timeout_ms", 15000}});
    EXPECT_TRUE(done.at("done").as_bool()) << json::serialize(done);
    return jobs_of(done).at(0).as_object();
}

double cost_of(json::object const& job) {
    return job.at("usage").at("cost").to_number<double>();
}

std::int64_t tokens_of(json::object const& job) {
    auto const& u = job.at("usage").as_object();
    return u.at("input_tokens").as_int64() + u.at("output_tokens").as_int64();
}

void expect_limit(json::object const& job, std::string const& message) {
    EXPECT_EQ(str(job, "state"), "failed") << json::serialize(job);
    ASSERT_TRUE(job.contains("error")) << json::serialize(job);
    EXPECT_EQ(str(job.at("error"), "kind"), "limit");
    EXPECT_EQ(str(job.at("error"), "message"), message);
}

// The fake aborted the job's upstream session (agentd aborts after the job has failed).
void expect_aborted(fake_upstream& fake, json::object const& job) {
    ASSERT_TRUE(fake.wait_counter("aborts_total", 1, 5s)) << json::serialize(fake.stats());
    auto session = str(job.at("upstream"), "session");
    auto stats = fake.stats();
    auto const& aborted = stats.at("aborted_sessions").as_array();
    EXPECT_NE(std::find(aborted.begin(), aborted.end(), json::value(session)), aborted.end())
        << json::serialize(aborted);
}

// Three steps of 0.1 (each reported at half, then whole) and the final message's 0.0012: the
// job's usage is the sum of each message's latest figures, not of every report.
TEST_F(agentd_test, UsageUnderTheBudgetIsSummedOverTheTurnsMessages) {
    auto job = run(*agentd_,
                   budget_task("sum [[fake usage_steps=3 step_cost=0.1 step_tokens=10 step_ms=20 "
                               "latency_ms=100]]",
                               {{"max_cost", 1}, {"max_tokens", 10000}}));
    EXPECT_EQ(str(job, "state"), "completed") << json::serialize(job);
    EXPECT_NEAR(cost_of(job), 0.3012, 1e-9) << json::serialize(job);
    // 3 × (10 in + 10 out), plus the final message: 1 prompt word in, "echo: sum" out.
    EXPECT_EQ(job.at("usage").at("input_tokens").as_int64(), 31);
    EXPECT_EQ(job.at("usage").at("output_tokens").as_int64(), 32);
    EXPECT_EQ(fake_->stats().at("aborts_total").as_int64(), 0);
}

// Costs are binary fractions here, so sums in any order are exact and the message is known:
// 0.25 a half step, past 1.2 halfway through the third step.
TEST_F(agentd_test, ACostPastTheBudgetFailsTheJobAndAbortsItUpstream) {
    auto t0 = std::chrono::steady_clock::now();
    auto job = run(*agentd_, budget_task("spend [[fake usage_steps=8 step_cost=0.5 step_ms=200]]",
                                         {{"max_cost", 1.2}}));
    expect_limit(job, "budget exhausted: cost 1.25 > 1.20");
    // The usage so far stays: two and a half steps, not the eight the turn would have billed.
    EXPECT_EQ(cost_of(job), 1.25) << json::serialize(job);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    expect_aborted(*fake_, job);
}

TEST_F(agentd_test, TokensPastTheBudgetFailTheJob) {
    auto job = run(*agentd_, budget_task("count [[fake usage_steps=6 step_tokens=100 step_ms=100]]",
                                         {{"max_tokens", 250}, {"max_cost", 100}}));
    expect_limit(job, "budget exhausted: tokens 300 > 250");
    EXPECT_EQ(tokens_of(job), 300);
    expect_aborted(*fake_, job);
}

// The final reply alone passes a zero bound: the usage that comes with the reply counts too.
TEST_F(agentd_test, AZeroCostBudgetFailsOnTheFinalMessagesCost) {
    auto job = run(*agentd_, budget_task("free", {{"max_cost", 0}}));
    expect_limit(job, "budget exhausted: cost 0.001 > 0.000");
    EXPECT_NEAR(cost_of(job), 0.0012, 1e-12);
}

TEST_F(agentd_test, TheDefaultMaxCostAppliesToTasksWithoutABudget) {
    restart_agentd({"--default-max-cost", "0.6"});
    auto const steps = "[[fake usage_steps=4 step_cost=0.5 step_ms=60 latency_ms=50]]";
    auto limited = run(*agentd_, task(std::string("default ") + steps));
    expect_limit(limited, "budget exhausted: cost 0.75 > 0.60");
    // A task's own budget replaces the default, whichever bound it sets.
    auto raised = run(*agentd_, budget_task(std::string("raised ") + steps, {{"max_cost", 5}}));
    EXPECT_EQ(str(raised, "state"), "completed") << json::serialize(raised);
    EXPECT_NEAR(cost_of(raised), 2.0012, 1e-9);
    auto tokens_only =
        run(*agentd_, budget_task(std::string("tokens ") + steps, {{"max_tokens", 100000}}));
    EXPECT_EQ(str(tokens_only, "state"), "completed") << json::serialize(tokens_only);
}

TEST_F(agentd_test, AnInvalidBudgetNamesTheFieldAndStartsNothing) {
    auto field_of = [&](json::object budget, std::size_t at = 0) {
        json::array tasks{task("ok")};
        if (at == 1) tasks.push_back(task("second"));
        tasks.back().as_object()["budget"] = std::move(budget);
        auto e = agentd_->error("agents_start", json::object{{"tasks", std::move(tasks)}});
        EXPECT_EQ(e.at("code").as_int64(), -32602) << json::serialize(e);
        return str(e.at("data"), "field");
    };
    EXPECT_EQ(field_of({{"max_cost", -1}}), "tasks[0].budget.max_cost");
    EXPECT_EQ(field_of({{"max_cost", "0.5"}}, 1), "tasks[1].budget.max_cost");
    EXPECT_EQ(field_of({{"max_tokens", 0}}), "tasks[0].budget.max_tokens");
    EXPECT_EQ(field_of({{"max_tokens", 2.5}}), "tasks[0].budget.max_tokens");
    EXPECT_EQ(field_of({{"max_cost", 1}, {"max_costs", 2}}), "tasks[0].budget.max_costs");
    EXPECT_EQ(field_of({}), "tasks[0].budget");
    auto e = agentd_->error(
        "agents_start",
        json::object{{"tasks", json::array{json::object{{"prompt", "x"}, {"budget", "cheap"}}}}});
    EXPECT_EQ(str(e.at("data"), "field"), "tasks[0].budget");
    auto listed = agentd_->call("agents_status", json::object{});
    EXPECT_TRUE(jobs_of(listed).empty()) << json::serialize(listed);
}

}  // namespace
}  // namespace agentd::test
