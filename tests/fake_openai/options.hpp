// Command-line settings of the fake OpenAI-compatible server, shared by main and the HTTP layer.
// Kept in its own header so main does not pull in Asio.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fake_openai {

struct options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::int64_t latency_ms = 50;         // a whole reply's duration unless a directive says
    std::optional<std::string> api_key;   // when set, `Authorization: Bearer KEY` is required
    std::optional<std::string> tls_cert;  // PEM chain and key: serve https instead of http
    std::optional<std::string> tls_key;
    // What GET {base}/models lists (`--models a,b`; empty: none), or the status it fails with
    // (`--models-status N`, not 200).
    std::vector<std::string> models{"fake-model"};
    unsigned models_status = 200;
};

// Serves until SIGTERM/SIGINT, then closes every connection and returns the exit status.
int run_server(options const& opts);

}  // namespace fake_openai
