// The daemon's metrics (GET /metrics, DESIGN §8): plain counters and fixed-bucket histograms,
// recorded on the one io_context thread without locks or allocation, and their rendering in the
// Prometheus text exposition format 0.0.4. No Asio here: the unit test drives it directly.
#pragma once

#include "jobs/health.hpp"
#include "protocol/job_view.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::daemon {

// A latency histogram in seconds. Counts are kept per bucket and summed when rendered, so an
// observation is one comparison loop and three additions.
class histogram {
  public:
    // Upper bounds (le): from a local fake's milliseconds to a 30-minute job's prompt.
    static constexpr std::array<double, 16> bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                   2.5,   5,    10,    30,   60,  300,  900, 1800};

    void observe(double seconds);
    // Observations <= bounds[i] (cumulative); i == bounds.size() is +Inf, i.e. count().
    std::uint64_t cumulative(std::size_t i) const;
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }

  private:
    std::array<std::uint64_t, bounds.size() + 1> buckets_{};  // the last one is (last bound, +Inf)
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

struct label {
    std::string_view name;
    std::string_view value;
};

// Writes the text format: a `# HELP` and `# TYPE` line per family, then its samples.
class exposition {
  public:
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<label> labels, double value);
    void sample(std::string_view name, std::initializer_list<label> labels, std::uint64_t value);
    // NAME_bucket{…,le="…"} for every bound and +Inf, then NAME_sum and NAME_count.
    void histogram(std::string_view name, std::initializer_list<label> labels,
                   daemon::histogram const& h);
    std::string const& text() const { return out_; }

  private:
    void series(std::string_view name, std::initializer_list<label> labels, label extra = {});

    std::string out_;
};

// What each upstream backend call is, as the `phase` label (create and prompt are the phases of a
// job's error; the others are the backend's remaining calls, backend.hpp).
enum class upstream_call { create, prompt, abort, read_partial, recover, respond };
BOOST_DESCRIBE_ENUM(upstream_call, create, prompt, abort, read_partial, recover, respond)

// Values read from the daemon at scrape time rather than counted.
struct metrics_gauges {
    std::array<std::size_t, protocol::enum_names<protocol::job_state>.size()>
        jobs_by_state{};  // indexed by protocol::job_state
    std::size_t queue_depth = 0;
    std::size_t connections_open = 0;
};

class metrics {
  public:
    metrics(std::string version, std::string backend);

    // The manager's listener: called at a job's creation (queued) and on every state change.
    void job_changed(protocol::job_view const& view);
    void observe_upstream(upstream_call call, double seconds);
    // Methods outside the known set share the label "other": a client cannot grow the series.
    // The index is looked up once per call, before it runs.
    static std::size_t rpc_method_index(std::string_view method);
    void observe_rpc(std::size_t method_index, double seconds);

    // Where render() reads the background tasks' health (the manager's); none: not shown.
    void watch_background(std::function<jobs::background_stats()> source);
    // Where render() reads the upstream servers (the manager's); none: not shown.
    void watch_servers(std::function<std::vector<jobs::server_stats>()> source);

    std::string render(metrics_gauges const& gauges) const;

  private:
    static constexpr std::array<std::string_view, 9> rpc_methods{
        "agents_start",   "agents_status",    "agents_wait",        "agents_cancel", "agents_peek",
        "agents_respond", "agents_subscribe", "agents_unsubscribe", "other"};
    static constexpr auto upstream_calls = protocol::enum_names<upstream_call>;
    // completed, cancelled, interrupted, then failed_<error kind> for each error_kind.
    static constexpr std::size_t outcome_count =
        3 + protocol::enum_names<protocol::error_kind>.size();

    void render_background(exposition& e) const;
    void render_servers(exposition& e) const;

    std::string version_;
    std::string backend_;
    std::function<jobs::background_stats()> background_;
    std::function<std::vector<jobs::server_stats>()> servers_;
    std::uint64_t jobs_started_ = 0;
    std::array<std::uint64_t, outcome_count> jobs_finished_{};
    std::array<daemon::histogram, upstream_calls.size()> upstream_{};
    std::array<daemon::histogram, rpc_methods.size()> rpc_{};
};

}  // namespace agentd::daemon
