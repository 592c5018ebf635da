// The /metrics registry and its Prometheus text format 0.0.4: label and help escaping, histogram
// buckets cumulative with `le` inclusive and +Inf, _sum/_count, job outcomes, and the bounded
// method label.
#include "daemon/metrics.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

namespace agentd::daemon {
namespace {

using protocol::error_kind;
using protocol::job_state;
using protocol::job_view;

std::vector<std::string> lines_of(std::string const& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool has_line(std::string const& text, std::string const& line) {
    auto lines = lines_of(text);
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

TEST(MetricsFormat, EscapesLabelValuesAndHelp) {
    exposition e;
    e.family("x_total", "counter", "a \\ help\nline with \"quotes\"");
    e.sample("x_total", {{"path", "a\"b\\c\nd"}, {"k", "v"}}, std::uint64_t{7});
    EXPECT_EQ(e.text(),
              "# HELP x_total a \\\\ help\\nline with \"quotes\"\n"
              "# TYPE x_total counter\n"
              "x_total{path=\"a\\\"b\\\\c\\nd\",k=\"v\"} 7\n");
}

TEST(MetricsFormat, SampleWithoutLabelsAndSpecialFloats) {
    exposition e;
    e.sample("g", {}, 0.25);
    e.sample("g", {}, std::numeric_limits<double>::infinity());
    e.sample("g", {}, -std::numeric_limits<double>::infinity());
    e.sample("g", {}, std::numeric_limits<double>::quiet_NaN());
    EXPECT_EQ(e.text(), "g 0.25\ng +Inf\ng -Inf\ng NaN\n");
}

TEST(MetricsFormat, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    histogram h;
    h.observe(0.003);
    h.observe(0.01);  // on a bound: le is inclusive
    h.observe(0.02);
    h.observe(0.02);
    h.observe(5000);  // beyond the last bound: only +Inf
    exposition e;
    e.histogram("lat_seconds", {{"phase", "prompt"}}, h);
    auto text = e.text();
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{phase=\"prompt\",le=\"0.005\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{phase=\"prompt\",le=\"0.01\"} 2")) << text;
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{phase=\"prompt\",le=\"0.025\"} 4")) << text;
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{phase=\"prompt\",le=\"1800\"} 4")) << text;
    EXPECT_TRUE(has_line(text, "lat_seconds_bucket{phase=\"prompt\",le=\"+Inf\"} 5")) << text;
    EXPECT_TRUE(has_line(text, "lat_seconds_count{phase=\"prompt\"} 5")) << text;
    auto sum_at = text.find("lat_seconds_sum{phase=\"prompt\"} ");
    ASSERT_NE(sum_at, std::string::npos) << text;
    EXPECT_NEAR(std::stod(text.substr(text.find(' ', sum_at) + 1)), 5000.053, 1e-9);

    // Every bound once, in order, never decreasing; +Inf last and equal to _count.
    std::regex bucket(R"re(lat_seconds_bucket\{phase="prompt",le="([^"]+)"\} (\d+))re");
    std::vector<std::string> les;
    std::uint64_t last = 0;
    for (auto const& line : lines_of(text)) {
        std::smatch m;
        if (!std::regex_match(line, m, bucket)) continue;
        les.push_back(m[1]);
        auto n = std::stoull(m[2]);
        EXPECT_GE(n, last) << line;
        last = n;
    }
    ASSERT_EQ(les.size(), histogram::bounds.size() + 1);
    EXPECT_EQ(les.back(), "+Inf");
    EXPECT_EQ(last, h.count());
}

TEST(MetricsRegistry, CountsStartsAndOutcomesByErrorKind) {
    metrics m("1.2.3", "opencode");
    job_view v;
    for (auto state : {job_state::queued, job_state::running, job_state::completed}) {
        v.state = state;
        m.job_changed(v);
    }
    v.state = job_state::queued;
    m.job_changed(v);
    v.state = job_state::failed;
    v.error = protocol::job_error{error_kind::timeout, {}, "slow", {}};
    m.job_changed(v);
    v.state = job_state::cancelled;
    m.job_changed(v);

    metrics_gauges g;
    g.jobs_by_state[static_cast<std::size_t>(job_state::running)] = 3;
    g.queue_depth = 2;
    g.connections_open = 4;
    auto text = m.render(g);
    EXPECT_TRUE(has_line(text, "agentd_build_info{version=\"1.2.3\",backend=\"opencode\"} 1"));
    EXPECT_TRUE(has_line(text, "agentd_jobs_started_total 2")) << text;
    EXPECT_TRUE(has_line(text, "agentd_jobs_finished_total{outcome=\"completed\"} 1")) << text;
    EXPECT_TRUE(has_line(text, "agentd_jobs_finished_total{outcome=\"failed_timeout\"} 1"));
    EXPECT_TRUE(has_line(text, "agentd_jobs_finished_total{outcome=\"failed_upstream\"} 0"));
    EXPECT_TRUE(has_line(text, "agentd_jobs_finished_total{outcome=\"cancelled\"} 1"));
    EXPECT_TRUE(has_line(text, "agentd_jobs_finished_total{outcome=\"interrupted\"} 0"));
    EXPECT_TRUE(has_line(text, "agentd_jobs{state=\"running\"} 3")) << text;
    EXPECT_TRUE(has_line(text, "agentd_jobs{state=\"queued\"} 0")) << text;
    EXPECT_TRUE(has_line(text, "agentd_queue_depth 2")) << text;
    EXPECT_TRUE(has_line(text, "agentd_connections_open 4")) << text;
}

TEST(MetricsRegistry, UnknownMethodsShareOneSeries) {
    metrics m("1", "opencode");
    m.observe_rpc(metrics::rpc_method_index("agents_wait"), 0.5);
    m.observe_rpc(metrics::rpc_method_index("no_such_method"), 0.001);
    m.observe_rpc(metrics::rpc_method_index("another_made_up_one"), 0.001);
    m.observe_upstream(upstream_call::create, 0.02);
    auto text = m.render({});
    EXPECT_TRUE(has_line(text, "agentd_rpc_duration_seconds_count{method=\"agents_wait\"} 1"));
    EXPECT_TRUE(has_line(text, "agentd_rpc_duration_seconds_count{method=\"other\"} 2"));
    EXPECT_TRUE(has_line(text, "agentd_rpc_duration_seconds_sum{method=\"agents_wait\"} 0.5"));
    EXPECT_EQ(text.find("no_such_method"), std::string::npos);
    EXPECT_TRUE(
        has_line(text, "agentd_upstream_request_duration_seconds_count{phase=\"create\"} 1"));
    EXPECT_TRUE(has_line(
        text, "agentd_upstream_request_duration_seconds_bucket{phase=\"create\",le=\"0.01\"} 0"));
    EXPECT_TRUE(has_line(
        text, "agentd_upstream_request_duration_seconds_bucket{phase=\"create\",le=\"0.025\"} 1"));
    // One HELP and one TYPE per family.
    EXPECT_EQ(text.find("# TYPE agentd_rpc_duration_seconds histogram"),
              text.rfind("# TYPE agentd_rpc_duration_seconds histogram"));
}

}  // namespace
}  // namespace agentd::daemon
