// JobView (DESIGN §2): what callers see of a job, with its states and error kinds, and the JSON
// it serialises to. The jobs layer fills it; every transport shows exactly this.
#pragma once

#include "protocol/enum_names.hpp"

#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::protocol {

enum class job_state { queued, running, completed, failed, cancelled, interrupted };
enum class error_kind { transport, timeout, upstream, protocol, cancelled, interrupted, limit };
enum class error_phase { create, prompt, abort };
// Their wire names (to_string, from_string) are the enumerators' names; DESIGN §2 lists them.
BOOST_DESCRIBE_ENUM(job_state, queued, running, completed, failed, cancelled, interrupted)
BOOST_DESCRIBE_ENUM(error_kind, transport, timeout, upstream, protocol, cancelled, interrupted,
                    limit)
BOOST_DESCRIBE_ENUM(error_phase, create, prompt, abort)

// The `state` a caller sees for an unknown id or another owner's job: a wire word, not a state.
inline constexpr std::string_view not_found_state = "not_found";

bool is_terminal(job_state s);
// For a `state` read back from JSON (agentctl, MCP progress): anything but queued and running,
// not_found included, is final.
bool is_terminal(std::string_view state);

struct job_error {
    error_kind kind = error_kind::upstream;
    std::optional<error_phase> phase;
    std::string message;
    std::optional<int> http_status;
};

struct job_usage {
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;
    double cost = 0.0;
};

// What a JobView shows of the task (DESIGN §2): the prompt's first 200 characters.
struct task_preview {
    static constexpr std::size_t prompt_chars = 200;
    std::string prompt;
    std::optional<std::string> agent;
    std::optional<std::string> model;
    std::optional<std::string> directory;
};

struct upstream_ref {
    std::string backend;
    std::string session;
};

using wall_time = std::chrono::system_clock::time_point;

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

  private:
    std::shared_ptr<std::string const> text_;
};

struct job_view {
    std::string id;
    std::string description;  // omitted when empty
    job_state state = job_state::queued;
    wall_time created_at;
    std::optional<wall_time> started_at;
    std::optional<wall_time> finished_at;
    int depth = 1;
    std::optional<task_preview> task;
    std::optional<upstream_ref> upstream;
    shared_text output;
    bool truncated = false;
    std::optional<job_error> error;
    std::optional<job_usage> usage;
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
boost::json::value not_found_json(std::string_view id, boost::json::storage_ptr sp = {});

}  // namespace agentd::protocol
