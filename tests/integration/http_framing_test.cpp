// The HTTP framing of /rpc on the wire: a body that arrives apart from its header or in chunks,
// a chunked body over the limit, pipelined requests, HTTP/1.0, and the exact response head
// agentd writes (it encodes heads itself and parses buffered bodies in place).
#include "agentd_fixture.hpp"
#include "raw_socket.hpp"

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

constexpr auto reply_timeout = 5s;
// How long a request that lacks bytes must stay unanswered: agentd cannot answer it at all, so
// this only bounds how long the test looks.
constexpr auto quiet = 100ms;

class http_framing : public agentd_test {
  protected:
    void SetUp() override {
        agentd_test::SetUp();
        auto started = agentd_->call("agents_start", {{"tasks", {task("framing")}}});
        id_ = str(jobs_of(started).at(0), "id");
        agentd_->call("agents_wait", {{"jobs", {id_}}, {"timeout_ms", 10000}});
    }
    std::string status_body(int rpc_id) const {
        return fmt::format(
            R"({{"jsonrpc":"2.0","id":{},"method":"agents_status","params":{{"jobs":["{}"]}}}})",
            rpc_id, id_);
    }
    // A request head; `framing` is its Content-Length or Transfer-Encoding line and more.
    std::string head(std::string const& version, std::string const& framing) const {
        return fmt::format(
            "POST /rpc {}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
            "Content-Type: application/json\r\n{}\r\n",
            version, agentd_->token(), framing);
    }
    std::string head(std::string const& version, std::size_t length,
                     std::string const& extra = {}) const {
        return head(version, fmt::format("Content-Length: {}\r\n{}", length, extra));
    }
    // The reply is this test's job, completed, answering request `rpc_id`.
    void expect_status_reply(std::optional<raw_response> const& r, int rpc_id) const {
        ASSERT_TRUE(r) << "no complete response";
        auto reply = json::parse(r->body).as_object();
        EXPECT_EQ(reply.at("id"), rpc_id);
        auto const& job = jobs_of(reply.at("result").as_object()).at(0);
        EXPECT_EQ(str(job, "id"), id_);
        EXPECT_EQ(str(job, "state"), "completed");
    }
    std::string id_;
};

TEST_F(http_framing, BodySentAfterTheHeaderIsAwaited) {
    raw_socket s(agentd_->port());
    auto body = status_body(7);
    s.send(head("HTTP/1.1", body.size()));
    EXPECT_FALSE(s.readable_within(quiet));
    s.send(body.substr(0, 20));
    EXPECT_FALSE(s.readable_within(quiet));
    s.send(body.substr(20));
    expect_status_reply(s.read_response(reply_timeout), 7);
}

TEST_F(http_framing, ChunkedBodyArrivingInPieces) {
    raw_socket s(agentd_->port());
    auto body = status_body(8);
    s.send(head("HTTP/1.1", "Transfer-Encoding: chunked\r\n"));
    auto half = body.size() / 2;
    s.send(fmt::format("{:x}\r\n{}\r\n", half, body.substr(0, half)));
    EXPECT_FALSE(s.readable_within(quiet));
    s.send(fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size() - half, body.substr(half)));
    expect_status_reply(s.read_response(reply_timeout), 8);
}

TEST_F(http_framing, ChunkedBodyOverTheLimitIs413AndCloses) {
    restart_agentd({"--max-body-bytes", "1024"});
    raw_socket s(agentd_->port());
    s.send(head("HTTP/1.1", "Transfer-Encoding: chunked\r\n"));
    auto chunk = std::string(600, ' ');
    s.send(fmt::format("{:x}\r\n{}\r\n{:x}\r\n{}\r\n", chunk.size(), chunk, chunk.size(), chunk));
    auto r = s.read_response(reply_timeout);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->head.substr(0, 12), "HTTP/1.1 413") << r->head;
    EXPECT_TRUE(s.closed_within(reply_timeout));
}

TEST_F(http_framing, PipelinedRequestsAreAnsweredInOrder) {
    raw_socket s(agentd_->port());
    auto first = status_body(1);
    auto second = status_body(2);
    auto third = status_body(3);
    // Two whole requests and the head of a third in one segment: the buffered bytes of one
    // request must not be taken for the body of another.
    s.send(head("HTTP/1.1", first.size()) + first + head("HTTP/1.1", second.size()) + second +
           head("HTTP/1.1", third.size()));
    expect_status_reply(s.read_response(reply_timeout), 1);
    expect_status_reply(s.read_response(reply_timeout), 2);
    EXPECT_FALSE(s.readable_within(quiet));
    s.send(third);
    expect_status_reply(s.read_response(reply_timeout), 3);
}

TEST_F(http_framing, ResponseHeadIsExact) {
    raw_socket s(agentd_->port());
    auto body = status_body(4);
    s.send(head("HTTP/1.1", body.size()) + body);
    auto r = s.read_response(reply_timeout);
    ASSERT_TRUE(r);
    expect_status_reply(r, 4);
    EXPECT_EQ(r->head, fmt::format("HTTP/1.1 200 OK\r\nServer: agentd\r\n"
                                   "Content-Type: application/json\r\nCache-Control: no-store\r\n"
                                   "Content-Length: {}\r\n\r\n",
                                   r->body.size()));
    EXPECT_FALSE(s.closed_within(quiet));  // keep-alive
}

TEST_F(http_framing, Http10IsAnsweredIn10AndClosedUnlessKeptAlive) {
    auto body = status_body(5);
    {
        raw_socket s(agentd_->port());
        s.send(head("HTTP/1.0", body.size()) + body);
        auto r = s.read_response(reply_timeout);
        ASSERT_TRUE(r);
        expect_status_reply(r, 5);
        EXPECT_EQ(r->head.substr(0, 17), "HTTP/1.0 200 OK\r\n");
        EXPECT_TRUE(s.closed_within(reply_timeout));
    }
    raw_socket s(agentd_->port());
    s.send(head("HTTP/1.0", body.size(), "Connection: keep-alive\r\n") + body);
    auto r = s.read_response(reply_timeout);
    ASSERT_TRUE(r);
    expect_status_reply(r, 5);
    EXPECT_NE(r->head.find("\r\nConnection: keep-alive\r\n"), std::string::npos) << r->head;
    s.send(head("HTTP/1.0", body.size(), "Connection: keep-alive\r\n") + body);
    expect_status_reply(s.read_response(reply_timeout), 5);
}

}  // namespace
}  // namespace agentd::test
