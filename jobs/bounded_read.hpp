// Bounds on what reading one upstream reply may cost beyond its body (DESIGN §5, issue #14.3):
// Beast 1.81's parser caps neither chunk extensions nor trailers, so every upstream read uses a
// read buffer of at most `read_buffer_bytes` and counts the framing bytes it lets through.
#pragma once

#include <boost/beast/http/error.hpp>

#include <cstddef>

namespace agentd::jobs {

// The most one read may hold unparsed: a header block, one chunk header, the trailers.
inline constexpr std::size_t read_buffer_bytes = 64 << 10;
// Framing (headers, chunk sizes, extensions, trailers) a reply may carry beyond one byte per
// body byte: chunked replies with tiny chunks stay legal, an endless trailer does not.
inline constexpr std::size_t framing_allowance = 64 << 10;

class framing_meter {
  public:
    // `consumed`: bytes the parser took in one read; `body`: the body bytes among them.
    // False once the reply's framing outgrew its body by more than the allowance.
    bool add(std::size_t consumed, std::size_t body) {
        body_ += body;
        framing_ += consumed > body ? consumed - body : 0;
        return framing_ <= framing_allowance + body_;
    }

  private:
    std::size_t body_ = 0;
    std::size_t framing_ = 0;
};

// A read failure that means "the reply is larger than agentd accepts", not a broken transport.
inline bool reply_too_large(boost::beast::error_code ec) {
    namespace http = boost::beast::http;
    return ec == http::error::buffer_overflow || ec == http::error::header_limit ||
           ec == http::error::body_limit;
}

}  // namespace agentd::jobs
