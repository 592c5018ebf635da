// libFuzzer target over the HTTP request path without I/O: the input is what a client sends on
// one connection, delivered in reads of a size its first byte picks. Each head is parsed with
// the server's limits and admitted by the route table; each body (chunked with extensions and
// trailers too) is read through the server's bounded buffer and framing budget.
#include "daemon/principals.hpp"
#include "daemon/request_reader.hpp"
#include "daemon/routes.hpp"

#include <boost/beast/core/flat_buffer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

namespace beast = boost::beast;
using namespace agentd::daemon;

constexpr std::size_t max_body_bytes = 64 * 1024;

server_options const& options() {
    static server_options const opts = [] {
        server_options o;
        o.principals = std::make_shared<principals>(std::string(64, 'a'));
        o.max_body_bytes = max_body_bytes;
        return o;
    }();
    return opts;
}

void require(bool ok) {
    if (!ok) std::abort();
}

// The client's bytes, handed over `piece` at a time into the free space of the read buffer.
class client {
  public:
    client(std::string_view bytes, std::size_t piece) : bytes_(bytes), piece_(piece) {}
    // False when the input is used up or the buffer is full (the server answers 431 then).
    bool deliver(beast::flat_buffer& buffer) {
        auto space = buffer.max_size() - buffer.size();
        auto n = std::min({space, piece_, bytes_.size()});
        if (n == 0) return false;
        auto dest = buffer.prepare(n);
        std::memcpy(dest.data(), bytes_.data(), n);
        buffer.commit(n);
        bytes_.remove_prefix(n);
        return true;
    }

  private:
    std::string_view bytes_;
    std::size_t piece_;
};

// One request; false when the connection would close.
bool one_request(client& c, beast::flat_buffer& buffer) {
    request_parser parser;
    prepare_parser(parser);
    beast::error_code ec;
    while (!parser.is_header_done()) {
        if (buffer.size() != 0) {
            buffer.consume(parser.put(buffer.data(), ec));
            if (ec == boost::beast::http::error::need_more) ec = {};
            if (ec) return (void)read_failure_status(ec), false;
            if (parser.is_header_done()) break;
        }
        if (!c.deliver(buffer)) return false;
    }
    auto admitted = admit(parser, options());
    require(admitted.refusal.has_value() != (admitted.match != nullptr));
    // Only /ws upgrades, and only past its guards.
    if (admitted.upgrade) require(admitted.match && admitted.match->path == "/ws");
    if (admitted.refusal || admitted.upgrade) return false;
    parser.body_limit(max_body_bytes);
    parser.eager(true);
    std::size_t used = 0;
    for (;;) {
        used += parse_buffered(buffer, parser, ec);
        if (ec) return (void)read_failure_status(ec), false;
        if (parser.is_done()) break;
        if (used > framing_budget(max_body_bytes)) return false;
        if (!c.deliver(buffer)) return false;
    }
    require(parser.get().body().size() <= max_body_bytes);
    require(buffer.size() <= read_buffer_limit);
    return parser.get().keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    if (size == 0) return 0;
    client c(std::string_view(reinterpret_cast<char const*>(data) + 1, size - 1),
             std::size_t{data[0]} * 64 + 1);
    beast::flat_buffer buffer(read_buffer_limit);
    for (int i = 0; i < 64 && one_request(c, buffer); ++i) {
    }
    return 0;
}
