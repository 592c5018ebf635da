// Wait wake-up latency: N (1 000) agents_wait calls blocked at once, each on its own job and
// its own keep-alive connection; the fake upstream answers the jobs' prompts one after another
// at known times (latency 3 s + i x 2 ms) and records when each turn ended (its session.idle
// sent; agentd then reads the turn's last message). Latency = the wait's reply read by the
// client - the upstream's turn end, on the same monotonic clock.
// Target: p99 < 5 ms. Usage: wait_bench [--quick] [--out DIR] (wait.json, wait.csv, wait.md)
#include "bench_util.hpp"
#include "parallel_client.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::bench::percentile;
using agentd::test::fake_upstream;

struct setup {
    int waiters;
    int first_answer_ms;  // time for all jobs to reach the upstream and all waits to block
    int step_ms;          // between two answers
};

// Per wait: when the upstream answered (µs, steady clock) and the wake-up latency in ms.
struct sample {
    std::int64_t answered_us;
    double latency_ms;
};

std::vector<sample> measure(setup const& s, json::object& info) {
    fake_upstream fake(FAKE_OPENCODE_PATH);
    auto n = std::to_string(s.waiters);
    agentd_process d(fake.url(), {"--max-running", n, "--max-tasks-per-call", n,
                                  "--max-connections", std::to_string(s.waiters + 64)});
    std::vector<std::string> prompts;
    for (int i = 0; i < s.waiters; ++i)
        prompts.push_back(
            fmt::format("w{} [[fake latency_ms={}]]", i, s.first_answer_ms + i * s.step_ms));
    auto t0 = agentd::bench::clock_type::now();
    auto ids = agentd::bench::job_ids(d.rpc("agents_start", agentd::bench::start_params(prompts)));
    if (!fake.wait_counter("prompts_started", s.waiters, 60s))
        throw std::runtime_error("prompts did not all reach the upstream");
    double launched_ms = agentd::bench::ms_since(t0);

    std::vector<std::string> bodies;
    for (auto const& id : ids)
        bodies.push_back(agentd::bench::rpc_body(
            "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 120000}}));
    auto outcome = agentd::bench::post_all(d.port(), d.auth(), bodies, 150s);

    auto answered = fake.stats().at("answered_us").as_object();
    std::vector<sample> samples;
    std::int64_t first_answer = std::numeric_limits<std::int64_t>::max();
    for (auto const& r : outcome.replies) {
        if (r.status != 200) throw std::runtime_error("a wait got no reply");
        auto reply = json::parse(r.body);
        auto const& job = reply.at("result").at("jobs").at(0);
        if (job.at("state").as_string() != "completed")
            throw std::runtime_error("a job did not complete: " + json::serialize(job));
        auto at =
            answered.at(job.at("upstream").at("session").as_string()).to_number<std::int64_t>();
        first_answer = std::min(first_answer, at);
        samples.push_back({at, static_cast<double>(agentd::bench::steady_us(r.at) - at) / 1000.0});
    }
    // A wait sent after its job's answer would measure something else: say so, loudly.
    auto sent_us = agentd::bench::steady_us(outcome.all_sent);
    info = {{"launch_ms", launched_ms},
            {"all_waits_sent_before_first_answer_ms",
             static_cast<double>(first_answer - sent_us) / 1000.0}};
    if (sent_us >= first_answer)
        throw std::runtime_error(
            "the waits were not all blocked before the first answer; "
            "raise first_answer_ms");
    return samples;
}

// Every sample by time of answer, to see whether slow wake-ups come alone or in bursts.
std::string samples_csv(std::vector<sample> samples) {
    std::sort(samples.begin(), samples.end(),
              [](auto const& a, auto const& b) { return a.answered_us < b.answered_us; });
    std::string csv = "answered_ms,latency_ms\n";
    for (auto const& x : samples)
        csv += fmt::format("{:.3f},{:.3f}\n", (x.answered_us - samples[0].answered_us) / 1000.0,
                           x.latency_ms);
    return csv;
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    setup s = opts.quick ? setup{50, 1000, 2} : setup{1000, 3000, 2};
    json::object info;
    auto samples = measure(s, info);
    std::vector<double> lat;
    for (auto const& x : samples) lat.push_back(x.latency_ms);
    std::vector<std::pair<std::string, double>> points{
        {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}, {"max", 100}};
    fmt::print("== wait wake-up: {} blocked agents_wait, upstream answers {} ms apart\n", s.waiters,
               s.step_ms);
    std::string md =
        "| waiters | p50 | p90 | p99 | p99.9 | max | target |\n"
        "|---:|---:|---:|---:|---:|---:|---|\n";
    std::string csv = "percentile,ms\n";
    md += fmt::format("| {} ", s.waiters);
    json::object j{{"quick", opts.quick},
                   {"waiters", s.waiters},
                   {"first_answer_ms", s.first_answer_ms},
                   {"step_ms", s.step_ms}};
    for (auto const& [name, p] : points) {
        double v = percentile(lat, p);
        fmt::print("  {:>6} {:8.3f} ms\n", name, v);
        md += fmt::format("| {:.2f} ms ", v);
        csv += fmt::format("{},{:.3f}\n", name, v);
        j[name] = v;
    }
    md += fmt::format("| p99 < 5 ms {} |\n", percentile(lat, 99) < 5 ? "✓" : "✗");
    for (auto const& [k, v] : info) j[k] = v;
    agentd::bench::write_result(opts, "wait.json", json::serialize(j) + "\n");
    agentd::bench::write_result(opts, "wait.csv", csv);
    agentd::bench::write_result(opts, "wait_samples.csv", samples_csv(samples));
    agentd::bench::write_result(opts, "wait.md", md);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "wait_bench: {}\n", e.what());
    return 1;
}
