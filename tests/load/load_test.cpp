// Load test (issue #5): 200 concurrent keep-alive clients issue agents_start / agents_status /
// agents_wait for a bounded time against the real agentd and the fake upstream, 5 % of tasks
// carrying an upstream fault. Passes when no request failed at the protocol level, every job
// ended in the state its fault implies (none stuck), /healthz answered throughout, and RSS
// after the run stayed near RSS after warm-up. Prints a report either way.
#include "support/fake_upstream.hpp"
#include "support/process.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct options {
    std::chrono::seconds duration{30};
    int clients = 200;
    double fault_rate = 0.05;
    bool check_rss = true;  // off under AddressSanitizer, whose quarantine holds freed memory
};

struct totals {
    std::map<std::string, long> requests;  // by method
    long protocol_errors = 0;
    long jobs_started = 0;
    long jobs_faulted = 0;
    long wrong_outcomes = 0;
    long healthz_ok = 0;
    long healthz_failed = 0;
    clock_type::duration healthz_worst{};
    std::vector<std::string> first_errors;

    void error(std::string what) {
        ++protocol_errors;
        if (first_errors.size() < 8) first_errors.push_back(std::move(what));
    }
};

long rss_kib(int pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// One keep-alive HTTP connection driven by one coroutine.
class connection {
  public:
    connection(asio::io_context& ioc, asio::ip::tcp::endpoint ep, std::string token)
        : stream_(ioc), ep_(ep), token_(std::move(token)) {}

    // The response body, or an error description.
    asio::awaitable<std::pair<int, std::string>> exchange(http::verb verb, std::string target,
                                                          std::string body) {
        if (!open_) {
            stream_.expires_after(5s);
            auto [ec] = co_await stream_.async_connect(ep_, use_tuple);
            if (ec) co_return std::pair{0, "connect: " + ec.message()};
            open_ = true;
        }
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::authorization, "Bearer " + token_);
        req.set(http::field::content_type, "application/json");
        req.body() = std::move(body);
        req.prepare_payload();
        stream_.expires_after(30s);
        auto [wec, wn] = co_await http::async_write(stream_, req, use_tuple);
        http::response<http::string_body> res;
        beast::error_code rec = wec;
        if (!wec)
            std::tie(rec, std::ignore) =
                co_await http::async_read(stream_, buffer_, res, use_tuple);
        if (rec) {
            open_ = false;
            stream_.close();
            co_return std::pair{0, "transport: " + rec.message()};
        }
        if (!res.keep_alive()) {
            open_ = false;
            stream_.close();
        }
        co_return std::pair{res.result_int(), std::move(res.body())};
    }

  private:
    beast::tcp_stream stream_;
    asio::ip::tcp::endpoint ep_;
    std::string token_;
    beast::flat_buffer buffer_;
    bool open_ = false;
};

struct pending_job {
    std::string id;
    bool faulted = false;
    std::string prompt;  // for the report
};

// One simulated caller with its own session: starts jobs, polls and waits on them, and checks
// that each job it sees finish ended as its prompt's fault says.
class client {
  public:
    client(asio::io_context& ioc, asio::ip::tcp::endpoint ep, std::string token, int n,
           options const& opts, totals& t)
        : conn_(ioc, ep, std::move(token)),
          session_(fmt::format("load{}", n)),
          opts_(opts),
          totals_(t),
          rng_(static_cast<unsigned>(n) * 7919u + 1) {}

    asio::awaitable<void> run(clock_type::time_point until) {
        asio::steady_timer think(co_await asio::this_coro::executor);
        while (clock_type::now() < until) {
            // Named, not temporaries: GCC 12 miscompiles literals inside a co_await expression.
            int dice = pick(0, 99);
            std::string method = dice < 55 ? "agents_status" : "agents_wait";
            json::object params;
            if (method == "agents_wait") params = {{"timeout_ms", 200}, {"mode", "any"}};
            if (dice < 15 || pending_.empty())
                co_await start();
            else
                co_await check(method, params);
            think.expires_after(std::chrono::milliseconds(pick(20, 100)));
            [[maybe_unused]] auto [ec] = co_await think.async_wait(use_tuple);
        }
    }

    // After the run: wait for every job still pending; whatever is left is stuck.
    asio::awaitable<long> drain() {
        std::string method = "agents_wait";
        json::object params{{"timeout_ms", 2000}, {"mode", "all"}};
        for (int round = 0; round < 20 && !pending_.empty(); ++round)
            co_await check(method, params);
        co_return static_cast<long>(pending_.size());
    }

  private:
    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

    json::object make_task(bool& faulted) {
        static constexpr std::string_view faults[] = {
            "fault=500",     "fault=503",         "fault=reset", "fault=close",
            "fault=garbage", "fault=wrong_shape", "fault=error"};
        faulted = std::uniform_real_distribution<double>(0, 1)(rng_) < opts_.fault_rate;
        json::object t{{"description", "load"}};
        t["prompt"] = fmt::format("work [[fake latency_ms={}]]", pick(0, 100));
        if (!faulted) return t;
        switch (pick(0, 8)) {
            case 0:  // the session create fails: the fake reads that directive from the title
                t["description"] = "[[fake create_fault=500]]";
                break;
            case 1:  // never answers: failed by its own deadline
                t["prompt"] = "never answers [[fake fault=hang]]";
                t["timeout_ms"] = 1000;
                break;
            default:
                t["prompt"] = fmt::format("broken [[fake {}]]", faults[pick(0, 6)]);
        }
        return t;
    }

    asio::awaitable<std::optional<json::value>> call(std::string method, json::object params) {
        params["session"] = session_;
        auto body = json::serialize(json::object{
            {"jsonrpc", "2.0"}, {"id", ++next_id_}, {"method", method}, {"params", params}});
        ++totals_.requests[method];
        std::string target = "/rpc";
        auto [status, text] = co_await conn_.exchange(http::verb::post, target, std::move(body));
        if (status != 200) {
            totals_.error(fmt::format("{}: HTTP {} {}", method, status, text.substr(0, 200)));
            co_return std::nullopt;
        }
        boost::system::error_code ec;
        auto v = json::parse(text, ec);
        if (ec || !v.is_object() || !v.as_object().contains("result")) {
            totals_.error(fmt::format("{}: {}", method, text.substr(0, 200)));
            co_return std::nullopt;
        }
        co_return v.as_object()["result"];
    }

    asio::awaitable<void> start() {
        json::array tasks;
        std::vector<bool> faulted;
        for (int i = pick(1, 3); i > 0; --i) {
            bool f = false;
            tasks.push_back(make_task(f));
            faulted.push_back(f);
        }
        std::string method = "agents_start";
        json::object params{{"tasks", tasks}};
        auto result = co_await call(method, params);
        if (!result) co_return;
        auto const& jobs = result->at("jobs").as_array();
        for (std::size_t i = 0; i < jobs.size(); ++i) {
            pending_.push_back(
                {std::string(jobs[i].at("id").as_string()), faulted[i], json::serialize(tasks[i])});
            ++totals_.jobs_started;
            totals_.jobs_faulted += faulted[i];
        }
    }

    // Status or wait on the oldest pending jobs; finished ones are checked and dropped.
    asio::awaitable<void> check(std::string method, json::object params) {
        json::array ids;
        for (std::size_t i = 0; i < pending_.size() && i < 16; ++i)
            ids.push_back(json::string(pending_[i].id));
        params["jobs"] = ids;
        auto result = co_await call(method, std::move(params));
        if (!result) co_return;
        std::map<std::string, std::string> states;
        for (auto const& j : result->at("jobs").as_array()) {
            auto const* state = j.as_object().if_contains("state");  // absent: not found
            states[std::string(j.at("id").as_string())] =
                state ? std::string(state->as_string()) : "not_found";
        }
        std::erase_if(pending_, [&](pending_job const& p) {
            auto const& s = states[p.id];
            if (s == "queued" || s == "running") return false;
            if (s != (p.faulted ? "failed" : "completed")) {
                ++totals_.wrong_outcomes;
                totals_.error(fmt::format("job {} ({}) ended {}, expected {}", p.id, p.prompt, s,
                                          p.faulted ? "failed" : "completed"));
            }
            return true;
        });
    }

    connection conn_;
    std::string session_;
    options const& opts_;
    totals& totals_;
    std::mt19937 rng_;
    std::deque<pending_job> pending_;
    int next_id_ = 0;
};

asio::awaitable<void> probe_health(connection& conn, clock_type::time_point until, totals& t) {
    asio::steady_timer tick(co_await asio::this_coro::executor);
    while (clock_type::now() < until) {
        auto t0 = clock_type::now();
        std::string target = "/healthz";
        auto [status, body] = co_await conn.exchange(http::verb::get, target, {});
        auto took = clock_type::now() - t0;
        t.healthz_worst = std::max(t.healthz_worst, took);
        if (status == 200 && took < 2s)
            ++t.healthz_ok;
        else
            ++t.healthz_failed;
        tick.expires_after(100ms);
        [[maybe_unused]] auto [ec] = co_await tick.async_wait(use_tuple);
    }
}

options parse_args(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc)
            o.duration = std::chrono::seconds(std::atoi(argv[++i]));
        if (a == "--clients" && i + 1 < argc) o.clients = std::atoi(argv[++i]);
        if (a == "--no-rss-check") o.check_rss = false;
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    auto opts = parse_args(argc, argv);
    agentd::test::fake_upstream fake(FAKE_OPENCODE_PATH);
    auto dir = std::filesystem::temp_directory_path() / fmt::format("agentd-load-{}", ::getpid());
    std::filesystem::remove_all(dir);
    agentd::test::child_process agentd({AGENTD_PATH, "--listen", "127.0.0.1:0", "--state-dir",
                                        dir.string(), "--upstream-url", fake.url(), "--max-running",
                                        "512", "--max-queued", "100000", "--max-connections",
                                        "4096", "--log-level", "warn", "--retention-ms",
                                        // Reaping keeps RSS flat; a slow sanitizer build must
                                        // not reap jobs before their client has looked.
                                        opts.check_rss ? "10000" : "600000"});
    auto port = agentd.wait_for_line(std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"), 10s);
    if (!port) {
        fmt::print(stderr, "agentd did not start:\n{}\n", agentd.stderr_text());
        return 1;
    }
    std::ifstream token_file(dir / "token");
    std::string token;
    std::getline(token_file, token);
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::stoi(*port)));

    asio::io_context ioc;
    totals t;
    std::vector<std::unique_ptr<client>> clients;
    for (int i = 0; i < opts.clients; ++i)
        clients.push_back(std::make_unique<client>(ioc, ep, token, i, opts, t));
    // The probe has its own thread: the clients' own CPU work must not delay it.
    asio::io_context probe_ioc;
    connection health(probe_ioc, ep, token);
    auto t0 = clock_type::now();
    auto until = t0 + opts.duration;
    long rss_warm = -1;
    long rss_peak = 0;
    for (auto& c : clients) asio::co_spawn(ioc, c->run(until), asio::detached);
    asio::co_spawn(probe_ioc, probe_health(health, until, t), asio::detached);
    std::thread probe([&] { probe_ioc.run(); });
    // RSS once warm (a third in: retention has started reaping) and at its peak.
    asio::steady_timer sampler(ioc);
    std::function<void()> sample = [&] {
        auto now = clock_type::now();
        long rss = rss_kib(agentd.pid());
        rss_peak = std::max(rss_peak, rss);
        if (rss_warm < 0 && now - t0 >= opts.duration / 3) rss_warm = rss;
        if (now >= until) return;
        sampler.expires_after(500ms);
        sampler.async_wait([&](beast::error_code) { sample(); });
    };
    sample();
    ioc.run();
    probe.join();
    long rss_end = rss_kib(agentd.pid());

    long stuck = 0;
    ioc.restart();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            for (auto& c : clients) stuck += co_await c->drain();
        },
        asio::detached);
    ioc.run();
    // The graceful path still works after the load: SIGTERM, drain, exit 0.
    agentd.signal(SIGTERM);
    auto exit_status = agentd.wait_exit(15s);

    long total_requests = 0;
    for (auto const& [m, n] : t.requests) total_requests += n;
    fmt::print("load: {} clients for {} s, {} requests ({:.0f}/s): start {}, status {}, wait {}\n",
               opts.clients, opts.duration.count(), total_requests,
               total_requests / double(opts.duration.count()), t.requests["agents_start"],
               t.requests["agents_status"], t.requests["agents_wait"]);
    fmt::print("jobs: {} started, {} with an upstream fault; {} ended wrongly, {} stuck\n",
               t.jobs_started, t.jobs_faulted, t.wrong_outcomes, stuck);
    fmt::print("protocol errors: {}\n", t.protocol_errors);
    for (auto const& e : t.first_errors) fmt::print("  {}\n", e);
    fmt::print("healthz: {} ok, {} failed, worst {} ms\n", t.healthz_ok, t.healthz_failed,
               std::chrono::duration_cast<std::chrono::milliseconds>(t.healthz_worst).count());
    fmt::print("agentd RSS: {} KiB warm, {} KiB peak, {} KiB end\n", rss_warm, rss_peak, rss_end);
    fmt::print("agentd exit after SIGTERM: {}\n",
               exit_status ? std::to_string(*exit_status) : "none");

    bool rss_ok = !opts.check_rss || rss_end <= std::max(rss_warm * 3 / 2, rss_warm + 32 * 1024);
    bool ok = t.protocol_errors == 0 && stuck == 0 && t.wrong_outcomes == 0 &&
              t.healthz_failed == 0 && t.healthz_ok > 0 && t.jobs_started > 0 && rss_ok &&
              exit_status == 0;
    fmt::print("{}\n", ok ? "PASS" : "FAIL");
    std::filesystem::remove_all(dir);
    return ok ? 0 : 1;
}
