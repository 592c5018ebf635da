// The openai backend (DESIGN §5): one streamed chat completion per job against any
// OpenAI-compatible `POST {base}/chat/completions` (llama.cpp server, vLLM, Ollama, hosted
// APIs), over http or https, with the streamed text feeding peek.
#pragma once

#include "common/url.hpp"
#include "jobs/upstream/backend.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

namespace agentd::jobs::upstream {

struct openai_config {
    common::url target;  // http[s]://HOST[:PORT][/PATH], e.g. `https://api.openai.com/v1`
    std::optional<std::string> api_key;        // sent as `Authorization: Bearer`; never logged
    std::optional<std::string> default_model;  // for tasks that name no model
    std::optional<std::string> ca_file;        // extra CAs besides the system's (https)
    std::chrono::milliseconds request_timeout{30'000};  // connect, TLS, response headers
    std::chrono::milliseconds idle_timeout{60'000};     // silence allowed mid-stream
    std::size_t max_output = 1 << 20;
    int max_retries = 2;                               // of a 429 that names a Retry-After
    std::chrono::milliseconds max_retry_delay{5'000};  // longer Retry-Afters are cut to this
};

// Throws std::runtime_error when `ca_file` cannot be loaded: a start-up error.
std::unique_ptr<backend> make_openai_backend(boost::asio::any_io_executor ex, openai_config cfg);

}  // namespace agentd::jobs::upstream
