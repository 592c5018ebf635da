// Many concurrent HTTP requests from one thread: one keep-alive connection per request, all sent
// at once, each reply stamped with the time it was read. The benchmarks use it for 1 000 blocked
// agents_wait calls, which the synchronous test client could only do with 1 000 threads.
#pragma once

#include "bench_util.hpp"

#include <functional>
#include <string>
#include <vector>

namespace agentd::bench {

struct timed_reply {
    int status = 0;  // 0: no reply (connect, write or read failed, or the deadline passed)
    std::string body;
    clock_type::time_point at;
};

struct parallel_outcome {
    std::vector<timed_reply> replies;  // in the order of the bodies
    clock_type::time_point all_sent;   // when the last request was written
};

// POSTs bodies[i] to /rpc on 127.0.0.1:port over connection i; returns when every request has
// its reply or `timeout` has passed. `on_sent` runs (on the client thread) once all are written.
parallel_outcome post_all(unsigned short port, test::http_headers const& headers,
                          std::vector<std::string> const& bodies, std::chrono::milliseconds timeout,
                          std::function<void()> const& on_sent = {});

}  // namespace agentd::bench
