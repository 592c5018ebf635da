// opencode event parsing for tool steps, permissions, questions, their settlement and progress
// (DESIGN §5), fed with frames copied from a real server's captures (tests/e2e/captured), plus
// the pending-request lists, reply bodies and error bodies of the request endpoints, and the
// backend's respond/pending_requests calls against a scripted local HTTP server.
#include "jobs/upstream/opencode.hpp"
#include "jobs/upstream/opencode_event_scan.hpp"
#include "jobs/upstream/opencode_parse.hpp"
#include "protocol/utf8.hpp"
#include "tests/unit/io_fixture.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream {
namespace {

namespace oc = opencode;
using kind = oc::event::kind;
using protocol::decision;
using protocol::request_kind;
using protocol::step_status;

bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

// The /event form of a /global/event frame: its payload alone.
std::string bare(std::string_view frame) {
    auto at = frame.find("\"payload\":");
    std::string payload(frame.substr(at + 10));
    payload.pop_back();  // the frame's closing brace
    return payload;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// A bash tool part in `status` with the given state fields.
std::string tool_frame(std::string_view tool, std::string_view state) {
    return std::string(
               R"({"payload":{"type":"message.part.updated","properties":{"sessionID":"ses_1",)"
               R"("part":{"id":"prt_1","sessionID":"ses_1","type":"tool","tool":")") +
           std::string(tool) + R"(","callID":"call_1","state":)" + std::string(state) + "}}}}";
}

constexpr auto tool_pending =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daed4ea001GxvdY7grP1ZrF0","type":"message.part.updated","properties":{"sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","part":{"id":"prt_23daed4ea001TYyCsiOXCKUZrS","messageID":"msg_23daed2a10012xlS1i2j3abrSM","sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","type":"tool","tool":"bash","callID":"call_d4d07ed8a875","state":{"status":"pending","input":{},"raw":""}},"time":1796331197674}}})";
constexpr auto tool_running_streaming =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23dae4ccb0010pHGJHo64QPqb4","type":"message.part.updated","properties":{"sessionID":"ses_dc251b8c3ffeVgFbpTWHvYBUy6","part":{"type":"tool","tool":"bash","callID":"call_4a5601960154","state":{"metadata":{"output":"hi-from-bash\n"},"status":"running","input":{"command":"echo hi-from-bash"},"time":{"start":1796331162236}},"id":"prt_23dae4a6a001Jkk7bivDpyRrkC","sessionID":"ses_dc251b8c3ffeVgFbpTWHvYBUy6","messageID":"msg_23dae47a9001LRo5YJ74Y1Itve"},"time":1796331162827}}})";
constexpr auto tool_completed =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daed62c00146r3BwSX2Szepd","type":"message.part.updated","properties":{"sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","part":{"type":"tool","tool":"bash","callID":"call_d4d07ed8a875","state":{"status":"completed","input":{"command":"sleep 600"},"output":"(no output)\n\n<shell_metadata>\nUser aborted the command\n</shell_metadata>","metadata":{"output":"(no output)\n\n<shell_metadata>\nUser aborted the command\n</shell_metadata>","exit":null,"truncated":false},"title":"sleep 600","time":{"start":1796331197703,"end":1796331197995}},"id":"prt_23daed4ea001TYyCsiOXCKUZrS","sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","messageID":"msg_23daed2a10012xlS1i2j3abrSM"},"time":1796331197995}}})";
constexpr auto tool_error =
    R"({"directory":"/tmp/agentd-e2e-PZ4o5Y/project","project":"d4faebdee6d4784cbb39fc78b253058388583283","payload":{"id":"evt_23daea072001Tjv1rTrIEYt8J0","type":"message.part.updated","properties":{"sessionID":"ses_dc2516370ffewe5ws9Va00pOXZ","part":{"type":"tool","tool":"bash","callID":"call_9f924568ba7c","state":{"status":"error","input":{"command":"echo never"},"error":"The user rejected permission to use this specific tool call with the following feedback: not on my machine","time":{"start":1796331184121,"end":1796331184241}},"id":"prt_23dae9fa6001kTm3HKOXSAYbI4","sessionID":"ses_dc2516370ffewe5ws9Va00pOXZ","messageID":"msg_23dae9cd7001SguxNlysuoBZ0e"},"time":1796331184242}}})";
constexpr auto read_running =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daeeef50019X9mJXoH4lrnnp","type":"message.part.updated","properties":{"sessionID":"ses_dc25115e4ffeHhu3AvoQzRgjTL","part":{"type":"tool","tool":"read","callID":"call_ee552a55ce2e","state":{"status":"running","input":{"filePath":"/tmp/agentd-e2e-u8XjJh/project/README.md"},"time":{"start":1796331204340}},"id":"prt_23daeee74001ypMccMZ3sLVAQe","sessionID":"ses_dc25115e4ffeHhu3AvoQzRgjTL","messageID":"msg_23daeeb3c001d47md7L1RrpWey"},"time":1796331204341}}})";
constexpr auto permission_asked =
    R"({"directory":"/tmp/agentd-e2e-PZ4o5Y/project","project":"d4faebdee6d4784cbb39fc78b253058388583283","payload":{"id":"evt_23daeaf97001AkKiGYWrVnIVxw","type":"permission.asked","properties":{"id":"per_23daeaf96001gKRbJCcwMMZAib","sessionID":"ses_dc2515418ffeN1BxbN1655Nh4e","permission":"bash","patterns":["echo one"],"metadata":{"command":"echo one"},"always":["echo *"],"tool":{"messageID":"msg_23daeac82001v7Cyr74ks0abur","callID":"call_af7257dbb893"}}}})";
constexpr auto question_asked =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daec446002daEZbs5rowt7iQ","type":"question.asked","properties":{"id":"que_23daec446001rzoyhzhDqP7UBB","sessionID":"ses_dc2513d48ffemYsfNQWIP6nAfx","questions":[{"question":"Which colour?","header":"Pick","options":[{"label":"red","description":"Answer red"},{"label":"blue","description":"Answer blue"}]}],"tool":{"messageID":"msg_23daec307001sWgI1C3stocvw2","callID":"call_c432b63b1049"}}}})";
constexpr auto question_multiple =
    R"({"id":"evt_x","type":"question.asked","properties":{"id":"que_23daecd32001WHXFm3uysU7t46","sessionID":"ses_dc251354affe8H3tT0LcEGlZpS","questions":[{"question":"Which colour?","header":"Pick","options":[{"label":"red","description":"Answer red"},{"label":"blue","description":"Answer blue"}],"multiple":true}],"tool":{"messageID":"msg_23daecb670011yaDrKwAd91X7P","callID":"call_cd1c98359710"}}})";
constexpr auto permission_replied_reject =
    R"({"directory":"/tmp/agentd-e2e-PZ4o5Y/project","project":"d4faebdee6d4784cbb39fc78b253058388583283","payload":{"id":"evt_23daea04d001ANzFbZn4HFdIoy","type":"permission.replied","properties":{"sessionID":"ses_dc2516370ffewe5ws9Va00pOXZ","requestID":"per_23dae9fe40018IjXiSI4QH91Nt","reply":"reject"}}})";
constexpr auto question_replied =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daec465001nKNVC5rK50DxBv","type":"question.replied","properties":{"sessionID":"ses_dc2513d48ffemYsfNQWIP6nAfx","requestID":"que_23daec446001rzoyhzhDqP7UBB","answers":[["purple, obviously"]]}}})";
constexpr auto question_rejected =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daecd52001RPw2m4GCsH2xyk","type":"question.rejected","properties":{"sessionID":"ses_dc251354affe8H3tT0LcEGlZpS","requestID":"que_23daecd32001WHXFm3uysU7t46"}}})";
constexpr auto message_updated =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daed1fc001GayE1SAKyPL7Ld","type":"message.updated","properties":{"sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","info":{"id":"msg_23daed1d70013POOdaDVv10FE2","role":"user","sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","time":{"created":1796331196887},"agent":"build","model":{"providerID":"scripted","modelID":"scripted-1"}}}}})";
constexpr auto status_busy =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daed293001xHRfJ3nphrdpHB","type":"session.status","properties":{"sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","status":{"type":"busy"}}}})";
constexpr auto status_retry =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daedd0e001Qe1rpg06RrmTZg","type":"session.status","properties":{"sessionID":"ses_dc251257affe8HVJTo9R4CWzye","status":{"type":"retry","attempt":1,"message":"scripted failure 500","next":1796331202041}}}})";
constexpr auto session_diff =
    R"({"directory":"/tmp/agentd-e2e-u8XjJh/project","project":"c8e471b1d71df840fc3537a6091ccf260b50d376","payload":{"id":"evt_23daed471001vCikIO1E4nF5hr","type":"session.diff","properties":{"sessionID":"ses_dc2512ebaffeSxH1pM0z0w3MPa","diff":[]}}})";

protocol::wall_time at_ms(std::int64_t ms) {
    return protocol::wall_time(std::chrono::milliseconds(ms));
}

TEST(opencode_tool_event, pending_running_completed_error_in_both_forms) {
    for (bool global : {true, false}) {
        auto frame = [&](char const* f) { return global ? std::string(f) : bare(f); };
        auto p = oc::parse_event(frame(tool_pending));
        ASSERT_TRUE(p.has_value()) << global;
        EXPECT_EQ(p->what, kind::tool);
        EXPECT_EQ(p->session, "ses_dc2512ebaffeSxH1pM0z0w3MPa");
        EXPECT_EQ(p->part_id, "prt_23daed4ea001TYyCsiOXCKUZrS");
        EXPECT_EQ(p->part_type, "tool");
        EXPECT_EQ(p->tool.call_id, "call_d4d07ed8a875");
        EXPECT_EQ(p->tool.tool, "bash");
        EXPECT_EQ(p->tool.status, step_status::pending);
        EXPECT_EQ(p->tool.title, "");
        EXPECT_FALSE(p->tool.started_at);
        EXPECT_EQ(p->tool.output_tail, "");

        auto r = oc::parse_event(frame(tool_running_streaming));
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ(r->what, kind::tool);
        EXPECT_EQ(r->tool.status, step_status::running);
        EXPECT_EQ(r->tool.title, "echo hi-from-bash") << "derived from input.command";
        EXPECT_EQ(r->tool.started_at, at_ms(1796331162236));
        EXPECT_FALSE(r->tool.finished_at);
        EXPECT_EQ(r->tool.output_tail, "hi-from-bash\n") << "metadata.output while it streams";

        auto c = oc::parse_event(frame(tool_completed));
        ASSERT_TRUE(c.has_value());
        EXPECT_EQ(c->tool.status, step_status::completed);
        EXPECT_EQ(c->tool.title, "sleep 600");
        EXPECT_EQ(c->tool.started_at, at_ms(1796331197703));
        EXPECT_EQ(c->tool.finished_at, at_ms(1796331197995));
        EXPECT_TRUE(contains(c->tool.output_tail, "User aborted the command"));

        auto e = oc::parse_event(frame(tool_error));
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->tool.status, step_status::error);
        EXPECT_EQ(e->tool.title, "echo never");
        EXPECT_TRUE(contains(e->tool.output_tail, "not on my machine")) << "state.error";
        EXPECT_EQ(e->tool.finished_at, at_ms(1796331184241));
    }
}

TEST(opencode_tool_event, upstream_title_wins_over_input) {
    auto e = oc::parse_event(tool_frame(
        "read", R"({"status":"completed","input":{"filePath":"/p/README.md"},"title":"README.md",
                   "output":"x"})"));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->tool.title, "README.md");
    auto r = oc::parse_event(read_running);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->tool.title, "/tmp/agentd-e2e-u8XjJh/project/README.md");
}

TEST(opencode_tool_event, title_from_each_tool_input) {
    struct row {
        char const* tool;
        char const* input;
        char const* title;
    };
    for (auto const& [tool, input, title] :
         {row{"bash", R"({"command":"npm test"})", "npm test"},
          row{"read", R"({"filePath":"/a/b.txt"})", "/a/b.txt"},
          row{"write", R"({"filePath":"/a/w.txt","content":"x"})", "/a/w.txt"},
          row{"edit", R"({"filePath":"/a/e.txt","oldString":"a"})", "/a/e.txt"},
          row{"glob", R"({"pattern":"**/*.cpp"})", "**/*.cpp"},
          row{"grep", R"({"pattern":"TODO","path":"src"})", "TODO"},
          row{"webfetch", R"({"url":"https://example.com"})", "https://example.com"},
          row{"task", R"({"description":"find bugs","prompt":"…"})", "find bugs"},
          row{"bash", R"({"command":"cd x &&\n\tmake"})", "cd x &&  make"},
          row{"todowrite", R"({"todos":[]})", ""}, row{"bash", R"({"command":5})", ""},
          row{"bash", R"([])", ""}}) {
        auto e = oc::parse_event(
            tool_frame(tool, std::string(R"({"status":"running","input":)") + input + "}"));
        ASSERT_TRUE(e.has_value()) << tool;
        EXPECT_EQ(e->what, kind::tool);
        EXPECT_EQ(e->tool.title, title) << tool << " " << input;
    }
}

TEST(opencode_tool_event, title_is_cut_to_160_characters_utf8_safe) {
    std::string long_ascii(500, 'a');
    auto a = oc::parse_event(tool_frame(
        "bash", R"({"status":"running","input":{"command":)" + json_string(long_ascii) + "}}"));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->tool.title, std::string(160, 'a'));

    std::string accents;
    for (int i = 0; i < 200; ++i) accents += "é";  // 2 bytes each
    auto u = oc::parse_event(
        tool_frame("bash", R"({"status":"completed","title":)" + json_string(accents) + "}"));
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->tool.title.size(), 320u) << "160 characters, not 160 bytes";
    EXPECT_EQ(protocol::utf8_clean(u->tool.title), u->tool.title);

    std::string emoji = "x";
    for (int i = 0; i < 200; ++i) emoji += "\xF0\x9F\x98\x80";  // 4 bytes each
    auto m = oc::parse_event(
        tool_frame("bash", R"({"status":"completed","title":)" + json_string(emoji) + "}"));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->tool.title.size(), 1u + 159u * 4u);
    EXPECT_EQ(protocol::utf8_clean(m->tool.title), m->tool.title);
}

TEST(opencode_tool_event, output_tail_is_the_last_2_kib_on_a_boundary) {
    std::string out = "HEAD";
    for (int i = 0; i < 1500; ++i) out += "é";  // 3004 bytes
    out += "END";
    auto e = oc::parse_event(
        tool_frame("bash", R"({"status":"completed","output":)" + json_string(out) + "}"));
    ASSERT_TRUE(e.has_value());
    auto const& tail = e->tool.output_tail;
    EXPECT_LE(tail.size(), protocol::step::output_tail_bytes);
    EXPECT_GE(tail.size(), protocol::step::output_tail_bytes - 3);
    EXPECT_TRUE(tail.ends_with("END"));
    EXPECT_EQ(protocol::utf8_clean(tail), tail);
    EXPECT_TRUE(std::string_view(out).ends_with(tail));

    // Exactly at the cap: kept whole.
    std::string exact(protocol::step::output_tail_bytes, 'z');
    auto x = oc::parse_event(
        tool_frame("bash", R"({"status":"error","error":)" + json_string(exact) + "}"));
    ASSERT_TRUE(x.has_value());
    EXPECT_EQ(x->tool.output_tail, exact);
}

TEST(opencode_tool_event, other_parts_stay_part_updated) {
    auto e = oc::parse_event(
        R"({"payload":{"type":"message.part.updated","properties":{"part":{"id":"prt_2",
        "sessionID":"ses_2","type":"reasoning","text":""}}}})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, kind::part_updated);
    EXPECT_EQ(e->part_type, "reasoning");
}

TEST(opencode_tool_event, malformed_tool_parts) {
    // No state, an unknown status, a state of the wrong type: not a step.
    for (auto state : {R"(null)", R"({"status":"exploded"})", R"("running")", R"({})"}) {
        auto e = oc::parse_event(tool_frame("bash", state));
        EXPECT_FALSE(e.has_value() && e->what == kind::tool) << state;
    }
    // Wrong types inside a valid state: partially filled.
    auto e = oc::parse_event(
        tool_frame("bash", R"({"status":"completed","title":7,"output":[1],"input":"x",
                   "time":{"start":"soon","end":1e300},"metadata":null})"));
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, kind::tool);
    EXPECT_EQ(e->tool.title, "");
    EXPECT_EQ(e->tool.output_tail, "");
    EXPECT_FALSE(e->tool.started_at);
    EXPECT_FALSE(e->tool.finished_at);
    auto neg = oc::parse_event(tool_frame(
        "bash", R"({"status":"running","time":{"start":-5,"end":18446744073709551615}})"));
    ASSERT_TRUE(neg.has_value());
    EXPECT_FALSE(neg->tool.started_at);
    EXPECT_FALSE(neg->tool.finished_at);
    // A tool part of no session.
    EXPECT_FALSE(oc::parse_event(
        R"({"type":"message.part.updated","properties":{"part":{"id":"p","type":"tool",
           "state":{"status":"running"}}}})"));
}

TEST(opencode_request_event, permission_asked_in_both_forms) {
    for (auto const& frame : {std::string(permission_asked), bare(permission_asked)}) {
        auto e = oc::parse_event(frame);
        ASSERT_TRUE(e.has_value()) << frame;
        EXPECT_EQ(e->what, kind::permission);
        EXPECT_EQ(e->session, "ses_dc2515418ffeN1BxbN1655Nh4e");
        EXPECT_EQ(e->request.id, "per_23daeaf96001gKRbJCcwMMZAib");
        EXPECT_EQ(e->request.kind, request_kind::permission);
        EXPECT_EQ(e->request.permission, "bash");
        EXPECT_EQ(e->request.patterns, std::vector<std::string>{"echo one"});
        EXPECT_TRUE(e->request.questions.empty());
        EXPECT_EQ(e->request.asked_at, protocol::wall_time{}) << "the manager stamps it";
    }
}

TEST(opencode_request_event, question_asked_custom_defaults_to_true) {
    for (auto const& frame : {std::string(question_asked), bare(question_asked)}) {
        auto e = oc::parse_event(frame);
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->what, kind::question);
        EXPECT_EQ(e->session, "ses_dc2513d48ffemYsfNQWIP6nAfx");
        EXPECT_EQ(e->request.id, "que_23daec446001rzoyhzhDqP7UBB");
        EXPECT_EQ(e->request.kind, request_kind::question);
        ASSERT_EQ(e->request.questions.size(), 1u);
        auto const& q = e->request.questions[0];
        EXPECT_EQ(q.question, "Which colour?");
        EXPECT_EQ(q.header, "Pick");
        ASSERT_EQ(q.options.size(), 2u);
        EXPECT_EQ(q.options[0].label, "red");
        EXPECT_EQ(q.options[0].description, "Answer red");
        EXPECT_EQ(q.options[1].label, "blue");
        EXPECT_FALSE(q.multiple);
        EXPECT_TRUE(q.custom) << "absent custom means free text is allowed";
    }
    auto m = oc::parse_event(question_multiple);
    ASSERT_TRUE(m.has_value());
    ASSERT_EQ(m->request.questions.size(), 1u);
    EXPECT_TRUE(m->request.questions[0].multiple);

    auto no_custom = oc::parse_event(
        R"({"type":"question.asked","properties":{"id":"que_1","sessionID":"ses_1",
           "questions":[{"question":"q","options":[],"custom":false,"multiple":"yes"}]}})");
    ASSERT_TRUE(no_custom.has_value());
    EXPECT_FALSE(no_custom->request.questions[0].custom);
    EXPECT_FALSE(no_custom->request.questions[0].multiple) << "a non-bool keeps the default";
}

TEST(opencode_request_event, malformed_requests) {
    for (
        auto data : {
            R"({"type":"permission.asked","properties":{"sessionID":"ses_1","permission":"bash"}})",
            R"({"type":"permission.asked","properties":{"id":"per_1","permission":"bash"}})",
            R"({"type":"permission.asked","properties":{"id":"que_1","sessionID":"ses_1"}})",
            R"({"type":"permission.asked","properties":{"id":"per_../x","sessionID":"ses_1"}})",
            R"({"type":"permission.asked","properties":{"id":7,"sessionID":"ses_1"}})",
            R"({"type":"question.asked","properties":{"id":"que_1","sessionID":"ses_1"}})",
            R"({"type":"question.asked","properties":{"id":"que_1","sessionID":"ses_1",
                "questions":{}}})",
            R"({"type":"question.asked","properties":{"id":"per_1","sessionID":"ses_1",
                "questions":[]}})",
        }) {
        auto e = oc::parse_event(data);
        EXPECT_FALSE(e.has_value()) << data;
    }
    // Wrong types inside: partially filled, positions kept for the answers.
    auto p = oc::parse_event(
        R"({"type":"permission.asked","properties":{"id":"per_1","sessionID":"ses_1",
           "permission":null,"patterns":["a",3,null,"b"]}})");
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->request.permission, "");
    EXPECT_EQ(p->request.patterns, (std::vector<std::string>{"a", "b"}));
    auto q = oc::parse_event(
        R"({"type":"question.asked","properties":{"id":"que_1","sessionID":"ses_1",
           "questions":[5,{"question":"second","options":[1,{"label":2},{"label":"ok"}]}]}})");
    ASSERT_TRUE(q.has_value());
    ASSERT_EQ(q->request.questions.size(), 2u);
    EXPECT_EQ(q->request.questions[0].question, "");
    EXPECT_TRUE(q->request.questions[0].custom);
    EXPECT_EQ(q->request.questions[1].question, "second");
    ASSERT_EQ(q->request.questions[1].options.size(), 2u);
    EXPECT_EQ(q->request.questions[1].options[1].label, "ok");
}

TEST(opencode_settled_event, replies_map_to_decisions) {
    auto r = oc::parse_event(permission_replied_reject);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->what, kind::settled);
    EXPECT_EQ(r->session, "ses_dc2516370ffewe5ws9Va00pOXZ");
    EXPECT_EQ(r->settled.request_id, "per_23dae9fe40018IjXiSI4QH91Nt");
    EXPECT_EQ(r->settled.how, decision::deny);

    for (auto [reply, how] :
         {std::pair{"once", decision::allow}, std::pair{"always", decision::allow_always},
          std::pair{"reject", decision::deny}}) {
        auto e = oc::parse_event(
            std::string(R"({"type":"permission.replied","properties":{"sessionID":"ses_1",)"
                        R"("requestID":"per_1","reply":")") +
            reply + "\"}}");
        ASSERT_TRUE(e.has_value()) << reply;
        EXPECT_EQ(e->settled.how, how) << reply;
    }

    auto a = oc::parse_event(bare(question_replied));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->what, kind::settled);
    EXPECT_EQ(a->session, "ses_dc2513d48ffemYsfNQWIP6nAfx");
    EXPECT_EQ(a->settled.request_id, "que_23daec446001rzoyhzhDqP7UBB");
    EXPECT_EQ(a->settled.how, decision::answer);

    auto d = oc::parse_event(question_rejected);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->what, kind::settled);
    EXPECT_EQ(d->settled.request_id, "que_23daecd32001WHXFm3uysU7t46");
    EXPECT_EQ(d->settled.how, decision::deny);
}

TEST(opencode_settled_event, malformed) {
    for (auto data : {
             R"({"type":"permission.replied","properties":{"sessionID":"ses_1","reply":"once"}})",
             R"({"type":"permission.replied","properties":{"sessionID":"ses_1","requestID":"per_1",
                "reply":"maybe"}})",
             R"({"type":"permission.replied","properties":{"requestID":"per_1","reply":"once"}})",
             R"({"type":"question.rejected","properties":{"sessionID":"ses_1","requestID":[]}})",
         }) {
        EXPECT_FALSE(oc::parse_event(data).has_value()) << data;
    }
}

TEST(opencode_usage_event, an_assistant_messages_update_carries_its_usage) {
    auto e = oc::parse_event(
        R"({"directory":"/p","payload":{"type":"message.updated","properties":{"sessionID":"ses_1",
            "info":{"id":"msg_7","sessionID":"ses_1","role":"assistant","parentID":"msg_6",
                    "cost":0.0125,"tokens":{"input":1000,"output":200,"reasoning":50,
                    "cache":{"read":4000,"write":10}}}}}})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, kind::usage);
    EXPECT_EQ(e->session, "ses_1");
    EXPECT_EQ(e->message_id, "msg_7");
    EXPECT_EQ(e->usage.input_tokens, 1000);
    EXPECT_EQ(e->usage.output_tokens, 250);  // reasoning is billed as output
    EXPECT_EQ(e->usage.cost, 0.0125);
    // Not yet billed, hostile figures: zeros, never negative.
    auto fresh = oc::parse_event(
        R"({"type":"message.updated","properties":{"info":{"id":"msg_8","sessionID":"ses_1",
            "role":"assistant","cost":-3,"tokens":{"input":-1,"output":"x"}}}})");
    ASSERT_TRUE(fresh.has_value());
    EXPECT_EQ(fresh->what, kind::usage);
    EXPECT_EQ(fresh->usage.input_tokens, 0);
    EXPECT_EQ(fresh->usage.output_tokens, 0);
    EXPECT_EQ(fresh->usage.cost, 0.0);
    // Without a message id there is nothing to keep the figures under: progress only.
    auto anonymous = oc::parse_event(
        R"({"type":"message.updated","properties":{"sessionID":"ses_1","info":{"role":"assistant",
            "cost":1}}})");
    ASSERT_TRUE(anonymous.has_value());
    EXPECT_EQ(anonymous->what, kind::progress);
}

TEST(opencode_progress_event, work_is_progress_retry_and_heartbeat_are_not) {
    // A user's message.updated and session.diff are kinds of their own (the diff summary's
    // marks), which the stream reports as progress too.
    for (auto [frame, what] :
         {std::pair{message_updated, kind::user_message}, std::pair{status_busy, kind::progress},
          std::pair{session_diff, kind::summary_started}}) {
        for (auto const& f : {std::string(frame), bare(frame)}) {
            auto e = oc::parse_event(f);
            ASSERT_TRUE(e.has_value()) << f;
            EXPECT_EQ(e->what, what) << f;
            EXPECT_FALSE(e->session.empty()) << f;
        }
    }
    auto upd = oc::parse_event(
        R"({"type":"session.updated","properties":{"sessionID":"ses_1","info":{"id":"ses_1"}}})");
    ASSERT_TRUE(upd.has_value());
    EXPECT_EQ(upd->what, kind::progress);
    EXPECT_EQ(upd->session, "ses_1");
    auto reasoning = oc::parse_event(
        R"({"type":"message.part.delta","properties":{"sessionID":"ses_1","partID":"p",
           "field":"reasoning","delta":"x"}})");
    ASSERT_TRUE(reasoning.has_value());
    EXPECT_EQ(reasoning->what, kind::progress);

    for (auto const& f : {std::string(status_retry), bare(status_retry)}) {
        auto e = oc::parse_event(f);
        ASSERT_TRUE(e.has_value());
        EXPECT_EQ(e->what, kind::other) << "a retry notice must not keep a job alive";
    }
    for (
        auto data :
        {R"({"payload":{"type":"server.heartbeat","properties":{}}})",
         R"({"payload":{"type":"server.connected","properties":{}}})",
         R"({"type":"server.heartbeat","properties":{}})",
         R"({"type":"session.status","properties":{"sessionID":"ses_1","status":{"type":"idle"}}})",
         R"({"type":"session.status","properties":{"sessionID":"ses_1","status":"busy"}})",
         R"({"type":"session.updated","properties":{"info":{"id":"ses_1"}}})",
         R"({"type":"message.updated","properties":{"info":{}}})",
         R"({"type":"session.diff","properties":{"sessionID":3}})"}) {
        auto e = oc::parse_event(data);
        ASSERT_TRUE(e.has_value()) << data;
        EXPECT_EQ(e->what, kind::other) << data;
    }
}

// session.error ends a prompt_async turn, and for an unknown agent it is all there is (no user
// message, no idle: tests/e2e/captured/prompt_async_errors.jsonl). Its error reads as info.error.
TEST(opencode_session_error_event, carries_the_failure_in_both_forms) {
    auto const frame =
        R"({"directory":"/p","payload":{"type":"session.error","properties":{"sessionID":"ses_1",
            "error":{"name":"APIError","data":{"message":"scripted failure 400","statusCode":400,
            "isRetryable":false}}}}})";
    for (auto const& f : {std::string(frame), bare(frame)}) {
        auto e = oc::parse_event(f);
        ASSERT_TRUE(e.has_value()) << f;
        EXPECT_EQ(e->what, kind::session_error) << f;
        EXPECT_EQ(e->session, "ses_1");
        EXPECT_EQ(e->failure.kind, protocol::error_kind::upstream);
        EXPECT_EQ(e->failure.phase, protocol::error_phase::prompt);
        EXPECT_EQ(e->failure.message, "APIError: scripted failure 400");
        EXPECT_EQ(e->failure.http_status, 400);
    }
    auto bare_error =
        oc::parse_event(R"({"type":"session.error","properties":{"sessionID":"ses_1"}})");
    ASSERT_TRUE(bare_error.has_value());
    EXPECT_EQ(bare_error->what, kind::session_error);
    EXPECT_EQ(bare_error->failure.message, "upstream error");
    // Without a session it concerns no job.
    EXPECT_FALSE(oc::parse_event(R"({"type":"session.error","properties":{"error":{}}})"));
}

TEST(opencode_event_hostile, wrong_types_nulls_and_huge_values) {
    std::string huge(1 << 20, 'x');
    std::string huge_utf8;
    for (int i = 0; i < (1 << 19); ++i) huge_utf8 += "é";
    for (auto const& data : {
             std::string(R"({"payload":null})"),
             std::string(R"({"payload":{"type":null,"properties":null}})"),
             std::string(R"({"payload":{"type":"permission.asked","properties":[]}})"),
             std::string(R"({"type":"question.asked","properties":{"id":"que_1",
                "sessionID":"ses_1","questions":[null,[],"x",{"options":null}]}})"),
             std::string(R"({"type":"message.part.updated","properties":{"part":null}})"),
             std::string(R"({"type":"message.part.updated","properties":{"part":{"type":"tool",
                "sessionID":"ses_1","state":{"status":null}}}})"),
             std::string(R"({"type":"session.status","properties":{"sessionID":null}})"),
             tool_frame("bash", R"({"status":"completed","output":)" + json_string(huge) +
                                    R"(,"title":)" + json_string(huge) + "}"),
             tool_frame("bash", R"({"status":"running","metadata":{"output":)" +
                                    json_string(huge_utf8) + R"(},"input":{"command":)" +
                                    json_string(huge_utf8) + "}}"),
             std::string(R"({"type":"permission.asked","properties":{"id":"per_1",)"
                         R"("sessionID":"ses_1","permission":)") +
                 json_string(huge) + "}}",
             std::string(R"({"type":"permission.asked","properties":{"id":"per_)") + huge +
                 R"(","sessionID":"ses_1"}})",
         }) {
        auto e = oc::parse_event(data);
        if (!e) continue;
        EXPECT_LE(e->tool.output_tail.size(), protocol::step::output_tail_bytes);
        EXPECT_LE(e->tool.title.size(), protocol::step::title_chars * 4);
        EXPECT_EQ(protocol::utf8_clean(e->tool.title), e->tool.title);
        EXPECT_EQ(protocol::utf8_clean(e->tool.output_tail), e->tool.output_tail);
        EXPECT_LE(e->request.id.size(), 256u);
    }
}

// Every field an event carries, so two reads of one frame can be compared whole.
std::string described(std::optional<oc::event> const& e) {
    if (!e) return "none";
    auto const& t = e->tool;
    return fmt::format(
        "{}|{}|{}|{}|{}|{}|{}|tool {} {} {} {} {}|request {} {}|settled {} {}|{}|{} {} {}|{}|{}|{}|"
        "{}|{} {}",
        static_cast<int>(e->what), e->session, e->part_id, e->part_type, e->delta, e->text,
        e->directory, t.call_id, t.tool, static_cast<int>(t.status), t.title, t.output_tail,
        e->request.id, e->request.permission, e->settled.request_id,
        static_cast<int>(e->settled.how), e->message_id, e->usage.input_tokens,
        e->usage.output_tokens, e->usage.cost, e->name, e->branch, e->message,
        e->request.questions.size(), e->completed, e->summarized);
}

void expect_same_read(std::string const& data) {
    EXPECT_EQ(described(oc::parse_event(data)), described(oc::parse_event_tree(data))) << data;
}

// The marks of a turn's diff summary (opencode.cpp turn_marks), as the real server sent them
// in the edit_diff capture: the user message without and with summary.diffs, an assistant
// message with time.completed, a patch part.
TEST(opencode_summary_event, the_marks_of_a_diff_summary) {
    auto created = oc::parse_event(message_updated);
    ASSERT_TRUE(created.has_value());
    EXPECT_EQ(created->message_id, "msg_23daed1d70013POOdaDVv10FE2");
    EXPECT_FALSE(created->summarized);
    auto summarized = oc::parse_event(
        R"({"directory":"/p","payload":{"type":"message.updated","properties":{"sessionID":"ses_1",)"
        R"("info":{"id":"msg_u","role":"user","sessionID":"ses_1","time":{"created":1},)"
        R"("summary":{"diffs":[{"file":"README.md","patch":"Index: README.md\n","additions":1,)"
        R"("deletions":0,"status":"modified"}]}}}}})");
    ASSERT_TRUE(summarized.has_value());
    EXPECT_EQ(summarized->what, kind::user_message);
    EXPECT_EQ(summarized->message_id, "msg_u");
    EXPECT_TRUE(summarized->summarized);
    auto completed = oc::parse_event(
        R"({"type":"message.updated","properties":{"sessionID":"ses_1","info":{"id":"msg_a",)"
        R"("role":"assistant","sessionID":"ses_1","time":{"created":1,"completed":2},)"
        R"("finish":"stop"}}})");
    ASSERT_TRUE(completed.has_value());
    EXPECT_EQ(completed->what, kind::usage);
    EXPECT_TRUE(completed->completed);
    auto patch = oc::parse_event(
        R"({"type":"message.part.updated","properties":{"sessionID":"ses_1","part":{"id":"prt_p",)"
        R"("messageID":"msg_a","sessionID":"ses_1","type":"patch","hash":"abc",)"
        R"("files":["/p/README.md"]}}})");
    ASSERT_TRUE(patch.has_value());
    EXPECT_EQ(patch->what, kind::part_updated);
    EXPECT_EQ(patch->part_type, "patch");
    // Only the right types count: a summary whose diffs are not a list, a completed time that
    // is not a number, a repeated key whose last value does not fit.
    for (std::string const& frame : {
             std::string(R"({"type":"message.updated","properties":{"info":{"id":"msg_u",)"
                         R"("role":"user","sessionID":"ses_1","summary":{"diffs":{}}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"id":"msg_u",)"
                         R"("role":"user","sessionID":"ses_1","summary":{"diffs":[]},)"
                         R"("summary":{"title":"x"}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"id":"msg_a",)"
                         R"("role":"assistant","sessionID":"ses_1","time":{"completed":"2"}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"id":"msg_a",)"
                         R"("role":"assistant","sessionID":"ses_1","time":{"completed":2},)"
                         R"("time":{"created":1}}}})"),
         }) {
        auto e = oc::parse_event(frame);
        ASSERT_TRUE(e.has_value()) << frame;
        EXPECT_FALSE(e->summarized || e->completed) << frame;
        expect_same_read(frame);
    }
}

// The one-pass scan and the tree read agree on every frame a real opencode 1.18.33 sent in the
// e2e captures, in both forms, and most of those frames never need the tree.
TEST(opencode_event_scan, agrees_with_the_tree_on_every_captured_frame) {
    std::size_t frames = 0, scanned = 0;
    for (auto const& file : std::filesystem::directory_iterator(CAPTURED_DIR)) {
        if (file.path().extension() != ".jsonl") continue;
        std::ifstream in(file.path());
        std::string line;
        while (std::getline(in, line)) {
            boost::system::error_code ec;
            auto parsed = boost::json::parse(line, ec);
            if (ec) continue;  // a capture's last line, cut off when its server stopped
            auto const& record = parsed.as_object();
            if (record.at("kind").as_string() != "event") continue;
            auto frame = boost::json::serialize(record.at("frame"));
            std::vector<std::string> forms{frame};
            if (record.at("frame").as_object().contains("payload")) forms.push_back(bare(frame));
            for (auto const& data : forms) {
                expect_same_read(data);
                ++frames;
                auto s = oc::scan_event(data);
                ASSERT_TRUE(s) << data;
                auto const& type = s->event.type;
                if (type == "message.part.delta" || type == "session.idle" ||
                    type == "session.status")
                    ++scanned;
            }
        }
    }
    EXPECT_GT(frames, 1000u);
    EXPECT_GT(scanned * 4, frames);  // deltas and status changes: the bulk of a stream
}

TEST(opencode_event_scan, agrees_with_the_tree_on_odd_and_hostile_frames) {
    std::string deep = R"({"type":"session.idle","properties":{"sessionID":"ses_1","x":)";
    for (int i = 0; i < 70; ++i) deep += "[";
    for (int i = 0; i < 70; ++i) deep += "]";
    deep += "}}";
    for (std::string const& data : {
             std::string(
                 R"({"type":"message.part.delta","properties":{"sessionID":"ses_1",)"
                 R"("partID":"prt_1","field":"text","delta":"a\"b\\c\u00e9\n\ud83d\ude00"}})"),
             std::string(R"({"properties":{"sessionID":"ses_1"},"type":"session.idle"})"),
             // Keys with escapes reach the scan in pieces.
             std::string(R"({"typ\u0065":"session.idle","properties":{"session\u0049D":)"
                         R"("ses_\u0031","x\"y":"z"}})"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1"},)"
                         R"("properties":{"sessionID":"ses_2"}})"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1",)"
                         R"("sessionID":7}})"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1"},)"
                         R"("properties":[]})"),
             std::string(R"({"directory":"/d","payload":{"type":"session.idle","properties":)"
                         R"({"sessionID":"ses_1"}},"payload":7,"type":"session.idle",)"
                         R"("properties":{"sessionID":"ses_2"}})"),
             std::string(R"({"directory":"/d","payload":7,"type":"session.idle",)"
                         R"("properties":{"sessionID":"ses_2"}})"),
             std::string(R"({"directory":{"x":"/d"},"payload":{"type":"session.idle",)"
                         R"("properties":{"sessionID":"ses_1"}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"sessionID":"ses_3",)"
                         R"("role":"user","id":"msg_1"}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"sessionID":"ses_3",)"
                         R"("role":"assistant","id":"msg_1","tokens":{"input":5}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":"ses_3"}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"sessionID":"ses_3",)"
                         R"("role":"assistant","id":"msg_1","cost":0.25,"tokens":{"input":7,)"
                         R"("output":2.9,"reasoning":18446744073709551615},"tokens":{"input":-4,)"
                         R"("output":3,"reasoning":"9"},"cost":"1"}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"sessionID":"ses_3",)"
                         R"("role":"assistant","id":"msg_1","cost":1.5e-3,"tokens":{"input":)"
                         R"(12345678901,"output":5,"reasoning":2,"cache":{"read":9}}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"sessionID":"ses_3",)"
                         R"("role":"assistant","id":"","tokens":{"input":1}}}})"),
             std::string(R"({"type":"message.updated","properties":{"info":{"role":"assistant",)"
                         R"("id":"msg_1","tokens":[1,2],"cost":-2}}})"),
             std::string(R"({"type":"session.status","properties":{"sessionID":"ses_1",)"
                         R"("status":{"type":"busy"},"status":{"type":"retry"}}})"),
             std::string(R"({"type":"session.status","properties":{"sessionID":"ses_1",)"
                         R"("status":"busy"}})"),
             std::string(R"({"type":"message.part.updated","properties":{"part":{"id":"prt_1",)"
                         R"("sessionID":"ses_1","type":"reasoning","type":"text"}}})"),
             std::string(R"({"type":"message.part.updated","properties":{"part":{"id":"prt_1",)"
                         R"("sessionID":"ses_1","type":"text"},"part":null}})"),
             std::string(R"({"type":"message.part.delta","properties":{"sessionID":"ses_1",)"
                         R"("field":"reasoning","delta":"x"}})"),
             std::string(R"({"type":"message.part.delta","properties":{"sessionID":"ses_1"}})"),
             std::string(R"({"type":"message.part.delta","properties":{"field":"text"}})"),
             std::string(R"({"type":"server.heartbeat","properties":{}})"),
             std::string(R"({"type":7,"properties":{"sessionID":"ses_1"}})"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1"}}  )"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1"}} x)"),
             std::string(R"({"type":"session.idle","properties":{"sessionID":"ses_1"})"),
             std::string(R"([{"type":"session.idle","properties":{"sessionID":"ses_1"}}])"),
             std::string(R"("session.idle")"),
             std::string(),
             deep,
         })
        expect_same_read(data);
}

TEST(opencode_pending, lists_keep_the_sessions_requests) {
    // GET /permission as captured, plus another session's and a broken entry.
    auto perms = oc::parse_pending(
        200,
        R"([{"id":"per_23dae86de001gc0Z95IKN26w5T","sessionID":"ses_dc251a539ffesp6YqswKjvhkcn","permission":"bash","patterns":["echo permitted"],"metadata":{"command":"echo permitted"},"always":["echo *"],"tool":{"messageID":"msg_23dae66e4001udrtLLt0HlRxG0","callID":"call_84e8da279ca1"}},
            {"id":"per_other","sessionID":"ses_other","permission":"edit","patterns":[]},
            {"id":"../x","sessionID":"ses_dc251a539ffesp6YqswKjvhkcn"}, 5, null])",
        request_kind::permission, "ses_dc251a539ffesp6YqswKjvhkcn");
    ASSERT_TRUE(perms.has_value());
    ASSERT_EQ(perms->size(), 1u);
    EXPECT_EQ((*perms)[0].id, "per_23dae86de001gc0Z95IKN26w5T");
    EXPECT_EQ((*perms)[0].kind, request_kind::permission);
    EXPECT_EQ((*perms)[0].permission, "bash");
    EXPECT_EQ((*perms)[0].patterns, std::vector<std::string>{"echo permitted"});

    auto qs = oc::parse_pending(
        200,
        R"([{"id":"que_23daebb20001t0AAXmlmpIen3P","sessionID":"ses_dc25147ddffeQS6TVF0Pk6jsyk","questions":[{"question":"Which colour?","header":"Colour","options":[{"label":"red","description":"Answer red"},{"label":"blue","description":"Answer blue"}]}],"tool":{"messageID":"msg_23daeb9100016QyAYXJru8XEIm","callID":"call_bab5918503cf"}}])",
        request_kind::question, "ses_dc25147ddffeQS6TVF0Pk6jsyk");
    ASSERT_TRUE(qs.has_value());
    ASSERT_EQ(qs->size(), 1u);
    EXPECT_EQ((*qs)[0].kind, request_kind::question);
    ASSERT_EQ((*qs)[0].questions.size(), 1u);
    EXPECT_EQ((*qs)[0].questions[0].header, "Colour");
    EXPECT_TRUE((*qs)[0].questions[0].custom);

    auto none = oc::parse_pending(200, "[]", request_kind::question, "ses_1");
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(none->empty());
    auto bad = oc::parse_pending(200, "{}", request_kind::permission, "ses_1");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().kind, protocol::error_kind::protocol);
    auto failed = oc::parse_pending(500, "", request_kind::permission, "ses_1");
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().http_status, 500);
}

TEST(opencode_reply, bodies_of_each_answer) {
    request_reply r;
    r.request_id = "per_1";
    r.kind = request_kind::permission;
    r.how = decision::allow;
    EXPECT_EQ(oc::reply_body(r), R"({"reply":"once"})");
    r.how = decision::allow_always;
    EXPECT_EQ(oc::reply_body(r), R"({"reply":"always"})");
    r.how = decision::deny;
    EXPECT_EQ(oc::reply_body(r), R"({"reply":"reject"})") << "no message: none sent";
    r.message = "not on my machine";
    EXPECT_EQ(oc::reply_body(r), R"({"reply":"reject","message":"not on my machine"})");
    r.how = decision::allow;
    EXPECT_EQ(oc::reply_body(r), R"({"reply":"once"})") << "a message only with reject";
    r.how = decision::answer;
    EXPECT_FALSE(oc::reply_body(r));

    request_reply q;
    q.request_id = "que_1";
    q.kind = request_kind::question;
    q.how = decision::answer;
    q.answers = {{"red"}, {"a", "b \"quoted\""}, {}};
    EXPECT_EQ(oc::reply_body(q), R"({"answers":[["red"],["a","b \"quoted\""],[]]})");
    q.how = decision::deny;
    EXPECT_EQ(oc::reply_body(q), "{}");
    q.how = decision::allow;
    EXPECT_FALSE(oc::reply_body(q));
}

TEST(opencode_reply, request_ids_safe_for_a_path) {
    EXPECT_TRUE(oc::valid_request_id("per_23daeaf96001gKRbJCcwMMZAib", request_kind::permission));
    EXPECT_TRUE(oc::valid_request_id("que_23daec446001rzoyhzhDqP7UBB", request_kind::question));
    EXPECT_FALSE(oc::valid_request_id("que_23daec446001rzoyhzhDqP7UBB", request_kind::permission));
    EXPECT_FALSE(oc::valid_request_id("per_", request_kind::permission));
    EXPECT_FALSE(oc::valid_request_id("per_a/b", request_kind::permission));
    EXPECT_FALSE(oc::valid_request_id("per_a?x=1", request_kind::permission));
    EXPECT_FALSE(oc::valid_request_id("per_" + std::string(253, 'a'), request_kind::permission));
    EXPECT_TRUE(oc::valid_request_id("per_" + std::string(252, 'a'), request_kind::permission));
}

TEST(opencode_http_error, each_error_body_shape) {
    using protocol::error_phase;
    auto tagged = oc::http_error(
        error_phase::prompt, 404,
        R"({"_tag":"PermissionNotFoundError","requestID":"per_23dae86de001gc0Z95IKN26w5T","message":"Permission request not found: per_23dae86de001gc0Z95IKN26w5T"})");
    EXPECT_EQ(tagged.kind, protocol::error_kind::upstream);
    EXPECT_EQ(tagged.http_status, 404);
    EXPECT_TRUE(
        contains(tagged.message, "Permission request not found: per_23dae86de001gc0Z95IKN26w5T"))
        << tagged.message;

    auto named = oc::http_error(
        error_phase::prompt, 400,
        R"({"name":"BadRequest","data":{"message":"Expected \"once\" | \"always\" | \"reject\", got \"maybe\"\n  at [\"reply\"]","kind":"Payload"}})");
    EXPECT_EQ(named.http_status, 400);
    EXPECT_TRUE(contains(named.message, "Expected \"once\"")) << named.message;

    auto invalid = oc::http_error(error_phase::prompt, 400,
                                  R"({"_tag":"InvalidRequestError","message":"bad answers"})");
    EXPECT_TRUE(contains(invalid.message, "bad answers")) << invalid.message;

    auto tag_only = oc::http_error(error_phase::create, 400, R"({"_tag":"BadRequest"})");
    EXPECT_TRUE(contains(tag_only.message, "BadRequest")) << tag_only.message;

    auto name_only = oc::http_error(error_phase::create, 400, R"({"name":"BadRequest","data":{}})");
    EXPECT_TRUE(contains(name_only.message, "BadRequest")) << name_only.message;

    auto wrong_types =
        oc::http_error(error_phase::create, 500, R"({"message":5,"data":"x","_tag":null})");
    EXPECT_EQ(wrong_types.message, "upstream answered HTTP 500");

    auto status_line = oc::http_error(error_phase::abort, 503, "");
    EXPECT_EQ(status_line.message, "upstream answered HTTP 503");
    EXPECT_EQ(status_line.phase, error_phase::abort);
}

// A local server that answers each request with the next scripted reply (Connection: close)
// and records what it was asked; it stops after the script.
struct scripted_server {
    struct reply {
        unsigned status;
        std::string body;
    };
    struct seen {
        std::string method, target, body;
    };
    boost::asio::ip::tcp::acceptor acceptor;
    std::vector<reply> script;
    std::vector<seen> requests;

    scripted_server(boost::asio::io_context& ioc, std::vector<reply> replies)
        : acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}),
          script(std::move(replies)) {}

    common::url url() const {
        return *common::parse_url("http://127.0.0.1:" +
                                  std::to_string(acceptor.local_endpoint().port()))
                    .value;
    }

    boost::asio::awaitable<void> serve() {
        namespace http = boost::beast::http;
        for (auto const& r : script) {
            auto sock = co_await acceptor.async_accept(boost::asio::use_awaitable);
            boost::beast::flat_buffer buf;
            http::request<http::string_body> req;
            co_await http::async_read(sock, buf, req, boost::asio::use_awaitable);
            requests.push_back(
                {std::string(req.method_string()), std::string(req.target()), req.body()});
            http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
            res.set(http::field::content_type, "application/json");
            res.body() = r.body;
            res.keep_alive(false);
            res.prepare_payload();
            co_await http::async_write(sock, res, boost::asio::use_awaitable);
            boost::system::error_code ec;
            sock.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        }
        acceptor.close();
    }
};

class opencode_requests : public test::io_fixture {
  protected:
    std::unique_ptr<backend> make(scripted_server& server) {
        boost::asio::co_spawn(ioc_, server.serve(), boost::asio::detached);
        opencode_config cfg;
        cfg.target = server.url();
        cfg.request_timeout = std::chrono::seconds(5);
        return make_opencode_backend(ioc_.get_executor(), cfg);
    }
};

TEST_F(opencode_requests, respond_posts_each_reply_with_the_directory) {
    scripted_server server(ioc_, {{200, "true"}, {200, "true"}, {200, "true"}, {200, "true"}});
    auto be = make(server);
    auto results = run([&]() -> boost::asio::awaitable<std::vector<bool>> {
        std::vector<bool> ok;
        request_reply allow{"per_1", request_kind::permission, decision::allow, {}, {}};
        ok.push_back((co_await be->respond("ses_1", std::string("/tmp/a b"), allow)).has_value());
        request_reply deny{"per_2", request_kind::permission, decision::deny, "no", {}};
        ok.push_back((co_await be->respond("ses_1", std::nullopt, deny)).has_value());
        request_reply answer{"que_1", request_kind::question, decision::answer, {}, {{"red"}}};
        ok.push_back((co_await be->respond("ses_1", std::string("/w"), answer)).has_value());
        request_reply reject{"que_2", request_kind::question, decision::deny, {}, {}};
        ok.push_back((co_await be->respond("ses_1", std::string("/w"), reject)).has_value());
        be->stop();
        co_return ok;
    }());
    EXPECT_EQ(results, (std::vector<bool>{true, true, true, true}));
    ASSERT_EQ(server.requests.size(), 4u);
    EXPECT_EQ(server.requests[0].method, "POST");
    EXPECT_EQ(server.requests[0].target, "/permission/per_1/reply?directory=/tmp/a%20b");
    EXPECT_EQ(server.requests[0].body, R"({"reply":"once"})");
    EXPECT_EQ(server.requests[1].target, "/permission/per_2/reply");
    EXPECT_EQ(server.requests[1].body, R"({"reply":"reject","message":"no"})");
    EXPECT_EQ(server.requests[2].target, "/question/que_1/reply?directory=/w");
    EXPECT_EQ(server.requests[2].body, R"({"answers":[["red"]]})");
    EXPECT_EQ(server.requests[3].target, "/question/que_2/reject?directory=/w");
}

TEST_F(opencode_requests, respond_failures) {
    scripted_server server(ioc_,
                           {{404, R"({"_tag":"PermissionNotFoundError","requestID":"per_1",)"
                                  R"("message":"Permission request not found: per_1"})"},
                            {400, R"({"name":"BadRequest","data":{"message":"Expected once"}})"}});
    auto be = make(server);
    auto errors = run([&]() -> boost::asio::awaitable<std::vector<upstream_error>> {
        std::vector<upstream_error> out;
        request_reply r{"per_1", request_kind::permission, decision::allow, {}, {}};
        out.push_back((co_await be->respond("ses_1", std::nullopt, r)).error());
        out.push_back((co_await be->respond("ses_1", std::nullopt, r)).error());
        r.request_id = "per_../../session";  // never reaches the server
        out.push_back((co_await be->respond("ses_1", std::nullopt, r)).error());
        r.request_id = "per_1";
        r.how = decision::answer;
        out.push_back((co_await be->respond("ses_1", std::nullopt, r)).error());
        be->stop();
        co_return out;
    }());
    ASSERT_EQ(errors.size(), 4u);
    EXPECT_EQ(errors[0].kind, protocol::error_kind::upstream);
    EXPECT_EQ(errors[0].http_status, 404);
    EXPECT_TRUE(contains(errors[0].message, "Permission request not found: per_1"))
        << errors[0].message;
    EXPECT_EQ(errors[1].http_status, 400);
    EXPECT_TRUE(contains(errors[1].message, "Expected once")) << errors[1].message;
    EXPECT_EQ(errors[2].kind, protocol::error_kind::protocol);
    EXPECT_EQ(errors[3].kind, protocol::error_kind::protocol);
    EXPECT_EQ(server.requests.size(), 2u);
}

TEST_F(opencode_requests, pending_requests_reads_both_lists) {
    scripted_server server(
        ioc_, {{200, R"([{"id":"per_1","sessionID":"ses_1","permission":"bash","patterns":["ls"]},
                   {"id":"per_2","sessionID":"ses_2","permission":"bash","patterns":[]}])"},
               {200, R"([{"id":"que_1","sessionID":"ses_1","questions":[{"question":"q?",
                   "options":[{"label":"a","description":"A"}]}]}])"},
               {200, "[]"},
               {404, R"({"name":"NotFoundError","data":{"message":"no route"}})"},
               {500, "oops"}});
    auto be = make(server);
    using list = up_result<std::vector<protocol::pending_request>>;
    auto got = run([&]() -> boost::asio::awaitable<std::vector<list>> {
        std::vector<list> out;
        out.push_back(co_await be->pending_requests("ses_1", std::string("/d")));
        out.push_back(co_await be->pending_requests("ses_1", std::nullopt));  // [] and 404
        out.push_back(co_await be->pending_requests("ses_1", std::nullopt));  // 500
        be->stop();
        co_return out;
    }());
    ASSERT_EQ(got.size(), 3u);
    ASSERT_TRUE(got[0].has_value());
    ASSERT_EQ(got[0]->size(), 2u);
    EXPECT_EQ((*got[0])[0].id, "per_1");
    EXPECT_EQ((*got[0])[0].patterns, std::vector<std::string>{"ls"});
    EXPECT_EQ((*got[0])[1].id, "que_1");
    EXPECT_EQ((*got[0])[1].questions.at(0).options.at(0).label, "a");
    ASSERT_TRUE(got[1].has_value()) << "a server without /question has none pending";
    EXPECT_TRUE(got[1]->empty());
    ASSERT_FALSE(got[2].has_value());
    EXPECT_EQ(got[2].error().http_status, 500);
    ASSERT_EQ(server.requests.size(), 5u);
    EXPECT_EQ(server.requests[0].target, "/permission?directory=/d");
    EXPECT_EQ(server.requests[1].target, "/question?directory=/d");
    EXPECT_EQ(server.requests[2].target, "/permission");
    EXPECT_EQ(server.requests[3].target, "/question");
    EXPECT_EQ(server.requests[4].method, "GET");
}

}  // namespace
}  // namespace agentd::jobs::upstream

// --- worktrees and diffs (DESIGN §5), in the shapes tests/e2e/FINDINGS.md records -------------

namespace agentd::jobs::upstream {
namespace {

constexpr std::string_view tree_dir = "/data/opencode/worktree/2a14/quiet-mountain";

TEST(opencode_worktree, ready_and_failed_events_carry_the_frames_directory) {
    auto ready = oc::parse_event(
        R"({"directory":"/data/opencode/worktree/2a14/quiet-mountain","project":"2a14",)"
        R"("payload":{"id":"evt_1","type":"worktree.ready",)"
        R"("properties":{"name":"quiet-mountain","branch":"opencode/quiet-mountain"}}})");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->what, kind::worktree_ready);
    EXPECT_EQ(ready->directory, tree_dir);
    EXPECT_EQ(ready->name, "quiet-mountain");
    EXPECT_EQ(ready->branch, "opencode/quiet-mountain");
    EXPECT_TRUE(ready->session.empty());

    auto failed = oc::parse_event(
        R"({"directory":"/data/opencode/worktree/2a14/quiet-mountain","payload":{"id":"evt_2",)"
        R"("type":"worktree.failed","properties":{"message":"start command failed"}}})");
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->what, kind::worktree_failed);
    EXPECT_EQ(failed->directory, tree_dir);
    EXPECT_EQ(failed->message, "start command failed");
}

TEST(opencode_worktree, events_without_a_directory_are_dropped) {
    // The bare /event form names no directory: it cannot be matched to a worktree.
    EXPECT_FALSE(
        oc::parse_event(R"({"id":"evt_1","type":"worktree.ready","properties":{"name":"x"}})"));
    EXPECT_FALSE(oc::parse_event(
        R"({"directory":"","payload":{"type":"worktree.failed","properties":{"message":"m"}}})"));
    EXPECT_FALSE(oc::parse_event(R"({"directory":"/d","payload":{"type":"worktree.ready"}})"));
}

TEST(opencode_worktree, create_reply_and_its_errors) {
    auto ok =
        oc::parse_worktree(200, R"({"name":"quiet-mountain","branch":"opencode/quiet-mountain",)"
                                R"("directory":"/data/opencode/worktree/2a14/quiet-mountain"})");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->name, "quiet-mountain");
    EXPECT_EQ(ok->ref.directory, tree_dir);
    EXPECT_EQ(ok->ref.branch, "opencode/quiet-mountain");
    auto no_branch = oc::parse_worktree(200, R"({"name":"n","directory":"/w/n"})");
    ASSERT_TRUE(no_branch);
    EXPECT_FALSE(no_branch->ref.branch);

    auto not_git = oc::parse_worktree(
        400, R"({"name":"WorktreeNotGitError","data":{"message":"Worktrees are only supported )"
             R"(for git projects"}})");
    ASSERT_FALSE(not_git);
    EXPECT_EQ(not_git.error().kind, protocol::error_kind::upstream);
    EXPECT_EQ(not_git.error().phase, protocol::error_phase::create);
    EXPECT_EQ(not_git.error().http_status, 400);
    EXPECT_TRUE(contains(not_git.error().message, "Worktrees are only supported for git projects"))
        << not_git.error().message;

    for (auto bad :
         {"", "[]", R"({"name":"n"})", R"({"directory":"relative/dir"})", R"({"directory":5})"}) {
        auto r = oc::parse_worktree(200, bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().kind, protocol::error_kind::protocol) << bad;
        EXPECT_EQ(r.error().phase, protocol::error_phase::create) << bad;
    }
}

TEST(opencode_worktree, diff_reply_is_read_and_hostile_entries_are_tamed) {
    auto d = oc::parse_diff(
        200, R"([{"file":"a.txt","patch":"Index: a.txt\n-two\n+three\n","additions":1,)"
             R"("deletions":1,"status":"modified"},{"file":"n.txt","additions":3,"deletions":0,)"
             R"("status":"added"},{"file":"x","additions":-4,"deletions":1e300,"status":"moved"},)"
             R"({"additions":1},7])");
    ASSERT_TRUE(d);
    ASSERT_EQ(d->size(), 3u);
    EXPECT_EQ((*d)[0].file, "a.txt");
    EXPECT_EQ((*d)[0].status, "modified");
    EXPECT_EQ((*d)[0].patch, "Index: a.txt\n-two\n+three\n");
    EXPECT_EQ((*d)[1].status, "added");
    EXPECT_EQ((*d)[1].additions, 3);
    EXPECT_EQ((*d)[1].patch, "");
    EXPECT_EQ((*d)[2].status, "modified");    // an unknown word
    EXPECT_EQ((*d)[2].additions, 0);          // never negative
    EXPECT_EQ((*d)[2].deletions, 1LL << 40);  // capped
    EXPECT_EQ(protocol::summarize(*d), (protocol::diff_summary{3, 4, 1 + (1LL << 40)}));

    EXPECT_TRUE(oc::parse_diff(200, "[]")->empty());
    EXPECT_EQ(oc::parse_diff(200, "{}").error().kind, protocol::error_kind::protocol);
    EXPECT_EQ(oc::parse_diff(400, R"({"name":"BadRequest"})").error().http_status, 400);
}

TEST(opencode_worktree, the_prompts_user_message_and_the_latest_one) {
    auto out = oc::parse_prompt(
        200, R"({"info":{"id":"msg_b","parentID":"msg_a","role":"assistant"},"parts":[]})", 100);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->user_message_id, "msg_a");
    EXPECT_EQ(out->message_id, "msg_b");
    EXPECT_FALSE(out->files_changed);  // the reply alone cannot tell about earlier steps
    // A final step that changed files shows its patch part in the reply.
    auto patched = oc::parse_prompt(
        200,
        R"({"info":{"id":"msg_b","parentID":"msg_a","role":"assistant"},"parts":[)"
        R"({"type":"step-start"},{"type":"tool","tool":"edit"},{"type":"step-finish"},)"
        R"({"type":"patch","hash":"abc","files":["/p/a.txt"]}]})",
        100);
    ASSERT_TRUE(patched);
    EXPECT_EQ(patched->files_changed, true);

    auto latest = oc::parse_latest_user_message(
        200, R"([{"info":{"id":"msg_1","role":"user"},"parts":[]},)"
             R"({"info":{"id":"msg_2","role":"assistant"},"parts":[]},)"
             R"({"info":{"id":"msg_3","role":"user"},"parts":[]},)"
             R"({"info":{"id":"msg_4","role":"assistant"},"parts":[]}])");
    ASSERT_TRUE(latest);
    EXPECT_EQ(*latest, "msg_3");
    EXPECT_EQ(*oc::parse_latest_user_message(200, "[]"), "");
    EXPECT_FALSE(oc::parse_latest_user_message(200, "{}"));

    EXPECT_TRUE(oc::valid_message_id("msg_23daf1978001dLmoLYqyLLY1Mk"));
    for (auto bad : {"", "msg", "ses_1", "msg_1&directory=/", "msg_1/../x", "msg 1"})
        EXPECT_FALSE(oc::valid_message_id(bad)) << bad;
}

}  // namespace
}  // namespace agentd::jobs::upstream
