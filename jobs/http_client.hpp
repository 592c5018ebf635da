// A keep-alive HTTP/1.1 client pool for one upstream server, on Beast coroutines. Every call has
// a deadline covering connect, write and read, can be stopped through call_control, and reports
// failures as values. Beast stays in http_client.cpp.
#pragma once

#include "common/url.hpp"
#include "jobs/upstream/call_control.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::jobs {

struct http_reply {
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

struct http_failure {
    enum class kind { connect, timeout, stopped, transport, too_large } what = kind::transport;
    std::string message;
};

using http_result = boost::system::result<http_reply, http_failure>;
[[noreturn]] void throw_exception_from_error(http_failure const& e,
                                             boost::source_location const& loc);

struct http_request {
    std::string_view method;  // "GET", "POST"
    std::string target;       // path + query, without the URL's base path
    std::string body;         // sent as application/json when non-empty or method is POST
    std::chrono::steady_clock::time_point deadline;
    upstream::call_control* control = nullptr;  // may be null
    std::size_t max_body = 16 << 20;
};

class http_pool {
  public:
    // `o` is an http:// URL (the pool speaks plain HTTP); its base path prefixes every target.
    // At most `max_idle` keep-alive connections wait for reuse.
    http_pool(boost::asio::any_io_executor ex, common::url o, std::optional<std::string> basic_auth,
              std::size_t max_idle);
    ~http_pool();
    http_pool(http_pool const&) = delete;
    http_pool& operator=(http_pool const&) = delete;

    boost::asio::awaitable<http_result> request(http_request req);

    common::url const& target() const;
    void close_idle();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// "a b" -> "a%20b": for query parameters such as ?directory=.
std::string url_encode(std::string_view s);

}  // namespace agentd::jobs
