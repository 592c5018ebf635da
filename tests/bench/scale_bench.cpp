// Scale and memory: 1 000 running jobs (prompts the fake upstream holds for an hour) and 10 000
// queued behind the launch gate. Measures agentd's VmRSS before and after each step (per job,
// excluding output: no job has any yet) and its CPU time (utime + stime) over a quiet window
// while the 1 000 running jobs wait on the upstream and 1 000 agents_wait calls are blocked on
// them, which must be ~0. Usage: scale_bench [--quick] [--out DIR] (scale.json, scale.md)
#include "bench_util.hpp"
#include "parallel_client.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <condition_variable>
#include <mutex>
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

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    setup s = opts.quick ? setup{100, 1000, 200ms, 500ms} : setup{1000, 10000, 1s, 5s};
    fake_upstream fake(FAKE_OPENCODE_PATH);
    agentd_process d(fake.url(), {"--max-running", std::to_string(s.running), "--max-queued",
                                  std::to_string(s.queued + per_call), "--max-tasks-per-call",
                                  std::to_string(per_call), "--max-connections",
                                  std::to_string(s.running + 256)});

    // Warm-up: the first jobs pay for pools, SQLite statements and allocator arenas.
    start_jobs(d, 50, "warm [[fake latency_ms=0]]");
    if (!fake.wait_counter("prompts_completed", 50, 30s))
        throw std::runtime_error("warm-up jobs did not finish");
    long const rss0 = agentd::bench::rss_kib(d.pid());

    json::array running_ids;
    start_jobs(d, s.running, "long [[fake latency_ms=3600000]]", &running_ids);
    if (!fake.wait_counter("prompts_in_flight", s.running, 120s))
        throw std::runtime_error("the running jobs did not all reach the upstream");
    long const rss1 = agentd::bench::rss_kib(d.pid());

    start_jobs(d, s.queued, "queued [[fake latency_ms=0]]");
    long const rss2 = agentd::bench::rss_kib(d.pid());

    double cpu = idle_cpu_ms(d, running_ids, s);

    double per_running = static_cast<double>(rss1 - rss0) * 1024.0 / s.running;
    double per_queued = static_cast<double>(rss2 - rss1) * 1024.0 / s.queued;
    double window_ms = static_cast<double>(s.window.count());
    fmt::print("== scale: {} running + {} queued jobs\n", s.running, s.queued);
    fmt::print("  VmRSS warm {} KiB, +running {} KiB, +queued {} KiB\n", rss0, rss1, rss2);
    fmt::print("  per running job {:.0f} B, per queued job {:.0f} B\n", per_running, per_queued);
    fmt::print("  CPU while {} jobs and {} waits idle: {:.0f} ms in {} ms ({:.2f} %)\n", s.running,
               running_ids.size(), cpu, window_ms, 100.0 * cpu / window_ms);

    std::string md = fmt::format(
        "| measure | value |\n|---|---:|\n"
        "| VmRSS after warm-up (50 jobs done) | {} KiB |\n"
        "| VmRSS with {} running jobs | {} KiB |\n"
        "| VmRSS with {} running + {} queued | {} KiB |\n"
        "| **RSS per running job** (session, upstream connection, coroutine) | **{:.1f} KiB** |\n"
        "| **RSS per queued job** | **{:.2f} KiB** |\n"
        "| **CPU while {} jobs run and {} agents_wait block** | **{:.0f} ms in {:.0f} s "
        "({:.2f} %)** |\n",
        rss0, s.running, rss1, s.running, s.queued, rss2, per_running / 1024, per_queued / 1024,
        s.running, running_ids.size(), cpu, window_ms / 1000, 100.0 * cpu / window_ms);
    json::object j{{"quick", opts.quick},
                   {"running", s.running},
                   {"queued", s.queued},
                   {"rss_warm_kib", rss0},
                   {"rss_running_kib", rss1},
                   {"rss_queued_kib", rss2},
                   {"bytes_per_running_job", per_running},
                   {"bytes_per_queued_job", per_queued},
                   {"idle_cpu_ms", cpu},
                   {"idle_window_ms", window_ms}};
    agentd::bench::write_result(opts, "scale.json", json::serialize(j) + "\n");
    agentd::bench::write_result(opts, "scale.md", md);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "scale_bench: {}\n", e.what());
    return 1;
}
