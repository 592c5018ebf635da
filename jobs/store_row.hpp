// A job as a row of named columns, shared by both store backends: the one column list their
// schemas follow (each backend's migrations create these columns), and the mapping between a job
// and its row, each value by its column, never by position. Include from the stores' .cpp only.
#pragma once

#include "jobs/job.hpp"
#include "protocol/enum_names.hpp"

#include <boost/describe/enum.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace agentd::jobs {

// The columns of the latest schema, by their SQL names (Boost.Describe gives the names).
BOOST_DEFINE_ENUM_CLASS(store_column, id, principal, session, seq, description, state, created_ms,
                        started_ms, finished_ms, depth, backend, upstream_session, output,
                        truncated, error_kind, error_phase, error_message, error_http_status,
                        input_tokens, output_tokens, cost, task, upstream_parent, answered,
                        worktree_directory, worktree_branch, user_message, diff_files,
                        diff_additions, diff_deletions, continues, transcript, upstream_server,
                        requests)

enum class column_type { text, integer, real };
column_type type_of(store_column c);

// One row: each column NULL, text, integer or real.
class store_row {
  public:
    using value = std::variant<std::monostate, std::string, std::int64_t, double>;
    static constexpr std::size_t size = protocol::enum_names<store_column>.size();

    void set(store_column c, value v) { values_[index(c)] = std::move(v); }
    value const& get(store_column c) const { return values_[index(c)]; }
    std::optional<std::string> text(store_column c) const;
    std::optional<std::int64_t> integer(store_column c) const;
    std::optional<double> real(store_column c) const;

  private:
    static std::size_t index(store_column c) { return static_cast<std::size_t>(c); }
    std::array<value, size> values_{};
};

// Columns set once when the job is created, which its later writes never change.
bool fixed_column(store_column c);
// `with_fixed` false leaves the fixed columns NULL: the changes of a job already stored. Its
// task is NULL too unless the job is finished (the one change a task gets: its compaction).
store_row row_of(job const& j, bool with_fixed = true);
// Throws std::runtime_error when a column that is never NULL is missing or the task is not JSON.
job_ptr job_of(store_row const& r);

}  // namespace agentd::jobs
