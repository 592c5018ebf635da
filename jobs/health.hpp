// How the jobs layer's background work fares, as /metrics shows it: store failures by operation,
// rows waiting to be written, errors the reaper and other background tasks survived, and the
// upstream servers. Plain
// data without Asio, so the metrics code can include it.
#pragma once

#include "protocol/enum_names.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace agentd::jobs {

// What failed, as the `op` label of agentd_store_errors_total.
enum class store_op { start, save, erase, flush, checkpoint };
BOOST_DESCRIBE_ENUM(store_op, start, save, erase, flush, checkpoint)
inline constexpr auto store_op_names = protocol::enum_names<store_op>;

struct background_stats {
    std::array<std::uint64_t, store_op_names.size()> store_errors{};  // indexed by store_op
    std::size_t store_pending_rows = 0;
    std::uint64_t reaper_errors = 0;
    std::uint64_t task_errors = 0;  // re-attach and other detached tasks
};

// One upstream server of a pool (jobs/upstream/pool.hpp).
struct server_stats {
    std::string url;  // as configured
    bool up = true;
    std::size_t running = 0;
    std::uint64_t jobs_total = 0;  // jobs placed on it
};

}  // namespace agentd::jobs
