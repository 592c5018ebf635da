// Scale and memory: 1 000 running jobs (prompts the fake upstream holds for an hour) and 10 000
// queued behind the launch gate. Measures agentd's VmRSS before and after each step (per job,
// excluding output: no job has any yet) and its CPU time (utime + stime) over a quiet window
// while the 1 000 running jobs wait on the upstream and 1 000 agents_wait calls are blocked on
// them, which must be ~0. Then, on a fresh agentd, 10 000 finished jobs with a 4 KiB output each
// (the retained cap, --max-retained-jobs): VmRSS per finished job and the database's size (SQLite
// file and WAL, while running and after a graceful stop). Usage: scale_bench [--quick] [--out DIR]
// (scale.json, scale.md). With SCALE_BENCH_MARK set, runs `$SCALE_BENCH_MARK PID LABEL` at each
// RSS reading (a heap profiler's snapshot: vgdb --pid=PID detailed_snapshot FILE under massif).
#include "bench_util.hpp"
#include "parallel_client.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::test::fake_upstream;

struct setup {
    int running;
    int queued;
    std::chrono::milliseconds settle;  // for agentd to read the last wait requests
    std::chrono::milliseconds window;  // measured
};

constexpr int per_call = 1000;  // tasks per agents_start

// VmRSS of agentd at a measuring point, after the SCALE_BENCH_MARK hook (if any) has run there.
long rss_at(agentd_process& d, std::string const& label) {
    if (char const* mark = std::getenv("SCALE_BENCH_MARK"); mark && *mark) {
        auto cmd = fmt::format("{} {} {}", mark, d.pid(), label);
        if (std::system(cmd.c_str()) != 0) fmt::print(stderr, "scale_bench: `{}` failed\n", cmd);
    }
    return agentd::bench::rss_kib(d.pid());
}

void start_jobs(agentd_process& d, int count, std::string const& prompt,
                json::array* ids = nullptr) {
    for (int done = 0; done < count;) {
        int batch = std::min(per_call, count - done);
        std::vector<std::string> prompts(static_cast<std::size_t>(batch), prompt);
        auto started = d.rpc("agents_start", agentd::bench::start_params(prompts), 60s);
        if (ids)
            for (auto const& id : agentd::bench::job_ids(started)) ids->push_back(id);
        done += batch;
    }
}

// CPU time of `pid` over `window` while `waiters` agents_wait calls (one per job) are blocked.
double idle_cpu_ms(agentd_process& d, json::array const& jobs, setup const& s) {
    std::vector<std::string> bodies;
    // The waits time out by themselves shortly after the window, so nothing needs stopping.
    auto wait_ms = (s.settle + s.window + 500ms).count();
    for (auto const& id : jobs)
        bodies.push_back(agentd::bench::rpc_body(
            "agents_wait", {{"jobs", json::array{id}}, {"timeout_ms", wait_ms}}));
    std::mutex m;
    std::condition_variable cv;
    bool sent = false;
    std::thread client([&] {
        agentd::bench::post_all(d.port(), d.auth(), bodies, s.window + 30s, [&] {
            std::lock_guard lock(m);
            sent = true;
            cv.notify_all();
        });
    });
    {
        std::unique_lock lock(m);
        cv.wait_for(lock, 60s, [&] { return sent; });
    }
    // agentd may still be reading the last requests: a moment for them to settle, then the
    // measured window (these are measurement intervals, not waits for a condition).
    std::this_thread::sleep_for(s.settle);
    double before = agentd::bench::cpu_ms(d.pid());
    std::this_thread::sleep_for(s.window);
    double used = agentd::bench::cpu_ms(d.pid()) - before;
    client.join();  // the waits time out by themselves
    return used;
}

// The retained-jobs figure: `count` finished jobs with `output_bytes` of output each, the cap.
struct retained_result {
    int count;
    long rss_warm_kib;
    long rss_kib;
    std::uintmax_t db_bytes_live;  // agentd.db + -wal while it runs
    std::uintmax_t db_bytes;       // agentd.db after a graceful stop
    std::uintmax_t wal_bytes;      // agentd.db-wal after it (0: checkpointed and removed)
};

std::uintmax_t file_size_or_0(std::filesystem::path const& p) {
    std::error_code ec;
    auto n = std::filesystem::file_size(p, ec);
    return ec ? 0 : n;
}

// agentd's gauge agentd_jobs{state="STATE"} from /metrics (the bench token is the admin's).
long jobs_in_state(agentd_process& d, std::string const& state) {
    auto r = agentd::test::http_request(d.port(), "GET", "/metrics", {}, d.auth(), 10s);
    std::smatch m;
    std::regex re("agentd_jobs\\{state=\"" + state + "\"\\} (\\d+)");
    return std::regex_search(r.body, m, re) ? std::stol(m[1]) : -1;
}

retained_result retained(int count, int output_bytes) {
    fake_upstream fake(FAKE_OPENCODE_PATH);
    auto const cap = std::to_string(count);
    agentd_process d(
        fake.url(), {"--max-running", "256", "--max-queued", std::to_string(count + per_call),
                     "--max-tasks-per-call", std::to_string(per_call), "--max-retained-jobs", cap});
    start_jobs(d, 50, "warm [[fake latency_ms=0]]");
    if (!fake.wait_counter("prompts_completed", 50, 30s))
        throw std::runtime_error("warm-up jobs did not finish");
    long const rss_warm = rss_at(d, "retained-warm");

    // The warm-up jobs are the oldest: past the cap they are the ones dropped.
    start_jobs(d, count, fmt::format("done [[fake latency_ms=0 output_bytes={}]]", output_bytes));
    auto const until = std::chrono::steady_clock::now() + 300s;
    while (jobs_in_state(d, "completed") < count || jobs_in_state(d, "queued") != 0 ||
           jobs_in_state(d, "running") != 0) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("the retained jobs did not all finish");
        std::this_thread::sleep_for(100ms);
    }
    long const rss = rss_at(d, "retained");
    auto const db = d.state_dir() / "agentd.db";
    auto const wal = d.state_dir() / "agentd.db-wal";
    auto const live = file_size_or_0(db) + file_size_or_0(wal);
    if (d.stop(60s) != 0) throw std::runtime_error("agentd did not stop cleanly");
    return {count, rss_warm, rss, live, file_size_or_0(db), file_size_or_0(wal)};
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    setup s = opts.quick ? setup{100, 1000, 200ms, 500ms} : setup{1000, 10000, 1s, 5s};
    long rss0 = 0, rss1 = 0, rss2 = 0;
    std::int64_t connections = 0;  // upstream connections open while the jobs run
    double cpu = 0;
    std::size_t waits = 0;
    {
        fake_upstream fake(FAKE_OPENCODE_PATH);
        agentd_process d(fake.url(), {"--max-running", std::to_string(s.running), "--max-queued",
                                      std::to_string(s.queued + per_call), "--max-tasks-per-call",
                                      std::to_string(per_call), "--max-connections",
                                      std::to_string(s.running + 256)});

        // Warm-up: the first jobs pay for pools, SQLite statements and allocator arenas.
        start_jobs(d, 50, "warm [[fake latency_ms=0]]");
        if (!fake.wait_counter("prompts_completed", 50, 30s))
            throw std::runtime_error("warm-up jobs did not finish");
        rss0 = rss_at(d, "warm");

        json::array running_ids;
        start_jobs(d, s.running, "long [[fake latency_ms=3600000]]", &running_ids);
        if (!fake.wait_counter("prompts_in_flight", s.running, 120s))
            throw std::runtime_error("the running jobs did not all reach the upstream");
        // The launch burst's upstream connections go back to the pool, which closes idle ones
        // after 2 s: what stays is what the running jobs hold (a synchronous prompt keeps its
        // connection, so with it this waits the whole bound and the connections remain).
        fake.wait_counter_at_most("connections_open", 2, 5s);
        connections = fake.stats().at("connections_open").as_int64();
        rss1 = rss_at(d, "running");

        start_jobs(d, s.queued, "queued [[fake latency_ms=0]]");
        rss2 = rss_at(d, "queued");

        cpu = idle_cpu_ms(d, running_ids, s);
        waits = running_ids.size();
    }  // agentd and its hour-long jobs end here, before the retained-jobs run

    constexpr int output_bytes = 4096;
    auto const kept = retained(opts.quick ? 500 : 10000, output_bytes);

    double per_running = static_cast<double>(rss1 - rss0) * 1024.0 / s.running;
    double per_queued = static_cast<double>(rss2 - rss1) * 1024.0 / s.queued;
    double per_finished =
        static_cast<double>(kept.rss_kib - kept.rss_warm_kib) * 1024.0 / kept.count;
    double window_ms = static_cast<double>(s.window.count());
    auto const mib = [](std::uintmax_t b) { return static_cast<double>(b) / (1 << 20); };
    fmt::print("== scale: {} running + {} queued jobs\n", s.running, s.queued);
    fmt::print("  VmRSS warm {} KiB, +running {} KiB, +queued {} KiB\n", rss0, rss1, rss2);
    fmt::print("  upstream connections open while {} jobs run: {}\n", s.running, connections);
    fmt::print("  per running job {:.0f} B, per queued job {:.0f} B\n", per_running, per_queued);
    fmt::print("  CPU while {} jobs and {} waits idle: {:.0f} ms in {} ms ({:.2f} %)\n", s.running,
               waits, cpu, window_ms, 100.0 * cpu / window_ms);
    fmt::print("== retained: {} finished jobs of {} B output\n", kept.count, output_bytes);
    fmt::print("  VmRSS warm {} KiB, with them {} KiB ({:.0f} B per job)\n", kept.rss_warm_kib,
               kept.rss_kib, per_finished);
    fmt::print("  database {:.1f} MiB while running (db + wal), {:.1f} MiB + wal {} B after stop\n",
               mib(kept.db_bytes_live), mib(kept.db_bytes), kept.wal_bytes);

    std::string md = fmt::format(
        "| measure | value |\n|---|---:|\n"
        "| VmRSS after warm-up (50 jobs done) | {} KiB |\n"
        "| VmRSS with {} running jobs | {} KiB |\n"
        "| VmRSS with {} running + {} queued | {} KiB |\n"
        "| upstream connections open while they run (the fake's count) | {} |\n"
        "| **RSS per running job** (session, event-stream marks, coroutines) | **{:.1f} KiB** |\n"
        "| **RSS per queued job** | **{:.2f} KiB** |\n"
        "| **CPU while {} jobs run and {} agents_wait block** | **{:.0f} ms in {:.0f} s "
        "({:.2f} %)** |\n",
        rss0, s.running, rss1, s.running, s.queued, rss2, connections, per_running / 1024,
        per_queued / 1024, s.running, waits, cpu, window_ms / 1000, 100.0 * cpu / window_ms);
    md += fmt::format(
        "| VmRSS with {} finished jobs retained ({} B output each; warm {} KiB) | {} KiB |\n"
        "| **RSS per finished retained job** | **{:.2f} KiB** |\n"
        "| **Database with them** (agentd.db after a graceful stop; db + WAL while running) | "
        "**{:.1f} MiB** ({:.1f} MiB) |\n",
        kept.count, output_bytes, kept.rss_warm_kib, kept.rss_kib, per_finished / 1024,
        mib(kept.db_bytes + kept.wal_bytes), mib(kept.db_bytes_live));
    json::object j{{"quick", opts.quick},
                   {"running", s.running},
                   {"queued", s.queued},
                   {"rss_warm_kib", rss0},
                   {"rss_running_kib", rss1},
                   {"rss_queued_kib", rss2},
                   {"upstream_connections_running", connections},
                   {"bytes_per_running_job", per_running},
                   {"bytes_per_queued_job", per_queued},
                   {"idle_cpu_ms", cpu},
                   {"idle_window_ms", window_ms},
                   {"retained_jobs", kept.count},
                   {"retained_output_bytes", output_bytes},
                   {"retained_rss_warm_kib", kept.rss_warm_kib},
                   {"retained_rss_kib", kept.rss_kib},
                   {"bytes_per_retained_job", per_finished},
                   {"retained_db_bytes_live", kept.db_bytes_live},
                   {"retained_db_bytes", kept.db_bytes},
                   {"retained_wal_bytes", kept.wal_bytes}};
    agentd::bench::write_result(opts, "scale.json", json::serialize(j) + "\n");
    agentd::bench::write_result(opts, "scale.md", md);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "scale_bench: {}\n", e.what());
    return 1;
}
