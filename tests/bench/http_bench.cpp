// Request throughput and latency: wrk (keep-alive, 1 thread, --latency) POSTs agents_status for
// one completed job to agentd, and in the same run GETs the identical response bytes as a static
// file from nginx (one worker, on its own loopback port, temp prefix, stopped by PID), at 1 and
// 64 connections. Targets: agentd/nginx >= 0.5 and p99 < 2 ms at 64 connections. Skips (exit
// 0) when wrk or nginx is missing. Usage: http_bench [--quick] [--out DIR] (http.json/csv/md)
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
        std::ofstream(dir_ / "nginx.conf") << fmt::format(
            "{}daemon off;\nworker_processes 1;\npid {};\nerror_log {} warn;\n"
            "events {{ worker_connections 1024; }}\n"
            "http {{\n  access_log off;\n{}  keepalive_requests 1000000;\n"
            "  keepalive_timeout 60s;\n  default_type application/json;\n"
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
    json::object raw;
    double rps() const {
        return raw.at("requests").to_number<double>() * 1e6 /
               raw.at("duration_us").to_number<double>();
    }
    double ms(char const* key) const { return raw.at(key).to_number<double>() / 1000.0; }
};

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

void report(agentd::bench::options const& opts, std::vector<wrk_result> const& runs,
            std::chrono::seconds duration, std::size_t bytes) {
    std::string md = fmt::format(
        "| server | connections | requests/s | p50 | p99 | agentd / nginx | targets |\n"
        "|---|---:|---:|---:|---:|---:|---|\n");
    std::string csv = "server,conns,rps,p50_ms,p99_ms\n";
    json::array jr;
    fmt::print("== agents_status ({} bytes) with wrk, {} s per run\n", bytes, duration.count());
    for (std::size_t i = 0; i + 1 < runs.size(); i += 2) {
        auto const& a = runs[i];
        auto const& n = runs[i + 1];
        double ratio = a.rps() / n.rps();
        std::string targets = fmt::format("ratio ≥ 0.5 {}", ratio >= 0.5 ? "✓" : "✗");
        if (a.conns == 64)
            targets += fmt::format(", p99 < 2 ms {}", a.ms("p99_us") < 2 ? "✓" : "✗");
        for (auto const* r : {&a, &n}) {
            fmt::print("  {:<6} c={:<3} {:>9.0f} req/s  p50 {:.3f} ms  p99 {:.3f} ms\n", r->server,
                       r->conns, r->rps(), r->ms("p50_us"), r->ms("p99_us"));
            csv += fmt::format("{},{},{:.0f},{:.4f},{:.4f}\n", r->server, r->conns, r->rps(),
                               r->ms("p50_us"), r->ms("p99_us"));
            json::object o = r->raw;
            o["server"] = r->server;
            o["conns"] = r->conns;
            o["rps"] = r->rps();
            jr.push_back(o);
        }
        md += fmt::format(
            "| agentd `POST /rpc` agents_status | {} | {:.0f} | {:.3f} ms | {:.3f} ms "
            "| **{:.2f}** | {} |\n",
            a.conns, a.rps(), a.ms("p50_us"), a.ms("p99_us"), ratio, targets);
        md +=
            fmt::format("| nginx `GET /status.json` | {} | {:.0f} | {:.3f} ms | {:.3f} ms | | |\n",
                        n.conns, n.rps(), n.ms("p50_us"), n.ms("p99_us"));
    }
    json::object all{{"quick", opts.quick},
                     {"duration_s", duration.count()},
                     {"response_bytes", bytes},
                     {"runs", jr}};
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
    auto duration = opts.quick ? 1s : 10s;
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
    std::vector<wrk_result> runs;
    for (int conns : {1, 64}) {
        runs.push_back({"agentd", conns,
                        run_wrk(*wrk, agentd_url, conns, duration, "POST", status, d.token())});
        runs.push_back({"nginx", conns, run_wrk(*wrk, nginx_url, conns, duration, "GET", "", "")});
    }
    report(opts, runs, duration, reply.body.size());
    return 0;
} catch (std::exception const& e) {
    fmt::print(stderr, "http_bench: {}\n", e.what());
    return 1;
}
