// The dashboard's HTTP surface on the real agentd: /ui serves daemon/ui/'s bytes with strict
// headers (CSP, nosniff, no-referrer, no-store), without a token but behind the Host/Origin
// guards; /ws takes the token as a subprotocol; agents_subscribe {all, snapshot} lists the
// caller's jobs. tests/ui drives the page itself in Chromium.
#include "agentd_fixture.hpp"
#include "ws_client.hpp"

#include <fstream>
#include <sstream>

namespace agentd::test {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

std::string source_file(std::string const& name) {
    std::ifstream in(std::string(AGENTD_SOURCE_DIR) + "/daemon/ui/" + name, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

http_headers upgrade_headers(std::string const& protocols) {
    return {{"Connection", "Upgrade"},
            {"Upgrade", "websocket"},
            {"Sec-WebSocket-Version", "13"},
            {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
            {"Sec-WebSocket-Protocol", protocols}};
}

json::object next_message(ws_client& ws) {
    auto text = ws.receive(5s);
    if (!text) throw std::runtime_error("no message within 5 s");
    return json::parse(*text).as_object();
}

TEST_F(agentd_test, UiServesTheEmbeddedFilesWithStrictHeaders) {
    struct file {
        std::string path, name, type;
    };
    for (auto const& f : {file{"/ui", "index.html", "text/html; charset=utf-8"},
                          file{"/ui/", "index.html", "text/html; charset=utf-8"},
                          file{"/ui/app.js", "app.js", "text/javascript; charset=utf-8"},
                          file{"/ui/app.css", "app.css", "text/css; charset=utf-8"}}) {
        SCOPED_TRACE(f.path);
        auto r = http_request(agentd_->port(), "GET", f.path);  // no token
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("content-type"), f.type);
        EXPECT_EQ(r.header("content-security-policy"), csp);
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
        EXPECT_EQ(r.header("referrer-policy"), "no-referrer");
        EXPECT_EQ(r.header("cache-control"), "no-store");
        auto expected = source_file(f.name);
        ASSERT_FALSE(expected.empty());
        EXPECT_EQ(r.body, expected) << "the embedded bytes are the source file's";
    }
    // Self-contained: nothing is fetched from elsewhere and no script is inline.
    auto page = http_request(agentd_->port(), "GET", "/ui").body;
    std::string_view const only_script = R"(<script src="/ui/app.js")";
    for (auto pos = page.find("<script"); pos != std::string::npos;
         pos = page.find("<script", pos + 1))
        EXPECT_EQ(page.compare(pos, only_script.size(), only_script), 0) << page.substr(pos, 40);
    for (auto const& name : {"index.html", "app.js", "app.css"}) {
        auto body = source_file(name);
        EXPECT_EQ(body.find("http://"), std::string::npos) << name;
        EXPECT_EQ(body.find("https://"), std::string::npos) << name;
    }
}

// What the dashboard shows comes from sub-agents and upstreams (descriptions, tool titles,
// permission patterns, question options): app.js sets it as text, never as markup, and builds no
// code from strings. The page has the parts app.js fills for issue #16.
TEST(ui_sources, SetTextNeverMarkup) {
    auto js = source_file("app.js");
    ASSERT_FALSE(js.empty());
    for (auto const* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                             "eval(", "new Function", "setHTML", "createContextualFragment"})
        EXPECT_EQ(js.find(sink), std::string::npos) << sink;
    auto html = source_file("index.html");
    for (auto const* id : {R"(id="waiting")", R"(id="requests")", R"(id="steps")",
                           R"(id="answered")", R"(id="output")"})
        EXPECT_NE(html.find(id), std::string::npos) << id;
}

TEST_F(agentd_test, UiRefusesOtherMethodsPathsHostsAndOrigins) {
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/ui/nope.js").status, 404);
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/ui/../rpc").status, 404);
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/uix").status, 404);
    auto post =
        http_request(agentd_->port(), "POST", "/ui", "{}", {{"Content-Type", "application/json"}});
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(post.header("allow"), "GET");
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/ui", "", {{"Host", "evil.example"}}).status,
              403);
    EXPECT_EQ(
        http_request(agentd_->port(), "GET", "/ui/app.js", "", {{"Origin", "https://evil.example"}})
            .status,
        403);
    EXPECT_EQ(http_request(agentd_->port(), "GET", "/ui", "", {{"Host", "localhost:8080"}}).status,
              200);
}

TEST_F(agentd_test, WebSocketTakesTheTokenAsASubprotocol) {
    auto const& token = agentd_->token();
    // The server selects agentd.v1 (a browser fails the connection without a selection) and
    // never echoes the token.
    auto ok = http_request(agentd_->port(), "GET", "/ws", "",
                           upgrade_headers("agentd.v1, agentd.bearer." + token));
    EXPECT_EQ(ok.status, 101);
    EXPECT_EQ(ok.header("sec-websocket-protocol"), "agentd.v1");

    using headers = std::vector<std::pair<std::string, std::string>>;
    auto status = [&](headers h, std::string target = "/ws") {
        try {
            ws_client c(agentd_->port(), std::move(h), target);
            return 101;
        } catch (std::runtime_error const& e) {
            std::string what = e.what();
            return std::stoi(what.substr(what.rfind(' ') + 1));
        }
    };
    EXPECT_EQ(status({{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + token}}), 101);
    EXPECT_EQ(
        status({{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + std::string(64, 'a')}}),
        401);
    EXPECT_EQ(status({{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + token + "0"}}), 401);
    EXPECT_EQ(status({{"Sec-WebSocket-Protocol", "agentd.v1"}}), 401);
    EXPECT_EQ(status({}, "/ws?token=" + token), 401) << "never from the query string";
    EXPECT_EQ(status({{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + token},
                      {"Origin", "https://evil.example"}}),
              403);
    // The subprotocol is a WebSocket thing only: /rpc still wants the Authorization header.
    auto rpc = agentd_->post(
        R"({"jsonrpc":"2.0","id":1,"method":"agents_status"})",
        {{"Authorization", ""}, {"Sec-WebSocket-Protocol", "agentd.bearer." + token}});
    EXPECT_EQ(rpc.status, 401);
}

TEST_F(agentd_test, SubscribeAllWithSnapshotListsOnlyTheCallersJobsThenPushes) {
    auto one =
        agentd_->call("agents_start", {{"session", "s1"}, {"tasks", json::array{task("a")}}});
    auto two = agentd_->call(
        "agents_start",
        {{"session", "s2"}, {"tasks", json::array{task("b [[fake latency_ms=60000]]", "long")}}});
    auto done_id = str(jobs_of(one)[0], "id");
    auto long_id = str(jobs_of(two)[0], "id");
    agentd_->call("agents_wait", {{"session", "s1"}, {"jobs", json::array{done_id}}});

    ws_client ws(agentd_->port(),
                 {{"Sec-WebSocket-Protocol", "agentd.v1, agentd.bearer." + agentd_->token()}});
    ws.send(R"({"jsonrpc":"2.0","id":1,"method":"agents_subscribe",
                "params":{"all":true,"snapshot":true}})");
    auto answer = next_message(ws);
    auto const& result = answer.at("result").as_object();
    EXPECT_TRUE(result.at("ok").as_bool());
    EXPECT_FALSE(result.at("truncated").as_bool());
    auto const& listed = result.at("jobs").as_array();
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(str(listed[0].at("job"), "id"), long_id);  // newest first
    EXPECT_EQ(str(listed[0], "session"), "s2");
    EXPECT_EQ(str(listed[0].at("job"), "description"), "long");
    EXPECT_EQ(str(listed[1].at("job"), "id"), done_id);
    EXPECT_EQ(str(listed[1], "session"), "s1");
    EXPECT_EQ(str(listed[1].at("job"), "state"), "completed");

    // Later changes arrive as events: cancel the long job over HTTP.
    agentd_->call("agents_cancel", {{"session", "s2"}, {"jobs", json::array{long_id}}});
    auto event = next_message(ws);
    EXPECT_EQ(str(event, "method"), "agents_event");
    EXPECT_EQ(str(event.at("params").at("job"), "id"), long_id);
    EXPECT_EQ(str(event.at("params").at("job"), "state"), "cancelled");

    // Without snapshot the answer stays {ok: true}.
    ws.send(R"({"jsonrpc":"2.0","id":2,"method":"agents_subscribe","params":{"session":"s9"}})");
    auto plain = next_message(ws);
    EXPECT_EQ(json::serialize(plain.at("result")), R"({"ok":true})");
}

}  // namespace
}  // namespace agentd::test
