// Metric recording and the Prometheus text format 0.0.4: label values escaped (\\, \", \n),
// histogram buckets rendered cumulative with +Inf, every series present from the start (a rate
// over a series that appears late misses its first increments).
#include "daemon/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace agentd::daemon {
using protocol::job_state;

namespace {

// The outcomes of agentd_jobs_finished_total before the failed_<kind> ones, as in jobs_finished_.
constexpr std::array ended_states{job_state::completed, job_state::cancelled,
                                  job_state::interrupted};

void escape_into(std::string& out, std::string_view text, bool quotes) {
    for (char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quotes)
            out += "\\\"";
        else
            out += c;
    }
}

// Go's ParseFloat reads this: shortest round-trip digits, and +Inf/-Inf/NaN spelled out.
std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

}  // namespace

void histogram::observe(double seconds) {
    std::size_t i = 0;
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    ++buckets_[i];
    ++count_;
    sum_ += seconds;
}

std::uint64_t histogram::cumulative(std::size_t i) const {
    std::uint64_t n = 0;
    for (std::size_t b = 0; b <= i && b < buckets_.size(); ++b) n += buckets_[b];
    return n;
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    escape_into(out_, help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void exposition::series(std::string_view name, std::initializer_list<label> labels, label extra) {
    out_ += name;
    if (labels.size() == 0 && extra.name.empty()) return;
    char sep = '{';
    auto add = [&](label const& l) {
        out_ += sep;
        out_ += l.name;
        out_ += "=\"";
        escape_into(out_, l.value, true);
        out_ += '"';
        sep = ',';
    };
    for (auto const& l : labels) add(l);
    if (!extra.name.empty()) add(extra);
    out_ += '}';
}

void exposition::sample(std::string_view name, std::initializer_list<label> labels, double value) {
    series(name, labels);
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

void exposition::sample(std::string_view name, std::initializer_list<label> labels,
                        std::uint64_t value) {
    series(name, labels);
    out_ += fmt::format(" {}\n", value);
}

void exposition::histogram(std::string_view name, std::initializer_list<label> labels,
                           daemon::histogram const& h) {
    auto bucket = fmt::format("{}_bucket", name);
    for (std::size_t i = 0; i <= daemon::histogram::bounds.size(); ++i) {
        auto le = i < daemon::histogram::bounds.size() ? format_value(daemon::histogram::bounds[i])
                                                       : std::string("+Inf");
        series(bucket, labels, {"le", le});
        out_ += fmt::format(" {}\n", h.cumulative(i));
    }
    sample(fmt::format("{}_sum", name), labels, h.sum());
    sample(fmt::format("{}_count", name), labels, h.count());
}

metrics::metrics(std::string version, std::string backend)
    : version_(std::move(version)), backend_(std::move(backend)) {}

void metrics::job_changed(protocol::job_view const& view) {
    // A job is created queued and never returns to queued; a terminal state is entered once.
    switch (view.state) {
        case job_state::queued:
            ++jobs_started_;
            break;
        case job_state::running:
        case job_state::waiting:  // also activity and request changes: not counted here
            break;
        case job_state::completed:
            ++jobs_finished_[0];
            break;
        case job_state::cancelled:
            ++jobs_finished_[1];
            break;
        case job_state::interrupted:
            ++jobs_finished_[2];
            break;
        case job_state::failed: {
            auto kind = view.error ? view.error->kind : protocol::error_kind::protocol;
            ++jobs_finished_[3 + static_cast<std::size_t>(kind)];
            break;
        }
    }
}

void metrics::observe_upstream(upstream_call call, double seconds) {
    upstream_[static_cast<std::size_t>(call)].observe(seconds);
}

std::size_t metrics::rpc_method_index(std::string_view method) {
    auto it = std::find(rpc_methods.begin(), rpc_methods.end() - 1, method);
    return static_cast<std::size_t>(it - rpc_methods.begin());
}

void metrics::observe_rpc(std::size_t method_index, double seconds) {
    rpc_.at(method_index).observe(seconds);
}

void metrics::watch_background(std::function<jobs::background_stats()> source) {
    background_ = std::move(source);
}

void metrics::render_background(exposition& e) const {
    if (!background_) return;
    auto b = background_();
    e.family("agentd_store_errors_total", "counter",
             "Failed state database operations, by operation (failed rows are retried)");
    for (std::size_t i = 0; i < b.store_errors.size(); ++i)
        e.sample("agentd_store_errors_total", {{"op", jobs::store_op_names[i]}}, b.store_errors[i]);
    e.family("agentd_store_pending_rows", "gauge",
             "Job rows kept in memory until the state database takes them");
    e.sample("agentd_store_pending_rows", {}, static_cast<std::uint64_t>(b.store_pending_rows));
    e.family("agentd_reaper_errors_total", "counter", "Errors the retention reaper survived");
    e.sample("agentd_reaper_errors_total", {}, b.reaper_errors);
    e.family("agentd_background_errors_total", "counter",
             "Errors of other background tasks (re-attach), logged and survived");
    e.sample("agentd_background_errors_total", {}, b.task_errors);
}

void metrics::watch_servers(std::function<std::vector<jobs::server_stats>()> source) {
    servers_ = std::move(source);
}

// Per upstream server, labelled by its URL as configured (a short, fixed list: no cardinality
// a client could grow).
void metrics::render_servers(exposition& e) const {
    if (!servers_) return;
    auto servers = servers_();
    e.family("agentd_upstream_server_up", "gauge",
             "Whether the upstream server passed its last health check (1) or not (0)");
    for (auto const& s : servers)
        e.sample("agentd_upstream_server_up", {{"server", s.url}}, std::uint64_t{s.up ? 1u : 0u});
    e.family("agentd_upstream_server_running", "gauge", "Jobs running on the upstream server");
    for (auto const& s : servers)
        e.sample("agentd_upstream_server_running", {{"server", s.url}},
                 static_cast<std::uint64_t>(s.running));
    e.family("agentd_upstream_server_jobs_total", "counter", "Jobs started on the upstream server");
    for (auto const& s : servers)
        e.sample("agentd_upstream_server_jobs_total", {{"server", s.url}}, s.jobs_total);
}

std::string metrics::render(metrics_gauges const& g) const {
    exposition e;
    e.family("agentd_build_info", "gauge", "agentd version and upstream backend (always 1)");
    e.sample("agentd_build_info", {{"version", version_}, {"backend", backend_}}, std::uint64_t{1});

    e.family("agentd_jobs", "gauge", "Jobs agentd holds (until retention ends), by state");
    for (std::size_t i = 0; i < g.jobs_by_state.size(); ++i)
        e.sample("agentd_jobs", {{"state", protocol::to_string(static_cast<job_state>(i))}},
                 static_cast<std::uint64_t>(g.jobs_by_state[i]));

    e.family("agentd_jobs_started_total", "counter", "Jobs accepted by agents_start");
    e.sample("agentd_jobs_started_total", {}, jobs_started_);

    e.family("agentd_jobs_finished_total", "counter",
             "Jobs that reached a terminal state, by outcome (failed_<error kind> for failures)");
    for (std::size_t i = 0; i < outcome_count; ++i) {
        auto outcome =
            i < ended_states.size()
                ? std::string(protocol::to_string(ended_states[i]))
                : fmt::format("failed_{}", protocol::to_string(static_cast<protocol::error_kind>(
                                               i - ended_states.size())));
        e.sample("agentd_jobs_finished_total", {{"outcome", outcome}}, jobs_finished_[i]);
    }

    e.family("agentd_queue_depth", "gauge", "Jobs waiting for the launch gate (max_running)");
    e.sample("agentd_queue_depth", {}, static_cast<std::uint64_t>(g.queue_depth));
    e.family("agentd_connections_open", "gauge", "Open HTTP and WebSocket connections");
    e.sample("agentd_connections_open", {}, static_cast<std::uint64_t>(g.connections_open));

    e.family("agentd_upstream_request_duration_seconds", "histogram",
             "Duration of upstream backend calls, by phase");
    for (std::size_t i = 0; i < upstream_calls.size(); ++i)
        e.histogram("agentd_upstream_request_duration_seconds", {{"phase", upstream_calls[i]}},
                    upstream_[i]);

    e.family("agentd_rpc_duration_seconds", "histogram",
             "Duration of JSON-RPC method calls (HTTP, WebSocket, MCP tools), by method");
    for (std::size_t i = 0; i < rpc_methods.size(); ++i)
        e.histogram("agentd_rpc_duration_seconds", {{"method", rpc_methods[i]}}, rpc_[i]);
    render_background(e);
    render_servers(e);
    return e.text();
}

}  // namespace agentd::daemon
