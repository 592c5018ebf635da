// A backend decorator that times every upstream call into the daemon's metrics
// (agentd_upstream_request_duration_seconds by phase), so neither the manager nor the backends
// carry metrics code. Asio stays in the .cpp.
#pragma once

#include "daemon/metrics.hpp"
#include "jobs/upstream/backend.hpp"

#include <memory>

namespace agentd::daemon {

// `m` must outlive the returned backend.
std::unique_ptr<jobs::upstream::backend> timed_backend(
    std::unique_ptr<jobs::upstream::backend> inner, metrics& m);

}  // namespace agentd::daemon
