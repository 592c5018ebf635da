// Parser feeding and read-failure statuses; see request_reader.hpp.
#include "daemon/request_reader.hpp"

#include <boost/beast/http/error.hpp>

#include <string_view>

namespace agentd::daemon {
namespace beast = boost::beast;
namespace http = beast::http;

void prepare_parser(request_parser& parser) {
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
}

namespace {

// Beast 1.81 asserts (in builds with assertions) that a last chunk ("0" [ext] CRLF trailers
// CRLF), once seen, is parsed again with at least 5 bytes; its parse is right without the
// assertion. A last chunk is never consumed in part and is never shorter than 5 bytes, so when
// the unconsumed bytes may be one and are fewer, waiting for more costs nothing (anything else,
// malformed input included, goes to the parser at once).
constexpr std::size_t min_chunked_put = 5;

bool short_last_chunk(std::string_view unconsumed) {
    if (unconsumed.size() >= min_chunked_put) return false;
    if (unconsumed.starts_with("\r\n")) unconsumed.remove_prefix(2);  // the previous chunk's end
    auto after_zeros = unconsumed.find_first_not_of('0');
    if (after_zeros == 0) return false;
    return after_zeros == std::string_view::npos || unconsumed[after_zeros] == ';' ||
           unconsumed[after_zeros] == '\r';
}

}  // namespace

std::size_t parse_buffered(beast::flat_buffer& buffer, request_parser& parser,
                           beast::error_code& ec) {
    std::size_t consumed = 0;
    while (buffer.size() != 0 && !parser.is_done()) {
        auto data = buffer.data();
        if (parser.is_header_done() && parser.chunked() &&
            short_last_chunk({static_cast<char const*>(data.data()), data.size()}))
            break;
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
