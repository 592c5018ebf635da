// Hostile-client run (issue #14): one agentd on the fake OpenCode upstream takes trailer and
// chunk-extension floods, twice its connection cap of idle sockets, abandoned waits and
// WebSocket read-ahead while a normal client runs small jobs; a second agentd runs jobs on an
// evil upstream (endless trailer, endless SSE line, unknown-session part flood). Every 250 ms:
// each agentd's VmRSS and a /healthz on a fresh connection. Passes when RSS stays under
// baseline + 64 MiB, every /healthz answers within 100 ms, and every normal job completes.
#include "evil_upstream.hpp"
#include "hostile_attackers.hpp"
#include "hostile_net.hpp"
#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace hostile = agentd::test::hostile;
using namespace std::chrono_literals;
using hostile::clock_type;

constexpr long rss_margin_kib = 64 * 1024;
// Past this the run has failed anyway: stop early rather than let an unbounded daemon eat the
// machine's memory.
constexpr long rss_runaway_kib = 768 * 1024;
constexpr auto healthz_budget = 100ms;

long ms(clock_type::duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// True when the agentd binary knows `flag` (so the run works before and after it exists).
bool agentd_knows(std::string const& agentd, std::string const& flag) {
    std::string cmd = agentd + " --help 2>&1";
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    if (!p) return false;
    std::string text;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, p.get())) text.append(buf, n);
    return text.find(flag) != std::string::npos;
}

// One agentd child on a fresh state dir, its port and token.
struct daemon_under_test {
    std::string name;
    fs::path dir;
    std::unique_ptr<agentd::test::child_process> proc;
    int port = 0;
    std::string token;
    int next_id = 1;

    daemon_under_test(std::string const& agentd, std::string n, std::string const& upstream,
                      std::vector<std::string> extra)
        : name(std::move(n)),
          dir(fs::temp_directory_path() / fmt::format("agentd-hostile-{}-{}", ::getpid(), name)) {
        fs::remove_all(dir);
        // Warnings only: a line per request would dwarf what the attacks are meant to show.
        std::vector<std::string> argv{agentd,        "--listen",    "127.0.0.1:0",
                                      "--state-dir", dir.string(),  "--upstream-url",
                                      upstream,      "--log-level", "warn"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc = std::make_unique<agentd::test::child_process>(argv);
        auto p = proc->wait_for_line(std::regex(R"(agentd listening on http://127\.0\.0\.1:(\d+))"),
                                     10s);
        if (!p) throw std::runtime_error(name + " agentd did not start: " + proc->stderr_text());
        port = std::stoi(*p);
        std::ifstream in(dir / "token");
        std::getline(in, token);
    }
    ~daemon_under_test() {
        proc.reset();  // SIGKILL and reap, by PID
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    // One JSON-RPC call on `conn`; its result, or nullopt (with `why`) on any failure.
    // `transient`: the failure was the connection's or a 503, which a client retries.
    std::optional<json::object> call(agentd::test::http_connection& conn, std::string method,
                                     json::object params, std::string& why,
                                     bool* transient = nullptr) {
        if (transient) *transient = true;
        auto body = json::serialize(json::object{
            {"jsonrpc", "2.0"}, {"id", next_id++}, {"method", method}, {"params", params}});
        try {
            auto res =
                conn.request("POST", "/rpc", body, {{"Authorization", "Bearer " + token}}, 5s);
            auto v = json::parse(res.body);
            if (res.status == 200 && v.is_object() && v.as_object().contains("result") &&
                v.as_object()["result"].is_object())
                return v.as_object()["result"].as_object();
            why = fmt::format("{}: HTTP {} {}", method, res.status, res.body.substr(0, 200));
            if (transient) *transient = res.status == 503;
        } catch (std::exception const& e) {
            why = fmt::format("{}: {}", method, e.what());
        }
        return std::nullopt;
    }
};

std::string field(json::value const& v, std::string_view key) {
    auto const* o = v.if_object();
    auto const* s = o ? o->if_contains(key) : nullptr;
    return s && s->is_string() ? std::string(s->get_string()) : std::string{};
}

struct client_stats {
    long started = 0;
    long completed = 0;
    long not_completed = 0;  // ended in another state, or stuck
    long call_failures = 0;
    long retried_calls = 0;  // dropped by the daemon, then retried
    std::string first_failure;
    std::map<std::string, long> outcomes;  // by end state (evil driver)
    std::string first_job_error;
};

// A client of one agentd on one keep-alive connection: starts jobs and waits until they end.
// Like any client it retries a call the daemon dropped or refused with 503, for up to 5 s.
class job_client {
  public:
    job_client(daemon_under_test& d, client_stats& st, std::atomic<bool> const* give_up = nullptr)
        : d_(d), conn_(static_cast<unsigned short>(d.port)), st_(st), give_up_(give_up) {}

    // Starts `count` jobs of `task` and waits (bounded) until they end; their end states, as
    // "state" or "state/kind", or nullopt with `why` when a call failed or `give_up` was set.
    std::optional<std::vector<std::string>> run(json::object const& task, int count,
                                                std::chrono::seconds budget, std::string& why) {
        json::array tasks;
        for (int i = 0; i < count; ++i) tasks.push_back(task);
        auto started = call("agents_start", {{"session", "normal"}, {"tasks", tasks}}, why);
        if (!started) return std::nullopt;
        json::array ids;
        for (auto const& j : started->at("jobs").as_array()) ids.push_back(j.at("id"));
        auto until = clock_type::now() + budget;
        while (clock_type::now() < until) {
            json::object params{
                {"session", "normal"}, {"jobs", ids}, {"mode", "all"}, {"timeout_ms", 2000}};
            auto r = call("agents_wait", params, why);
            if (!r) return std::nullopt;
            if (auto states = ended(r->at("jobs").as_array())) return states;
        }
        why = "jobs did not end within " + std::to_string(budget.count()) + " s";
        return std::nullopt;
    }

  private:
    std::optional<json::object> call(std::string const& method, json::object const& params,
                                     std::string& why) {
        auto until = clock_type::now() + 5s;
        for (;;) {
            if (give_up_ && give_up_->load()) {
                why = "stopped";
                return std::nullopt;
            }
            bool transient = false;
            auto r = d_.call(conn_, method, params, why, &transient);
            if (r || !transient || clock_type::now() >= until) return r;
            ++st_.retried_calls;
            std::this_thread::sleep_for(100ms);  // a client's retry backoff
        }
    }

    // The end states of `jobs`, or nullopt while one is still queued or running.
    std::optional<std::vector<std::string>> ended(json::array const& jobs) {
        std::vector<std::string> states;
        for (auto const& j : jobs) {
            auto state = field(j, "state");
            if (state == "queued" || state == "running") return std::nullopt;
            auto const* err = j.as_object().if_contains("error");
            if (err && st_.first_job_error.empty()) st_.first_job_error = field(*err, "message");
            states.push_back(err ? state + "/" + field(*err, "kind") : state);
        }
        return states;
    }

    daemon_under_test& d_;
    agentd::test::http_connection conn_;
    client_stats& st_;
    std::atomic<bool> const* give_up_;
};

json::object const normal_task{{"prompt", "small [[fake latency_ms=20]]"},
                               {"description", "normal"}};

// The normal client: one small job at a time on its keep-alive connection, opened before the
// attacks began (it reconnects if that connection is lost).
void normal_client(job_client& client, std::atomic<bool> const& stop, client_stats& st) {
    while (!stop.load()) {
        std::string why;
        ++st.started;
        auto states = client.run(normal_task, 1, 10s, why);
        if (states && states->front() == "completed") {
            ++st.completed;
            hostile::wait_stop(stop, 50ms);  // a client's pace, not a flood
            continue;
        }
        ++st.not_completed;
        if (!states) ++st.call_failures;
        if (st.first_failure.empty()) st.first_failure = states ? "ended " + states->front() : why;
        hostile::wait_stop(stop, 100ms);
    }
}

// Keeps two jobs in flight on the agentd whose upstream is evil; records how they end.
void evil_driver(daemon_under_test& d, std::atomic<bool> const& stop, client_stats& st) {
    job_client client(d, st, &stop);
    json::object task{{"prompt", "evil"}, {"timeout_ms", 15000}};
    while (!stop.load()) {
        std::string why;
        st.started += 2;
        auto states = client.run(task, 2, 20s, why);
        if (stop.load()) break;  // the ends of jobs still running say nothing
        if (states) {
            for (auto const& s : *states) ++st.outcomes[s];
        } else {
            ++st.call_failures;
            if (st.first_failure.empty()) st.first_failure = why;
        }
        // Paced: what matters is what one reply makes agentd hold, not how many jobs it keeps.
        hostile::wait_stop(stop, 250ms);
    }
}

struct sample_stats {
    long baseline_kib = 0;
    long peak_kib = 0;
    long samples = 0;
    long healthz_slow = 0;  // over budget, failed or timed out
    long healthz_worst_ms = 0;
    std::string first_slow;
};

// One sample of one agentd: RSS and the latency of /healthz on a fresh connection.
void sample(daemon_under_test& d, sample_stats& st) {
    st.peak_kib = std::max(st.peak_kib, hostile::rss_kib(d.proc->pid()));
    ++st.samples;
    auto t0 = clock_type::now();
    std::string failure;
    try {
        auto res = agentd::test::http_request(static_cast<unsigned short>(d.port), "GET",
                                              "/healthz", {}, {}, 2s);
        if (res.status != 200) failure = fmt::format("HTTP {}", res.status);
    } catch (std::exception const& e) {
        failure = e.what();
    }
    auto took = ms(clock_type::now() - t0);
    st.healthz_worst_ms = std::max(st.healthz_worst_ms, took);
    if (failure.empty() && took <= ms(healthz_budget)) return;
    ++st.healthz_slow;
    if (st.first_slow.empty())
        st.first_slow = fmt::format("{} ms {}", took, failure.empty() ? "(slow)" : failure);
}

// Everything the run measured, printed at the end whatever the outcome.
struct run_stats {
    long ran_ms = 0;
    bool runaway = false;
    bool first_request_flag = false;
    sample_stats normal_s, evil_s;
    double normal_cpu = 0, evil_cpu = 0;
    hostile::flood_stats trailer_rpc{"trailer flood POST /rpc"};
    hostile::flood_stats trailer_healthz{"trailer flood GET /healthz (no token)"};
    hostile::flood_stats extension{"chunk-extension flood POST /rpc"};
    hostile::idle_stats idle;
    hostile::abandon_stats abandoned;
    hostile::ws_stats ws;
    hostile::evil_stats evil;
    client_stats normal, evil_jobs;
    std::mutex errors_mutex;
    std::vector<std::string> thread_errors;  // a thread that threw fails the run

    // `body` on this thread; an exception is recorded, never left to std::terminate (which
    // would leave the children running).
    void guarded(std::string const& name, std::function<void()> const& body) {
        try {
            body();
        } catch (std::exception const& e) {
            std::lock_guard lock(errors_mutex);
            thread_errors.push_back(name + ": " + e.what());
        }
    }
};

void print_flood(hostile::flood_stats const& f) {
    fmt::print(
        "  {}: {} connections, {} closed by agentd; first took {} KiB, most {} KiB; answer: {}\n",
        f.name, f.connections, f.closed_by_daemon, f.first_bytes / 1024, f.max_bytes / 1024,
        f.first_reply.empty() ? "(none)" : f.first_reply);
}

void print_daemon(std::string const& name, sample_stats const& s, double cpu) {
    fmt::print(
        "{} agentd: RSS baseline {} KiB, peak {} KiB (+{} KiB); healthz {} samples, {} over "
        "{} ms, worst {} ms{}; CPU {:.1f} s\n",
        name, s.baseline_kib, s.peak_kib, s.peak_kib - s.baseline_kib, s.samples, s.healthz_slow,
        ms(healthz_budget), s.healthz_worst_ms,
        s.first_slow.empty() ? "" : " (first: " + s.first_slow + ")", cpu);
}

void print_attacks(run_stats const& r) {
    fmt::print("attacks on the normal agentd (--max-connections 64):\n");
    print_flood(r.trailer_rpc);
    print_flood(r.trailer_healthz);
    print_flood(r.extension);
    auto const& idle = r.idle;
    fmt::print(
        "  idle sockets (128): {} opened, {} closed by agentd ({} at once), longest held {} ms, "
        "{} open at end, {} connect failures\n",
        idle.opened, idle.closed_by_daemon, idle.refused_at_once, idle.longest_held_ms,
        idle.open_at_end, idle.connect_failures);
    fmt::print("  abandoned agents_wait (60 s): {} sent, {} connect failures\n", r.abandoned.sent,
               r.abandoned.connect_failures);
    auto const& ws = r.ws;
    fmt::print(
        "  WebSocket read-ahead: {} connections, {} upgrade failures{}, {} MiB taken ({} whole "
        "1 MiB frames), {} closed by agentd\n",
        ws.connections, ws.upgrade_failures,
        ws.first_failure.empty() ? "" : " (" + ws.first_failure + ")", ws.bytes >> 20,
        ws.frames_sent, ws.closed_by_daemon);
}

void print_evil(run_stats const& r) {
    auto const& es = r.evil;
    fmt::print(
        "evil upstream: {} sessions, {} prompts; endless trailer: most {} KiB taken, {} closed by "
        "agentd; {} event streams: endless SSE line most {} KiB taken, {} closed by agentd; part "
        "flood {} events ({} MiB)\n",
        es.sessions, es.prompts, es.trailer_max_bytes / 1024, es.trailers_closed, es.event_streams,
        es.sse_line_max_bytes / 1024, es.sse_lines_closed, es.part_events, es.part_bytes >> 20);
    auto const& j = r.evil_jobs;
    std::string outcomes;
    for (auto const& [state, n] : j.outcomes) outcomes += fmt::format(" {}={}", state, n);
    fmt::print("evil jobs: {} started, ended:{}; call failures {}{}{}\n", j.started,
               outcomes.empty() ? " none" : outcomes, j.call_failures,
               j.first_failure.empty() ? "" : " (first: " + j.first_failure + ")",
               j.first_job_error.empty() ? "" : "; first error: " + j.first_job_error);
}

// Prints the figures and the verdict; true when the run passed.
std::string last_bytes(std::string const& text, std::size_t n) {
    return text.size() <= n ? text : text.substr(text.size() - n);
}

bool report(run_stats const& r) {
    fmt::print("hostile run: {} ms{}; --first-request-timeout-ms {}\n", r.ran_ms,
               r.runaway ? " (stopped early: RSS ran away)" : "",
               r.first_request_flag ? "2000" : "unknown to this agentd, not passed");
    print_daemon("normal", r.normal_s, r.normal_cpu);
    print_daemon("evil-upstream", r.evil_s, r.evil_cpu);
    print_attacks(r);
    print_evil(r);
    fmt::print(
        "normal client: {} jobs started, {} completed, {} not completed; {} calls retried{}\n",
        r.normal.started, r.normal.completed, r.normal.not_completed, r.normal.retried_calls,
        r.normal.first_failure.empty() ? "" : " (first: " + r.normal.first_failure + ")");

    auto grew = [](sample_stats const& s) { return s.peak_kib - s.baseline_kib; };
    bool rss_ok =
        !r.runaway && grew(r.normal_s) < rss_margin_kib && grew(r.evil_s) < rss_margin_kib;
    bool healthz_ok = r.normal_s.healthz_slow == 0 && r.evil_s.healthz_slow == 0;
    bool jobs_ok = r.normal.completed > 0 && r.normal.not_completed == 0;
    for (auto const& e : r.thread_errors) fmt::print("thread failed: {}\n", e);
    bool ok = rss_ok && healthz_ok && jobs_ok && r.thread_errors.empty();
    fmt::print("{}: RSS {}, healthz {}, normal jobs {}\n", ok ? "PASS" : "FAIL",
               rss_ok ? "ok" : "over baseline + 64 MiB", healthz_ok ? "ok" : "too slow",
               jobs_ok ? "ok" : "not all completed");
    return ok;
}

// hostile_test [--seconds N] [--agentd PATH] [--only a,b]: attack names are trailer_rpc,
// trailer_healthz, extension, idle, abandoned, ws and evil (the evil upstream's jobs; its event
// stream floods the second agentd in every run).
struct options {
    std::string agentd = AGENTD_PATH;
    std::chrono::seconds duration{45};
    std::string only;  // comma-separated attack names to run alone (to study one); empty: all

    bool runs(std::string_view attack) const {
        return only.empty() ||
               ("," + only + ",").find(fmt::format(",{},", attack)) != std::string::npos;
    }
};

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds") o.duration = std::chrono::seconds(std::atoi(argv[++i]));
        if (a == "--only") o.only = argv[++i];
        if (a == "--agentd") o.agentd = argv[++i];
    }
    return o;
}

// Starts the attack threads --only allows, the evil-upstream driver and the normal client.
void start_attacks(options const& opts, hostile::target const& tgt, job_client& normal_user,
                   daemon_under_test& evil_d, std::atomic<bool> const& stop, run_stats& r,
                   std::vector<std::thread>& threads) {
    std::vector<std::pair<std::string, std::function<void()>>> attacks{
        {"trailer_rpc",
         [&] {
             hostile::run_flood(hostile::trailer_rpc_head(tgt), hostile::trailer_unit(), stop,
                                tgt.port, r.trailer_rpc);
         }},
        {"trailer_healthz",
         [&] {
             hostile::run_flood(hostile::trailer_healthz_head(tgt), hostile::trailer_unit(), stop,
                                tgt.port, r.trailer_healthz);
         }},
        {"extension",
         [&] {
             hostile::run_flood(hostile::extension_head(tgt), hostile::extension_unit(), stop,
                                tgt.port, r.extension);
         }},
        {"idle", [&] { hostile::run_idle_sockets(tgt, 128, stop, r.idle); }},
        {"abandoned", [&] { hostile::run_abandoned_waits(tgt, stop, r.abandoned); }},
        {"ws", [&] { hostile::run_ws_read_ahead(tgt, 400, stop, r.ws); }},
        {"evil", [&] { evil_driver(evil_d, stop, r.evil_jobs); }},
    };
    for (auto& [name, body] : attacks)
        if (opts.runs(name))
            threads.emplace_back([&r, name, body] {
                hostile::lower_thread_priority();
                r.guarded(name, body);
            });
    threads.emplace_back(
        [&] { r.guarded("normal client", [&] { normal_client(normal_user, stop, r.normal); }); });
}

// Samples both agentd every 250 ms for `duration`, or until one's RSS runs away.
void sample_run(std::chrono::seconds duration, daemon_under_test& normal_d,
                daemon_under_test& evil_d, run_stats& r) {
    auto t0 = clock_type::now();
    auto next = t0;
    double normal_cpu0 = hostile::cpu_seconds(normal_d.proc->pid());
    double evil_cpu0 = hostile::cpu_seconds(evil_d.proc->pid());
    while (clock_type::now() < t0 + duration && !r.runaway) {
        sample(normal_d, r.normal_s);
        sample(evil_d, r.evil_s);
        r.runaway = r.normal_s.peak_kib - r.normal_s.baseline_kib > rss_runaway_kib ||
                    r.evil_s.peak_kib - r.evil_s.baseline_kib > rss_runaway_kib;
        next += 250ms;
        std::this_thread::sleep_until(next);  // the sampling period, not a wait for an outcome
    }
    r.ran_ms = ms(clock_type::now() - t0);
    r.normal_cpu = hostile::cpu_seconds(normal_d.proc->pid()) - normal_cpu0;
    r.evil_cpu = hostile::cpu_seconds(evil_d.proc->pid()) - evil_cpu0;
}

// Takes the hard limit of open files (the children inherit it): hundreds of sockets.
void raise_fd_limit() {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
}

// Starts a job that runs for the whole run (the abandoned and WebSocket waits wait on it);
// its id, or empty with `why`.
std::string start_running_job(daemon_under_test& d, std::string& why) {
    agentd::test::http_connection conn(static_cast<unsigned short>(d.port));
    json::array tasks{json::object{{"prompt", "hold [[fake fault=hang]]"}, {"timeout_ms", 600000}}};
    auto r = d.call(conn, "agents_start", {{"session", "hostile"}, {"tasks", tasks}}, why);
    return r ? field(r->at("jobs").as_array().at(0), "id") : std::string{};
}

// The whole run; every child and thread it starts is gone when it returns or throws.
int run(options const& opts) {
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    run_stats r;
    std::vector<std::string> main_flags{"--max-connections", "64"};
    r.first_request_flag = agentd_knows(opts.agentd, "--first-request-timeout-ms");
    if (r.first_request_flag) {
        main_flags.push_back("--first-request-timeout-ms");
        main_flags.push_back("2000");
    }
    agentd::test::fake_upstream fake(FAKE_OPENCODE_PATH);
    hostile::evil_upstream evil;
    daemon_under_test normal_d(opts.agentd, "normal", fake.url(), main_flags);
    daemon_under_test evil_d(opts.agentd, "evil", fmt::format("http://127.0.0.1:{}", evil.port()),
                             {});

    std::string why;
    hostile::target tgt{normal_d.port, normal_d.token, "hostile", start_running_job(normal_d, why)};
    if (tgt.running_job.empty()) {
        fmt::print(stderr, "cannot start the running job: {}\n", why);
        return 1;
    }
    // The normal client connects, and its first job completes, before any attack.
    job_client normal_user(normal_d, r.normal);
    auto states = normal_user.run(normal_task, 1, 10s, why);
    if (!states || states->front() != "completed") {
        fmt::print(stderr, "a normal job did not complete before the attacks: {} {}\n",
                   states ? "ended " + states->front() : why, r.normal.first_job_error);
        return 1;
    }

    r.normal_s.baseline_kib = r.normal_s.peak_kib = hostile::rss_kib(normal_d.proc->pid());
    r.evil_s.baseline_kib = r.evil_s.peak_kib = hostile::rss_kib(evil_d.proc->pid());
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    start_attacks(opts, tgt, normal_user, evil_d, stop, r, threads);
    sample_run(opts.duration, normal_d, evil_d, r);
    stop = true;
    for (auto& t : threads) t.join();
    evil.stop();
    r.evil = evil.stats();
    if (report(r)) return 0;
    // The daemons' warnings (connection cap, evictions) say why a /healthz was refused or cut.
    for (auto const* d : {&normal_d, &evil_d})
        fmt::print("{} agentd's log (warnings, last 4 KiB):\n{}\n", d->name,
                   last_bytes(d->proc->stderr_text(), 4096));
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse_args(argc, argv));
    } catch (std::exception const& e) {  // caught so that unwinding kills the children
        fmt::print(stderr, "hostile run could not start: {}\n", e.what());
        return 1;
    }
}
