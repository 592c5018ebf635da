// JobView serialisation: names of states and error kinds, ISO-8601 UTC times with milliseconds,
// and the omission of unknown optional fields.
#include "protocol/job_view.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <boost/json/object.hpp>

namespace agentd::protocol {
namespace json = boost::json;

std::string_view to_string(job_state s) {
    switch (s) {
        case job_state::queued:
            return "queued";
        case job_state::running:
            return "running";
        case job_state::completed:
            return "completed";
        case job_state::failed:
            return "failed";
        case job_state::cancelled:
            return "cancelled";
        case job_state::interrupted:
            return "interrupted";
    }
    return "unknown";
}

std::string_view to_string(error_kind k) {
    switch (k) {
        case error_kind::transport:
            return "transport";
        case error_kind::timeout:
            return "timeout";
        case error_kind::upstream:
            return "upstream";
        case error_kind::protocol:
            return "protocol";
        case error_kind::cancelled:
            return "cancelled";
        case error_kind::interrupted:
            return "interrupted";
        case error_kind::limit:
            return "limit";
    }
    return "unknown";
}

std::string_view to_string(error_phase p) {
    switch (p) {
        case error_phase::create:
            return "create";
        case error_phase::prompt:
            return "prompt";
        case error_phase::abort:
            return "abort";
    }
    return "unknown";
}

bool is_terminal(job_state s) {
    return s != job_state::queued && s != job_state::running;
}

std::string format_time(wall_time t) {
    auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(ms);
    auto frac = (ms - secs).count();
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                       fmt::gmtime(std::chrono::system_clock::to_time_t(secs)), frac);
}

namespace {

json::object error_json(job_error const& e) {
    json::object o{{"kind", to_string(e.kind)}, {"message", e.message}};
    if (e.phase) o["phase"] = to_string(*e.phase);
    if (e.http_status) o["http_status"] = *e.http_status;
    return o;
}

std::int64_t millis_between(wall_time from, wall_time to) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
    return d < 0 ? 0 : d;
}

}  // namespace

json::value to_json(job_view const& v, wall_time now) {
    json::object o;
    o["id"] = v.id;
    if (!v.description.empty()) o["description"] = v.description;
    o["state"] = to_string(v.state);
    o["created_at"] = format_time(v.created_at);
    if (v.started_at) o["started_at"] = format_time(*v.started_at);
    if (v.finished_at) o["finished_at"] = format_time(*v.finished_at);
    if (v.started_at) o["elapsed_ms"] = millis_between(*v.started_at, v.finished_at.value_or(now));
    o["depth"] = v.depth;
    if (v.upstream)
        o["upstream"] =
            json::object{{"backend", v.upstream->backend}, {"session", v.upstream->session}};
    if (v.output) {
        o["output"] = *v.output;
        o["truncated"] = v.truncated;
    }
    if (v.error) o["error"] = error_json(*v.error);
    if (v.usage)
        o["usage"] = json::object{{"input_tokens", v.usage->input_tokens},
                                  {"output_tokens", v.usage->output_tokens},
                                  {"cost", v.usage->cost}};
    return o;
}

json::value not_found_json(std::string_view id) {
    return json::object{{"id", id}, {"state", "not_found"}};
}

}  // namespace agentd::protocol
