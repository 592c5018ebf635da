// Upstream event benchmark (#16): N live jobs (64 and 1 000) on one fake OpenCode server whose
// /global/event floods them with text deltas and tool-part updates. Reports the events agentd
// parses and applies per CPU-second (one io_context thread: one core) and per wall second, and
// the latency from the fake publishing a tool update to its agents_event on a /ws subscriber.
// Usage: event_bench [--quick] [--out DIR]  (writes events.json, events.csv, events.md)
#include "bench_util.hpp"
#include "integration/ws_client.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::bench::clock_type;
using agentd::test::fake_upstream;
using agentd::test::ws_client;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

// One agents_event as the subscriber saw it: when, which job, and the activity title's
// "seq=S t=NS" (the fake's send time) when it carries one.
struct push {
    std::int64_t recv_ns = 0;
    std::string job;
    std::int64_t sent_ns = -1;
    bool end_mark = false;
};

// Reads agents_event pushes on a /ws subscription to all jobs, on its own thread.
class subscriber {
  public:
    explicit subscriber(agentd_process const& d)
        : ws_(d.port(), {{"Authorization", "Bearer " + d.token()}}) {
        ws_.send(agentd::bench::rpc_body("agents_subscribe", {{"all", true}}));
        for (;;) {
            auto text = ws_.receive(10s);
            if (!text) throw std::runtime_error("no reply to agents_subscribe");
            auto v = json::parse(*text);
            if (v.as_object().contains("id")) break;
        }
        reader_ = std::thread([this] { run(); });
    }
    ~subscriber() {
        stop_ = true;
        reader_.join();
    }
    subscriber(subscriber const&) = delete;
    subscriber& operator=(subscriber const&) = delete;

    // Pushes received since index `from`.
    std::vector<push> since(std::size_t from) {
        std::lock_guard lock(m_);
        return {pushes_.begin() + static_cast<std::ptrdiff_t>(std::min(from, pushes_.size())),
                pushes_.end()};
    }
    std::size_t count() {
        std::lock_guard lock(m_);
        return pushes_.size();
    }
    // The receipt time of the first end mark at index >= from; throws after `timeout`.
    std::int64_t wait_end_mark(std::size_t from, std::chrono::milliseconds timeout) {
        std::unique_lock lock(m_);
        std::int64_t at = -1;
        bool ok = cv_.wait_for(lock, timeout, [&] {
            for (std::size_t i = from; i < pushes_.size(); ++i)
                if (pushes_[i].end_mark) return at = pushes_[i].recv_ns, true;
            return false;
        });
        if (!ok)
            throw std::runtime_error(
                "no push of the flood's last tool update (does agentd apply tool parts?)");
        return at;
    }

  private:
    void run() {
        while (!stop_) {
            auto text = ws_.receive(50ms);
            if (!text) continue;
            push p;
            p.recv_ns = now_ns();
            auto v = json::parse(*text);
            auto const* method = v.as_object().if_contains("method");
            if (!method || *method != "agents_event") continue;
            auto const& job = v.at("params").at("job").as_object();
            p.job = job.at("id").as_string();
            if (auto const* a = job.if_contains("activity"); a && a->is_object()) {
                if (auto const* title = a->as_object().if_contains("title");
                    title && title->is_string()) {
                    std::string_view t = title->get_string();
                    p.end_mark = t.starts_with("end ");
                    if (auto at = t.find(" t="); at != std::string_view::npos) {
                        std::int64_t ns = 0;
                        auto [end, ec] =
                            std::from_chars(t.data() + at + 3, t.data() + t.size(), ns);
                        if (ec == std::errc{}) p.sent_ns = ns;
                    }
                }
            }
            std::lock_guard lock(m_);
            pushes_.push_back(std::move(p));
            cv_.notify_all();
        }
    }

    ws_client ws_;
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<push> pushes_;
    std::atomic<bool> stop_ = false;
    std::thread reader_;
};

// Pushes per job: the mean per job per second, the most any job got within one second, and the
// shortest time between two pushes of one job (≈ 250 ms where agentd merged changes).
struct throttle {
    int max_per_s = 0;
    double mean_per_s = 0;
    double min_gap_ms = 0;
};

throttle throttle_of(std::vector<push> const& pushes, double seconds) {
    std::map<std::string, std::vector<std::int64_t>> per_job;
    for (auto const& p : pushes) per_job[p.job].push_back(p.recv_ns);
    throttle t;
    std::size_t total = 0;
    std::int64_t min_gap = std::numeric_limits<std::int64_t>::max();
    for (auto& [job, times] : per_job) {
        std::sort(times.begin(), times.end());
        total += times.size();
        std::size_t lo = 0;
        for (std::size_t hi = 0; hi < times.size(); ++hi) {
            while (times[hi] - times[lo] >= 1'000'000'000) ++lo;
            t.max_per_s = std::max(t.max_per_s, static_cast<int>(hi - lo + 1));
            if (hi > 0) min_gap = std::min(min_gap, times[hi] - times[hi - 1]);
        }
    }
    if (min_gap != std::numeric_limits<std::int64_t>::max())
        t.min_gap_ms = static_cast<double>(min_gap) / 1e6;
    if (!per_job.empty() && seconds > 0)
        t.mean_per_s = static_cast<double>(total) / static_cast<double>(per_job.size()) / seconds;
    return t;
}

std::string flood_url(std::int64_t events, std::string const& kind, std::int64_t rate,
                      std::int64_t gap_ms) {
    return fmt::format(
        "/_fake/flood?events={}&kind={}&sessions=all&end_mark=1&rate={}"
        "&tool_gap_ms={}",
        events, kind, rate, gap_ms);
}

void start_flood(fake_upstream const& fake, std::string const& url, std::size_t jobs) {
    auto r = agentd::test::http_request(fake.port(), "POST", url, "");
    if (r.status != 200) throw std::runtime_error("flood refused: " + r.body);
    auto sessions = json::parse(r.body).at("sessions").as_int64();
    if (sessions != static_cast<std::int64_t>(jobs))
        throw std::runtime_error(fmt::format("flood over {} sessions, not {}", sessions, jobs));
}

struct throughput_row {
    std::size_t jobs;
    std::string kind;
    std::int64_t events;
    std::int64_t tools;
    double cpu_ms;
    double wall_ms;
    throttle pushes;
    double per_cpu_s() const { return static_cast<double>(events) / (cpu_ms / 1000); }
    double per_wall_s() const { return static_cast<double>(events) / (wall_ms / 1000); }
};

struct latency_row {
    std::size_t jobs;
    std::int64_t rate;
    std::int64_t events;
    std::int64_t tools;
    std::vector<double> ms;  // per pushed tool update
    double cpu_ms;
    double wall_ms;
    throttle pushes;
};

// The flood's counters before a run, to tell this run's tool updates from earlier ones.
std::int64_t counter(fake_upstream const& fake, char const* name) {
    return fake.stats().at(name).as_int64();
}

throughput_row run_throughput(fake_upstream& fake, agentd_process& d, subscriber& sub,
                              std::size_t jobs, std::string const& kind, std::int64_t events,
                              std::chrono::seconds timeout) {
    std::int64_t const tools0 = counter(fake, "flood_tools");
    std::int64_t const flooded0 = counter(fake, "flood_events");
    std::size_t const from = sub.count();
    double const cpu0 = agentd::bench::cpu_ms(d.pid());
    std::int64_t const t0 = now_ns();
    start_flood(fake, flood_url(events, kind, 0, 0), jobs);
    std::int64_t const t_end = sub.wait_end_mark(from, timeout);
    double const cpu = agentd::bench::cpu_ms(d.pid()) - cpu0;
    if (!fake.wait_counter("flood_events", flooded0 + events, 10s))
        throw std::runtime_error("the flood did not finish");
    throughput_row row{jobs,   kind,
                       events, counter(fake, "flood_tools") - tools0,
                       cpu,    static_cast<double>(t_end - t0) / 1e6,
                       {}};
    row.pushes = throttle_of(sub.since(from), row.wall_ms / 1000);
    return row;
}

latency_row run_latency(fake_upstream& fake, agentd_process& d, subscriber& sub, std::size_t jobs,
                        std::int64_t rate, std::chrono::milliseconds duration,
                        std::chrono::milliseconds warm_up) {
    std::int64_t const events = rate * (duration + warm_up).count() / 1000;
    std::int64_t const tools0 = counter(fake, "flood_tools");
    std::size_t const from = sub.count();
    double const cpu0 = agentd::bench::cpu_ms(d.pid());
    std::int64_t const t0 = now_ns();
    // A job's next tool update 500 ms after its last one: each follows >= 250 ms of quiet even
    // when it reaches agentd up to 250 ms late, so agentd pushes it at once rather than merging
    // it into a later push. The first `warm_up` of the flood is not timed: after the quiet
    // before it, this VM's first burst (every job's first update at once) waits on idle vCPUs
    // waking up (BENCHMARKS.md).
    start_flood(fake, flood_url(events, "mixed", rate, 500), jobs);
    std::int64_t const timed_from = t0 + std::chrono::nanoseconds(warm_up).count();
    std::int64_t const t_end = sub.wait_end_mark(from, duration + warm_up + 120s);
    latency_row row{jobs,
                    rate,
                    events,
                    counter(fake, "flood_tools") - tools0,
                    {},
                    agentd::bench::cpu_ms(d.pid()) - cpu0,
                    static_cast<double>(t_end - t0) / 1e6,
                    {}};
    auto pushes = sub.since(from);
    for (auto const& p : pushes)
        if (p.sent_ns >= timed_from)
            row.ms.push_back(static_cast<double>(p.recv_ns - p.sent_ns) / 1e6);
    row.pushes = throttle_of(pushes, row.wall_ms / 1000);
    return row;
}

struct results {
    std::vector<throughput_row> throughput;
    std::vector<latency_row> latency;
};

void measure(fake_upstream& fake, std::size_t jobs, bool quick, results& out) {
    agentd_process d(fake.url(), {"--max-running", "1000", "--max-tasks-per-call", "1000",
                                  "--max-connections", "1256"});
    std::vector<std::string> prompts(jobs, "busy [[fake latency_ms=600000]]");
    auto started = d.rpc("agents_start", agentd::bench::start_params(prompts), 120s);
    auto ids = agentd::bench::job_ids(started);
    if (!fake.wait_counter("prompts_in_flight", static_cast<std::int64_t>(jobs), 120s))
        throw std::runtime_error("the jobs did not all reach the upstream");
    if (!fake.wait_counter("event_subscribers", 1, 30s))
        throw std::runtime_error("agentd does not follow the event stream");
    subscriber sub(d);
    // agentd marks a job running once its prompt is sent; the state pushes of the start are
    // over before the first flood (a measurement gap, not a wait for a condition).
    std::this_thread::sleep_for(500ms);

    // Warm-up: allocator arenas, hash tables of the parts, the /ws send path.
    auto const timeout = quick ? 30s : 300s;
    run_throughput(fake, d, sub, jobs, "mixed", quick ? 2'000 : 20'000, timeout);
    std::vector<std::string> kinds = quick ? std::vector<std::string>{"mixed"}
                                           : std::vector<std::string>{"delta", "tool", "mixed"};
    std::int64_t const events = quick ? 20'000 : 400'000;
    for (auto const& kind : kinds) {
        std::this_thread::sleep_for(400ms);  // the end-mark job's quiet (>= 250 ms)
        out.throughput.push_back(run_throughput(fake, d, sub, jobs, kind, events, timeout));
    }
    std::this_thread::sleep_for(400ms);
    out.latency.push_back(run_latency(fake, d, sub, jobs, 10'000, quick ? 1500ms : 10s, 1s));

    d.rpc("agents_cancel", {{"jobs", ids}}, 120s);
    if (!fake.wait_counter_at_most("prompts_in_flight", 0, 60s))
        throw std::runtime_error("the jobs were not cancelled upstream");
}

void report(agentd::bench::options const& opts, results const& r) {
    std::string md =
        "| live jobs | events | kind (tool updates) | agentd CPU | **events / CPU-s** | "
        "wall | events / wall-s | pushes / job / s (max in 1 s; min gap) | target |\n"
        "|---:|---:|---|---:|---:|---:|---:|---:|---|\n";
    std::string csv =
        "test,jobs,kind,events,tools,cpu_ms,wall_ms,per_cpu_s,per_wall_s,"
        "p50_ms,p99_ms,max_ms,pushes_max_per_s\n";
    json::array jt;
    json::array jl;
    fmt::print("== throughput: events as fast as the readers take them, over N live jobs\n");
    fmt::print("{:>5} {:>7} {:>6} {:>8} {:>10} {:>12} {:>9} {:>12} {:>8}\n", "jobs", "kind",
               "tools", "events", "cpu ms", "events/cpu-s", "wall ms", "events/wall-s", "push/s");
    for (auto const& t : r.throughput) {
        fmt::print(
            "{:>5} {:>7} {:>6} {:>8} {:>10.0f} {:>12.0f} {:>9.0f} {:>12.0f} {:>5}/{:.1f}/{:.0f}\n",
            t.jobs, t.kind, t.tools, t.events, t.cpu_ms, t.per_cpu_s(), t.wall_ms, t.per_wall_s(),
            t.pushes.max_per_s, t.pushes.mean_per_s, t.pushes.min_gap_ms);
        md += fmt::format(
            "| {} | {} | {} ({}) | {:.0f} ms | **{:.0f}** | {:.0f} ms | {:.0f} | {:.2f} ({}; "
            "{:.0f} ms) | {} |\n",
            t.jobs, t.events, t.kind, t.tools, t.cpu_ms, t.per_cpu_s(), t.wall_ms, t.per_wall_s(),
            t.pushes.mean_per_s, t.pushes.max_per_s, t.pushes.min_gap_ms,
            t.per_cpu_s() >= 100'000 ? "≥ 100 000/s ✓" : "≥ 100 000/s ✗");
        csv += fmt::format("throughput,{},{},{},{},{:.1f},{:.1f},{:.0f},{:.0f},,,,{}\n", t.jobs,
                           t.kind, t.events, t.tools, t.cpu_ms, t.wall_ms, t.per_cpu_s(),
                           t.per_wall_s(), t.pushes.max_per_s);
        jt.push_back({{"jobs", t.jobs},
                      {"kind", t.kind},
                      {"events", t.events},
                      {"tool_updates", t.tools},
                      {"cpu_ms", t.cpu_ms},
                      {"wall_ms", t.wall_ms},
                      {"events_per_cpu_s", t.per_cpu_s()},
                      {"events_per_wall_s", t.per_wall_s()},
                      {"pushes_max_per_job_s", t.pushes.max_per_s},
                      {"pushes_mean_per_job_s", t.pushes.mean_per_s},
                      {"pushes_min_gap_ms", t.pushes.min_gap_ms}});
    }
    md +=
        "\n| live jobs | rate | tool updates sent | pushes timed | p50 | p99 | max | agentd CPU "
        "| pushes / job / s (max in 1 s; min gap) | target |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    fmt::print("\n== latency: tool update published by the fake -> agents_event on /ws\n");
    fmt::print("{:>5} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>7} {:>8}\n", "jobs", "rate", "tools",
               "timed", "p50 ms", "p99 ms", "max ms", "cpu %", "push/s");
    for (auto const& l : r.latency) {
        double const p50 = agentd::bench::percentile(l.ms, 50);
        double const p99 = agentd::bench::percentile(l.ms, 99);
        double const max = agentd::bench::percentile(l.ms, 100);
        double const cpu_pct = 100 * l.cpu_ms / l.wall_ms;
        fmt::print("{:>5} {:>7} {:>7} {:>7} {:>8.2f} {:>8.2f} {:>8.2f} {:>7.1f} {:>5}/{:.1f}\n",
                   l.jobs, l.rate, l.tools, l.ms.size(), p50, p99, max, cpu_pct, l.pushes.max_per_s,
                   l.pushes.mean_per_s);
        md += fmt::format(
            "| {} | {} events/s | {} | {} | {:.2f} ms | **{:.2f} ms** | {:.2f} ms | {:.1f} % | "
            "{:.2f} ({}; {:.0f} ms) | {} |\n",
            l.jobs, l.rate, l.tools, l.ms.size(), p50, p99, max, cpu_pct, l.pushes.mean_per_s,
            l.pushes.max_per_s, l.pushes.min_gap_ms, p99 < 5 ? "p99 < 5 ms ✓" : "p99 < 5 ms ✗");
        csv +=
            fmt::format("latency,{},mixed,{},{},{:.1f},{:.1f},,,{:.3f},{:.3f},{:.3f},{}\n", l.jobs,
                        l.events, l.tools, l.cpu_ms, l.wall_ms, p50, p99, max, l.pushes.max_per_s);
        jl.push_back({{"jobs", l.jobs},
                      {"rate", l.rate},
                      {"events", l.events},
                      {"tool_updates", l.tools},
                      {"pushes_timed", l.ms.size()},
                      {"p50_ms", p50},
                      {"p99_ms", p99},
                      {"max_ms", max},
                      {"cpu_ms", l.cpu_ms},
                      {"wall_ms", l.wall_ms},
                      {"pushes_max_per_job_s", l.pushes.max_per_s},
                      {"pushes_mean_per_job_s", l.pushes.mean_per_s},
                      {"pushes_min_gap_ms", l.pushes.min_gap_ms}});
    }
    json::object all{{"quick", opts.quick}, {"throughput", jt}, {"latency", jl}};
    agentd::bench::write_result(opts, "events.json", json::serialize(all) + "\n");
    agentd::bench::write_result(opts, "events.csv", csv);
    agentd::bench::write_result(opts, "events.md", md);
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    fake_upstream fake(FAKE_OPENCODE_PATH);
    results r;
    std::vector<std::size_t> sizes =
        opts.quick ? std::vector<std::size_t>{64} : std::vector<std::size_t>{64, 1000};
    for (auto jobs : sizes) measure(fake, jobs, opts.quick, r);
    report(opts, r);
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "event_bench: {}\n", e.what());
    return 1;
}
