// Shared pieces of the benchmarks in tests/bench: their command line, an agentd child process on
// port 0 with its token, JSON-RPC calls, /proc readers (RSS, CPU time), percentiles, and writing
// result files for scripts/bench.sh. No Beast or Asio here.
#pragma once

#include "support/http_client.hpp"
#include "support/process.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace agentd::bench {

using clock_type = std::chrono::steady_clock;

// `--quick`: short runs for CI's smoke check. `--out DIR`: where result files go (none if unset).
struct options {
    bool quick = false;
    std::filesystem::path out;
};
options parse_options(int argc, char** argv);

// agentd (or $AGENTD_BIN) on 127.0.0.1:0 with a fresh state dir, against `upstream`. `wrapper` goes
// before the binary (valgrind …); `extra` flags follow the defaults and win over them.
class agentd_process {
  public:
    agentd_process(std::string const& upstream, std::vector<std::string> const& extra,
                   std::vector<std::string> wrapper = {});
    ~agentd_process();
    agentd_process(agentd_process const&) = delete;
    agentd_process& operator=(agentd_process const&) = delete;

    unsigned short port() const { return port_; }
    std::string const& token() const { return token_; }
    int pid() const { return proc_->pid(); }
    // Its --state-dir (agentd.db and its WAL), removed with this object.
    std::filesystem::path const& state_dir() const { return dir_; }
    test::http_headers auth() const;
    // One JSON-RPC call on a fresh connection; the `result`, or throws with the error.
    boost::json::value rpc(std::string const& method, boost::json::object params,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
    // SIGTERM, then the exit status (nullopt if it did not exit within `timeout`).
    std::optional<int> stop(std::chrono::milliseconds timeout);

  private:
    std::filesystem::path dir_;
    std::unique_ptr<test::child_process> proc_;
    unsigned short port_ = 0;
    std::string token_;
};

// A JSON-RPC 2.0 request as text.
std::string rpc_body(std::string const& method, boost::json::object params, int id = 1);
// The ids of an agents_start result.
boost::json::array job_ids(boost::json::value const& start_result);
// Tasks with the given prompts, as agents_start params.
boost::json::object start_params(std::vector<std::string> const& prompts);

long rss_kib(int pid);   // VmRSS from /proc/PID/status
double cpu_ms(int pid);  // utime + stime from /proc/PID/stat
// Nearest-rank percentile (p in 0..100) of unsorted samples.
double percentile(std::vector<double> samples, double p);
double ms_since(clock_type::time_point t0);
// Microseconds of the steady clock, comparable with the fake upstream's answered_us.
std::int64_t steady_us(clock_type::time_point t);

// `name` in PATH or in /usr/sbin, /sbin (nginx lives there); nullopt when absent.
std::optional<std::string> find_program(std::string const& name);
// Writes `text` to out/name when an output dir was given.
void write_result(options const& opts, std::string const& name, std::string const& text);

}  // namespace agentd::bench
