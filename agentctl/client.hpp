// HTTP transport of agentctl: one JSON POST to agentd over TCP or a unix socket, under one
// deadline. Beast stays inside client.cpp; this header is all the rest of the client sees of it.
#pragma once

#include "discover.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace agentctl {

struct http_post {
    std::string body;
    std::optional<std::string> bearer;
};

struct http_reply {
    unsigned status = 0;
    std::string reason;
    std::string body;
};

// Throws transport_error when the exchange fails or the deadline passes.
http_reply post_json(endpoint const& to, http_post const& post, std::chrono::milliseconds deadline);

// GET of `path` ("/healthz") under the URL's prefix, without a token. Throws as post_json does.
http_reply get_path(endpoint const& to, std::string const& path,
                    std::chrono::milliseconds deadline);

}  // namespace agentctl
