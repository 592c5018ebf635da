// Hostile request framing against the real agentd, on raw sockets: trailer and chunk-extension
// floods stop at a bounded byte count with 431 (or 413 when the framing outgrows the body limit)
// and agentd's RSS does not grow; two Host headers, unknown transfer codings and malformed heads
// get their status (400/501) before the connection closes.
#include "agentd_fixture.hpp"
#include "raw_socket.hpp"

#include <fstream>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

// VmRSS of a process in KiB, from /proc/<pid>/status.
long rss_kib(int pid) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(in, line);)
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    return -1;
}

struct flood_result {
    std::optional<int> status;
    std::size_t sent = 0;
};

// Sends `head`, then `filler` again and again until agentd answers or `cap` bytes went out.
flood_result flood(int port, std::string const& head, std::string const& filler,
                   std::size_t cap = 256u << 20) {
    raw_socket s(port);
    s.send(head);
    flood_result r;
    for (;;) {
        pollfd p{s.fd(), POLLIN, 0};
        if (r.sent >= cap || ::poll(&p, 1, 0) > 0) break;  // the answer (or the close) is in
        if (!s.send_some(filler, r.sent)) break;
    }
    r.status = s.read_status(5s);
    return r;
}

class http_bounds : public agentd_test {
  protected:
    std::string auth() const { return "Authorization: Bearer " + agentd_->token() + "\r\n"; }
    int status_of(std::string const& request) {
        raw_socket s(agentd_->port());
        s.send(request);
        auto r = s.read_status(5s);
        EXPECT_TRUE(s.closed_within(5s)) << "connection left open after a refusal";
        return r ? *r : -1;
    }
};

constexpr std::size_t flood_bound = 16u << 20;  // bytes a client may push before the answer
constexpr long rss_growth_kib = 16 * 1024;

TEST_F(http_bounds, TrailerFloodOnHealthzIs431AndRssStays) {
    auto before = rss_kib(agentd_->process().pid());
    auto r = flood(agentd_->port(),
                   "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   "\r\n0\r\nX-Flood: ",
                   std::string(64 * 1024, 'a'));
    auto after = rss_kib(agentd_->process().pid());
    EXPECT_EQ(r.status, 431);
    EXPECT_LT(r.sent, flood_bound);
    EXPECT_LT(after - before, rss_growth_kib);
    std::cout << "trailer flood: " << r.sent << " bytes sent before the answer, RSS " << before
              << " -> " << after << " KiB\n";
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/healthz").status, 200);
}

TEST_F(http_bounds, ChunkExtensionFloodIs431AndRssStays) {
    auto before = rss_kib(agentd_->process().pid());
    auto r = flood(agentd_->port(),
                   "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth() +
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1;ext=",
                   std::string(64 * 1024, 'a'));
    auto after = rss_kib(agentd_->process().pid());
    EXPECT_EQ(r.status, 431);
    EXPECT_LT(r.sent, flood_bound);
    EXPECT_LT(after - before, rss_growth_kib);
    std::cout << "extension flood: " << r.sent << " bytes sent before the answer, RSS " << before
              << " -> " << after << " KiB\n";
}

// Each chunk fits the read buffer, but framing counts against the body limit: 1 data byte
// per 4 KiB of extension would otherwise keep one request going for gigabytes.
TEST_F(http_bounds, ManySmallChunksWithExtensionsAre413) {
    std::string chunk = "1;e=" + std::string(4096, 'x') + "\r\n{\r\n";
    std::string filler;
    for (int i = 0; i < 16; ++i) filler += chunk;
    auto r = flood(agentd_->port(),
                   "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth() +
                       "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                   filler);
    EXPECT_EQ(r.status, 413);
    EXPECT_LT(r.sent, flood_bound);
}

TEST_F(http_bounds, TwoHostHeadersAre400) {
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"),
              400);
    EXPECT_EQ(status_of("POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: 127.0.0.1\r\n" + auth() +
                        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"),
              400);
}

TEST_F(http_bounds, UnknownTransferEncodingIs501) {
    std::string post =
        "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth() + "Content-Type: application/json\r\n";
    EXPECT_EQ(status_of(post + "Transfer-Encoding: gzip\r\n\r\nxyz"), 501);
    EXPECT_EQ(status_of(post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), 501);
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: x\r\n\r\n"),
              501);
}

TEST_F(http_bounds, MalformedRequestsGet400BeforeClose) {
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nNo colon here\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n"),
              400);
    EXPECT_EQ(status_of("POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth() +
                        "Content-Type: application/json\r\nContent-Length: 2\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
              400);
    EXPECT_EQ(status_of("POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth() +
                        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "zz\r\n"),
              400);
}

TEST_F(http_bounds, OversizedHeadIs431) {
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                        std::string(20 * 1024, 'a') + "\r\n\r\n"),
              431);
}

}  // namespace
}  // namespace agentd::test
