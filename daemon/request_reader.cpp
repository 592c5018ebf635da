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

std::size_t parse_buffered(beast::flat_buffer& buffer, request_parser& parser,
                           beast::error_code& ec) {
    std::size_t consumed = 0;
    while (buffer.size() != 0 && !parser.is_done()) {
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
