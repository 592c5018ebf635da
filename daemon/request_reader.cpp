// Parser feeding and read-failure statuses; see request_reader.hpp.
#include "daemon/request_reader.hpp"

#include <boost/beast/http/error.hpp>

namespace agentd::daemon {
namespace beast = boost::beast;
namespace http = beast::http;

void prepare_parser(request_parser& parser) {
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
}

// Beast 1.81 asserts (in builds with assertions) that a chunked body's last chunk, once seen,
// is parsed again with at least 5 bytes; its parse is right without the assertion. Fewer than 5
// unconsumed bytes of a chunked body can never end it ("0\r\n\r\n" is never consumed in part),
// so waiting for more bytes costs nothing and keeps a trickling client from tripping it.
constexpr std::size_t min_chunked_put = 5;

std::size_t parse_buffered(beast::flat_buffer& buffer, request_parser& parser,
                           beast::error_code& ec) {
    std::size_t consumed = 0;
    while (buffer.size() != 0 && !parser.is_done()) {
        if (parser.is_header_done() && parser.chunked() && buffer.size() < min_chunked_put) break;
        auto n = parser.put(buffer.data(), ec);
        buffer.consume(n);
        consumed += n;
        if (ec == http::error::need_more) ec = {};
        if (ec || n == 0) break;
    }
    return consumed;
}

std::size_t framing_budget(std::size_t max_body_bytes) {
    return header_limit + max_body_bytes;
}

std::optional<http::status> read_failure_status(beast::error_code ec) {
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
        return http::status::request_header_fields_too_large;
    if (ec == http::error::body_limit) return http::status::payload_too_large;
    if (ec.category() != http::make_error_code(http::error::bad_method).category() ||
        ec == http::error::end_of_stream || ec == http::error::partial_message)
        return std::nullopt;
    return http::status::bad_request;
}

}  // namespace agentd::daemon
