// Where a new upstream connection goes: an IP literal (the usual 127.0.0.1 of a local opencode)
// is its own endpoint; only a name goes through Asio's resolver, whose getaddrinfo runs on a
// thread of its own and costs two thread hand-offs per connection. Included by the .cpp files
// that connect (http_client, the opencode event stream, the openai backend), never by headers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentd::jobs {

// `host` as an IPv4 or IPv6 literal (no brackets) with a decimal `port`; nullopt for a name or
// a service name.
std::optional<boost::asio::ip::tcp::endpoint> literal_endpoint(std::string_view host,
                                                               std::string_view port);

// The endpoints to try, in order: the literal at once, or what `resolver` finds (so a caller
// that cancels the resolver also cancels this). The names are copied: the coroutine may outlive
// the caller's strings.
boost::asio::awaitable<
    std::pair<boost::system::error_code, std::vector<boost::asio::ip::tcp::endpoint>>>
endpoints_of(boost::asio::ip::tcp::resolver& resolver, std::string host, std::string port);

}  // namespace agentd::jobs
