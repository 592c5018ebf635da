// Unit tests of the pure parts of the jobs layer: the lifecycle table (every state x event), the
// owner-scoped registry (isolation, newest-first listing, upstream index), the SSE parser (line
// endings, arbitrary chunking, multi-line data, size bound) and the OpenCode response and event
// parsers (success, HTTP errors, info.error, truncation, malformed bodies).
#include "jobs/job.hpp"
#include "jobs/lifecycle.hpp"
#include "jobs/registry.hpp"
#include "jobs/upstream/opencode_parse.hpp"
#include "jobs/upstream/sse.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace agentd::jobs {
namespace {

using protocol::error_kind;
using protocol::error_phase;
using protocol::job_state;

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

constexpr std::array all_states{job_state::queued,     job_state::running, job_state::waiting,
                                job_state::completed,  job_state::failed,  job_state::cancelled,
                                job_state::interrupted};
constexpr std::array all_events{job_event::admit,    job_event::ask,  job_event::resume,
                                job_event::complete, job_event::fail, job_event::cancel,
                                job_event::interrupt};

TEST(lifecycle, every_state_and_event) {
    using S = job_state;
    using E = job_event;
    std::map<std::pair<S, E>, S> const allowed{
        {{S::queued, E::admit}, S::running},         {{S::queued, E::cancel}, S::cancelled},
        {{S::queued, E::interrupt}, S::interrupted}, {{S::queued, E::fail}, S::failed},
        {{S::running, E::complete}, S::completed},   {{S::running, E::fail}, S::failed},
        {{S::running, E::cancel}, S::cancelled},     {{S::running, E::interrupt}, S::interrupted},
        {{S::running, E::ask}, S::waiting},          {{S::waiting, E::resume}, S::running},
        {{S::waiting, E::complete}, S::completed},   {{S::waiting, E::fail}, S::failed},
        {{S::waiting, E::cancel}, S::cancelled},     {{S::waiting, E::interrupt}, S::interrupted},
    };
    int checked = 0;
    for (auto s : all_states) {
        for (auto e : all_events) {
            auto next = next_state(s, e);
            auto it = allowed.find({s, e});
            if (it == allowed.end()) {
                EXPECT_FALSE(next.has_value())
                    << protocol::to_string(s) << " + event " << static_cast<int>(e);
            } else {
                ASSERT_TRUE(next.has_value())
                    << protocol::to_string(s) << " + event " << static_cast<int>(e);
                EXPECT_EQ(*next, it->second)
                    << protocol::to_string(s) << " + event " << static_cast<int>(e);
            }
            ++checked;
        }
    }
    EXPECT_EQ(checked, 49);
}

TEST(lifecycle, a_queued_job_whose_deadline_passes_fails_without_running) {
    EXPECT_EQ(next_state(job_state::queued, job_event::fail), job_state::failed);
    EXPECT_FALSE(next_state(job_state::queued, job_event::complete));
}

TEST(lifecycle, a_waiting_job_is_neither_asked_again_nor_admitted) {
    EXPECT_FALSE(next_state(job_state::waiting, job_event::ask));
    EXPECT_FALSE(next_state(job_state::waiting, job_event::admit));
    EXPECT_FALSE(next_state(job_state::running, job_event::resume));
    EXPECT_FALSE(protocol::is_terminal(job_state::waiting));
    EXPECT_TRUE(protocol::is_active(job_state::waiting));
}

TEST(lifecycle, terminal_states_are_final) {
    for (auto s : all_states) {
        if (!protocol::is_terminal(s)) continue;
        for (auto e : all_events) EXPECT_FALSE(next_state(s, e)) << protocol::to_string(s);
    }
}

// ---------------------------------------------------------------------------------------------
// Task preview and what a finished job keeps
// ---------------------------------------------------------------------------------------------

TEST(task_preview, cuts_the_prompt_at_200_characters_not_bytes) {
    protocol::task t;
    std::string e_acute = "\xC3\xA9";  // one character, two bytes
    for (int i = 0; i < 300; ++i) t.prompt += e_acute;
    t.agent = "plan";
    t.directory = "/src";
    t.system = "secret system text";
    auto p = preview_of(t);
    EXPECT_EQ(p.prompt.size(), 400u);
    EXPECT_EQ(p.agent, "plan");
    EXPECT_FALSE(p.model.has_value());

    protocol::job_view v;
    v.task = p;
    auto j = protocol::to_json(v, {}).as_object();
    auto const& task = j.at("task").as_object();
    EXPECT_EQ(task.at("prompt").as_string().size(), 400u);
    EXPECT_EQ(task.at("directory"), "/src");
    EXPECT_FALSE(task.contains("system"));
    EXPECT_FALSE(task.contains("model"));

    t.prompt = "short";
    EXPECT_EQ(preview_of(t).prompt, "short");
}

TEST(task_preview, a_finished_job_keeps_the_preview_and_its_session_only) {
    job j;
    j.task.prompt = std::string(120 * 1024, 'p');
    j.task.system = "system";
    j.task.directory = "/src";
    j.runtime_mut().partial = std::string(1 << 20, 'x');
    j.runtime_mut().upstream_server = "http://127.0.0.1:4096";
    j.view.upstream = protocol::upstream_ref{"opencode", "ses_1"};
    compact_finished(j);
    EXPECT_EQ(j.task.prompt, std::string(200, 'p'));
    EXPECT_FALSE(j.task.system.has_value());
    EXPECT_EQ(j.task.directory, "/src");
    ASSERT_TRUE(j.has_runtime());
    EXPECT_TRUE(j.runtime().partial.empty());
    EXPECT_EQ(j.runtime().partial.capacity(), std::string().capacity()) << "the memory is released";
    EXPECT_EQ(j.view.upstream->session, "ses_1");  // what `continue` needs
    EXPECT_EQ(j.runtime().upstream_server, "http://127.0.0.1:4096");
}

TEST(job_runtime, a_queued_job_has_none_and_a_finished_one_keeps_it_only_when_it_holds_something) {
    job queued;
    EXPECT_FALSE(queued.has_runtime());
    EXPECT_TRUE(queued.runtime().upstream_server.empty()) << "read without allocating";
    EXPECT_FALSE(queued.has_runtime());
    queued.set_runtime(&job::runtime_state::holder, "");
    EXPECT_FALSE(queued.has_runtime()) << "an empty value allocates nothing";
    compact_finished(queued);  // cancelled while queued
    EXPECT_FALSE(queued.has_runtime());

    job streamed;  // ran, streamed text, but has nothing `continue` or peek needs afterwards
    streamed.runtime_mut().partial = "partial text";
    compact_finished(streamed);
    EXPECT_FALSE(streamed.has_runtime());

    job stopping;  // cancelled while its call runs: the run still reads the call's stop reason
    stopping.runtime_mut().control =
        std::make_unique<upstream::call_control>(std::chrono::steady_clock::now());
    compact_finished(stopping);
    ASSERT_TRUE(stopping.has_runtime());
    EXPECT_TRUE(stopping.runtime().control);

    job mirrored;
    mirrored.set_runtime(&job::runtime_state::holder, "there");
    ASSERT_TRUE(mirrored.has_runtime());
    compact_finished(mirrored);
    EXPECT_EQ(mirrored.runtime().holder, "there") << "a finished mirror keeps its holder";
    job row;
    row.runtime_mut().user_message = "msg_1";
    mirrored.take_runtime(row);
    EXPECT_EQ(mirrored.runtime().user_message, "msg_1");
    EXPECT_TRUE(mirrored.runtime().holder.empty()) << "taken whole";
    EXPECT_FALSE(row.has_runtime());
}

// A job shows its last steps_kept tool steps, oldest first; the older ones hold no text and are
// erased a slack at a time, and a finished job keeps only the window.
TEST(tool_steps, the_last_steps_are_kept_in_order_and_older_ones_dropped) {
    job j;
    auto& a = j.agentic_mut();
    auto const total = job::steps_kept + job::agentic_state::steps_slack + 7;
    for (std::size_t i = 0; i < total; ++i) {
        auto& s = a.add_step({"call_" + std::to_string(i),
                              "bash",
                              protocol::step_status::running,
                              "title",
                              {},
                              {},
                              std::string(2048, 'o')});
        EXPECT_EQ(s.call_id, "call_" + std::to_string(i));
        EXPECT_LE(a.steps.size(), job::steps_kept + job::agentic_state::steps_slack);
        auto kept = a.kept_steps();
        ASSERT_EQ(kept.size(), std::min(i + 1, job::steps_kept));
        EXPECT_EQ(kept.back().call_id, s.call_id);
        EXPECT_EQ(kept.front().call_id,
                  "call_" + std::to_string(i + 1 - kept.size()));  // oldest first, none skipped
        for (auto const& k : kept) EXPECT_EQ(k.output_tail.size(), 2048u);
        for (std::size_t d = 0; d + kept.size() < a.steps.size(); ++d)
            EXPECT_TRUE(a.steps[d].output_tail.empty()) << "a step out of the window keeps no text";
    }
    j.view.state = protocol::job_state::completed;
    compact_finished(j);
    ASSERT_TRUE(j.has_agentic());
    ASSERT_EQ(j.agentic().steps.size(), job::steps_kept);
    EXPECT_EQ(j.agentic().steps.front().call_id, "call_" + std::to_string(total - job::steps_kept));
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

job_ptr make_job(std::string id, owner o, std::uint64_t seq) {
    auto j = std::make_shared<job>();
    j->view.id = std::move(id);
    j->own = std::move(o);
    j->seq = seq;
    return j;
}

// Binds `j` to an upstream session the way the manager does: the view names it, then the index.
void bind_session(registry& r, job_ptr const& j, std::string const& session) {
    j->view.upstream = protocol::upstream_ref{"opencode", session};
    r.bind_upstream(j, session);
}

std::vector<std::string> ids_of(std::vector<job_ptr> const& jobs) {
    std::vector<std::string> out;
    for (auto const& j : jobs) out.push_back(j->view.id);
    return out;
}

owner const alice_a{"alice", "a"};
owner const alice_b{"alice", "b"};
owner const bob_a{"bob", "a"};

TEST(registry, find_is_principal_scoped) {
    registry r;
    auto j = make_job("job_1", alice_a, 0);
    r.insert(j);
    EXPECT_EQ(r.find("alice", "job_1"), j) << "any session of the principal";
    EXPECT_EQ(r.find("bob", "job_1"), nullptr) << "another principal";
    EXPECT_EQ(r.find("alic", "job_1"), nullptr);
    EXPECT_EQ(r.find("alice", "job_2"), nullptr);
    EXPECT_EQ(r.size(), 1u);
}

TEST(registry, owner_parts_do_not_run_together) {
    registry r;
    r.insert(make_job("job_1", owner{"ab", "c"}, 0));
    EXPECT_EQ(r.find("a", "job_1"), nullptr);
    EXPECT_TRUE(r.list(owner{"a", "bc"}).empty());
    EXPECT_EQ(r.list(owner{"ab", "c"}).size(), 1u);
}

TEST(registry, list_is_newest_first_and_per_owner) {
    registry r;
    r.insert(make_job("j0", alice_a, 0));
    r.insert(make_job("j1", alice_b, 1));
    r.insert(make_job("j2", alice_a, 2));
    r.insert(make_job("j3", bob_a, 3));
    r.insert(make_job("j4", alice_a, 4));
    EXPECT_EQ(ids_of(r.list(alice_a)), (std::vector<std::string>{"j4", "j2", "j0"}));
    EXPECT_EQ(ids_of(r.list(alice_b)), (std::vector<std::string>{"j1"}));
    EXPECT_EQ(ids_of(r.list(bob_a)), (std::vector<std::string>{"j3"}));
    EXPECT_TRUE(r.list(owner{"carol", "a"}).empty());
    EXPECT_EQ(r.size(), 5u);
}

// Instances sharing a store number their jobs apart by time, but two may still collide: both
// jobs are listed, and erasing one leaves the other.
TEST(registry, jobs_with_the_same_seq_are_both_kept) {
    registry r;
    auto a = make_job("ja", alice_a, 7);
    auto b = make_job("jb", alice_a, 7);
    r.insert(a);
    r.insert(b);
    EXPECT_EQ(r.list(alice_a).size(), 2u);
    EXPECT_EQ(r.find_any("jb"), b);
    EXPECT_EQ(r.find_any("nope"), nullptr);
    r.erase("jb");
    EXPECT_EQ(ids_of(r.list(alice_a)), std::vector<std::string>{"ja"});
    EXPECT_EQ(b.use_count(), 1) << "the registry still holds the erased job somewhere";
    r.erase("ja");
    EXPECT_TRUE(r.list(alice_a).empty());
}

TEST(registry, erase_removes_from_every_index) {
    registry r;
    auto j0 = make_job("j0", alice_a, 0);
    auto j1 = make_job("j1", alice_a, 1);
    r.insert(j0);
    r.insert(j1);
    bind_session(r, j0, "ses_0");
    bind_session(r, j1, "ses_1");
    EXPECT_EQ(r.find_by_upstream("ses_0"), j0);

    r.erase("j0");
    EXPECT_EQ(r.find("alice", "j0"), nullptr);
    EXPECT_EQ(ids_of(r.list(alice_a)), std::vector<std::string>{"j1"});
    EXPECT_EQ(r.find_by_upstream("ses_0"), nullptr);
    EXPECT_EQ(r.find_by_upstream("alice", "ses_0"), nullptr);
    EXPECT_EQ(r.find_by_upstream("ses_1"), j1);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(j0.use_count(), 1) << "the registry still holds the erased job somewhere";

    r.erase("j1");
    EXPECT_TRUE(r.list(alice_a).empty());
    EXPECT_EQ(r.find_by_upstream("ses_1"), nullptr);
    EXPECT_EQ(r.size(), 0u);

    r.erase("j1");  // unknown id: no-op
    r.erase("nope");
    EXPECT_EQ(r.size(), 0u);
}

TEST(registry, erase_keeps_an_upstream_index_rebound_to_another_job) {
    registry r;
    auto old_job = make_job("old", alice_a, 0);
    auto new_job = make_job("new", alice_a, 1);
    r.insert(old_job);
    r.insert(new_job);
    bind_session(r, old_job, "ses_x");
    bind_session(r, new_job, "ses_x");
    r.erase("old");
    EXPECT_EQ(r.find_by_upstream("ses_x"), new_job);
}

// A child inserted with its parent set, as the manager creates nested jobs.
job_ptr make_child(std::string id, std::string const& parent, std::uint64_t seq) {
    auto j = make_job(std::move(id), alice_a, seq);
    j->parent = parent;
    return j;
}

TEST(registry, descendants_are_the_whole_subtree_parents_first) {
    registry r;
    r.insert(make_job("root", alice_a, 0));
    r.insert(make_job("other", alice_a, 1));
    r.insert(make_child("c1", "root", 2));
    r.insert(make_child("c2", "root", 3));
    r.insert(make_child("g1", "c1", 4));
    r.insert(make_child("gg1", "g1", 5));
    r.insert(make_child("o1", "other", 6));
    auto late = make_job("adopted", alice_b, 7);  // a restored job gets its parent afterwards
    r.insert(late);
    r.adopt(late, "c2");
    EXPECT_EQ(late->parent, "c2");

    EXPECT_EQ(ids_of(r.descendants("root")),
              (std::vector<std::string>{"c1", "c2", "g1", "adopted", "gg1"}));
    EXPECT_EQ(ids_of(r.descendants("c1")), (std::vector<std::string>{"g1", "gg1"}));
    EXPECT_EQ(ids_of(r.descendants("other")), std::vector<std::string>{"o1"});
    EXPECT_TRUE(r.descendants("gg1").empty());
    EXPECT_TRUE(r.descendants("nope").empty());

    // Erasing a child unlinks it; erasing a parent leaves its children in place.
    r.erase("g1");
    EXPECT_EQ(ids_of(r.descendants("root")), (std::vector<std::string>{"c1", "c2", "adopted"}));
    r.erase("root");
    EXPECT_EQ(ids_of(r.descendants("c2")), std::vector<std::string>{"adopted"});
    EXPECT_TRUE(r.descendants("root").empty());
    r.erase("adopted");
    EXPECT_TRUE(r.descendants("c2").empty());
    EXPECT_EQ(r.size(), 5u);
}

TEST(registry, find_by_upstream_is_scoped_by_principal) {
    registry r;
    auto j = make_job("j", alice_a, 0);
    r.insert(j);
    EXPECT_EQ(r.find_by_upstream("ses_9"), nullptr);
    bind_session(r, j, "ses_9");
    EXPECT_EQ(r.find_by_upstream("alice", "ses_9"), j);
    EXPECT_EQ(r.find_by_upstream("bob", "ses_9"), nullptr);
    EXPECT_EQ(r.find_by_upstream("alice", "ses_8"), nullptr);
    EXPECT_EQ(r.find_by_upstream("ses_9"), j);
}

// ---------------------------------------------------------------------------------------------
// SSE parser
// ---------------------------------------------------------------------------------------------

using upstream::sse_parser;

// Feeds `chunks` in order; returns the events, or nullopt when feed() refused.
std::optional<std::vector<std::string>> feed_all(sse_parser& p,
                                                 std::vector<std::string_view> const& chunks) {
    std::vector<std::string> events;
    for (auto c : chunks) {
        if (!p.feed(c, [&](std::string_view d) { events.emplace_back(d); })) return std::nullopt;
    }
    return events;
}

std::vector<std::string> events_of(std::string_view stream) {
    sse_parser p;
    auto ev = feed_all(p, {stream});
    EXPECT_TRUE(ev.has_value());
    return ev.value_or(std::vector<std::string>{});
}

using strings = std::vector<std::string>;

TEST(sse, lf_crlf_and_cr_line_endings) {
    EXPECT_EQ(events_of("data: a\n\ndata: b\n\n"), (strings{"a", "b"}));
    EXPECT_EQ(events_of("data: a\r\n\r\ndata: b\r\n\r\n"), (strings{"a", "b"}));
    EXPECT_EQ(events_of("data: a\r\rdata: b\r\r"), (strings{"a", "b"}));
    EXPECT_EQ(events_of("data: a\r\n\ndata: b\r\r\ndata: c\n\r\n"), (strings{"a", "b", "c"}));
}

TEST(sse, multi_line_data_is_joined_by_newline) {
    EXPECT_EQ(events_of("data: one\ndata: two\ndata:three\n\n"), (strings{"one\ntwo\nthree"}));
    EXPECT_EQ(events_of("data: one\r\ndata: two\r\n\r\n"), (strings{"one\ntwo"}));
}

TEST(sse, only_one_leading_space_is_removed) {
    EXPECT_EQ(events_of("data:x\n\n"), (strings{"x"}));
    EXPECT_EQ(events_of("data:  x \n\n"), (strings{" x "}));
    EXPECT_EQ(events_of("data: {\"a\": 1}\n\n"), (strings{"{\"a\": 1}"}));
}

TEST(sse, empty_data_line_dispatches_an_empty_event) {
    EXPECT_EQ(events_of("data:\n\n"), (strings{""}));
    EXPECT_EQ(events_of("data:\ndata:\n\n"), (strings{"\n"}));
}

TEST(sse, data_field_without_colon_is_an_empty_data_line) {
    // WHATWG: a line without ':' is a field name with an empty value, so "data" is a data line.
    EXPECT_EQ(events_of("data\n\n"), (strings{""}));
    EXPECT_EQ(events_of("data: a\ndata\ndata: b\n\n"), (strings{"a\n\nb"}));
}

TEST(sse, comments_and_other_fields_are_ignored) {
    EXPECT_EQ(events_of(": heartbeat\n\nevent: message\nid: 42\nretry: 100\ndata: x\n: mid\n\n"),
              (strings{"x"}));
    EXPECT_EQ(events_of("database: nope\ndata: yes\n\n"), (strings{"yes"}));
}

TEST(sse, blank_lines_without_data_dispatch_nothing) {
    EXPECT_TRUE(events_of("\n\n\n\r\n\r\r").empty());
    EXPECT_TRUE(events_of(": only a comment\n\n").empty());
    EXPECT_TRUE(events_of("event: x\nid: 1\n\n").empty());
}

TEST(sse, unfinished_event_is_not_dispatched_until_its_blank_line) {
    sse_parser p;
    strings events;
    auto sink = [&](std::string_view d) { events.emplace_back(d); };
    EXPECT_TRUE(p.feed("data: a\n", sink));
    EXPECT_TRUE(events.empty());
    EXPECT_TRUE(p.feed("data: b", sink));
    EXPECT_TRUE(events.empty());
    EXPECT_TRUE(p.feed("\n\n", sink));
    EXPECT_EQ(events, (strings{"a\nb"}));
}

TEST(sse, a_stream_split_at_every_byte_boundary_gives_the_same_events) {
    std::string const stream =
        ": hi\r\n\r\ndata: {\"type\":\"a\"}\r\n\r\ndata: one\r\ndata: two\r\n\r\n"
        "event: x\ndata: three\n\ndata: four\rdata: five\r\r";
    strings const expected{"{\"type\":\"a\"}", "one\ntwo", "three", "four\nfive"};
    EXPECT_EQ(events_of(stream), expected);
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        sse_parser p;
        std::string_view s(stream);
        auto ev = feed_all(p, {s.substr(0, i), s.substr(i)});
        ASSERT_TRUE(ev.has_value()) << "split at " << i;
        EXPECT_EQ(*ev, expected) << "split at " << i;
    }
    // And one byte at a time.
    sse_parser p;
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < stream.size(); ++i)
        bytes.push_back(std::string_view(stream).substr(i, 1));
    auto ev = feed_all(p, bytes);
    ASSERT_TRUE(ev.has_value());
    EXPECT_EQ(*ev, expected);
}

TEST(sse, oversize_event_is_refused) {
    {
        sse_parser p(16);
        auto ev = feed_all(p, {"data: 0123456789\n\n"});  // 16 bytes on the line: fits
        ASSERT_TRUE(ev.has_value());
        EXPECT_EQ(*ev, strings{"0123456789"});
    }
    {
        sse_parser p(16);
        EXPECT_FALSE(feed_all(p, {"data: 0123456789abc\n\n"}).has_value());
    }
    {
        // Many short data lines that together pass the bound.
        sse_parser p(16);
        EXPECT_FALSE(
            feed_all(p, {"data: 01234\n", "data: 56789\n", "data: abcde\n\n"}).has_value());
    }
    {
        // The bound is per event: many small events are fine.
        sse_parser p(16);
        std::string many;
        for (int i = 0; i < 100; ++i) many += "data: 0123\n\n";
        auto ev = feed_all(p, {many});
        ASSERT_TRUE(ev.has_value());
        EXPECT_EQ(ev->size(), 100u);
    }
}

// ---------------------------------------------------------------------------------------------
// OpenCode parsing
// ---------------------------------------------------------------------------------------------

namespace oc = upstream::opencode;

bool contains(std::string_view hay, std::string_view needle) {
    return hay.find(needle) != std::string_view::npos;
}

// True when `s` is well-formed UTF-8 (no truncated or overlong sequences, no surrogates).
bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        if (c < 0x80)
            n = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if ((c & 0xF0) == 0xE0)
            n = 2;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 3;
        else
            return false;
        if (i + n >= s.size() && n > 0) return false;  // sequence runs past the end
        for (std::size_t k = 1; k <= n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n + 1;
    }
    return true;
}

TEST(utf8_helper, sanity) {
    EXPECT_TRUE(valid_utf8("abc"));
    EXPECT_TRUE(valid_utf8("h\xC3\xA9llo"));
    EXPECT_TRUE(valid_utf8("\xE2\x82\xAC"));
    EXPECT_TRUE(valid_utf8("\xF0\x9F\x98\x80"));
    EXPECT_FALSE(valid_utf8("h\xC3"));
    EXPECT_FALSE(valid_utf8("\xE2\x82"));
    EXPECT_FALSE(valid_utf8("\xFF"));
    EXPECT_FALSE(valid_utf8("\x80"));
}

TEST(opencode_session, ok) {
    auto r = oc::parse_session(200, R"({"id":"ses_abc","title":"t","version":"1.18.33"})");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, "ses_abc");
    EXPECT_TRUE(oc::parse_session(201, R"({"id":"ses_x"})").has_value());
}

TEST(opencode_session, id_must_be_safe_for_a_request_path) {
    for (auto const* bad : {R"({"id":"ses_1/../../global/health?x="})", R"({"id":"ses"})",
                            R"({"id":"abc"})", R"({"id":"ses x"})", R"({"id":"ses_%2F"})"}) {
        auto r = oc::parse_session(200, bad);
        ASSERT_FALSE(r.has_value()) << bad;
        EXPECT_EQ(r.error().kind, error_kind::protocol) << bad;
        EXPECT_TRUE(contains(r.error().message, "invalid session id")) << r.error().message;
    }
    EXPECT_TRUE(oc::valid_upstream_session_id("ses_Ab-9_z"));
    EXPECT_FALSE(oc::valid_upstream_session_id("ses_" + std::string(300, 'a')));
}

TEST(opencode_session, busy_sessions_from_session_status) {
    auto r = oc::parse_busy(200, R"({"ses_a":{"type":"busy"},"ses_b":{"type":"retry","attempt":2},
                                   "ses_c":{"type":"idle"},"../x":{"type":"busy"},"ses_d":1})");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, (std::set<std::string>{"ses_a", "ses_b"}));
    EXPECT_FALSE(oc::parse_busy(200, "[]").has_value());
    EXPECT_EQ(oc::parse_busy(404, "").error().http_status, 404);
}

TEST(opencode_session, not_found_error_keeps_message_and_status) {
    auto r = oc::parse_session(
        404, R"({"name":"NotFoundError","data":{"message":"Session not found: ses_parent"}})");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, error_kind::upstream);
    EXPECT_EQ(r.error().phase, error_phase::create);
    EXPECT_EQ(r.error().http_status, 404);
    EXPECT_TRUE(contains(r.error().message, "404")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "Session not found: ses_parent")) << r.error().message;
}

TEST(opencode_session, other_http_errors) {
    auto bad = oc::parse_session(400, R"({"name":"BadRequest","data":{}})");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().http_status, 400);
    EXPECT_TRUE(contains(bad.error().message, "BadRequest")) << bad.error().message;

    auto text = oc::parse_session(502, "Bad Gateway\r\nfrom proxy");
    ASSERT_FALSE(text.has_value());
    EXPECT_EQ(text.error().kind, error_kind::upstream);
    EXPECT_EQ(text.error().http_status, 502);
    EXPECT_TRUE(contains(text.error().message, "Bad Gateway  from proxy")) << text.error().message;

    auto empty = oc::parse_session(500, "");
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error().http_status, 500);

    auto redirect = oc::parse_session(302, "");
    ASSERT_FALSE(redirect.has_value());
    EXPECT_EQ(redirect.error().http_status, 302);
}

TEST(opencode_session, http_error_message_is_short_and_printable) {
    auto e = oc::http_error(error_phase::abort, 500, std::string(5000, 'x') + "\x01\x02");
    EXPECT_EQ(e.phase, error_phase::abort);
    EXPECT_LT(e.message.size(), 300u);
    for (char c : e.message) EXPECT_GE(static_cast<unsigned char>(c), 0x20u);
    auto ctl = oc::http_error(error_phase::create, 500, R"({"data":{"message":"a\nb\u0007c"}})");
    EXPECT_TRUE(contains(ctl.message, "a b c")) << ctl.message;
}

TEST(opencode_session, malformed_success_bodies_are_protocol_errors) {
    for (auto body : {"not json", "[]", "{}", R"({"id":""})", R"({"id":5})", R"({"ID":"ses_1"})",
                      R"("ses_1")"}) {
        auto r = oc::parse_session(200, body);
        ASSERT_FALSE(r.has_value()) << body;
        EXPECT_EQ(r.error().kind, error_kind::protocol) << body;
        EXPECT_EQ(r.error().phase, error_phase::create) << body;
        EXPECT_FALSE(r.error().http_status.has_value()) << body;
    }
}

constexpr std::string_view prompt_ok = R"({
  "info": {"id":"msg_1","role":"assistant","cost":0.0031,
           "tokens":{"input":1200,"output":345,"reasoning":0,"cache":{"read":0,"write":0}}},
  "parts": [
    {"type":"step-start","id":"p0"},
    {"type":"reasoning","text":"thinking..."},
    {"type":"text","text":"Hello, "},
    {"type":"tool","tool":"bash","state":{"output":"ls"}},
    {"type":"text","text":"world."},
    "garbage",
    {"type":"text"},
    {"type":"step-finish"}
  ]})";

TEST(opencode_prompt, ok_concatenates_text_parts_and_reads_usage) {
    auto r = oc::parse_prompt(200, prompt_ok, 1 << 20);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->output, "Hello, world.");
    EXPECT_FALSE(r->truncated);
    EXPECT_EQ(r->usage.input_tokens, 1200);
    EXPECT_EQ(r->usage.output_tokens, 345);
    EXPECT_DOUBLE_EQ(r->usage.cost, 0.0031);
    EXPECT_EQ(r->message_id, "msg_1");
}

TEST(budget, a_message_of_each_bound_and_none_within_them) {
    protocol::task_budget b{0.5, 1000};
    EXPECT_FALSE(over_budget(b, {400, 600, 0.5}));
    EXPECT_EQ(over_budget(b, {0, 0, 0.52}), "budget exhausted: cost 0.52 > 0.50");
    EXPECT_EQ(over_budget(b, {400, 601, 0.1}), "budget exhausted: tokens 1001 > 1000");
    // Amounts get the decimals that tell them apart.
    EXPECT_EQ(over_budget({0.001, std::nullopt}, {0, 0, 0.0012}),
              "budget exhausted: cost 0.0012 > 0.0010");
    EXPECT_EQ(over_budget({0.0, std::nullopt}, {0, 0, 0.0012}),
              "budget exhausted: cost 0.001 > 0.000");
    EXPECT_FALSE(over_budget({std::nullopt, 10}, {5, 5, 99.0}));
    // Hostile counts saturate instead of overflowing.
    EXPECT_EQ(over_budget({std::nullopt, 10}, {INT64_MAX, INT64_MAX, 0}),
              fmt::format("budget exhausted: tokens {} > 10", INT64_MAX));
}

TEST(budget, usage_sums_the_latest_of_each_message) {
    job j;
    j.agentic_mut().usage_by_message["msg_1"] = {10, 20, 0.25};
    j.agentic_mut().usage_by_message["msg_2"] = {1, 2, 0.5};
    auto sum = summed_usage(j);
    EXPECT_EQ(sum.input_tokens, 11);
    EXPECT_EQ(sum.output_tokens, 22);
    EXPECT_EQ(sum.cost, 0.75);
    j.agentic_mut().usage_by_message["msg_3"] = {INT64_MAX, 0, 0};
    EXPECT_EQ(summed_usage(j).input_tokens, INT64_MAX);
}

// After a restart a follow-up's turn is read back from the session's messages: the earlier
// turn's finished answer is not the new turn's.
TEST(opencode_recover, only_an_answer_after_the_last_user_message_counts) {
    auto const done = R"({"info":{"id":"msg_2","role":"assistant","time":{"completed":2}},
                          "parts":[{"type":"text","text":"first answer"}]})";
    auto const user = R"({"info":{"id":"msg_3","role":"user"},"parts":[]})";
    auto one = oc::parse_recovered(200, fmt::format("[{},{}]", user, done), 1 << 20);
    ASSERT_TRUE(one.has_value() && *one);
    EXPECT_EQ((*one)->output, "first answer");
    auto pending = oc::parse_recovered(200, fmt::format("[{},{},{}]", user, done, user), 1 << 20);
    ASSERT_TRUE(pending.has_value());
    EXPECT_FALSE(*pending) << "the follow-up's turn has no answer yet";
}

// A follow-up restored after a restart whose prompt never reached the session (agentd died
// before sending it): the session's finished answer is the earlier turn's, not the follow-up's.
TEST(opencode_recover, a_follow_up_counts_only_the_turn_of_its_own_prompt) {
    auto const user = [](char const* id, char const* text) {
        return fmt::format(R"({{"info":{{"id":"{}","role":"user"}},
                               "parts":[{{"type":"text","text":"{}"}}]}})",
                           id, text);
    };
    auto const done = [](char const* id, char const* text) {
        return fmt::format(R"({{"info":{{"id":"{}","role":"assistant","time":{{"completed":2}}}},
                               "parts":[{{"type":"text","text":"{}"}}]}})",
                           id, text);
    };
    auto const one_turn = fmt::format("[{},{}]", user("msg_1", "first"), done("msg_2", "one"));
    auto lost = oc::parse_recovered(200, one_turn, 1 << 20, "second");
    ASSERT_TRUE(lost.has_value());
    EXPECT_FALSE(*lost) << "the earlier turn's answer is not the follow-up's";
    auto first = oc::parse_recovered(200, one_turn, 1 << 20);
    ASSERT_TRUE(first.has_value() && *first);
    EXPECT_EQ((*first)->output, "one");
    auto const two_turns =
        fmt::format("[{},{},{},{}]", user("msg_1", "first"), done("msg_2", "one"),
                    user("msg_3", "second"), done("msg_4", "two"));
    auto second = oc::parse_recovered(200, two_turns, 1 << 20, "second");
    ASSERT_TRUE(second.has_value() && *second);
    EXPECT_EQ((*second)->output, "two");
}

// prompt_async: the turn's end is read as the session's last message (?limit=1), and only the
// finished answer to the turn's own user message counts.
TEST(opencode_turn_end, only_the_finished_answer_to_its_own_user_message_counts) {
    auto const assistant = [](char const* parent, bool completed, char const* extra = "") {
        return fmt::format(R"([{{"info":{{"id":"msg_9","role":"assistant","parentID":"{}",
                               "time":{{"created":1{}}}{}}},
                               "parts":[{{"type":"text","text":"the answer"}},
                                        {{"type":"patch","hash":"h","files":[]}}]}}])",
                           parent, completed ? R"(,"completed":2)" : "", extra);
    };
    auto done = oc::parse_turn_end(200, assistant("msg_1", true), 1 << 20, "msg_1");
    ASSERT_TRUE(done.has_value() && *done);
    EXPECT_EQ((*done)->output, "the answer");
    EXPECT_EQ((*done)->message_id, "msg_9");
    EXPECT_EQ((*done)->user_message_id, "msg_1");
    EXPECT_EQ((*done)->files_changed, true);

    for (auto const& [body, why] : {
             std::pair{assistant("msg_1", false), "still running"},
             std::pair{assistant("msg_0", true), "an earlier turn's answer"},
             std::pair{std::string(R"([{"info":{"id":"msg_1","role":"user"},"parts":[]}])"),
                       "the user message alone"},
             std::pair{std::string("[]"), "no message"},
             std::pair{std::string(R"([{"parts":[]}])"), "no info"},
         }) {
        auto r = oc::parse_turn_end(200, body, 1 << 20, "msg_1");
        ASSERT_TRUE(r.has_value()) << why;
        EXPECT_FALSE(*r) << why;
    }

    auto failed = oc::parse_turn_end(
        200,
        assistant("msg_1", true,
                  R"(,"error":{"name":"APIError","data":{"message":"no","statusCode":400}})"),
        1 << 20, "msg_1");
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().message, "APIError: no");
    EXPECT_EQ(failed.error().http_status, 400);

    auto truncated = oc::parse_turn_end(200, assistant("msg_1", true), 3, "msg_1");
    ASSERT_TRUE(truncated.has_value() && *truncated);
    EXPECT_EQ((*truncated)->output, "the");
    EXPECT_TRUE((*truncated)->truncated);

    for (auto const* hostile : {"<html>", R"({"info":{}})", "[1]", "null"}) {
        auto r = oc::parse_turn_end(200, hostile, 1 << 20, "msg_1");
        if (r.has_value()) {
            EXPECT_FALSE(*r) << hostile;
        } else {
            EXPECT_EQ(r.error().kind, error_kind::protocol) << hostile;
        }
    }
    auto missing = oc::parse_turn_end(404, R"({"name":"NotFoundError","data":{"message":"gone"}})",
                                      1 << 20, "msg_1");
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().http_status, 404);
}

TEST(opencode_prompt, body_names_what_the_task_sets) {
    upstream::prompt_request req;
    req.prompt = "say \"hi\"";
    EXPECT_EQ(oc::prompt_body(req), R"({"parts":[{"type":"text","text":"say \"hi\""}]})");
    req.agent = "plan";
    req.system = "be brief";
    req.model = "anthropic/claude-x";
    auto body = boost::json::parse(oc::prompt_body(req)).as_object();
    EXPECT_EQ(body.at("agent"), "plan");
    EXPECT_EQ(body.at("system"), "be brief");
    EXPECT_EQ(body.at("model").at("providerID"), "anthropic");
    EXPECT_EQ(body.at("model").at("modelID"), "claude-x");
}

TEST(opencode_prompt, a_prompt_async_reply_other_than_204_is_a_failure) {
    auto refused = oc::not_accepted(400, R"({"_tag":"BadRequest"})");
    EXPECT_EQ(refused.kind, error_kind::upstream);
    EXPECT_EQ(refused.phase, error_phase::prompt);
    EXPECT_EQ(refused.http_status, 400);
    auto odd = oc::not_accepted(200, R"({"info":{}})");
    EXPECT_EQ(odd.kind, error_kind::protocol);
    EXPECT_EQ(odd.message, "prompt_async: expected 204 No Content, got 200");
    EXPECT_FALSE(odd.http_status);
}

TEST(opencode_prompt, missing_usage_is_zero) {
    auto r = oc::parse_prompt(200, R"({"info":{},"parts":[]})", 100);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->output, "");
    EXPECT_EQ(r->usage.input_tokens, 0);
    EXPECT_EQ(r->usage.output_tokens, 0);
    EXPECT_EQ(r->usage.cost, 0.0);
    auto dbl = oc::parse_prompt(
        200, R"({"info":{"tokens":{"input":12.0,"output":3},"cost":1},"parts":[]})", 100);
    ASSERT_TRUE(dbl.has_value());
    EXPECT_EQ(dbl->usage.input_tokens, 12);
    EXPECT_EQ(dbl->usage.output_tokens, 3);
    EXPECT_DOUBLE_EQ(dbl->usage.cost, 1.0);
}

TEST(opencode_prompt, api_error_in_info_is_an_upstream_failure_with_status) {
    auto r = oc::parse_prompt(200, R"({"info":{"role":"assistant","error":{"name":"APIError",
        "data":{"message":"Rate limit exceeded","statusCode":429,"isRetryable":true}}},"parts":[]})",
                              100);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, error_kind::upstream);
    EXPECT_EQ(r.error().phase, error_phase::prompt);
    EXPECT_EQ(r.error().http_status, 429);
    EXPECT_TRUE(contains(r.error().message, "APIError")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, "Rate limit exceeded")) << r.error().message;
}

TEST(opencode_prompt, aborted_message_is_an_upstream_failure_without_status) {
    auto r = oc::parse_prompt(
        200, R"({"info":{"error":{"name":"MessageAbortedError","data":{"message":"Aborted"}}},
                 "parts":[{"type":"text","text":"partial"}]})",
        100);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, error_kind::upstream);
    EXPECT_FALSE(r.error().http_status.has_value());
    EXPECT_TRUE(contains(r.error().message, "MessageAbortedError")) << r.error().message;

    auto nameless = oc::parse_prompt(200, R"({"info":{"error":{}},"parts":[]})", 100);
    ASSERT_FALSE(nameless.has_value());
    EXPECT_EQ(nameless.error().kind, error_kind::upstream);
    EXPECT_FALSE(nameless.error().message.empty());

    for (auto code : {"0", "1000", "-5", "\"500\""}) {
        auto odd = oc::parse_prompt(
            200,
            std::string(R"({"info":{"error":{"name":"APIError","data":{"statusCode":)") + code +
                "}}},\"parts\":[]}",
            100);
        ASSERT_FALSE(odd.has_value()) << code;
        EXPECT_FALSE(odd.error().http_status.has_value()) << code;
    }
}

TEST(opencode_prompt, output_is_truncated_at_max_output) {
    auto body =
        R"({"info":{},"parts":[{"type":"text","text":"hello "},{"type":"text","text":"world"}]})";
    auto cut = oc::parse_prompt(200, body, 5);
    ASSERT_TRUE(cut.has_value());
    EXPECT_EQ(cut->output, "hello");
    EXPECT_TRUE(cut->truncated);
    auto exact = oc::parse_prompt(200, body, 11);
    ASSERT_TRUE(exact.has_value());
    EXPECT_EQ(exact->output, "hello world");
    EXPECT_FALSE(exact->truncated);
}

TEST(opencode_prompt, truncation_never_splits_a_utf8_character) {
    // "h" + U+00E9 (2 bytes) + "llo": a cut after 2 bytes would leave half of the é, and the
    // JobView JSON would then carry invalid UTF-8 that strict clients refuse to parse.
    auto r =
        oc::parse_prompt(200, R"({"info":{},"parts":[{"type":"text","text":"h\u00e9llo"}]})", 2);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->truncated);
    EXPECT_LE(r->output.size(), 2u);
    EXPECT_TRUE(valid_utf8(r->output)) << "output bytes: " << r->output.size();
    auto emoji = oc::parse_prompt(
        200, R"({"info":{},"parts":[{"type":"text","text":"ab\ud83d\ude00"}]})", 4);
    ASSERT_TRUE(emoji.has_value());
    EXPECT_TRUE(emoji->truncated);
    EXPECT_TRUE(valid_utf8(emoji->output));
}

TEST(opencode_session, error_messages_are_valid_utf8) {
    // Upstream text ends up in error.message of the JobView JSON, which must be valid UTF-8: the
    // 200-byte excerpt must not cut a character in half, and a non-UTF-8 body (a proxy's Latin-1
    // error page) must not pass through as raw bytes.
    auto cut = oc::http_error(error_phase::create, 502, std::string(199, 'x') + "\xC3\xA9tat");
    EXPECT_TRUE(valid_utf8(cut.message)) << cut.message;
    auto latin1 = oc::http_error(error_phase::create, 502, "caf\xE9 indisponible");
    EXPECT_TRUE(valid_utf8(latin1.message)) << latin1.message;
    EXPECT_TRUE(contains(latin1.message, "indisponible")) << latin1.message;
}

TEST(opencode_prompt, http_errors) {
    auto r = oc::parse_prompt(500, R"({"name":"UnknownError","data":{"message":"boom"}})", 100);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, error_kind::upstream);
    EXPECT_EQ(r.error().phase, error_phase::prompt);
    EXPECT_EQ(r.error().http_status, 500);
    EXPECT_TRUE(contains(r.error().message, "boom"));
}

TEST(opencode_prompt, malformed_bodies_are_protocol_errors) {
    for (auto body : {"", "<html>", "[]", "{}", R"({"info":{}})", R"({"parts":[]})",
                      R"({"info":{},"parts":{}})", R"({"info":"x","parts":[]})", "null"}) {
        auto r = oc::parse_prompt(200, body, 100);
        ASSERT_FALSE(r.has_value()) << body;
        EXPECT_EQ(r.error().kind, error_kind::protocol) << body;
        EXPECT_EQ(r.error().phase, error_phase::prompt) << body;
    }
}

TEST(opencode_partial, latest_assistant_message_text) {
    auto r = oc::parse_partial(200, R"([
        {"info":{"role":"user"},"parts":[{"type":"text","text":"question"}]},
        {"info":{"role":"assistant"},"parts":[{"type":"text","text":"old answer"}]},
        {"info":{"role":"user"},"parts":[{"type":"text","text":"again"}]},
        {"info":{"role":"assistant"},"parts":[{"type":"reasoning","text":"hm"},
                                             {"type":"text","text":"new "},
                                             {"type":"text","text":"answer"}]}
    ])");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(*r, "new answer");
}

TEST(opencode_partial, mid_turn_empty_text_and_no_assistant) {
    auto mid = oc::parse_partial(200, R"([
        {"info":{"role":"user"},"parts":[{"type":"text","text":"q"}]},
        {"info":{"role":"assistant"},"parts":[{"type":"text","text":""}]}])");
    ASSERT_TRUE(mid.has_value());
    EXPECT_EQ(*mid, "");
    auto none = oc::parse_partial(200, "[]");
    ASSERT_TRUE(none.has_value());
    EXPECT_EQ(*none, "");
    auto users = oc::parse_partial(
        200, R"([{"info":{"role":"user"},"parts":[{"type":"text","text":"q"}]}, 3])");
    ASSERT_TRUE(users.has_value());
    EXPECT_EQ(*users, "");
}

TEST(opencode_partial, errors) {
    auto nf = oc::parse_partial(404, R"({"name":"NotFoundError","data":{"message":"no session"}})");
    ASSERT_FALSE(nf.has_value());
    EXPECT_EQ(nf.error().kind, error_kind::upstream);
    EXPECT_EQ(nf.error().http_status, 404);
    for (auto body : {"{}", "nope", ""}) {
        auto r = oc::parse_partial(200, body);
        ASSERT_FALSE(r.has_value()) << body;
        EXPECT_EQ(r.error().kind, error_kind::protocol) << body;
    }
}

TEST(opencode_event, text_delta) {
    auto e = oc::parse_event(R"({"type":"message.part.delta","properties":{"sessionID":"ses_1",
        "messageID":"msg_1","partID":"prt_1","field":"text","delta":"Hel"}})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, oc::event::kind::delta);
    EXPECT_EQ(e->session, "ses_1");
    EXPECT_EQ(e->part_id, "prt_1");
    EXPECT_EQ(e->delta, "Hel");
}

TEST(opencode_event, delta_of_another_field_is_progress_not_text) {
    auto other = oc::parse_event(R"({"type":"message.part.delta","properties":{"sessionID":"ses_1",
        "partID":"p","field":"reasoning","delta":"x"}})");
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(other->what, oc::event::kind::progress);
    EXPECT_EQ(other->delta, "");
    EXPECT_FALSE(oc::parse_event(R"({"type":"message.part.delta","properties":{"sessionID":"ses_1",
        "partID":"p","delta":"x"}})"));
    EXPECT_FALSE(oc::parse_event(R"({"type":"message.part.delta","properties":{"partID":"p",
        "field":"text","delta":"x"}})"))
        << "no session";
}

TEST(opencode_event, part_updated) {
    auto e = oc::parse_event(R"({"type":"message.part.updated","properties":{"part":{"id":"prt_2",
        "sessionID":"ses_2","messageID":"msg","type":"text","text":"done"}}})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, oc::event::kind::part_updated);
    EXPECT_EQ(e->session, "ses_2");
    EXPECT_EQ(e->part_id, "prt_2");
    EXPECT_EQ(e->part_type, "text");
    EXPECT_FALSE(oc::parse_event(R"({"type":"message.part.updated","properties":{}})"));
}

TEST(opencode_event, session_idle) {
    auto e = oc::parse_event(R"({"type":"session.idle","properties":{"sessionID":"ses_3"}})");
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->what, oc::event::kind::idle);
    EXPECT_EQ(e->session, "ses_3");
    EXPECT_FALSE(oc::parse_event(R"({"type":"session.idle","properties":{}})"));
}

TEST(opencode_event, unrelated_types_are_other) {
    for (auto data : {R"({"type":"server.heartbeat","properties":{}})",
                      R"({"type":"session.updated","properties":{"info":{"id":"ses_1"}}})",
                      R"({"type":"server.connected","properties":{}})"}) {
        auto e = oc::parse_event(data);
        ASSERT_TRUE(e.has_value()) << data;
        EXPECT_EQ(e->what, oc::event::kind::other) << data;
    }
}

TEST(opencode_event, malformed) {
    for (auto data : {"", "not json", "[]", "42", R"({"type":"session.idle"})",
                      R"({"type":"session.idle","properties":[]})", "{\"type\":"}) {
        EXPECT_FALSE(oc::parse_event(data).has_value()) << data;
    }
}

}  // namespace
}  // namespace agentd::jobs
