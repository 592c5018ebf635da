// The route table against the real agentd: every path it serves (and one it does not) × a
// WebSocket upgrade with the token, without it, from a foreign Origin and with a foreign Host.
// Only /ws upgrades, and only when every guard passes (issue #14: /healthz answered 101).
#include "agentd_fixture.hpp"
#include "raw_socket.hpp"

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

struct upgrade_case {
    std::string path;
    int with_token;      // Host and Origin local, token given
    int without_token;   // Host and Origin local, no token
    int foreign_origin;  // token given, Origin of another site
    int foreign_host;    // token given, Host of another site (DNS rebinding)
};

// /healthz and the dashboard are open but never upgrade (400); /healthz has no Host/Origin
// guard (it says only "ok"); the token-guarded paths answer 401 first; only /ws gives 101.
std::vector<upgrade_case> const cases{
    {"/healthz", 400, 400, 400, 400},
    {"/healthz?x=1", 400, 400, 400, 400},
    {"/metrics", 400, 401, 403, 403},
    {"/rpc", 405, 401, 403, 403},
    {"/mcp", 405, 401, 403, 403},
    {"/ui", 400, 400, 403, 403},
    {"/ui/", 400, 400, 403, 403},
    {"/ui/app.js", 400, 400, 403, 403},
    {"/ui/index.html", 400, 400, 403, 403},
    {"/ui/nope.js", 400, 400, 403, 403},
    {"/nope", 404, 404, 403, 403},
    {"/ws/", 404, 404, 403, 403},
    {"/ws", 101, 401, 403, 403},
};

int upgrade_status(int port, std::string const& path, std::string const& host,
                   std::string const& extra) {
    raw_socket s(port);
    s.send(
        fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "{}\r\n",
                    path, host, extra));
    auto status = s.read_status(5s);
    return status ? *status : -1;
}

TEST_F(agentd_test, OnlyWsUpgradesAndOnlyPastEveryGuard) {
    auto token = "Authorization: Bearer " + agentd_->token() + "\r\n";
    // Upgrade requests as browsers send them, offering the subprotocol agentd selects.
    token += "Sec-WebSocket-Protocol: agentd.v1\r\n";
    auto local = fmt::format("127.0.0.1:{}", agentd_->port());
    for (auto const& c : cases) {
        SCOPED_TRACE(c.path);
        EXPECT_EQ(upgrade_status(agentd_->port(), c.path, local, token), c.with_token);
        EXPECT_EQ(upgrade_status(agentd_->port(), c.path, local, ""), c.without_token);
        EXPECT_EQ(upgrade_status(agentd_->port(), c.path, local,
                                 token + "Origin: https://evil.example\r\n"),
                  c.foreign_origin);
        EXPECT_EQ(upgrade_status(agentd_->port(), c.path, "evil.example:7077", token),
                  c.foreign_host);
    }
}

TEST_F(agentd_test, WsTokenMayComeAsSubprotocolOnlyOnWs) {
    auto local = fmt::format("127.0.0.1:{}", agentd_->port());
    auto offer = "Sec-WebSocket-Protocol: agentd.v1, agentd.bearer." + agentd_->token() + "\r\n";
    EXPECT_EQ(upgrade_status(agentd_->port(), "/ws", local, offer), 101);
    raw_socket s(agentd_->port());
    s.send(fmt::format("GET /metrics HTTP/1.1\r\nHost: {}\r\n{}\r\n", local, offer));
    EXPECT_EQ(s.read_status(5s), 401);
}

TEST_F(agentd_test, EveryTablePathAnswersWithoutUpgrade) {
    auto get = [&](std::string const& path) {
        return http_request(agentd_->port(), "GET", path, "",
                            {{"Authorization", "Bearer " + agentd_->token()}});
    };
    EXPECT_EQ(get("/healthz").status, 200);
    EXPECT_EQ(get("/metrics").status, 200);
    EXPECT_EQ(get("/ui/").status, 200);
    EXPECT_EQ(get("/ws").status, 426);
    auto rpc = get("/rpc");
    EXPECT_EQ(rpc.status, 405);
    EXPECT_EQ(rpc.headers["allow"], "POST");
    auto mcp = get("/mcp");
    EXPECT_EQ(mcp.status, 405);
    EXPECT_EQ(mcp.headers["allow"], "POST, DELETE");
    auto head = http_request(agentd_->port(), "DELETE", "/healthz");
    EXPECT_EQ(head.status, 405);
    EXPECT_EQ(head.headers["allow"], "GET, HEAD");
    EXPECT_EQ(head.headers["server"], "agentd");
    EXPECT_EQ(head.headers["cache-control"], "no-store");
}

// HEAD gets the GET's headers and no body: a body would be read as the next response.
TEST_F(agentd_test, HeadHealthzHasNoBody) {
    raw_socket s(agentd_->port());
    s.send(
        "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    auto head = s.read_head(5s);
    ASSERT_TRUE(head);
    EXPECT_TRUE(head->starts_with("HTTP/1.1 200")) << *head;
    EXPECT_NE(head->find("Content-Length: 3\r\n"), std::string::npos) << *head;
    auto get = s.read_response(5s);
    ASSERT_TRUE(get);
    EXPECT_TRUE(get->head.starts_with("HTTP/1.1 200")) << get->head;
    EXPECT_EQ(get->body, "ok\n");
}

}  // namespace
}  // namespace agentd::test
