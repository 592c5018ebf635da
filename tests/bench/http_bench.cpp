// Request throughput and latency against the fastest static server (issue #20): wrk (keep-alive,
// 1 thread, --latency) POSTs agents_status for one completed job to agentd, and GETs the same
// response bytes as a static file from nginx tuned for static serving (one worker, access_log
// off, sendfile, tcp_nopush, tcp_nodelay, open_file_cache, etag off; own loopback port, temp
// prefix, stopped by PID). The machine is noisy, so for 1 and 64 connections it runs R rounds
// (5; --quick 1) of agentd then nginx, alternating, each run as long, and compares medians: the
// median req/s and p99 of each server, agentd/nginx of both. Targets (at 1 and 64 connections):
// req/s ratio >= 1.0 and agentd's p99 <= 1.1 x nginx's. Skips (exit 0) when wrk or nginx is
// missing. Usage: http_bench [--quick] [--out DIR] (http.md: medians; http.json/csv: every run)
#include "bench_util.hpp"
#include "support/fake_upstream.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using agentd::bench::agentd_process;
using agentd::test::child_process;
using agentd::test::fake_upstream;

// A free loopback port for nginx, which cannot listen on port 0 and report it.
unsigned short free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

// nginx serving `body` as /status.json from a temp prefix. Runs in the foreground as our child
// (master + one worker, as nobody when we are root); stopped with SIGTERM by PID, which also
// ends its worker.
class nginx_server {
  public:
    nginx_server(std::string const& binary, std::string const& body) : port_(free_port()) {
        dir_ = fs::temp_directory_path() / fmt::format("agentd-bench-nginx-{}", ::getpid());
        fs::remove_all(dir_);
        fs::create_directories(dir_ / "www");
        fs::create_directories(dir_ / "tmp");
        std::ofstream(dir_ / "www" / "status.json", std::ios::binary) << body;
        write_config();
        proc_ = std::make_unique<child_process>(std::vector<std::string>{
            binary, "-p", dir_.string(), "-c", (dir_ / "nginx.conf").string(), "-e",
            (dir_ / "error.log").string()});
        wait_ready(body);
    }
    ~nginx_server() {
        proc_->signal(SIGTERM);
        proc_->wait_exit(10s);
        proc_.reset();
        fs::remove_all(dir_);
    }
    unsigned short port() const { return port_; }

  private:
    void write_config() {
        // Every path inside the prefix, so it runs without /var/lib/nginx or /var/log/nginx.
        std::string temp;
        for (auto kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
            temp += fmt::format("  {}_temp_path {};\n", kind, (dir_ / "tmp" / kind).string());
        // Tuned as for the fastest static serving: the file leaves by sendfile with its head in
        // the same segment (tcp_nopush), its descriptor and size stay cached, no ETag to compute.
        std::ofstream(dir_ / "nginx.conf") << fmt::format(
            "{}daemon off;\nworker_processes 1;\npid {};\nerror_log {} warn;\n"
            "events {{ worker_connections 1024; }}\n"
            "http {{\n  access_log off;\n{}  keepalive_requests 1000000;\n"
            "  keepalive_timeout 60s;\n  default_type application/json;\n"
            "  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n"
            "  open_file_cache max=1000 inactive=60s;\n  open_file_cache_valid 60s;\n"
            "  etag off;\n"
            "  server {{ listen 127.0.0.1:{}; root {}; }}\n}}\n",
            ::geteuid() == 0 ? "user nobody nogroup;\n" : "", (dir_ / "nginx.pid").string(),
            (dir_ / "error.log").string(), temp, port_, (dir_ / "www").string());
        // The worker (nobody) must read the file and walk into the prefix.
        fs::permissions(dir_, fs::perms::others_exec | fs::perms::others_read,
                        fs::perm_options::add);
    }

    // nginx prints nothing when ready: try the file until it is served (or 10 s pass).
    void wait_ready(std::string const& body) {
        auto deadline = agentd::bench::clock_type::now() + 10s;
        while (agentd::bench::clock_type::now() < deadline) {
            try {
                auto r = agentd::test::http_request(port_, "GET", "/status.json", {}, {}, 1s);
                if (r.status == 200 && r.body == body) return;
                if (r.status == 200) throw std::runtime_error("nginx serves other bytes");
            } catch (agentd::test::http_error const&) {
            }
            if (proc_->wait_exit(50ms)) break;  // it exited: no point in waiting
        }
        throw std::runtime_error("nginx did not come up: " + proc_->stderr_text());
    }

    fs::path dir_;
    unsigned short port_;
    std::unique_ptr<child_process> proc_;
};

struct wrk_result {
    std::string server;
    int conns;
    int round;
    json::object raw;
    double rps() const {
        return raw.at("requests").to_number<double>() * 1e6 /
               raw.at("duration_us").to_number<double>();
    }
    double ms(char const* key) const { return raw.at(key).to_number<double>() / 1000.0; }
};

// The medians of one server's runs at one connection count.
struct medians {
    double rps = 0, p50_ms = 0, p99_ms = 0;
};

medians median_of(std::vector<wrk_result> const& runs, std::string const& server, int conns) {
    std::vector<double> rps, p50, p99;
    for (auto const& r : runs) {
        if (r.server != server || r.conns != conns) continue;
        rps.push_back(r.rps());
        p50.push_back(r.ms("p50_us"));
        p99.push_back(r.ms("p99_us"));
    }
    return {agentd::bench::percentile(rps, 50), agentd::bench::percentile(p50, 50),
            agentd::bench::percentile(p99, 50)};
}

json::object run_wrk(std::string const& wrk, std::string const& url, int conns,
                     std::chrono::seconds duration, std::string const& method,
                     std::string const& body, std::string const& token) {
    child_process p({wrk, "-t1", fmt::format("-c{}", conns), fmt::format("-d{}s", duration.count()),
                     "--latency", "-s", BENCH_SOURCE_DIR "/wrk_report.lua", url},
                    {{"WRK_METHOD", method}, {"WRK_BODY", body}, {"WRK_TOKEN", token}});
    auto line = p.wait_for_line(std::regex(R"(^(\{"requests".*\})$)"), duration + 30s);
    p.wait_exit(10s);
    if (!line) throw std::runtime_error("wrk reported nothing: " + p.stderr_text());
    auto result = json::parse(*line).as_object();
    if (result.at("errors").to_number<std::int64_t>() != 0 ||
        result.at("non_2xx").to_number<std::int64_t>() != 0)
        throw std::runtime_error("wrk saw errors against " + url + ": " + *line);
    return result;
}

void report(agentd::bench::options const& opts, std::vector<wrk_result> const& runs, int rounds,
            std::chrono::seconds duration, std::size_t bytes) {
    std::string md = fmt::format(
        "Medians of {} alternating rounds (agentd, then nginx), {} s per run; targets: "
        "agentd/nginx req/s ≥ 1.0 and agentd p99 ≤ 1.1 × nginx p99.\n\n"
        "| server | connections | requests/s | p50 | p99 | agentd / nginx req/s "
        "| agentd / nginx p99 | targets |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|\n",
        rounds, duration.count());
    std::string csv = "server,conns,round,rps,p50_ms,p99_ms\n";
    json::array jr;
    json::array summary;
    fmt::print("== agents_status ({} bytes) with wrk, {} rounds of {} s per run\n", bytes, rounds,
               duration.count());
    for (auto const& r : runs) {
        fmt::print("  round {} {:<6} c={:<3} {:>9.0f} req/s  p50 {:.3f} ms  p99 {:.3f} ms\n",
                   r.round, r.server, r.conns, r.rps(), r.ms("p50_us"), r.ms("p99_us"));
        csv += fmt::format("{},{},{},{:.0f},{:.4f},{:.4f}\n", r.server, r.conns, r.round, r.rps(),
                           r.ms("p50_us"), r.ms("p99_us"));
        json::object o = r.raw;
        o["server"] = r.server;
        o["conns"] = r.conns;
        o["round"] = r.round;
        o["rps"] = r.rps();
        jr.push_back(o);
    }
    for (int conns : {1, 64}) {
        auto a = median_of(runs, "agentd", conns);
        auto n = median_of(runs, "nginx", conns);
        double ratio = a.rps / n.rps;
        double p99_ratio = a.p99_ms / n.p99_ms;
        auto targets = fmt::format("req/s ≥ 1.0 × {}, p99 ≤ 1.1 × {}", ratio >= 1.0 ? "✓" : "✗",
                                   p99_ratio <= 1.1 ? "✓" : "✗");
        fmt::print(
            "  median c={:<3} agentd {:.0f} req/s p99 {:.3f} ms, nginx {:.0f} req/s p99 "
            "{:.3f} ms: {:.2f}x req/s, {:.2f}x p99 ({})\n",
            conns, a.rps, a.p99_ms, n.rps, n.p99_ms, ratio, p99_ratio, targets);
        md += fmt::format(
            "| agentd `POST /rpc` agents_status | {} | {:.0f} | {:.3f} ms | {:.3f} ms "
            "| **{:.2f}** | **{:.2f}** | {} |\n",
            conns, a.rps, a.p50_ms, a.p99_ms, ratio, p99_ratio, targets);
        md += fmt::format(
            "| nginx `GET /status.json` | {} | {:.0f} | {:.3f} ms | {:.3f} ms | | | |\n", conns,
            n.rps, n.p50_ms, n.p99_ms);
        summary.push_back(json::object{{"conns", conns},
                                       {"agentd_rps", a.rps},
                                       {"agentd_p50_ms", a.p50_ms},
                                       {"agentd_p99_ms", a.p99_ms},
                                       {"nginx_rps", n.rps},
                                       {"nginx_p50_ms", n.p50_ms},
                                       {"nginx_p99_ms", n.p99_ms},
                                       {"rps_ratio", ratio},
                                       {"p99_ratio", p99_ratio},
                                       {"rps_target_met", ratio >= 1.0},
                                       {"p99_target_met", p99_ratio <= 1.1}});
    }
    json::object all{
        {"quick", opts.quick},     {"rounds", rounds},   {"duration_s", duration.count()},
        {"response_bytes", bytes}, {"medians", summary}, {"runs", jr}};
    agentd::bench::write_result(opts, "http.json", json::serialize(all) + "\n");
    agentd::bench::write_result(opts, "http.csv", csv);
    agentd::bench::write_result(opts, "http.md", md);
}

}  // namespace

int main(int argc, char** argv) try {
    auto opts = agentd::bench::parse_options(argc, argv);
    auto wrk = agentd::bench::find_program("wrk");
    auto nginx = agentd::bench::find_program("nginx");
    if (!wrk || !nginx) {
        fmt::print("http_bench: skipped, {} not installed (scripts/bench.sh installs it)\n",
                   !wrk ? "wrk" : "nginx");
        agentd::bench::write_result(opts, "http.md",
                                    "Not measured: wrk or nginx was not installed.\n");
        return 0;
    }
    auto duration = opts.quick ? 1s : 5s;
    int const rounds = opts.quick ? 1 : 5;
    fake_upstream fake(FAKE_OPENCODE_PATH);
    agentd_process d(fake.url(), {});
    auto ids = agentd::bench::job_ids(
        d.rpc("agents_start", agentd::bench::start_params({"bench [[fake latency_ms=0]]"})));
    d.rpc("agents_wait", {{"jobs", ids}, {"timeout_ms", 10000}});
    auto status = agentd::bench::rpc_body("agents_status", {{"jobs", ids}});
    auto reply = agentd::test::http_request(d.port(), "POST", "/rpc", status, d.auth());
    nginx_server web(*nginx, reply.body);

    auto agentd_url = fmt::format("http://127.0.0.1:{}/rpc", d.port());
    auto nginx_url = fmt::format("http://127.0.0.1:{}/status.json", web.port());
    if (!opts.quick) {  // warm both up (allocator, caches) before anything is measured
        run_wrk(*wrk, agentd_url, 64, 2s, "POST", status, d.token());
        run_wrk(*wrk, nginx_url, 64, 2s, "GET", "", "");
    }
    // Alternating runs, so that a burst of load on the machine hits both servers alike; the
    // medians then leave out a round it spoiled.
    std::vector<wrk_result> runs;
    for (int conns : {1, 64}) {
        for (int round = 1; round <= rounds; ++round) {
            runs.push_back({"agentd", conns, round,
                            run_wrk(*wrk, agentd_url, conns, duration, "POST", status, d.token())});
            runs.push_back(
                {"nginx", conns, round, run_wrk(*wrk, nginx_url, conns, duration, "GET", "", "")});
        }
    }
    report(opts, runs, rounds, duration, reply.body.size());
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "http_bench: {}\n", e.what());
    return 1;
}
