// Several instances on one PostgreSQL (issue #19), measured side by side in one run against the
// fake OpenCode upstream and a throw-away cluster (tests/support/pg_cluster):
//  1. fan-out: 1 000 tasks (500 ms prompts) spread over 1, 2 and 3 instances (one agents_start
//     per instance), all waited for through the first instance, as a ratio to one job's time on
//     the same set-up;
//  2. agents_status throughput of a finished job with wrk against every instance at once, summed;
//  3. the CPU time agentd spends per job lifecycle on PostgreSQL and on SQLite (utime + stime of
//     the agentd process over the same jobs).
// Usage: cluster_bench [--quick] [--out DIR] (cluster.json, cluster.md); skips when wrk or the
// PostgreSQL binaries are missing (scripts/setup.sh installs both).
#include "bench_util.hpp"
#include "support/fake_upstream.hpp"
#include "support/pg_cluster.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <future>
#include <regex>
#include <thread>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::bench::clock_type;
using agentd::bench::ms_since;
using agentd::test::child_process;
using agentd::test::fake_upstream;
using agentd::test::pg_cluster;

constexpr int prompt_ms = 500;

std::vector<std::string> flags(std::string const& store) {
    std::vector<std::string> f{"--max-running", "1024",         "--max-tasks-per-call",
                               "1024",          "--max-queued", "4096"};
    if (!store.empty()) {
        f.push_back("--store");
        f.push_back(store);
    }
    return f;
}

std::vector<std::unique_ptr<agentd_process>> instances(fake_upstream const& fake,
                                                       std::string const& store, int n) {
    std::vector<std::unique_ptr<agentd_process>> out;
    for (int i = 0; i < n; ++i)
        out.push_back(std::make_unique<agentd_process>(fake.url(), flags(store)));
    return out;
}

// `jobs` tasks split evenly over the instances (one agents_start each, at once), all waited for
// through the first: wall ms from the first call to the wait's answer.
double fan_out(std::vector<std::unique_ptr<agentd_process>> const& ds, int jobs) {
    auto t0 = clock_type::now();
    std::vector<std::future<json::array>> starts;
    for (std::size_t i = 0; i < ds.size(); ++i) {
        int share = jobs / static_cast<int>(ds.size()) + (i < jobs % ds.size() ? 1 : 0);
        if (share == 0) continue;
        starts.push_back(std::async(std::launch::async, [&, i, share] {
            std::vector<std::string> prompts;
            for (int k = 0; k < share; ++k)
                prompts.push_back(fmt::format("t{} [[fake latency_ms={}]]", k, prompt_ms));
            return agentd::bench::job_ids(
                ds[i]->rpc("agents_start", agentd::bench::start_params(prompts), 60s));
        }));
    }
    json::array ids;
    for (auto& s : starts)
        for (auto& id : s.get()) ids.push_back(id);
    auto done = ds[0]->rpc("agents_wait", {{"jobs", ids}, {"timeout_ms", 120000}}, 130s);
    double ms = ms_since(t0);
    for (auto const& j : done.at("jobs").as_array())
        if (j.at("state").as_string() != "completed")
            throw std::runtime_error("job did not complete: " + json::serialize(j));
    return ms;
}

double wrk_rps(std::string const& wrk, agentd_process const& d, std::string const& body, int conns,
               std::chrono::seconds duration) {
    child_process p({wrk, "-t1", fmt::format("-c{}", conns), fmt::format("-d{}s", duration.count()),
                     "--latency", "-s", BENCH_SOURCE_DIR "/wrk_report.lua",
                     fmt::format("http://127.0.0.1:{}/rpc", d.port())},
                    {{"WRK_METHOD", "POST"}, {"WRK_BODY", body}, {"WRK_TOKEN", d.token()}});
    auto line = p.wait_for_line(std::regex(R"(^(\{"requests".*\})$)"), duration + 30s);
    p.wait_exit(10s);
    if (!line) throw std::runtime_error("wrk reported nothing: " + p.stderr_text());
    auto r = json::parse(*line).as_object();
    if (r.at("errors").to_number<std::int64_t>() != 0 ||
        r.at("non_2xx").to_number<std::int64_t>() != 0)
        throw std::runtime_error("wrk saw errors: " + *line);
    return r.at("requests").to_number<double>() * 1e6 / r.at("duration_us").to_number<double>();
}

// wrk against every instance at once; the summed requests per second.
double status_throughput(std::string const& wrk,
                         std::vector<std::unique_ptr<agentd_process>> const& ds,
                         std::chrono::seconds duration) {
    auto id = agentd::bench::job_ids(
        ds[0]->rpc("agents_start", agentd::bench::start_params({"s [[fake latency_ms=1]]"})))[0];
    for (auto const& d : ds)  // every instance has it (mirrored), finished
        d->rpc("agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", 10000}});
    auto body = agentd::bench::rpc_body("agents_status", {{"jobs", json::array{id}}});
    std::vector<std::future<double>> runs;
    for (auto const& d : ds)
        runs.push_back(std::async(
            std::launch::async, [&, p = d.get()] { return wrk_rps(wrk, *p, body, 16, duration); }));
    double sum = 0;
    for (auto& r : runs) sum += r.get();
    return sum;
}

// `jobs` short jobs, up to 100 per agents_start, each batch waited for.
void fan_out_short(agentd_process& d, int jobs) {
    for (int left = jobs; left > 0;) {
        int n = std::min(left, 100);
        std::vector<std::string> prompts(static_cast<std::size_t>(n), "c [[fake latency_ms=1]]");
        auto ids =
            agentd::bench::job_ids(d.rpc("agents_start", agentd::bench::start_params(prompts)));
        d.rpc("agents_wait", {{"jobs", ids}, {"timeout_ms", 60000}}, 70s);
        left -= n;
    }
}

// agentd's CPU ms per job over `jobs` short jobs (one agents_start of up to 100 tasks at a time).
double cpu_per_job(fake_upstream const& fake, std::string const& store, int jobs) {
    agentd_process d(fake.url(), flags(store));
    fan_out_short(d, 50);  // warm-up: connections, caches, the first rows
    auto before = agentd::bench::cpu_ms(d.pid());
    fan_out_short(d, jobs);
    return (agentd::bench::cpu_ms(d.pid()) - before) / jobs;
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    auto wrk = agentd::bench::find_program("wrk");
    if (!wrk || !std::filesystem::exists("/usr/lib/postgresql/15/bin/initdb")) {
        fmt::print("cluster_bench: skipped, {} not installed\n", !wrk ? "wrk" : "postgresql-15");
        agentd::bench::write_result(opts, "cluster.md",
                                    "Not measured: wrk or postgresql-15 was not installed.\n");
        return 0;
    }
    int const jobs = opts.quick ? 100 : 1000;
    auto const duration = opts.quick ? 1s : 5s;
    std::vector<int> const counts = opts.quick ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 3};
    pg_cluster pg;
    if (!pg.running()) pg.start();
    fake_upstream fake(FAKE_OPENCODE_PATH);

    json::array rows;
    std::string md = fmt::format(
        "| instances | one job (ms) | {} jobs (ms) | ratio | agents_status req/s (summed) |\n"
        "|---|---|---|---|---|\n",
        jobs);
    for (int n : counts) {
        auto ds = instances(fake, pg.create_database(), n);
        double one = fan_out(ds, 1);
        double many = fan_out(ds, jobs);
        double rps = status_throughput(*wrk, ds, duration);
        fmt::print(
            "{} instance(s): 1 job {:.0f} ms, {} jobs {:.0f} ms (ratio {:.3f}), "
            "agents_status {:.0f} req/s summed\n",
            n, one, jobs, many, many / one, rps);
        md += fmt::format("| {} | {:.0f} | {:.0f} | {:.3f} | {:.0f} |\n", n, one, many, many / one,
                          rps);
        rows.push_back({{"instances", n},
                        {"one_ms", one},
                        {"many_ms", many},
                        {"jobs", jobs},
                        {"ratio", many / one},
                        {"status_rps", rps}});
    }
    int const cpu_jobs = opts.quick ? 200 : 2000;
    double on_pg = cpu_per_job(fake, pg.create_database(), cpu_jobs);
    double on_sqlite = cpu_per_job(fake, "", cpu_jobs);
    fmt::print("agentd CPU per job lifecycle: PostgreSQL {:.3f} ms, SQLite {:.3f} ms ({:.2f}x)\n",
               on_pg, on_sqlite, on_pg / on_sqlite);
    md += fmt::format(
        "\nagentd CPU per job lifecycle ({} jobs): PostgreSQL {:.3f} ms, SQLite {:.3f} ms "
        "({:.2f}×; the database server's own CPU is not counted).\n",
        cpu_jobs, on_pg, on_sqlite, on_pg / on_sqlite);
    json::object out{{"fan_out", rows},
                     {"cpu_ms_per_job", {{"postgres", on_pg}, {"sqlite", on_sqlite}}}};
    agentd::bench::write_result(opts, "cluster.json", json::serialize(out));
    agentd::bench::write_result(opts, "cluster.md", md);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "cluster_bench: {}\n", e.what());
    return 1;
}
