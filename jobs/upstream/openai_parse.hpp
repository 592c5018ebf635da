// Pure pieces of the OpenAI-compatible chat-completions backend (DESIGN §5): the request body,
// folding streamed `chat.completion.chunk` events into the outcome, error bodies and Retry-After.
// No I/O, so each piece is unit-tested on its own (its base URL is a common::url).
#pragma once

#include "jobs/upstream/backend.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream::openai {

// `{model, messages:[system?, (user, assistant)…, user], stream:true,
// stream_options:{include_usage:true}}`: the earlier turns of `history` replayed before `prompt`.
std::string request_body(std::string_view model, std::optional<std::string> const& system,
                         std::span<chat_turn const> history, std::string_view prompt);

// A non-2xx reply as an `upstream` failure, with the provider's `error.message` when it gave
// one (OpenAI `{"error":{"message"}}`, or a bare `{"message"}` as some servers send).
upstream_error http_error(unsigned status, std::string_view body);

// Retry-After in delta-seconds; nullopt for the HTTP-date form, garbage or an empty value.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value);

// A whole (non-streamed) `chat.completion` body: for a server that ignores `stream: true`.
up_result<prompt_outcome> parse_completion(std::string_view body, std::size_t max_output);

// Folds the data of a stream's SSE events into the outcome: `choices[0].delta.content` is
// appended (capped at `max_output` on a UTF-8 boundary), `usage` is taken from the chunk that
// carries it, `[DONE]` ends the stream, an `error` object fails it.
class stream_reader {
  public:
    explicit stream_reader(std::size_t max_output) : max_output_(max_output) {}

    // One event's data: the text it added to the output (often empty; valid until the next
    // call), or why the stream failed. Data after the end is ignored.
    up_result<std::string_view> feed(std::string_view data);
    // `[DONE]` was seen, or the output reached its cap: nothing more is needed.
    bool finished() const { return done_ || out_.truncated; }
    // Whether the last event fed carried usage (servers that report it as it grows send it on
    // every chunk), and the usage so far.
    bool usage_fresh() const { return usage_fresh_; }
    protocol::job_usage const& usage() const { return out_.usage; }
    prompt_outcome take() { return std::move(out_); }

  private:
    std::size_t max_output_;
    prompt_outcome out_;
    bool done_ = false;
    bool usage_fresh_ = false;
};

}  // namespace agentd::jobs::upstream::openai
