// Connection slots against the real agentd: calls whose client went away are cancelled and free
// their slot within about a second; at the cap the reserve still answers /healthz (others get
// 503 + Retry-After); a connection that sends nothing is closed at the first-request deadline,
// or sooner when the cap is reached and a client that speaks needs its slot.
#include "agentd_fixture.hpp"
#include "raw_socket.hpp"

#include <thread>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr int cap = 20;

class http_slots : public agentd_test {
  protected:
    void SetUp() override {
        agentd_test::SetUp();
        restart_agentd({"--max-connections", std::to_string(cap)});
        auto started =
            agentd_->call("agents_start", {{"tasks", {task("slow [[fake latency_ms=60000]]")}}});
        id_ = str(jobs_of(started).at(0), "id");
    }
    std::string wait_request() const {
        auto body = fmt::format(
            R"({{"jsonrpc":"2.0","id":1,"method":"agents_wait","params":{{"jobs":["{}"],"timeout_ms":60000}}}})",
            id_);
        return fmt::format(
            "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            agentd_->token(), body.size(), body);
    }
    // `cap` connections, each with an agents_wait in flight (none answered yet).
    std::vector<std::unique_ptr<raw_socket>> fill() const {
        std::vector<std::unique_ptr<raw_socket>> waits;
        for (int i = 0; i < cap; ++i) {
            waits.push_back(std::make_unique<raw_socket>(agentd_->port()));
            waits.back()->send(wait_request());
        }
        for (auto& w : waits) EXPECT_FALSE(w->readable_within(10ms));
        return waits;
    }
    std::optional<int> status_of(std::string const& request) const {
        raw_socket s(agentd_->port());
        s.send(request);
        return s.read_status(5s);
    }
    std::string rpc_status() const {
        std::string body = R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})";
        return fmt::format(
            "POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            agentd_->token(), body.size(), body);
    }
    std::string id_;
};

TEST_F(http_slots, AtTheCapHealthzStillAnswersAndOthersGet503) {
    auto waits = fill();
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 200);
    raw_socket s(agentd_->port());
    s.send(rpc_status());
    auto r = s.read_response(5s);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->head.starts_with("HTTP/1.1 503")) << r->head;
    EXPECT_NE(r->head.find("Retry-After: 1\r\n"), std::string::npos) << r->head;
}

TEST_F(http_slots, AbandonedWaitsFreeTheirSlotsWithinASecond) {
    auto waits = fill();
    ASSERT_EQ(status_of(rpc_status()), 503);
    auto closed = steady::now();
    waits.clear();
    std::optional<int> status;
    while (status != 200 && steady::now() < closed + 5s) {
        status = status_of(rpc_status());
        if (status != 200) std::this_thread::sleep_for(20ms);
    }
    auto freed = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - closed);
    std::cout << "abandoned waits freed their slots in " << freed.count() << " ms\n";
    EXPECT_EQ(status, 200);
    EXPECT_LT(freed, 1500ms);
}

TEST_F(http_slots, PipelinedRequestBehindAWaitIsNotAbandonment) {
    raw_socket s(agentd_->port());
    auto body = fmt::format(
        R"({{"jsonrpc":"2.0","id":1,"method":"agents_wait","params":{{"jobs":["{}"],"timeout_ms":300}}}})",
        id_);
    s.send(
        fmt::format("POST /rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n"
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                    agentd_->token(), body.size(), body));
    s.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    auto wait = s.read_response(5s);
    ASSERT_TRUE(wait);
    EXPECT_NE(wait->body.find("\"timed_out\":true"), std::string::npos) << wait->body;
    auto health = s.read_response(5s);
    ASSERT_TRUE(health);
    EXPECT_EQ(health->body, "ok\n");
}

TEST_F(http_slots, SilentSocketsAtTheCapMakeRoomForClientsThatSpeak) {
    // Twice the cap of sockets that never send a byte (the first-request deadline is 5 s).
    std::vector<std::unique_ptr<raw_socket>> silent;
    for (int i = 0; i < 2 * cap; ++i)
        silent.push_back(std::make_unique<raw_socket>(agentd_->port()));
    auto start = steady::now();
    EXPECT_EQ(status_of(rpc_status()), 200);
    EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 200);
    EXPECT_LT(steady::now() - start, 2s);  // well before any deadline would have freed a slot
    // The oldest silent sockets made the room.
    EXPECT_TRUE(silent.front()->closed_within(1s));
}

TEST_F(agentd_test, SilentConnectionClosesAtTheFirstRequestDeadline) {
    restart_agentd({"--first-request-timeout-ms", "300"});
    raw_socket silent(agentd_->port());
    auto start = steady::now();
    EXPECT_TRUE(silent.closed_within(3s));
    EXPECT_GE(steady::now() - start, 250ms);
    // After a first request the connection keeps the normal idle deadline (30 s).
    raw_socket kept(agentd_->port());
    kept.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    ASSERT_TRUE(kept.read_response(5s));
    EXPECT_FALSE(kept.closed_within(800ms));
}

}  // namespace
}  // namespace agentd::test
