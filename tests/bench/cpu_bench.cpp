// CPU per job lifecycle, as instruction counts from valgrind --tool=callgrind (stable on a noisy
// machine, where CPU time is not): agentd runs under callgrind twice against the fake upstream,
// both times with the same warm-up, the second time with K more jobs, each a full lifecycle:
// agents_start (one task) -> session create -> prompt -> completed -> agents_wait returns. The
// difference over K is the cost of one job. Skips when valgrind is missing.
// Usage: cpu_bench [--quick] [--out DIR] (cpu.json, cpu.md; the callgrind files in DIR too)
#include "bench_util.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <fstream>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::test::fake_upstream;
using agentd::test::http_connection;

// One lifecycle per iteration on one keep-alive connection, as a script using agentd would.
void run_jobs(agentd_process& d, int count) {
    http_connection conn(d.port());
    for (int i = 0; i < count; ++i) {
        auto start = agentd::bench::rpc_body(
            "agents_start", agentd::bench::start_params({"cpu [[fake latency_ms=0]]"}));
        auto started = json::parse(conn.request("POST", "/rpc", start, d.auth(), 60s).body);
        auto ids = agentd::bench::job_ids(started.at("result"));
        auto wait = agentd::bench::rpc_body("agents_wait", {{"jobs", ids}, {"timeout_ms", 60000}});
        auto done = json::parse(conn.request("POST", "/rpc", wait, d.auth(), 70s).body);
        if (done.at("result").at("jobs").at(0).at("state").as_string() != "completed")
            throw std::runtime_error("job did not complete: " + json::serialize(done));
    }
}

// Total instructions (Ir) in a callgrind output file.
std::int64_t callgrind_total(fs::path const& file) {
    std::ifstream in(file);
    std::string line;
    std::int64_t total = -1;
    while (std::getline(in, line)) {
        if (line.starts_with("summary:")) total = std::stoll(line.substr(8));
        if (line.starts_with("totals:")) total = std::stoll(line.substr(7));
    }
    if (total < 0) throw std::runtime_error("no totals in " + file.string());
    return total;
}

// agentd under callgrind: warm-up, then `jobs` lifecycles, then SIGTERM; its instruction count.
std::int64_t instructions(std::string const& valgrind, fake_upstream& fake, fs::path const& file,
                          int warmup, int jobs) {
    agentd_process d(fake.url(), {},
                     {valgrind, "--tool=callgrind", "--callgrind-out-file=" + file.string()});
    run_jobs(d, warmup);
    run_jobs(d, jobs);
    auto status = d.stop(120s);
    if (status != 0) throw std::runtime_error("agentd under callgrind did not exit cleanly");
    return callgrind_total(file);
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    auto valgrind = agentd::bench::find_program("valgrind");
    if (!valgrind) {
        fmt::print("cpu_bench: skipped, valgrind not installed\n");
        agentd::bench::write_result(opts, "cpu.md", "Not measured: valgrind was not installed.\n");
        return 0;
    }
    int const warmup = opts.quick ? 2 : 20;
    int const jobs = opts.quick ? 5 : 200;
    auto dir = opts.out.empty() ? fs::temp_directory_path() : opts.out;
    auto base_file = dir / "callgrind.base.out";
    auto jobs_file = dir / "callgrind.jobs.out";
    fake_upstream fake(FAKE_OPENCODE_PATH);
    auto base = instructions(*valgrind, fake, base_file, warmup, 0);
    auto with_jobs = instructions(*valgrind, fake, jobs_file, warmup, jobs);
    double per_job = static_cast<double>(with_jobs - base) / jobs;
    fmt::print("== CPU per job lifecycle (callgrind): base {} Ir, +{} jobs {} Ir, {:.0f} Ir/job\n",
               base, jobs, with_jobs, per_job);
    if (opts.out.empty()) {
        fs::remove(base_file);
        fs::remove(jobs_file);
    }
    std::string md = fmt::format(
        "| run | instructions (Ir) |\n|---|---:|\n"
        "| start, {} warm-up jobs, SIGTERM | {} |\n"
        "| same + {} more jobs | {} |\n"
        "| **per job lifecycle** | **{:.0f}** |\n",
        warmup, base, jobs, with_jobs, per_job);
    json::object j{{"quick", opts.quick}, {"warmup_jobs", warmup},     {"jobs", jobs},
                   {"base_ir", base},     {"with_jobs_ir", with_jobs}, {"ir_per_job", per_job}};
    agentd::bench::write_result(opts, "cpu.json", json::serialize(j) + "\n");
    agentd::bench::write_result(opts, "cpu.md", md);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "cpu_bench: {}\n", e.what());
    return 1;
}
