// Human rendering of agentd results, and what a wait's result means as an exit code.
// JobViews are read tolerantly: any optional field may be missing or of an unexpected type.
#pragma once

#include "cli.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentctl {

// The fields of a DESIGN §2 JobView that agentctl shows; absent ones stay empty. All but output
// are made single-line, since upstream text could otherwise break a table or drive the terminal.
struct job_view {
    std::string id;
    std::string state;
    std::string description;
    std::optional<std::int64_t> elapsed_ms;
    std::string output;
    bool truncated = false;
    std::string error;     // "kind/phase: message", empty without an error
    std::string activity;  // "bash: npm test" (activity.tool: activity.title), or empty
    std::string requests;  // "1 request" while waiting, or empty
    std::string label;     // the description, else the start of task.prompt (for tables)
};

job_view read_job(boost::json::value const& value);

// A JobView's `state` read through the daemon's names of states (protocol/job_view.hpp).
bool is_completed(std::string_view state);

// "1.2s", "12m05s", "2h03m"; "-" when unknown.
std::string format_elapsed(std::optional<std::int64_t> ms);

struct rendered {
    std::string out;
    std::string err;
};

// `columns`: the width a failed job's error is wrapped to under its row in the status table.
rendered render_result(command_kind kind, boost::json::object const& result, std::size_t columns);

// "    error: kind/phase: message" on lines of its own under a job's row, wrapped at spaces
// (long words split) so that every line is shorter than `columns` characters: a terminal
// display cuts longer lines (fit_width), and an error must never be cut away.
std::vector<std::string> error_lines(std::string_view error, std::size_t columns);

// A cost as a plain decimal of at most 10 places: "0.0012", "0"; never "1.2E-3".
std::string plain_cost(double cost);

// The line under the status table: "total: 3 jobs, tokens 1200 in / 340 out, cost 0.0036"
// from agents_status's `usage` (the sum over `listed`'s jobs); "(1 shown)" after the count when
// a --state filter kept only `shown` of them. Empty when the daemon sent no usage.
std::string total_line(boost::json::object const& listed, std::size_t shown);

// Boost.JSON 1.81 has no pretty printer; two-space indent, one document, plain decimals.
std::string pretty_json(boost::json::value const& value);

// exit_ok when every returned terminal job completed; an unknown id (not_found) outranks a
// failure, and a failure a timeout, because waiting again cannot fix either. Jobs still running
// in an `any` result do not count.
int wait_exit_code(boost::json::object const& result);

}  // namespace agentctl
