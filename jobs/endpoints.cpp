// literal_endpoint and endpoints_of; see endpoints.hpp.
#include "jobs/endpoints.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cstdint>

namespace agentd::jobs {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::optional<tcp::endpoint> literal_endpoint(std::string_view host, std::string_view port) {
    std::uint16_t number = 0;
    auto const* end = port.data() + port.size();
    auto [at, ec] = std::from_chars(port.data(), end, number);
    if (port.empty() || ec != std::errc{} || at != end) return std::nullopt;
    boost::system::error_code bad;
    auto address = asio::ip::make_address(host, bad);
    if (bad) return std::nullopt;
    return tcp::endpoint(address, number);
}

asio::awaitable<std::pair<boost::system::error_code, std::vector<tcp::endpoint>>> endpoints_of(
    tcp::resolver& resolver, std::string host, std::string port) {
    std::vector<tcp::endpoint> out;
    if (auto literal = literal_endpoint(host, port)) {
        out.push_back(*literal);
        co_return std::pair{boost::system::error_code{}, std::move(out)};
    }
    auto [ec, found] =
        co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
    for (auto const& entry : found) out.push_back(entry.endpoint());
    co_return std::pair{ec, std::move(out)};
}

}  // namespace agentd::jobs
