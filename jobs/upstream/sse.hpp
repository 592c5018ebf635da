// Incremental Server-Sent Events parser (data-only frames as OpenCode and OpenAI send them):
// feed arbitrary chunks, get one callback per complete event's data. Pure, no I/O.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream {

class sse_parser {
  public:
    explicit sse_parser(std::size_t max_event_bytes = 4 << 20) : max_event_(max_event_bytes) {}

    // Calls on_data(data) for every event completed by `chunk`. Returns false when an event
    // grew past the size bound (the stream should be dropped).
    bool feed(std::string_view chunk, std::function<void(std::string_view)> const& on_data);

  private:
    void line(std::string_view l, std::function<void(std::string_view)> const& on_data);

    std::size_t max_event_;
    std::string pending_;  // bytes of an unfinished line
    std::string data_;     // data lines of the current event, joined by '\n'
    bool has_data_ = false;
    bool after_cr_ = false;
};

}  // namespace agentd::jobs::upstream
