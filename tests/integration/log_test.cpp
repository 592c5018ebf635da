// agentd's log (DESIGN §8) from the real binary: a scripted run (a job completes, one fails
// upstream, one is cancelled, a call hits -32001, a permission is answered by the caller) must
// log exactly the expected lines, in text and in JSON, with no prompt, output or token; under
// journald lines carry a syslog priority and no timestamp; --log-level warn drops info lines.
#include "agentd_fixture.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr std::string_view session = "log-test";

// One parsed line: level, event and fields, values as text (integers in decimal).
struct line {
    std::string level;
    std::string event;
    std::vector<std::pair<std::string, std::string>> fields;
    std::map<std::string, bool> is_number;  // JSON: which values were numbers

    std::string get(std::string const& key) const {
        for (auto const& [k, v] : fields)
            if (k == key) return v;
        return {};
    }
};

// logfmt: key=value, a value bare or quoted with \" \\ \n \t \r \xHH escapes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_logfmt(std::string_view s) {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t i = 0;
    while (i < s.size()) {
        auto eq = s.find('=', i);
        if (eq == std::string_view::npos) return std::nullopt;
        std::string key(s.substr(i, eq - i));
        std::string value;
        i = eq + 1;
        if (i < s.size() && s[i] == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i) {
                if (s[i] != '\\') {
                    value += s[i];
                    continue;
                }
                char e = s[++i];
                if (e == 'n')
                    value += '\n';
                else if (e == 't')
                    value += '\t';
                else if (e == 'r')
                    value += '\r';
                else if (e == 'x') {
                    value +=
                        static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
                    i += 2;
                } else
                    value += e;
            }
            if (i >= s.size()) return std::nullopt;  // unterminated
            ++i;
        } else {
            auto end = std::min(s.find(' ', i), s.size());
            value = std::string(s.substr(i, end - i));
            i = end;
        }
        out.emplace_back(std::move(key), std::move(value));
        if (i < s.size() && s[i] != ' ') return std::nullopt;
        if (i < s.size()) ++i;
    }
    return out;
}

// "TS LEVEL EVENT fields" (or "<N>LEVEL EVENT fields" under journald).
std::optional<line> parse_text(std::string const& text, bool journald) {
    static std::regex const stamped(
        R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) (\S+) ?(.*)$)");
    static std::regex const prefixed(R"(^<[3467]>(ERROR|WARN|INFO|DEBUG) (\S+) ?(.*)$)");
    std::smatch m;
    if (!std::regex_match(text, m, journald ? prefixed : stamped)) return std::nullopt;
    auto fields = parse_logfmt(m[3].str());
    if (!fields) return std::nullopt;
    line out{m[1].str(), m[2].str(), std::move(*fields), {}};
    for (auto& c : out.level) c = static_cast<char>(std::tolower(c));
    return out;
}

std::optional<line> parse_json(std::string const& text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    auto const& o = v.get_object();
    static std::regex const ts(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
    if (!std::regex_match(str(o, "ts"), ts)) return std::nullopt;
    line out{str(o, "level"), str(o, "event"), {}, {}};
    auto it = o.begin();
    if (o.size() < 3 || it->key() != "ts" || (++it)->key() != "level" || (++it)->key() != "event")
        return std::nullopt;
    for (++it; it != o.end(); ++it) {
        std::string key(it->key());
        if (it->value().is_int64()) {
            out.fields.emplace_back(key, std::to_string(it->value().get_int64()));
            out.is_number[key] = true;
        } else if (it->value().is_string()) {
            out.fields.emplace_back(key, std::string(it->value().get_string()));
        } else {
            return std::nullopt;
        }
    }
    return out;
}

// Canonical text of a line: ids by alias, elapsed_ms digits as N.
std::string canonical(line const& l, std::map<std::string, std::string> const& alias) {
    std::string out = l.level + " " + l.event;
    for (auto const& [k, v] : l.fields) {
        auto value = v;
        if (auto a = alias.find(v); a != alias.end()) value = a->second;
        if (k == "elapsed_ms" && !v.empty() && std::all_of(v.begin(), v.end(), ::isdigit))
            value = "N";
        out += " " + k + "=" + value;
    }
    return out;
}

// Which sequence a line belongs to: its job's, else the requests', else its event's.
std::string group_of(line const& l) {
    if (l.event == "request") return "requests";
    if (auto j = l.get("job"); !j.empty()) return j;
    return l.event;
}

std::string start_one(agentd_process& a, std::string prompt) {
    json::array tasks{task(std::move(prompt))};
    auto started = a.call("agents_start", json::object{{"tasks", tasks}, {"session", session}});
    return str(jobs_of(started).at(0), "id");
}

json::object wait_job(agentd_process& a, std::string const& id) {
    auto w = a.call("agents_wait", json::object{{"jobs", json::array{json::value(id)}},
                                                {"session", session},
                                                {"timeout_ms", 10000}});
    return jobs_of(w).at(0).as_object();
}

std::string error_message(json::object const& job) {
    return str(job.at("error"), "message").substr(0, 200);
}

class log_format_test : public ::testing::TestWithParam<std::string> {};

TEST_P(log_format_test, AScriptedRunLogsExactlyTheExpectedLines) {
    bool const as_json = GetParam() == "json";
    fake_upstream fake(FAKE_OPENCODE_PATH);
    agentd_process a(fake.url(), {"--max-tasks-per-call", "2", "--log-format", GetParam()});
    ASSERT_NE(a.port(), 0);
    std::map<std::string, std::string> alias;
    std::map<std::string, std::vector<std::string>> want;
    auto job_lines = [&](std::string const& id, std::vector<std::string> states) {
        for (auto const& s : states) want[alias[id]].push_back(s);
    };
    auto request = [&](std::string const& method, std::string const& code = {}) {
        want["requests"].push_back("info request method=" + method +
                                   " session=" + std::string(session) + " elapsed_ms=N" +
                                   (code.empty() ? "" : " code=" + code));
    };
    auto const s = "session=" + std::string(session);
    auto state = [&](std::string const& id, std::string const& st) {
        return "info job job=" + alias[id] + " " + s + " state=" + st + " elapsed_ms=N";
    };

    // 1. completes
    auto done = start_one(a, "alpha-prompt-xyzzy");
    alias[done] = "J1";
    auto done_view = wait_job(a, done);
    ASSERT_EQ(str(done_view, "state"), "completed");
    auto const output = str(done_view, "output");
    ASSERT_FALSE(output.empty());
    job_lines(done, {state(done, "queued"), state(done, "running"), state(done, "completed")});
    request("agents_start");
    request("agents_wait");

    // 2. fails upstream (HTTP 500)
    auto failed = start_one(a, "beta [[fake fault=500]]");
    alias[failed] = "J2";
    auto failed_view = wait_job(a, failed);
    ASSERT_EQ(str(failed_view, "state"), "failed");
    auto const why = error_message(failed_view);
    job_lines(failed, {state(failed, "queued"), state(failed, "running"),
                       state(failed, "failed") + " error.kind=upstream error=" + why,
                       "warn upstream job=J2 error.kind=upstream phase=prompt http_status=500 "
                       "error=" +
                           why});
    request("agents_start");
    request("agents_wait");

    // 3. cancelled while running
    auto cancelled = start_one(a, "gamma [[fake fault=hang]]");
    alias[cancelled] = "J3";
    auto c = a.call("agents_cancel", json::object{{"jobs", json::array{json::value(cancelled)}},
                                                  {"session", session}});
    auto const& cancelled_view = jobs_of(c).at(0).as_object();
    ASSERT_EQ(str(cancelled_view, "state"), "cancelled");
    job_lines(cancelled, {state(cancelled, "queued"), state(cancelled, "running"),
                          state(cancelled, "cancelled") +
                              " error.kind=cancelled error=" + error_message(cancelled_view)});
    request("agents_start");
    request("agents_cancel");

    // 4. a limit: three tasks where two are allowed
    auto over = a.error("agents_start",
                        json::object{{"tasks", json::array{task("a"), task("b"), task("c")}},
                                     {"session", session}});
    ASSERT_EQ(over.at("code").as_int64(), -32001);
    request("agents_start", "-32001");
    want["limit"].push_back("warn limit limit=max_tasks method=agents_start " + s +
                            " error=" + str(over, "message"));

    // 5. a permission answered by the caller
    auto asked = start_one(a, "delta [[fake permission=bash]]");
    alias[asked] = "J4";
    auto waiting = wait_job(a, asked);
    ASSERT_EQ(str(waiting, "state"), "waiting");
    auto const req_id = str(waiting.at("requests").at(0), "id");
    alias[req_id] = "R1";
    a.call("agents_respond",
           json::object{
               {"job", asked}, {"request", req_id}, {"decision", "allow"}, {"session", session}});
    ASSERT_EQ(str(wait_job(a, asked), "state"), "completed");
    job_lines(asked,
              {state(asked, "queued"), state(asked, "running"), state(asked, "waiting"),
               state(asked, "running"),
               "info answer job=J4 " + s + " request=R1 kind=permission decision=allow by=caller",
               state(asked, "completed")});
    request("agents_start");
    request("agents_wait");
    request("agents_respond");
    request("agents_wait");

    // A last call whose line, once read, means every earlier line was read too (one pipe).
    a.call("agents_status", json::object{{"session", "log-end"}});
    want["requests"].push_back("info request method=agents_status session=log-end elapsed_ms=N");
    ASSERT_TRUE(a.process().wait_for_line(std::regex("session.{0,3}log-end"), 10s));

    auto const all = a.process().stderr_text();
    std::map<std::string, std::vector<std::string>> got;
    int listening = 0;
    std::istringstream in(all);
    for (std::string text; std::getline(in, text);) {
        if (text == "agentd listening on http://127.0.0.1:" + std::to_string(a.port())) {
            ++listening;
            continue;
        }
        auto l = as_json ? parse_json(text) : parse_text(text, false);
        ASSERT_TRUE(l) << "not a " << GetParam() << " log line: " << text;
        if (auto ms = l->get("elapsed_ms"); !ms.empty()) {
            EXPECT_LT(std::stoll(ms), 60'000) << "milliseconds, within this test: " << text;
        }
        if (as_json) {
            EXPECT_TRUE(l->is_number["elapsed_ms"] || l->get("elapsed_ms").empty()) << text;
            if (!l->get("code").empty()) {
                EXPECT_TRUE(l->is_number["code"]) << text;
            }
        }
        got[alias.contains(group_of(*l)) ? alias[group_of(*l)] : group_of(*l)].push_back(
            canonical(*l, alias));
    }
    EXPECT_EQ(listening, 1);
    for (auto const& [group, lines] : want) EXPECT_EQ(got[group], lines) << group;
    for (auto const& [group, lines] : got)
        EXPECT_TRUE(want.contains(group)) << "unexpected lines: " << lines.front();
    EXPECT_EQ(all.find("alpha-prompt-xyzzy"), std::string::npos);
    EXPECT_EQ(all.find(output), std::string::npos);
    EXPECT_EQ(all.find(a.token()), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Formats, log_format_test, ::testing::Values("text", "json"));

TEST_F(agentd_test, LogLevelWarnDropsInfoLines) {
    restart_agentd({"--log-level", "warn", "--max-tasks-per-call", "1"});
    auto id = start_one(*agentd_, "quiet");
    ASSERT_EQ(str(wait_job(*agentd_, id), "state"), "completed");
    auto over =
        agentd_->error("agents_start", json::object{{"tasks", json::array{task("a"), task("b")}}});
    ASSERT_EQ(over.at("code").as_int64(), -32001);
    ASSERT_TRUE(agentd_->process().wait_for_line(std::regex(" WARN limit limit=max_tasks "), 10s));
    auto const all = agentd_->process().stderr_text();
    EXPECT_EQ(all.find(" INFO "), std::string::npos) << all;
}

// Oversized bodies are a peer's to send at will: their warnings are throttled to a line a second,
// and a later line counts what was dropped, so lines + dropped = requests refused.
TEST_F(agentd_test, AFloodOfRefusedBodiesLogsALineASecondAndCountsTheRest) {
    restart_agentd({"--max-body-bytes", "4096"});
    auto const body = R"({"jsonrpc":"2.0","id":1,"method":"agents_status","params":{"session":")" +
                      std::string(5000, 's') + "\"}}";
    auto const t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 40; ++i) ASSERT_EQ(agentd_->post(body).status, 413);
    auto const burst = std::chrono::steady_clock::now() - t0;
    // The throttle's window is a second long: one more after it reports the ones it dropped.
    std::this_thread::sleep_until(std::chrono::steady_clock::now() + 1100ms);
    ASSERT_EQ(agentd_->post(body).status, 413);
    ASSERT_TRUE(agentd_->process().wait_for_line(
        std::regex("WARN limit limit=max_body_bytes status=413 suppressed=\\d+$"), 10s))
        << agentd_->process().stderr_text();
    auto const all = agentd_->process().stderr_text();
    std::regex line("WARN limit limit=max_body_bytes status=413(?: suppressed=(\\d+))?\n");
    long lines = 0, dropped = 0;
    for (std::sregex_iterator it(all.begin(), all.end(), line), end; it != end; ++it) {
        ++lines;
        if ((*it)[1].matched) dropped += std::stol((*it)[1]);
    }
    EXPECT_EQ(lines + dropped, 41) << all;
    EXPECT_LE(lines, 2 + std::chrono::duration_cast<std::chrono::seconds>(burst).count()) << all;
}

TEST_F(agentd_test, ARestartLogsTheJobsItReattaches) {
    auto id = start_one(*agentd_, "epsilon [[fake fault=hang]]");
    // Killed once its upstream session exists (before, a restart interrupts it: nothing ran).
    auto end = std::chrono::steady_clock::now() + 10s;
    auto has_upstream = [&] {
        auto s = agentd_->call("agents_status", json::object{{"jobs", json::array{json::value(id)}},
                                                             {"session", session}});
        return jobs_of(s).at(0).as_object().contains("upstream");
    };
    while (!has_upstream() && std::chrono::steady_clock::now() < end)
        std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(has_upstream());
    agentd_->kill_and_restart();
    // The upstream still runs the turn: the job is followed live again, and the log says so.
    EXPECT_TRUE(agentd_->process().wait_for_line(
        std::regex("INFO job job=" + id +
                   " session=log-test state=running elapsed_ms=\\d+ restored=reattached$"),
        10s))
        << agentd_->process().stderr_text();
    agentd_->call("agents_cancel",
                  json::object{{"jobs", json::array{json::value(id)}}, {"session", session}});
    EXPECT_TRUE(agentd_->process().wait_for_line(
        std::regex("INFO job job=" + id + " session=log-test state=cancelled "), 10s));
}

// agentd with stderr on a regular file whose device and inode $JOURNAL_STREAM names, as systemd
// sets it for a service whose stderr is the journal.
class journald_log : public ::testing::Test {
  protected:
    void SetUp() override {
        fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH);
        dir_ = fs::temp_directory_path() / ("agentd-log-" + std::to_string(::getpid()));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        log_ = dir_ / "stderr";
        std::ofstream(log_).flush();
        struct stat st {};
        ASSERT_EQ(::stat(log_.c_str(), &st), 0);
        auto stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
        proc_ = std::make_unique<child_process>(
            std::vector<std::string>{"/bin/sh", "-c", "exec \"$@\" 2>>\"$0\"", log_.string(),
                                     AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir",
                                     (dir_ / "state").string(), "--upstream-url", fake_->url(),
                                     "--max-tasks-per-call", "1"},
            std::vector<std::pair<std::string, std::string>>{{"JOURNAL_STREAM", stream}});
    }
    void TearDown() override {
        proc_.reset();
        if (HasFailure()) std::fprintf(stderr, "---- agentd stderr ----\n%s\n", text().c_str());
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string text() const {
        std::ifstream in(log_);
        std::ostringstream out;
        out << in.rdbuf();
        return out.str();
    }

    // The log file's text once `pattern` appears in it, polled until `limit` (a file has no
    // readiness to wait on); nullopt after it.
    std::optional<std::string> text_with(std::regex const& pattern,
                                         std::chrono::milliseconds limit) {
        auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            auto t = text();
            if (std::regex_search(t, pattern)) return t;
            std::this_thread::sleep_for(10ms);
        }
        return std::nullopt;
    }

    json::object rpc(int port, std::string const& token, std::string const& method,
                     json::object params) {
        json::object req{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
        auto res = http_request(port, "POST", "/rpc", json::serialize(req),
                                {{"Authorization", "Bearer " + token}});
        EXPECT_EQ(res.status, 200) << res.body;
        return json::parse(res.body).as_object();
    }

    std::unique_ptr<fake_upstream> fake_;
    fs::path dir_, log_;
    std::unique_ptr<child_process> proc_;
};

TEST_F(journald_log, LinesCarryAPriorityAndNoTimestamp) {
    auto started = text_with(std::regex(R"(agentd listening on http://127\.0\.0\.1:(\d+))"), 10s);
    ASSERT_TRUE(started);
    std::smatch m;
    std::regex_search(*started, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"));
    auto const port = std::stoi(m[1].str());
    std::string token;
    std::getline(std::ifstream(dir_ / "state" / "token"), token);

    auto one = rpc(port, token, "agents_start", {{"tasks", json::array{task("journal")}}});
    auto id = str(jobs_of(one.at("result").as_object()).at(0), "id");
    rpc(port, token, "agents_wait",
        {{"jobs", json::array{json::value(id)}}, {"timeout_ms", 10000}});
    auto over = rpc(port, token, "agents_start", {{"tasks", json::array{task("a"), task("b")}}});
    ASSERT_EQ(over.at("error").at("code").as_int64(), -32001);

    auto all = text_with(std::regex("<4>WARN limit limit=max_tasks"), 10s);
    ASSERT_TRUE(all);
    EXPECT_NE(all->find("<6>INFO job job=" + id + " session=default state=completed"),
              std::string::npos);
    std::istringstream in(*all);
    for (std::string text; std::getline(in, text);) {
        if (text.starts_with("agentd listening on ")) continue;
        EXPECT_TRUE(parse_text(text, true)) << text;
    }
}

}  // namespace
}  // namespace agentd::test
