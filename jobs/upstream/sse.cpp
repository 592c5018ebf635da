// SSE framing per the WHATWG spec: lines end in CRLF, LF or CR; `data:` lines accumulate; a
// blank line dispatches; comments (`:`) and other fields are ignored.
#include "jobs/upstream/sse.hpp"

namespace agentd::jobs::upstream {

bool sse_parser::feed(std::string_view chunk,
                      std::function<void(std::string_view)> const& on_data) {
    for (char c : chunk) {
        if (after_cr_) {
            after_cr_ = false;
            if (c == '\n') continue;  // the LF of a CRLF pair
        }
        if (c == '\r' || c == '\n') {
            after_cr_ = c == '\r';
            line(pending_, on_data);
            pending_.clear();
            continue;
        }
        pending_.push_back(c);
        if (pending_.size() + data_.size() > max_event_) return false;
    }
    return true;
}

void sse_parser::line(std::string_view l, std::function<void(std::string_view)> const& on_data) {
    if (l.empty()) {
        if (has_data_) on_data(data_);
        data_.clear();
        has_data_ = false;
        return;
    }
    // "data" alone is the field with an empty value (WHATWG: a line without a colon).
    if (l == "data") l = "data:";
    if (l.substr(0, 5) != "data:") return;
    l.remove_prefix(5);
    if (!l.empty() && l.front() == ' ') l.remove_prefix(1);
    if (has_data_) data_.push_back('\n');
    data_.append(l);
    has_data_ = true;
}

}  // namespace agentd::jobs::upstream
