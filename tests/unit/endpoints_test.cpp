// Upstream endpoints (jobs/endpoints.hpp): an IP literal with a decimal port is used as is,
// without the resolver's thread; a name or a service name still goes through the resolver.
#include "jobs/endpoints.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>

namespace agentd::jobs {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

TEST(Endpoints, LiteralAddressesWithADecimalPortAreEndpoints) {
    auto v4 = literal_endpoint("127.0.0.1", "4096");
    ASSERT_TRUE(v4);
    EXPECT_EQ(*v4, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 4096));
    auto v6 = literal_endpoint("::1", "80");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->address().is_v6());
    EXPECT_EQ(v6->port(), 80);
    EXPECT_TRUE(literal_endpoint("::ffff:10.0.0.1", "65535"));
}

TEST(Endpoints, NamesServiceNamesAndBadPortsAreNotLiterals) {
    EXPECT_FALSE(literal_endpoint("localhost", "80"));
    EXPECT_FALSE(literal_endpoint("opencode.internal", "4096"));
    EXPECT_FALSE(literal_endpoint("127.0.0.1", "http"));
    EXPECT_FALSE(literal_endpoint("127.0.0.1", ""));
    EXPECT_FALSE(literal_endpoint("127.0.0.1", "65536"));
    EXPECT_FALSE(literal_endpoint("127.0.0.1", "80x"));
    EXPECT_FALSE(literal_endpoint("127.0.0.1", "-1"));
    EXPECT_FALSE(literal_endpoint("1.2.3", "80"));
    EXPECT_FALSE(literal_endpoint("[::1]", "80"));  // brackets are the URL's, stripped before
    EXPECT_FALSE(literal_endpoint("", "80"));
}

// A literal completes on the first poll of the caller's own context: no resolver thread.
TEST(Endpoints, ALiteralIsAnsweredWithoutTheResolver) {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    auto done = asio::co_spawn(ioc, endpoints_of(resolver, "127.0.0.1", "8080"), asio::use_future);
    ioc.poll();
    ASSERT_EQ(done.wait_for(0s), std::future_status::ready);
    auto [ec, eps] = done.get();
    EXPECT_FALSE(ec);
    ASSERT_EQ(eps.size(), 1u);
    EXPECT_EQ(eps[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), 8080));
}

TEST(Endpoints, ANameIsResolved) {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    auto done = asio::co_spawn(ioc, endpoints_of(resolver, "localhost", "8080"), asio::use_future);
    ioc.run();
    auto [ec, eps] = done.get();
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_FALSE(eps.empty());
    for (auto const& ep : eps) {
        EXPECT_TRUE(ep.address().is_loopback()) << ep;
        EXPECT_EQ(ep.port(), 8080);
    }
}

}  // namespace
}  // namespace agentd::jobs
