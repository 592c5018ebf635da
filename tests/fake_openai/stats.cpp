// The fake OpenAI server's counters (see stats.hpp): a map of named numbers whose every change
// wakes the /_fake/wait waiters.
#include "stats.hpp"

#include <algorithm>

namespace fake_openai {
namespace asio = boost::asio;

namespace {

// Gauges go up and down with live work; reset leaves them alone.
bool is_gauge(std::string const& name) {
    return name.ends_with("_in_flight") && !name.starts_with("max_");
}

}  // namespace

stats::stats() {
    for (auto const* name :
         {"requests_total", "streams_in_flight", "max_streams_in_flight", "streams_completed",
          "completions", "client_disconnects", "rate_limited", "chunks_sent",
          "tls_handshake_failures", "model_lists"})
        values_[name] = 0;
}

void stats::add(std::string const& name, std::int64_t delta) {
    values_[name] += delta;
    waiters_.wake();
}

std::shared_ptr<void> stats::hold(std::string const& name) {
    auto& peak = values_["max_" + name];
    peak = std::max(peak, ++values_[name]);
    waiters_.wake();
    return std::shared_ptr<void>(nullptr, [this, name](void*) { add(name, -1); });
}

std::int64_t stats::get(std::string const& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? 0 : it->second;
}

boost::json::object stats::to_json() const {
    boost::json::object out;
    for (auto const& [name, value] : values_) out[name] = value;
    out["last_request_body"] = last_body_;
    return out;
}

void stats::reset() {
    for (auto& [name, value] : values_)
        if (!is_gauge(name)) value = 0;
    for (auto& [name, value] : values_)
        if (name.starts_with("max_")) value = get(name.substr(4));
    last_body_ = nullptr;
    waiters_.wake();
}

asio::awaitable<std::pair<bool, std::int64_t>> stats::wait_for(std::string name, std::int64_t min,
                                                               std::int64_t max,
                                                               std::chrono::milliseconds timeout) {
    return waiters_.wait_for([this, name] { return get(name); }, min, max, timeout);
}

}  // namespace fake_openai
