// Small synchronous HTTP/1.1 clients for tests: a keep-alive connection, one-shot requests, raw
// byte exchanges for malformed-input tests and a Server-Sent Events reader. Beast stays in the
// .cpp (pimpl): this header is included by many test files.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentd::test {

inline constexpr std::chrono::milliseconds default_http_timeout{10'000};

struct http_response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;

    // Value of a header (name in any case), empty when absent.
    std::string header(std::string_view name) const;
};

// Extra request headers. A name already set by default (Host, Content-Type) is replaced; an
// empty value removes the header.
using http_headers = std::vector<std::pair<std::string, std::string>>;

// Transport-level failure: the server never produced a complete response.
class http_error : public std::runtime_error {
  public:
    enum class kind {
        timeout,  // the per-call deadline passed
        connect,  // could not connect
        closed,   // the server closed before sending any byte of the response
        reset,    // the connection was reset (RST)
        partial,  // the server closed in the middle of the response
        other,
    };
    http_error(kind k, std::string const& what) : std::runtime_error(what), kind_(k) {}
    kind failure() const { return kind_; }

  private:
    kind kind_;
};

std::string_view to_string(http_error::kind k);

// Keep-alive connection to 127.0.0.1:port. Connects lazily and reconnects on the next request
// after the server or an error closed it; it never retries a request by itself, so a fault
// injected by a server is always seen by the test.
class http_connection {
  public:
    explicit http_connection(unsigned short port);
    http_connection(http_connection&&) noexcept;
    http_connection& operator=(http_connection&&) noexcept;
    ~http_connection();

    // Throws http_error when no complete response arrives within `timeout` (covering connect,
    // write and read). Any HTTP status is a response, not an error.
    http_response request(std::string method, std::string target, std::string body = {},
                          http_headers headers = {},
                          std::chrono::milliseconds timeout = default_http_timeout);
    bool is_open() const;
    void close();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// One request on a fresh connection, closed afterwards.
http_response http_request(unsigned short port, std::string method, std::string target,
                           std::string body = {}, http_headers headers = {},
                           std::chrono::milliseconds timeout = default_http_timeout);

// Writes `bytes` as they are and returns everything read until the server closes or `timeout`
// passes (then whatever arrived so far). Throws http_error only when it cannot connect.
std::string raw_exchange(unsigned short port, std::string bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

// A GET whose response is a text/event-stream, read event by event.
class sse_connection {
  public:
    // Sends the request and reads the response head. Throws http_error on a transport failure;
    // a non-200 answer is not an error here: check status().
    explicit sse_connection(unsigned short port, std::string target = "/event",
                            http_headers headers = {},
                            std::chrono::milliseconds timeout = default_http_timeout);
    sse_connection(sse_connection&&) noexcept;
    sse_connection& operator=(sse_connection&&) noexcept;
    ~sse_connection();

    int status() const;
    std::map<std::string, std::string> const& headers() const;

    // The data of the next event (its `data:` lines joined by '\n'); events without data are
    // skipped. nullopt when none arrives within `timeout`, after which reading can go on.
    // Throws http_error (kind closed) once the server has ended the stream.
    std::optional<std::string> next_data(std::chrono::milliseconds timeout);
    void close();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace agentd::test
