// Counters and gauges of the fake OpenAI server for /_fake/stats. Every change wakes the
// /_fake/wait waiters, so tests block on "client_disconnects >= 1" without polling.
#pragma once

#include "fake_common/range_waiters.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace fake_openai {

class stats {
  public:
    stats();

    void add(std::string const& name, std::int64_t delta);
    // Raises gauge `name` and keeps `max_<name>` at its peak until the returned hold is dropped.
    std::shared_ptr<void> hold(std::string const& name);
    bool has(std::string const& name) const { return values_.contains(name); }
    std::int64_t get(std::string const& name) const;
    void set_last_request_body(boost::json::value body) { last_body_ = std::move(body); }
    boost::json::object to_json() const;
    // Zeroes counters and peaks; gauges keep their current value (their holds still drop them).
    void reset();

    // (true, value) as soon as min <= value <= max; (false, value) after `timeout` or shutdown.
    boost::asio::awaitable<std::pair<bool, std::int64_t>> wait_for(
        std::string name, std::int64_t min, std::int64_t max, std::chrono::milliseconds timeout);
    void shutdown() { waiters_.shutdown(); }

  private:
    std::map<std::string, std::int64_t> values_;
    boost::json::value last_body_;
    fake_common::range_waiters waiters_;
};

}  // namespace fake_openai
