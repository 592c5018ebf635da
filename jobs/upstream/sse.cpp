// SSE framing per the WHATWG spec: lines end in CRLF, LF or CR; `data:` lines accumulate; a
// blank line dispatches; comments (`:`) and other fields are ignored.
#include "jobs/upstream/sse.hpp"

#include <cstring>

namespace agentd::jobs::upstream {

namespace {

// The first CR or LF in `s`, or npos. Two memchr scans instead of a byte loop: the event stream
// carries every event of every upstream session, and this is most of its bytes' cost.
std::size_t line_end(std::string_view s) {
    auto const* lf = static_cast<char const*>(std::memchr(s.data(), '\n', s.size()));
    auto span = lf ? static_cast<std::size_t>(lf - s.data()) : s.size();
    auto const* cr = static_cast<char const*>(std::memchr(s.data(), '\r', span));
    if (cr) return static_cast<std::size_t>(cr - s.data());
    return lf ? span : std::string_view::npos;
}

}  // namespace

bool sse_parser::feed(std::string_view chunk,
                      std::function<void(std::string_view)> const& on_data) {
    while (!chunk.empty()) {
        if (after_cr_) {
            after_cr_ = false;
            if (chunk.front() == '\n') {  // the LF of a CRLF pair
                chunk.remove_prefix(1);
                continue;
            }
        }
        auto end = line_end(chunk);
        auto piece = chunk.substr(0, end);
        if (pending_.size() + piece.size() + data_.size() > max_event_) return false;
        if (end == std::string_view::npos) {
            pending_.append(piece);
            return true;
        }
        after_cr_ = chunk[end] == '\r';
        chunk.remove_prefix(end + 1);
        if (pending_.empty()) {
            line(piece, on_data);  // the whole line is in this chunk: no copy
        } else {
            pending_.append(piece);
            line(pending_, on_data);
            pending_.clear();
        }
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
