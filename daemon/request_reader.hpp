// Reading a request without I/O: the bounds of the head and of the read buffer, feeding
// buffered bytes to Beast's parser, and the status a failed read earns. Shared by the HTTP
// session and the fuzz target (tests/fuzz/http_fuzz.cpp), so the fuzzer runs the server's bounds.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <optional>

namespace agentd::daemon {

using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// A request head may be this long. Chunk headers and trailers are bounded by the read buffer,
// which holds twice that (Beast 1.81 caps neither: they would grow the buffer without end).
inline constexpr std::size_t header_limit = 16 * 1024;
inline constexpr std::size_t read_buffer_limit = 2 * header_limit;

// The parser of a new request: the head limit, and no body limit until admit() ran (Beast
// would reject a large Content-Length while reading the head, before we could answer 401).
void prepare_parser(request_parser& parser);

// Feeds the buffered bytes to the parser; returns how many it consumed. `need_more` is no error.
std::size_t parse_buffered(boost::beast::flat_buffer& buffer, request_parser& parser,
                           boost::beast::error_code& ec);

// What the chunked framing of one body may take in all: sizes, extensions, trailers and data.
std::size_t framing_budget(std::size_t max_body_bytes);

// The answer to a failed read: 431 (head, chunk header or trailer too large), 413, 400
// (malformed); nullopt when the client is gone or silent and nothing can be said.
std::optional<boost::beast::http::status> read_failure_status(boost::beast::error_code ec);

}  // namespace agentd::daemon
