// Fan-out benchmark, measured side by side in one run against the fake OpenCode upstream:
//  1. completion: N tasks of a fixed prompt latency, start → all completed, as a ratio to N = 1;
//  2. launch: N agents_start calls (one JSON-RPC batch, or N connections at once) until the
//     upstream has all N prompts, with agentd's planner vs a forced-serial dispatch (the global
//     launch lock of today's tools), with a fixed session-create latency.
// Usage: fanout_bench [--quick]   (quick: fewer and smaller runs, for CI's smoke check)
#include "support/fake_upstream.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <barrier>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using agentd::test::child_process;
using agentd::test::fake_upstream;
using agentd::test::http_connection;
using agentd::test::http_request;
using clock_type = std::chrono::steady_clock;

struct agentd_daemon {
    std::unique_ptr<child_process> proc;
    int port = 0;
    std::string token;
    std::filesystem::path dir;

    agentd_daemon(std::string const& upstream, std::vector<std::string> extra) {
        static int n = 0;
        dir = std::filesystem::temp_directory_path() /
              fmt::format("agentd-bench-{}-{}", ::getpid(), n++);
        std::filesystem::remove_all(dir);
        std::vector<std::string> argv{AGENTD_PATH,   "--listen",
                                      "127.0.0.1:0", "--state-dir",
                                      dir.string(),  "--upstream-url",
                                      upstream,      "--max-running",
                                      "1024",        "--max-tasks-per-call",
                                      "1024"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc = std::make_unique<child_process>(argv);
        auto p = proc->wait_for_line(std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"), 10s);
        if (!p) throw std::runtime_error("agentd did not start: " + proc->stderr_text());
        port = std::stoi(*p);
        std::ifstream(dir / "token") >> token;
    }
    ~agentd_daemon() {
        proc.reset();
        std::filesystem::remove_all(dir);
    }
    std::vector<std::pair<std::string, std::string>> auth() const {
        return {{"Authorization", "Bearer " + token}};
    }
    json::value rpc(json::object req) {
        req["jsonrpc"] = "2.0";
        req["id"] = 1;
        auto r = http_request(port, "POST", "/rpc", json::serialize(req), auth());
        return json::parse(r.body);
    }
};

json::object start_call(int id, std::string prompt) {
    return {{"jsonrpc", "2.0"},
            {"id", id},
            {"method", "agents_start"},
            {"params", json::object{{"tasks", json::array{json::object{{"prompt", prompt}}}}}}};
}

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

// Start N tasks in one agents_start, wait for all: wall time in ms.
double completion_run(agentd_daemon& d, int n, int latency_ms) {
    json::array tasks;
    for (int i = 0; i < n; ++i)
        tasks.push_back(
            json::object{{"prompt", fmt::format("t{} [[fake latency_ms={}]]", i, latency_ms)}});
    auto t0 = clock_type::now();
    auto started = d.rpc({{"method", "agents_start"}, {"params", json::object{{"tasks", tasks}}}});
    json::array ids;
    for (auto const& j : started.at("result").at("jobs").as_array()) ids.push_back(j.at("id"));
    auto done = d.rpc({{"method", "agents_wait"},
                       {"params", json::object{{"jobs", ids}, {"timeout_ms", 60000}}}});
    double ms = ms_since(t0);
    for (auto const& j : done.at("result").at("jobs").as_array())
        if (j.at("state").as_string() != "completed")
            throw std::runtime_error("job did not complete");
    return ms;
}

// Launch N agents (batch or N connections); time until the upstream has N prompts.
double launch_run(agentd_daemon& d, fake_upstream& fake, int n, bool batch) {
    fake.reset();
    std::string prompt = "go [[fake latency_ms=200]]";
    clock_type::time_point t0;
    if (batch) {
        json::array calls;
        for (int i = 0; i < n; ++i) calls.push_back(start_call(i, prompt));
        http_connection conn(d.port);
        t0 = clock_type::now();
        auto r = conn.request("POST", "/rpc", json::serialize(calls), d.auth());
        if (r.status != 200) throw std::runtime_error("batch failed: " + r.body);
    } else {
        std::barrier sync(n + 1);
        std::vector<std::thread> threads;
        for (int i = 0; i < n; ++i) {
            threads.emplace_back([&, i] {
                http_connection conn(d.port);
                sync.arrive_and_wait();
                conn.request("POST", "/rpc", json::serialize(start_call(i, prompt)), d.auth());
            });
        }
        sync.arrive_and_wait();
        t0 = clock_type::now();
        for (auto& t : threads) t.join();
    }
    if (!fake.wait_counter("prompts_started", n, 120s))
        throw std::runtime_error("launch timed out");
    double ms = ms_since(t0);
    // Let the prompts of this run finish so runs do not overlap.
    fake.wait_counter("prompts_completed", n, 120s);
    return ms;
}

}  // namespace

int main(int argc, char** argv) {
    bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    int const latency = quick ? 100 : 400;
    std::vector<int> ns = quick ? std::vector<int>{1, 8} : std::vector<int>{1, 8, 32, 64};
    int const create_latency = 20;

    fake_upstream fake(FAKE_OPENCODE_PATH, {"--create-latency-ms", std::to_string(create_latency)});
    {
        agentd_daemon d(fake.url(), {});
        fmt::print("== completion: N tasks x {} ms prompt (+{} ms create), one agents_start\n",
                   latency, create_latency);
        fmt::print("{:>5} {:>10} {:>8}\n", "N", "wall ms", "ratio");
        double base = 0;
        for (int n : std::vector<int>{1, 8}) {
            double ms = completion_run(d, n, latency);
            if (n == 1) base = ms;
            fmt::print("{:>5} {:>10.1f} {:>8.2f}\n", n, ms, ms / base);
        }
    }

    fmt::print("\n== launch: N agents until the upstream has all N prompts ({} ms create)\n",
               create_latency);
    fmt::print("{:>5} {:>14} {:>14} {:>14} {:>14} {:>9}\n", "N", "batch planned", "batch serial",
               "conns planned", "conns serial", "speed-up");
    agentd_daemon planned(fake.url(), {});
    agentd_daemon serial(fake.url(), {"--dispatch", "serial"});
    for (int n : ns) {
        double bp = launch_run(planned, fake, n, true);
        double bs = launch_run(serial, fake, n, true);
        double cp = launch_run(planned, fake, n, false);
        double cs = launch_run(serial, fake, n, false);
        fmt::print("{:>5} {:>11.1f} ms {:>11.1f} ms {:>11.1f} ms {:>11.1f} ms {:>8.1f}x\n", n, bp,
                   bs, cp, cs, (bs + cs) / (bp + cp));
    }
    return 0;
}
