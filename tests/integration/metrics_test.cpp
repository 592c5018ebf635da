// GET /metrics of the real agentd after real jobs (completed, failed upstream, cancelled):
// every line is parsed by a strict reader of the Prometheus text format 0.0.4 (names, label
// escapes, one TYPE per family before its samples, no duplicate series, cumulative buckets
// ending in +Inf == _count), then the values are checked against what the test did.
#include "agentd_fixture.hpp"
#include "protocol/version.hpp"

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

using labels = std::map<std::string, std::string>;

struct sample {
    std::string name;
    labels labels_;
    double value = 0;
};

struct exposition {
    std::map<std::string, std::string> types;  // family -> type
    std::vector<sample> samples;

    // The one sample with this name and exactly these labels; fails the test when absent.
    double at(std::string const& name, labels const& l = {}) const {
        for (auto const& s : samples)
            if (s.name == name && s.labels_ == l) return s.value;
        ADD_FAILURE() << "no sample " << name << " with the given labels";
        return std::nan("");
    }
};

bool is_name(std::string_view s, bool colon) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (colon && c == ':');
    });
}

std::optional<double> parse_value(std::string_view s) {
    if (s == "+Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
    if (s == "NaN") return NAN;
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

// `name{a="x",b="y"} value`; throws std::runtime_error naming what is wrong.
sample parse_sample(std::string_view line) {
    sample out;
    auto end = line.find_first_of("{ ");
    if (end == std::string_view::npos) throw std::runtime_error("no value");
    out.name = std::string(line.substr(0, end));
    if (!is_name(out.name, true)) throw std::runtime_error("bad metric name");
    std::size_t i = end;
    if (line[i] == '{') {
        ++i;
        while (line.at(i) != '}') {
            auto eq = line.find('=', i);
            auto name = std::string(line.substr(i, eq - i));
            if (eq == std::string_view::npos || !is_name(name, false) || line.at(eq + 1) != '"')
                throw std::runtime_error("bad label name");
            std::string value;
            for (i = eq + 2; line.at(i) != '"'; ++i) {
                if (line[i] != '\\') {
                    value += line[i];
                    continue;
                }
                char e = line.at(++i);
                if (e == 'n')
                    value += '\n';
                else if (e == '\\' || e == '"')
                    value += e;
                else
                    throw std::runtime_error("bad escape in label value");
            }
            if (!out.labels_.emplace(name, value).second)
                throw std::runtime_error("repeated label " + name);
            ++i;
            if (line.at(i) == ',') ++i;
        }
        ++i;
    }
    if (line.at(i) != ' ') throw std::runtime_error("no space before the value");
    auto value = parse_value(line.substr(i + 1));
    if (!value) throw std::runtime_error("bad value (or a timestamp, which agentd never sends)");
    out.value = *value;
    return out;
}

// The family a sample belongs to under the last TYPE line.
bool belongs(std::string const& sample_name, std::string const& family, std::string const& type) {
    if (sample_name == family) return type != "histogram";
    if (type != "histogram") return false;
    for (auto suffix : {"_bucket", "_sum", "_count"})
        if (sample_name == family + suffix) return true;
    return false;
}

// Buckets of one histogram series: le ascending, counts never decreasing, +Inf == _count.
void check_histograms(exposition const& e) {
    std::map<std::pair<std::string, labels>, std::vector<std::pair<double, double>>> buckets;
    for (auto const& s : e.samples) {
        if (!s.name.ends_with("_bucket")) continue;
        auto l = s.labels_;
        ASSERT_TRUE(l.contains("le")) << s.name;
        auto le = parse_value(l["le"]);
        ASSERT_TRUE(le) << l["le"];
        l.erase("le");
        buckets[{s.name.substr(0, s.name.size() - 7), l}].emplace_back(*le, s.value);
    }
    ASSERT_FALSE(buckets.empty());
    for (auto const& [key, list] : buckets) {
        for (std::size_t i = 1; i < list.size(); ++i) {
            EXPECT_LT(list[i - 1].first, list[i].first) << key.first;
            EXPECT_LE(list[i - 1].second, list[i].second) << key.first;
        }
        EXPECT_TRUE(std::isinf(list.back().first)) << key.first << " has no +Inf bucket";
        EXPECT_EQ(list.back().second, e.at(key.first + "_count", key.second)) << key.first;
        EXPECT_GE(e.at(key.first + "_sum", key.second), 0) << key.first;
    }
}

exposition parse_strictly(std::string const& text) {
    exposition e;
    std::string family;
    std::set<std::string> helped;
    std::set<std::pair<std::string, labels>> seen;
    EXPECT_TRUE(text.ends_with("\n"));
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        SCOPED_TRACE(line);
        if (line.starts_with("# HELP ")) {
            auto name = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(is_name(name, true));
            EXPECT_TRUE(helped.insert(name).second) << "second HELP";
        } else if (line.starts_with("# TYPE ")) {
            auto rest = line.substr(7);
            auto space = rest.find(' ');
            family = rest.substr(0, space);
            auto type = rest.substr(space + 1);
            EXPECT_TRUE(is_name(family, true));
            EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram" ||
                        type == "summary" || type == "untyped");
            EXPECT_TRUE(e.types.emplace(family, type).second) << "second TYPE";
        } else {
            EXPECT_FALSE(line.empty() || line[0] == '#') << "stray line";
            sample s;
            try {
                s = parse_sample(line);
            } catch (std::exception const& x) {
                ADD_FAILURE() << x.what();
                continue;
            }
            EXPECT_TRUE(belongs(s.name, family, e.types[family])) << "outside its family";
            EXPECT_TRUE(seen.emplace(s.name, s.labels_).second) << "duplicate series";
            e.samples.push_back(std::move(s));
        }
    }
    return e;
}

http_response scrape(agentd_process& a) {
    return http_request(a.port(), "GET", "/metrics", "",
                        {{"Authorization", "Bearer " + a.token()}});
}

// Scrapes until `ready` holds: some counts settle just after the RPC that caused them returns
// (a cancelled prompt unwinds after agents_cancel answered).
exposition scrape_until(agentd_process& a, std::function<bool(exposition const&)> ready) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
        auto res = scrape(a);
        EXPECT_EQ(res.status, 200) << res.body;
        auto e = parse_strictly(res.body);
        if (ready(e) || std::chrono::steady_clock::now() > deadline) return e;
        std::this_thread::sleep_for(20ms);
    }
}

double count_of(exposition const& e, std::string const& histogram, std::string const& label,
                std::string const& value) {
    return e.at(histogram + "_count", {{label, value}});
}

TEST_F(agentd_test, MetricsNeedTheTokenAndAGet) {
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/metrics").status, 401);
    auto bearer = http_headers{{"Authorization", "Bearer " + agentd_->token()}};
    EXPECT_EQ(http_request(agentd_->port(), "POST", "/metrics", "{}", bearer).status, 405);
    auto foreign = bearer;
    foreign.emplace_back("Host", "evil.example");
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/metrics", "", foreign).status, 403);
    auto res = scrape(*agentd_);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(agentd_test, MetricsCountJobsOutcomesAndLatencies) {
    auto started = agentd_->call(
        "agents_start", {{"tasks", json::array{task("alpha"), task("beta [[fake latency_ms=30]]"),
                                               task("boom [[fake fault=500]]")}}});
    auto slow = agentd_->call("agents_start",
                              {{"tasks", json::array{task("slow [[fake latency_ms=20000]]")}}});
    ASSERT_EQ(jobs_of(started).size(), 3u);
    auto waited =
        agentd_->call("agents_wait", {{"jobs", ids_of(jobs_of(started))}, {"timeout_ms", 10'000}});
    ASSERT_TRUE(waited.at("done").as_bool());
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    agentd_->call("agents_cancel", {{"jobs", ids_of(jobs_of(slow))}});
    agentd_->call("agents_peek", {{"job", str(jobs_of(started)[0], "id")}});
    agentd_->rpc("no_such_method", nullptr);

    auto e = scrape_until(*agentd_, [](exposition const& m) {
        return m.at("agentd_upstream_request_duration_seconds_count", {{"phase", "prompt"}}) == 4;
    });
    EXPECT_EQ(e.types.at("agentd_jobs"), "gauge");
    EXPECT_EQ(e.types.at("agentd_jobs_started_total"), "counter");
    EXPECT_EQ(e.types.at("agentd_upstream_request_duration_seconds"), "histogram");
    EXPECT_EQ(e.types.at("agentd_rpc_duration_seconds"), "histogram");
    EXPECT_EQ(e.at("agentd_build_info",
                   {{"version", std::string(agentd::version)}, {"backend", "opencode"}}),
              1);

    EXPECT_EQ(e.at("agentd_jobs", {{"state", "completed"}}), 2);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "failed"}}), 1);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "cancelled"}}), 1);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "running"}}), 0);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "queued"}}), 0);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "interrupted"}}), 0);
    EXPECT_EQ(e.at("agentd_jobs_started_total"), 4);
    EXPECT_EQ(e.at("agentd_jobs_finished_total", {{"outcome", "completed"}}), 2);
    EXPECT_EQ(e.at("agentd_jobs_finished_total", {{"outcome", "failed_upstream"}}), 1);
    EXPECT_EQ(e.at("agentd_jobs_finished_total", {{"outcome", "failed_timeout"}}), 0);
    EXPECT_EQ(e.at("agentd_jobs_finished_total", {{"outcome", "cancelled"}}), 1);
    EXPECT_EQ(e.at("agentd_queue_depth"), 0);
    EXPECT_GE(e.at("agentd_connections_open"), 1);  // this scrape's own connection

    auto upstream = "agentd_upstream_request_duration_seconds";
    EXPECT_EQ(count_of(e, upstream, "phase", "create"), 4);
    EXPECT_EQ(count_of(e, upstream, "phase", "abort"), 1);  // the cancel's
    // The 30 ms prompt cannot have finished under 25 ms; the 20 s one was cut short.
    EXPECT_LE(e.at("agentd_upstream_request_duration_seconds_bucket",
                   {{"phase", "prompt"}, {"le", "0.025"}}),
              3);
    EXPECT_LT(e.at("agentd_upstream_request_duration_seconds_sum", {{"phase", "prompt"}}), 20);

    auto rpc = "agentd_rpc_duration_seconds";
    EXPECT_EQ(count_of(e, rpc, "method", "agents_start"), 2);
    EXPECT_EQ(count_of(e, rpc, "method", "agents_wait"), 1);
    EXPECT_EQ(count_of(e, rpc, "method", "agents_cancel"), 1);
    EXPECT_EQ(count_of(e, rpc, "method", "agents_peek"), 1);
    EXPECT_EQ(count_of(e, rpc, "method", "other"), 1);
    EXPECT_GT(e.at("agentd_rpc_duration_seconds_sum", {{"method", "agents_wait"}}), 0.025);
    check_histograms(e);
}

TEST_F(agentd_test, MetricsShowTheQueueBehindTheLaunchGate) {
    restart_agentd({"--max-running", "1"});
    agentd_->call(
        "agents_start",
        {{"tasks", json::array{task("a [[fake latency_ms=20000]]"), task("b"), task("c")}}});
    ASSERT_TRUE(fake_->wait_counter("prompts_in_flight", 1, 5s));
    auto e = parse_strictly(scrape(*agentd_).body);
    EXPECT_EQ(e.at("agentd_queue_depth"), 2);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "queued"}}), 2);
    EXPECT_EQ(e.at("agentd_jobs", {{"state", "running"}}), 1);
    EXPECT_EQ(e.at("agentd_jobs_started_total"), 3);
}

}  // namespace
}  // namespace agentd::test
