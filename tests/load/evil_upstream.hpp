// A hostile OpenCode server for the hostile-client run, on raw sockets (independent of the fakes'
// fault modes): sessions are created normally, every prompt reply ends in an endless trailer,
// and `GET /global/event` alternates between one endless SSE line and an endless flood of
// `message.part.updated` events for sessions agentd never created.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace agentd::test::hostile {

struct evil_stats {
    long sessions = 0;
    long prompts = 0;
    std::size_t trailer_max_bytes = 0;  // most one prompt reply got agentd to take
    long trailers_closed = 0;           // prompt replies agentd hung up on
    long event_streams = 0;
    std::size_t sse_line_max_bytes = 0;  // most one endless SSE line got agentd to take
    long sse_lines_closed = 0;
    long part_events = 0;  // unknown-session part events agentd's socket took
    std::size_t part_bytes = 0;
};

class evil_upstream {
  public:
    evil_upstream();  // listens on 127.0.0.1, port 0
    ~evil_upstream();
    evil_upstream(evil_upstream const&) = delete;
    evil_upstream& operator=(evil_upstream const&) = delete;

    int port() const { return port_; }
    // Stops accepting, ends every connection and joins the threads.
    void stop();
    evil_stats stats() const;

  private:
    void accept_loop();
    void serve(int fd);
    void endless_trailer(int fd);
    void endless_sse_line(int fd);
    void part_flood(int fd);

    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;  // guards stats_ and workers_
    evil_stats stats_;
    std::vector<std::thread> workers_;
    std::thread acceptor_;
};

}  // namespace agentd::test::hostile
