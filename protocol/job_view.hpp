// JobView (DESIGN §2): what callers see of a job, with its states and error kinds, and the JSON
// it serialises to. The jobs layer fills it; every transport shows exactly this.
#pragma once

#include "protocol/boxed.hpp"
#include "protocol/enum_names.hpp"

#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::protocol {

// `waiting`: a permission or question of the sub-agent needs an answer (DESIGN §2 requests).
enum class job_state { queued, running, waiting, completed, failed, cancelled, interrupted };
enum class error_kind { transport, timeout, upstream, protocol, cancelled, interrupted, limit };
enum class error_phase { create, prompt, abort };
// Their wire names (to_string, from_string) are the enumerators' names; DESIGN §2 lists them.
BOOST_DESCRIBE_ENUM(job_state, queued, running, waiting, completed, failed, cancelled, interrupted)
BOOST_DESCRIBE_ENUM(error_kind, transport, timeout, upstream, protocol, cancelled, interrupted,
                    limit)
BOOST_DESCRIBE_ENUM(error_phase, create, prompt, abort)

// The `state` a caller sees for an unknown id or another owner's job: a wire word, not a state.
inline constexpr std::string_view not_found_state = "not_found";

bool is_terminal(job_state s);
// For a `state` read back from JSON (agentctl, MCP progress): anything but queued, running and
// waiting, not_found included, is final.
bool is_terminal(std::string_view state);
// Launched and not ended: running, or waiting for an answer.
inline bool is_active(job_state s) {
    return s == job_state::running || s == job_state::waiting;
}

struct job_error {
    error_kind kind = error_kind::upstream;
    std::optional<error_phase> phase;
    std::string message;
    std::optional<int> http_status;
    bool operator==(job_error const&) const = default;
};

struct job_usage {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    double cost = 0.0;
    bool operator==(job_usage const&) const = default;
};

// What a JobView shows of the task (DESIGN §2): the prompt's first 200 characters.
struct task_preview {
    static constexpr std::size_t prompt_chars = 200;
    std::string prompt;
    boxed<std::string> agent;
    boxed<std::string> model;
    boxed<std::string> directory;
    bool operator==(task_preview const&) const = default;
};

// Tool steps and requests of an agentic sub-agent (DESIGN §2 agents_peek, Requests).
enum class step_status { pending, running, completed, error };
BOOST_DESCRIBE_ENUM(step_status, pending, running, completed, error)
enum class request_kind { permission, question };
BOOST_DESCRIBE_ENUM(request_kind, permission, question)
// How a request was settled: a permission's decision, or a question's `answer` (or `deny`).
enum class decision { allow, allow_always, deny, answer };
BOOST_DESCRIBE_ENUM(decision, allow, allow_always, deny, answer)
enum class answered_by { caller, policy, timeout, upstream };
BOOST_DESCRIBE_ENUM(answered_by, caller, policy, timeout, upstream)

using wall_time = std::chrono::system_clock::time_point;

// One tool call of the sub-agent, as agents_peek shows it.
struct step {
    static constexpr std::size_t title_chars = 160;
    static constexpr std::size_t output_tail_bytes = 2048;
    std::string call_id;  // the upstream's, to follow one call's updates (not shown)
    std::string tool;
    step_status status = step_status::pending;
    std::string title;
    std::optional<wall_time> started_at;
    std::optional<wall_time> finished_at;
    std::string output_tail;
};

// JobView `activity`: the current or last tool step and how many there were.
struct activity_view {
    std::int64_t steps = 0;
    std::string tool;
    std::string title;
    wall_time since;
    bool operator==(activity_view const&) const = default;
};

struct question_option {
    std::string label;
    std::string description;  // omitted when empty
    bool operator==(question_option const&) const = default;
};

struct question_item {
    std::string question;
    std::string header;  // omitted when empty
    std::vector<question_option> options;
    bool multiple = false;
    bool custom = true;  // free text allowed (opencode's default; its tool never says otherwise)
    bool operator==(question_item const&) const = default;
};

// JobView `requests`: what a `waiting` job needs answered.
struct pending_request {
    std::string id;
    request_kind kind = request_kind::permission;
    std::string permission;             // permission
    std::vector<std::string> patterns;  // permission
    std::vector<question_item> questions;
    wall_time asked_at;
    bool operator==(pending_request const&) const = default;
};

// JobView `answered` (the last 20).
struct answered_request {
    static constexpr std::size_t kept = 20;
    std::string id;
    request_kind kind = request_kind::permission;
    decision how = decision::allow;
    answered_by by = answered_by::caller;
    wall_time at;
    bool operator==(answered_request const&) const = default;
};

// JobView `worktree` (DESIGN §2 isolation): where an isolated job ran, kept after it ends.
struct worktree_ref {
    std::string directory;
    std::optional<std::string> branch;
    bool operator==(worktree_ref const&) const = default;
};

// One file a job's turn changed (agents_peek `changes`, opencode GET /session/{id}/diff).
struct file_change {
    std::string file;
    std::string status;  // added | modified | deleted
    std::int64_t additions = 0;
    std::int64_t deletions = 0;
    std::string patch;
};

// JobView `diff_summary`: the totals of a finished job's changes (present when it changed files).
struct diff_summary {
    std::int64_t files = 0;
    std::int64_t additions = 0;
    std::int64_t deletions = 0;
    bool operator==(diff_summary const&) const = default;
};
diff_summary summarize(std::vector<file_change> const& changes);

struct upstream_ref {
    std::string backend;
    std::string session;
    std::optional<std::string> server = {};  // the upstream server's URL as configured
    bool operator==(upstream_ref const&) const = default;
};

// A job's output, shared rather than copied: every copy of a view (status and wait replies,
// events, listings) refers to one immutable text, so a batch of 64 status calls on 1 MB outputs
// copies pointers, not 512 MB. Reads like std::optional<std::string>.
class shared_text {
  public:
    shared_text() = default;
    shared_text(std::nullopt_t) {}
    shared_text(std::string text) : text_(std::make_shared<std::string const>(std::move(text))) {}
    shared_text(char const* text) : shared_text(std::string(text)) {}
    shared_text(std::optional<std::string> text) {
        if (text) text_ = std::make_shared<std::string const>(std::move(*text));
    }

    bool has_value() const { return text_ != nullptr; }
    explicit operator bool() const { return has_value(); }
    std::string const& operator*() const { return *text_; }
    std::string const* operator->() const { return text_.get(); }
    std::string const& value() const {
        if (!text_) throw std::bad_optional_access();
        return *text_;
    }
    void reset() { text_.reset(); }

    friend bool operator==(shared_text const& a, std::string_view b) {
        return a.text_ && *a.text_ == b;
    }
    friend bool operator==(shared_text const& a, std::nullopt_t) { return !a.text_; }
    // Two views' outputs (job_view's ==): mostly copies of one text, found equal without a scan.
    // A template, so that `text == "literal"` still means the string_view comparison.
    template <std::same_as<shared_text> T>
    friend bool operator==(shared_text const& a, T const& b) {
        if (a.text_ == b.text_) return true;
        return a.text_ && b.text_ && *a.text_ == *b.text_;
    }

  private:
    std::shared_ptr<std::string const> text_;
};

// Every job keeps one for its whole life, so the fields a queued job never has are boxed (8 bytes
// each when empty; BENCHMARKS.md finding 7).
struct job_view {
    std::string id;
    std::string session;      // the owner session; omitted when empty
    std::string description;  // omitted when empty
    job_state state = job_state::queued;
    wall_time created_at;
    std::optional<wall_time> started_at;
    std::optional<wall_time> finished_at;
    int depth = 1;
    std::optional<task_preview> task;
    boxed<upstream_ref> upstream;
    boxed<activity_view> activity;          // active jobs with tool steps
    std::vector<pending_request> requests;  // while waiting
    std::vector<answered_request> answered;
    boxed<worktree_ref> worktree;
    boxed<struct diff_summary> diff_summary;
    boxed<std::string> continues;  // the job this one is the follow-up of
    shared_text output;
    bool truncated = false;
    boxed<job_error> error;
    boxed<job_usage> usage;
    bool operator==(job_view const&) const = default;
};

// What one response may still spend (DESIGN §2, limits.max_response_bytes), shared by every job
// rendered into it, so the size is accounted while rendering rather than found out after. A job
// whose output does not fit comes back with `output_omitted: true` instead of its output.
class response_budget {
  public:
    explicit response_budget(std::size_t bytes) : left_(bytes) {}
    // Spends `bytes` for text that must fit (true), or nothing when it would not (false).
    bool take(std::size_t bytes);
    // take() for `text` as a JSON string; text that cannot fit is refused without a scan.
    bool take_json_string(std::string_view text);
    // Spends what a response carries anyway (ids, states, times); never refuses.
    void spend(std::size_t bytes) { left_ -= std::min(left_, bytes); }

  private:
    std::size_t left_;
};

// Bytes `text` takes as a JSON string, quotes and escapes included.
std::size_t json_string_size(std::string_view text);

// `now` fills elapsed_ms of a running job; a finished one reports finished - started. `sp` is
// where the value lives (a request's monotonic resource when rendering a reply). With a budget,
// an output that does not fit it is omitted (`output_omitted: true`).
boost::json::value to_json(job_view const& v, wall_time now, boost::json::storage_ptr sp = {},
                           response_budget* budget = nullptr);
// to_json() in two steps, for a caller that keeps a view's text: what the view takes of the
// budget, true when its output fits (or it has none); then the JSON with its output, or with
// `output_omitted: true` instead.
bool charge(job_view const& v, response_budget& budget);
boost::json::value to_json_charged(job_view const& v, wall_time now, boost::json::storage_ptr sp,
                                   bool with_output);
boost::json::value to_json(step const& s, boost::json::storage_ptr sp = {});
boost::json::value to_json(job_usage const& u, boost::json::storage_ptr sp = {});
boost::json::value to_json(file_change const& c, boost::json::storage_ptr sp = {});
boost::json::value to_json(pending_request const& r, boost::json::storage_ptr sp = {});
boost::json::value not_found_json(std::string_view id, boost::json::storage_ptr sp = {});

}  // namespace agentd::protocol
