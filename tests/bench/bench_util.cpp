// Shared benchmark helpers (see bench_util.hpp): agentd as a child process, JSON-RPC over the
// test HTTP client, /proc readers and result files.
#include "bench_util.hpp"

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace agentd::bench {
namespace json = boost::json;

options parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--quick") {
            o.quick = true;
        } else if (arg == "--out" && i + 1 < argc) {
            o.out = argv[++i];
        } else {
            throw std::runtime_error("usage: " + std::string(argv[0]) + " [--quick] [--out DIR]");
        }
    }
    if (!o.out.empty()) std::filesystem::create_directories(o.out);
    return o;
}

agentd_process::agentd_process(std::string const& upstream, std::vector<std::string> const& extra,
                               std::vector<std::string> wrapper) {
    static int n = 0;
    dir_ =
        std::filesystem::temp_directory_path() / fmt::format("agentd-bench-{}-{}", ::getpid(), n++);
    std::filesystem::remove_all(dir_);
    std::vector<std::string> argv = std::move(wrapper);
    // AGENTD_BIN runs another agentd build through the same benchmark (before/after a change).
    char const* binary = std::getenv("AGENTD_BIN");
    argv.push_back(binary && *binary ? binary : AGENTD_PATH);
    for (std::string arg : {"--listen", "127.0.0.1:0", "--state-dir"}) argv.push_back(arg);
    argv.push_back(dir_.string());
    argv.insert(argv.end(), {"--upstream-url", upstream});
    // Like nginx's `access_log off` in the comparison: no line per request or job.
    argv.insert(argv.end(), {"--log-level", "warn"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<test::child_process>(argv);
    // Generous: under valgrind start-up takes seconds.
    auto p = proc_->wait_for_line(std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"),
                                  std::chrono::seconds(60));
    if (!p) throw std::runtime_error("agentd did not start: " + proc_->stderr_text());
    port_ = static_cast<unsigned short>(std::stoi(*p));
    std::ifstream(dir_ / "token") >> token_;
}

agentd_process::~agentd_process() {
    proc_.reset();
    std::filesystem::remove_all(dir_);
}

test::http_headers agentd_process::auth() const {
    return {{"Authorization", "Bearer " + token_}};
}

json::value agentd_process::rpc(std::string const& method, json::object params,
                                std::chrono::milliseconds timeout) const {
    auto r = test::http_request(port_, "POST", "/rpc", rpc_body(method, std::move(params)), auth(),
                                timeout);
    auto reply = json::parse(r.body).as_object();
    if (auto const* error = reply.if_contains("error"))
        throw std::runtime_error(method + " failed: " + json::serialize(*error));
    return reply.at("result");
}

std::optional<int> agentd_process::stop(std::chrono::milliseconds timeout) {
    proc_->signal(SIGTERM);
    return proc_->wait_exit(timeout);
}

std::string rpc_body(std::string const& method, json::object params, int id) {
    return json::serialize(json::object{
        {"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}});
}

json::array job_ids(json::value const& start_result) {
    json::array ids;
    for (auto const& j : start_result.at("jobs").as_array()) ids.push_back(j.at("id"));
    return ids;
}

json::object start_params(std::vector<std::string> const& prompts) {
    json::array tasks;
    for (auto const& p : prompts) tasks.push_back(json::object{{"prompt", p}});
    return {{"tasks", std::move(tasks)}};
}

long rss_kib(int pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    throw std::runtime_error("no VmRSS for pid " + std::to_string(pid));
}

double cpu_ms(int pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Fields after the parenthesised command name (which may contain spaces); utime and stime
    // are fields 14 and 15, i.e. the 12th and 13th after the name.
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 0; i < 11; ++i) rest >> field;
    double utime = 0;
    double stime = 0;
    rest >> utime >> stime;
    return (utime + stime) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0;
    std::sort(samples.begin(), samples.end());
    auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

std::int64_t steady_us(clock_type::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::optional<std::string> find_program(std::string const& name) {
    std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
    path += ":/usr/sbin:/sbin";
    std::istringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        auto candidate = std::filesystem::path(dir) / name;
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    return std::nullopt;
}

void write_result(options const& opts, std::string const& name, std::string const& text) {
    if (opts.out.empty()) return;
    std::ofstream(opts.out / name) << text;
}

}  // namespace agentd::bench
