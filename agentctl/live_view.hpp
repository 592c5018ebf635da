// What `agentctl watch` and the live `wait` display show: a board of JobViews kept current from
// agents_event pushes, rendered as a table, as progress lines with a spinner, or as one plain
// line per change, plus the ANSI sequence that redraws a block in place. Pure functions of the
// board and a clock reading, so unit tests need neither a terminal nor a server.
#pragma once

#include "render.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace agentctl {

using live_clock = std::chrono::steady_clock;

class job_board {
  public:
    // Takes a JobView as the daemon sent it at `now`; true when the board shows something new
    // (a job it did not have, another state, tool step or set of pending requests). A view with
    // no id is ignored.
    bool update(boost::json::value const& job, live_clock::time_point now);
    // The answer of agents_subscribe {snapshot: true}: result.jobs, each {job, session} (or a bare
    // JobView). A job already on the board is kept: an event that came first is newer.
    void take_snapshot(boost::json::object const& result, live_clock::time_point now);

    // Ids oldest first: in the order they were first seen, a snapshot's from its oldest.
    std::vector<std::string> const& ids() const { return order_; }
    boost::json::object const* find(std::string_view id) const;
    // The view with elapsed_ms advanced to `now` for jobs still queued or running.
    boost::json::object at(std::string_view id, live_clock::time_point now) const;
    bool terminal(std::string_view id) const;  // unknown ids count as resolved (not_found)
    bool idle() const;                         // no job queued or running

  private:
    struct entry {
        std::string id;
        boost::json::object view;
        live_clock::time_point seen;
    };
    std::vector<entry> jobs_;
    std::vector<std::string> order_;
};

// The status table (ID STATE ELAPSED [INPUT] DESCRIPTION [STEP], errors on lines of their own
// wrapped to `columns`) of the board's jobs, newest first.
std::string board_table(job_board const& board, live_clock::time_point now, std::size_t columns);

// "| job_…  running      3.2s  description  bash: npm test": a spinner frame for queued and
// running jobs (with the current tool step), "?" for waiting ones (with what they wait for:
// "needs input: bash `rm -rf build`"), "+" for completed, "x" for the other ends; one line per
// id, in the given order, a failed job's error under it on lines of its own (error_lines).
std::vector<std::string> progress_lines(job_board const& board, std::vector<std::string> const& ids,
                                        live_clock::time_point now, std::size_t frame,
                                        std::size_t columns);

// One plain line for a change (with the tool step or what a waiting job needs), for a watch
// whose output is not a terminal.
std::string event_line(boost::json::object const& view);

// The line cut to fewer than `columns` characters (UTF-8 aware): a line that wrapped would take
// two rows, and redraw() would go back over too few.
std::string fit_width(std::string_view line, std::size_t columns);

// Moves the cursor up over the `previous` lines drawn last time, then writes `lines`, each
// cleared to the end first; lines left over from a longer previous block are erased.
std::string redraw(std::size_t previous, std::vector<std::string> const& lines);

// A message the daemon sent over /ws: an agents_event push, or the response to request `id`.
struct ws_message {
    enum class kind { event, response, other } what = kind::other;
    std::int64_t id = 0;
    boost::json::object job;     // event: params.job
    boost::json::object result;  // response: its result (an error is thrown)
};

// A JSON-RPC error answered over /ws; what() is describe()'s text.
struct rpc_failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws transport_error for text that is not JSON-RPC, rpc_failure for an error response.
ws_message classify(std::string_view text);

}  // namespace agentctl
