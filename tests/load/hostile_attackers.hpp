// The hostile clients of the hostile-client run, each a loop on its own thread until `stop`:
// header floods (endless trailer, endless chunk extension), idle sockets past the connection
// cap, abandoned long waits, and WebSocket read-ahead. Each fills its own stats, read after join.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace agentd::test::hostile {

struct flood_stats {
    explicit flood_stats(std::string n) : name(std::move(n)) {}
    std::string name;
    long connections = 0;
    long closed_by_daemon = 0;
    std::size_t first_bytes = 0;  // accepted on the first connection before it ended
    std::size_t max_bytes = 0;    // most any one connection got in
    std::string first_reply;      // status line of the first answer, if any
};

struct idle_stats {
    long opened = 0;
    long connect_failures = 0;
    long closed_by_daemon = 0;
    long refused_at_once = 0;  // closed within 100 ms: turned away at the cap
    long longest_held_ms = 0;  // the longest any socket stayed open, counting those still open
    long open_at_end = 0;
};

struct abandon_stats {
    long sent = 0;
    long connect_failures = 0;
};

struct ws_stats {
    long connections = 0;
    long upgrade_failures = 0;
    long frames_sent = 0;  // whole 1 MiB frames the daemon's socket took
    std::size_t bytes = 0;
    long closed_by_daemon = 0;
    std::string first_failure;
};

// Where the attackers aim: agentd's port and token, and a job that runs all the time.
struct target {
    int port = 0;
    std::string token;
    std::string session;  // owner session of `running_job`
    std::string running_job;
};

// `head`, then `unit` for ever, one connection after another until `stop`.
void run_flood(std::string head, std::string unit, std::atomic<bool> const& stop, int port,
               flood_stats& st);
// Flood requests: chunked POST /rpc then an endless trailer; chunked GET /healthz (no token)
// then an endless trailer; a chunk header with an endless `;ext=` extension.
std::string trailer_rpc_head(target const& t);
std::string trailer_healthz_head(target const& t);
std::string trailer_unit();
std::string extension_head(target const& t);
std::string extension_unit();

// `count` sockets that connect and send nothing; each one the daemon closes is reopened after
// a pause.
void run_idle_sockets(target const& t, int count, std::atomic<bool> const& stop, idle_stats& st);

// Ten times a second: POST /rpc agents_wait (60 s) on the running job, then close at once.
void run_abandoned_waits(target const& t, std::atomic<bool> const& stop, abandon_stats& st);

// Upgrades /ws, sends a long agents_wait, then `frames` text frames of 1 MiB each (cancels of
// no job, padded with whitespace), draining answers; reconnects until `stop`.
void run_ws_read_ahead(target const& t, int frames, std::atomic<bool> const& stop, ws_stats& st);

}  // namespace agentd::test::hostile
