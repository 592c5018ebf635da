// Sub-agents as agents (issue #16), end to end through the real agentd binary and the fake
// OpenCode server: tool steps as activity and peek steps, permission and question requests
// (waiting, agents_respond, answers from OpenCode's own UI, policy, input timeout), stall
// detection, the job's directory on every reply, and requests restored after a restart.
#include "agentd_fixture.hpp"

#include <chrono>
#include <functional>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

std::string start_one(agentd_process& a, json::object t) {
    auto started = a.call("agents_start", json::object{{"tasks", json::array{std::move(t)}}});
    return str(jobs_of(started).at(0), "id");
}

json::object status_of(agentd_process& a, std::string const& id) {
    auto s = a.call("agents_status", json::object{{"jobs", json::array{json::value(id)}}});
    return jobs_of(s).at(0).as_object();
}

// Polls agents_status until `cond` holds for the job (for facts no wait returns on, such as a
// tool step in progress); the last view, or an empty object after `limit`.
json::object status_until(agentd_process& a, std::string const& id,
                          std::function<bool(json::object const&)> const& cond,
                          std::chrono::milliseconds limit = 5s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        auto v = status_of(a, id);
        if (cond(v)) return v;
        std::this_thread::sleep_for(10ms);
    }
    return {};
}

json::object wait(agentd_process& a, std::string const& id, std::int64_t timeout_ms = 10000,
                  bool ignore_input = false) {
    json::object p{{"jobs", json::array{json::value(id)}}, {"timeout_ms", timeout_ms}};
    if (ignore_input) p["on_input"] = "ignore";
    return a.call("agents_wait", std::move(p));
}

// Waits until the job needs input; its first pending request.
json::object first_request(agentd_process& a, std::string const& id) {
    auto w = wait(a, id);
    EXPECT_FALSE(w.at("done").as_bool()) << json::serialize(w);
    EXPECT_EQ(w.at("needs_input").as_array().size(), 1u) << json::serialize(w);
    auto const& job = jobs_of(w).at(0).as_object();
    EXPECT_EQ(str(job, "state"), "waiting") << json::serialize(job);
    if (!job.contains("requests") || job.at("requests").as_array().empty()) return {};
    return job.at("requests").as_array().at(0).as_object();
}

json::object finished(agentd_process& a, std::string const& id) {
    auto w = wait(a, id, 10000, true);
    EXPECT_TRUE(w.at("done").as_bool()) << json::serialize(w);
    return jobs_of(w).at(0).as_object();
}

json::object last_answer(json::object const& job) {
    if (!job.contains("answered")) return {};
    return job.at("answered").as_array().back().as_object();
}

TEST_F(agentd_test, ToolStepsShowAsActivityAndPeekSteps) {
    auto id = start_one(*agentd_, task("build it [[fake tool=bash tool_title=npm_test tool_ms=600 "
                                       "tool_output=all_green steps=2]]"));
    auto running = status_until(*agentd_, id, [](json::object const& v) {
        return v.contains("activity") && str(v.at("activity"), "tool") == "bash";
    });
    ASSERT_FALSE(running.empty()) << json::serialize(status_of(*agentd_, id));
    EXPECT_EQ(str(running, "state"), "running");
    EXPECT_FALSE(str(running.at("activity"), "since").empty());

    auto done = finished(*agentd_, id);
    EXPECT_EQ(str(done, "state"), "completed");
    EXPECT_NE(str(done, "output").find("tool said: all green"), std::string::npos);
    EXPECT_FALSE(done.contains("activity"));  // only while running or waiting
    auto peek = agentd_->call("agents_peek", json::object{{"job", id}});
    auto const& steps = peek.at("steps").as_array();
    ASSERT_EQ(steps.size(), 2u) << json::serialize(peek);
    EXPECT_EQ(str(steps[0], "tool"), "bash");
    EXPECT_EQ(str(steps[0], "status"), "completed");
    EXPECT_EQ(str(steps[0], "title"), "npm test");
    EXPECT_FALSE(str(steps[0], "started_at").empty());
    EXPECT_FALSE(str(steps[0], "finished_at").empty());
}

TEST_F(agentd_test, APermissionWaitsForTheCallerAndAllowCompletes) {
    auto t = task("clean [[fake permission=bash patterns=rm_-rf_build]]");
    t["directory"] = "/src/project";
    auto id = start_one(*agentd_, t);
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    EXPECT_EQ(str(req, "kind"), "permission");
    EXPECT_EQ(str(req, "permission"), "bash");
    EXPECT_EQ(json::serialize(req.at("patterns")), R"(["rm -rf build"])");
    EXPECT_FALSE(str(req, "asked_at").empty());

    auto answered = agentd_->call(
        "agents_respond",
        json::object{{"job", id}, {"request", str(req, "id")}, {"decision", "allow"}});
    EXPECT_NE(str(answered.at("job"), "state"), "waiting") << json::serialize(answered);
    auto done = finished(*agentd_, id);
    EXPECT_EQ(str(done, "state"), "completed");
    EXPECT_NE(str(done, "output").find("permission once:"), std::string::npos)
        << str(done, "output");
    auto a = last_answer(done);
    EXPECT_EQ(str(a, "decision"), "allow");
    EXPECT_EQ(str(a, "by"), "caller");

    // The reply went to the job's directory (DESIGN §5: every call about a job carries it).
    auto calls = http_request(fake_->port(), "GET", "/_fake/calls");
    auto list = json::parse(calls.body).as_array();
    bool replied = false;
    for (auto const& c : list)
        if (str(c, "path").starts_with("/permission/") && str(c, "method") == "POST") {
            replied = true;
            EXPECT_EQ(str(c, "directory"), "/src/project") << json::serialize(c);
        }
    EXPECT_TRUE(replied) << calls.body;

    // Answered: the request is no longer pending.
    auto again = agentd_->error(
        "agents_respond",
        json::object{{"job", id}, {"request", str(req, "id")}, {"decision", "deny"}});
    EXPECT_EQ(again.at("code").as_int64(), -32602);
    EXPECT_EQ(str(again.at("data"), "field"), "request");
}

TEST_F(agentd_test, DenyWithAMessageReachesTheSubAgent) {
    auto id = start_one(*agentd_, task("clean [[fake permission=bash patterns=rm_-rf_build]]"));
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    agentd_->call("agents_respond", json::object{{"job", id},
                                                 {"request", str(req, "id")},
                                                 {"decision", "deny"},
                                                 {"message", "not in this repo"}});
    auto done = finished(*agentd_, id);
    EXPECT_EQ(str(done, "state"), "completed");
    EXPECT_NE(str(done, "output").find("permission rejected: not in this repo"), std::string::npos)
        << str(done, "output");
    EXPECT_EQ(str(last_answer(done), "decision"), "deny");
}

TEST_F(agentd_test, AQuestionIsAnsweredWithAnOption) {
    auto id = start_one(*agentd_, task("pick [[fake question=red|green|blue]]"));
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    EXPECT_EQ(str(req, "kind"), "question");
    auto const& q = req.at("questions").as_array().at(0).as_object();
    EXPECT_EQ(str(q, "question"), "Which colour?");
    EXPECT_EQ(q.at("options").as_array().size(), 3u);
    EXPECT_TRUE(q.at("custom").as_bool());

    // Answers that do not fit are refused on `answers`.
    auto bad = agentd_->error("agents_respond",
                              json::object{{"job", id},
                                           {"request", str(req, "id")},
                                           {"answers", json::array{json::array{"red", "blue"}}}});
    EXPECT_EQ(str(bad.at("data"), "field"), "answers");

    agentd_->call("agents_respond", json::object{{"job", id},
                                                 {"request", str(req, "id")},
                                                 {"answers", json::array{json::array{"green"}}}});
    auto done = finished(*agentd_, id);
    EXPECT_NE(str(done, "output").find("answered: green"), std::string::npos)
        << str(done, "output");
    EXPECT_EQ(str(last_answer(done), "decision"), "answer");
}

TEST_F(agentd_test, ARequestAnsweredInOpenCodesOwnUiIsCleared) {
    auto id = start_one(*agentd_, task("clean [[fake permission=bash]]"));
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    auto reply = http_request(fake_->port(), "POST", "/permission/" + str(req, "id") + "/reply",
                              R"({"reply":"always"})");
    ASSERT_EQ(reply.status, 200) << reply.body;
    auto done = finished(*agentd_, id);
    EXPECT_EQ(str(done, "state"), "completed");
    auto a = last_answer(done);
    EXPECT_EQ(str(a, "by"), "upstream");
    EXPECT_EQ(str(a, "decision"), "allow_always");
}

TEST_F(agentd_test, AnUnansweredRequestIsRejectedAfterTheInputTimeout) {
    restart_agentd({"--input-timeout-ms", "300"});
    auto id = start_one(*agentd_, task("clean [[fake permission=bash]]"));
    auto done = finished(*agentd_, id);
    EXPECT_EQ(str(done, "state"), "completed");
    EXPECT_NE(str(done, "output").find("permission rejected: no answer within 0.3 s"),
              std::string::npos)
        << str(done, "output");
    EXPECT_EQ(str(last_answer(done), "by"), "timeout");
}

TEST_F(agentd_test, PolicyAnswersWithoutWaiting) {
    restart_agentd({"--upstream-permissions", "deny"});
    auto denied = start_one(*agentd_, task("clean [[fake permission=bash]]"));
    auto allowed_task = task("clean [[fake permission=bash]]");
    allowed_task["permissions"] = "allow";  // the task's own policy wins
    auto allowed = start_one(*agentd_, allowed_task);
    auto asked = start_one(*agentd_, task("pick [[fake question=red|green]]"));

    auto d = finished(*agentd_, denied);
    EXPECT_NE(str(d, "output").find("permission rejected: denied by agentd policy"),
              std::string::npos)
        << str(d, "output");
    EXPECT_EQ(str(last_answer(d), "by"), "policy");
    auto a = finished(*agentd_, allowed);
    EXPECT_NE(str(a, "output").find("permission once:"), std::string::npos) << str(a, "output");
    auto q = finished(*agentd_, asked);
    EXPECT_NE(str(q, "output").find("answered: No user is available; decide yourself."),
              std::string::npos)
        << str(q, "output");
}

TEST_F(agentd_test, ASilentToolFailsTheJobAtTheIdleTimeout) {
    restart_agentd({"--idle-timeout-ms", "400"});
    auto id = start_one(*agentd_, task("hang [[fake tool=bash silent_ms=20000]]"));
    auto t0 = std::chrono::steady_clock::now();
    auto done = finished(*agentd_, id);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(str(done, "state"), "failed");
    EXPECT_EQ(str(done.at("error"), "kind"), "timeout");
    EXPECT_EQ(str(done.at("error"), "message"), "no progress from the upstream for 0.4 s");
    EXPECT_TRUE(fake_->wait_counter("aborts_total", 1, 5s)) << json::serialize(fake_->stats());
}

TEST_F(agentd_test, AWaitingJobIsNotIdle) {
    restart_agentd({"--idle-timeout-ms", "300"});
    auto id = start_one(*agentd_, task("clean [[fake permission=bash]]"));
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    auto w = wait(*agentd_, id, 900, true);  // three idle timeouts, waiting through the request
    EXPECT_TRUE(w.at("timed_out").as_bool());
    EXPECT_EQ(str(jobs_of(w).at(0), "state"), "waiting");
    agentd_->call("agents_respond",
                  json::object{{"job", id}, {"request", str(req, "id")}, {"decision", "allow"}});
    EXPECT_EQ(str(finished(*agentd_, id), "state"), "completed");
}

TEST_F(agentd_test, PendingRequestsComeBackAfterARestart) {
    auto id = start_one(*agentd_, task("clean [[fake permission=bash]]"));
    auto req = first_request(*agentd_, id);
    ASSERT_FALSE(req.empty());
    agentd_->kill_and_restart();
    auto again = status_until(*agentd_, id, [](json::object const& v) {
        return str(v, "state") == "waiting" && v.contains("requests");
    });
    ASSERT_FALSE(again.empty()) << json::serialize(status_of(*agentd_, id));
    EXPECT_EQ(str(again.at("requests").as_array().at(0), "id"), str(req, "id"));
    agentd_->call("agents_respond",
                  json::object{{"job", id}, {"request", str(req, "id")}, {"decision", "allow"}});
    auto done = finished(*agentd_, id);
    EXPECT_NE(str(done, "output").find("permission once:"), std::string::npos)
        << str(done, "output");
}

}  // namespace
}  // namespace agentd::test
