// Sessions, simulated LLM turns, SSE fan-out and counters of the fake OpenCode server. Turn
// timing and event order follow `opencode serve` 1.18.33 as described in DESIGN.md §5, notably
// the text part staying empty in stored messages until the turn finishes.
#include "fake_state.hpp"

#include "worktrees.hpp"

#include <fmt/core.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>

namespace fake {
namespace json = boost::json;
using std::chrono::steady_clock;

namespace {

// g++ 12 miscompiles a discarded `co_await op(use_tuple);` (the temporary awaitable is destroyed
// twice and crashes), so every such result below is bound to a name even when unused.
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

constexpr std::array<std::string_view, 22> counter_names{
    "sessions_created",  "creates_started",   "creates_in_flight",     "max_creates_in_flight",
    "prompts_started",   "prompts_in_flight", "max_prompts_in_flight", "prompts_completed",
    "aborts_total",      "requests_total",    "event_subscribers",     "flood_events",
    "permissions_asked", "questions_asked",   "flood_tools",           "agent_lists",
    "provider_lists",    "unknown_prompts",   "worktrees_created",     "worktrees_removed",
    "connections_total", "connections_open",
};

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

json::object text_part(turn const& t, std::string_view text) {
    return {{"id", t.text_part_id},
            {"sessionID", t.owner->id},
            {"messageID", t.message_id},
            {"type", "text"},
            {"text", text}};
}

json::object step_start_part(turn const& t) {
    return {{"id", t.step_part_id},
            {"sessionID", t.owner->id},
            {"messageID", t.message_id},
            {"type", "step-start"}};
}

// The real server's project id is a 40-digit hex hash per repository; one per directory will do.
std::string project_of(std::string_view directory) {
    auto const h = std::hash<std::string_view>{}(directory);
    return fmt::format("{:016x}{:016x}{:08x}", h, h * 0x9E3779B97F4A7C15ull, h >> 32);
}

json::object tool_ref(turn const& t, json::object const& part) {
    return {{"messageID", t.message_id}, {"callID", part.at("callID")}};
}

std::string join(std::vector<std::string> const& items, std::string_view sep) {
    std::string out;
    for (auto const& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

// Bash's `always` suggestion: the command's first word and a wildcard ("echo *").
std::string always_pattern(std::string_view pattern) {
    return std::string(pattern.substr(0, pattern.find(' '))) + " *";
}

}  // namespace

asio::awaitable<bool> cancel_requested() {
    auto cs = co_await asio::this_coro::cancellation_state;
    co_return cs.cancelled() != asio::cancellation_type::none;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string new_id(std::string_view prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<std::uint32_t> dist(0, 0xffffffu);
    return fmt::format("{}_{:06x}{:06x}{:06x}{:06x}", prefix, dist(rng), dist(rng), dist(rng),
                       dist(rng));
}

json::object error_body(std::string_view name, std::string_view message) {
    return {{"name", name}, {"data", {{"message", message}}}};
}

std::vector<std::string_view> split_chunks(std::string_view text, std::int64_t n) {
    std::vector<std::string_view> out;
    if (n <= 0 || text.empty()) return out;
    auto const pieces = std::min<std::size_t>(static_cast<std::size_t>(n), text.size());
    std::size_t begin = 0;
    for (std::size_t i = 1; i <= pieces && begin < text.size(); ++i) {
        std::size_t end = text.size() * i / pieces;
        while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
        if (end > begin) out.push_back(text.substr(begin, end - begin));
        begin = std::max(begin, end);
    }
    return out;
}

std::int64_t count_words(std::string_view text) {
    std::int64_t words = 0;
    bool in_word = false;
    for (char c : text) {
        if (is_space(c)) {
            in_word = false;
        } else if (!in_word) {
            in_word = true;
            ++words;
        }
    }
    return words;
}

// ---------------------------------------------------------------------------------------------
// stats

stats::stats() {
    for (auto name : counter_names) counters_.emplace(name, 0);
}

std::optional<std::int64_t> stats::get(std::string_view name) const {
    auto it = counters_.find(name);
    if (it == counters_.end()) return std::nullopt;
    return it->second;
}

void stats::add(std::string_view name, std::int64_t delta) {
    auto it = counters_.find(name);
    if (it == counters_.end()) throw std::logic_error("unknown counter " + std::string(name));
    it->second += delta;
    if (name.ends_with("_in_flight")) {
        auto& max = counters_.find("max_" + std::string(name))->second;
        max = std::max(max, it->second);
    }
    waiters_.wake();
}

void stats::record_abort(std::string_view session_id) {
    aborted_sessions_.emplace_back(session_id);
    add("aborts_total", 1);
}

void stats::record_directory(std::string_view directory) {
    directories_.emplace_back(directory);
}

void stats::record_answer(std::string_view session_id) {
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    answered_us_[session_id] = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}

void stats::record_call(std::string_view method, std::string_view path,
                        std::optional<std::string> const& directory) {
    json::object call{{"method", method}, {"path", path}, {"directory", nullptr}};
    if (directory) call["directory"] = *directory;
    calls_.push_back(std::move(call));
    if (calls_.size() > max_calls) calls_.pop_front();
}

json::array stats::calls() const {
    return json::array(calls_.begin(), calls_.end());
}

json::object stats::to_json() const {
    json::object out;
    for (auto const& [name, value] : counters_) out[name] = value;
    out["aborted_sessions"] = aborted_sessions_;
    out["directories"] = directories_;
    out["answered_us"] = answered_us_;
    out["last_create_body"] = last_create_body_;
    out["last_prompt_body"] = last_prompt_body_;
    return out;
}

void stats::reset() {
    for (auto& [name, value] : counters_) {
        bool const gauge = name.ends_with("_in_flight") || name == "event_subscribers" ||
                           name == "connections_open";
        if (!gauge) value = 0;
    }
    for (auto& [name, value] : counters_) {
        if (name.starts_with("max_")) value = counters_.find(name.substr(4))->second;
    }
    aborted_sessions_.clear();
    directories_.clear();
    answered_us_.clear();
    calls_.clear();
    last_create_body_ = nullptr;
    last_prompt_body_ = nullptr;
    waiters_.wake();
}

asio::awaitable<std::pair<bool, std::int64_t>> stats::wait_for(std::string name, std::int64_t min,
                                                               std::int64_t max,
                                                               std::chrono::milliseconds timeout) {
    return waiters_.wait_for([this, name] { return get(name).value_or(0); }, min, max, timeout);
}

// ---------------------------------------------------------------------------------------------
// event_bus

event_bus::subscriber::subscriber(asio::any_io_executor ex) : wake(std::move(ex)) {}

event_bus::subscription::subscription(event_bus& bus, std::shared_ptr<subscriber> sub)
    : bus_(bus), sub_(std::move(sub)) {
    bus_.subscribers_.push_back(sub_.get());
    bus_.stats_.add("event_subscribers", 1);
}

event_bus::subscription::~subscription() {
    std::erase(bus_.subscribers_, sub_.get());
    bus_.stats_.add("event_subscribers", -1);
}

std::unique_ptr<event_bus::subscription> event_bus::subscribe(asio::any_io_executor ex,
                                                              std::optional<std::string> directory,
                                                              bool global) {
    auto sub = std::make_shared<subscriber>(std::move(ex));
    sub->directory = std::move(directory);
    sub->global = global;
    return std::make_unique<subscription>(*this, std::move(sub));
}

json::object event_bus::event(std::string_view type, json::object properties) {
    return {{"type", type}, {"properties", std::move(properties)}};
}

std::string event_bus::frame(json::value const& data) {
    return "data: " + json::serialize(data) + "\n\n";
}

void event_bus::publish(std::string_view directory, std::string_view type,
                        json::object properties) {
    if (subscribers_.empty()) return;
    // Published events carry an id like the real ones (evt_…); server.connected has none.
    json::object ev{{"id", new_id("evt")}, {"type", type}, {"properties", std::move(properties)}};
    deliver(directory, [&](bool global) {
        return global ? frame(json::object{{"directory", directory},
                                           {"project", project_of(directory)},
                                           {"payload", ev}})
                      : frame(ev);
    });
}

void event_bus::publish_serialized(std::string_view directory, std::string_view event_json) {
    if (subscribers_.empty()) return;
    deliver(directory, [&](bool global) {
        if (!global) return fmt::format("data: {}\n\n", event_json);
        return fmt::format("data: {{\"directory\":{},\"project\":\"{}\",\"payload\":{}}}\n\n",
                           json::serialize(json::string(directory)), project_of(directory),
                           event_json);
    });
}

template <class Make>
void event_bus::deliver(std::string_view directory, Make const& make) {
    std::shared_ptr<std::string const> plain;
    std::shared_ptr<std::string const> wrapped;
    for (auto* sub : subscribers_) {
        if (sub->dropped) continue;
        if (sub->directory && *sub->directory != directory) continue;
        // Serialized once per kind of subscriber, shared by all of them.
        auto& shared = sub->global ? wrapped : plain;
        if (!shared) shared = std::make_shared<std::string const>(make(sub->global));
        // Only a backlog counts against the bound: one frame bigger than it (a long final
        // text) still goes to a reader that keeps up.
        if (!sub->frames.empty() && (sub->frames.size() >= max_queued_frames ||
                                     sub->bytes + shared->size() > max_queued_bytes_)) {
            sub->dropped = true;
            sub->frames.clear();
            sub->bytes = 0;
            if (sub->on_drop) sub->on_drop();
        } else {
            sub->frames.push_back(shared);
            sub->bytes += shared->size();
        }
        sub->wake.cancel();
    }
}

std::size_t event_bus::readers() const {
    return static_cast<std::size_t>(
        std::count_if(subscribers_.begin(), subscribers_.end(),
                      [](subscriber const* sub) { return !sub->dropped; }));
}

std::size_t event_bus::backlog() const {
    std::size_t most = 0;
    for (auto const* sub : subscribers_)
        if (!sub->dropped) most = std::max(most, sub->frames.size());
    return most;
}

std::size_t event_bus::drop_all() {
    std::size_t dropped = 0;
    for (auto* sub : subscribers_) {
        if (sub->dropped) continue;
        sub->dropped = true;
        sub->frames.clear();
        sub->bytes = 0;
        if (sub->on_drop) sub->on_drop();
        sub->wake.cancel();
        ++dropped;
    }
    return dropped;
}

void event_bus::shutdown() {
    for (auto* sub : subscribers_) {
        sub->dropped = true;
        sub->wake.cancel();
    }
}

// ---------------------------------------------------------------------------------------------
// turns and sessions

turn::turn(asio::any_io_executor ex) : signal(ex), done_signal(ex) {
    done_signal.expires_at(steady_clock::time_point::max());
}

fake_state::fake_state(asio::any_io_executor ex, options opts)
    : ex_(std::move(ex)), opts_(std::move(opts)), bus_(stats_, opts_.event_queue_bytes) {}

session* fake_state::find_session(std::string_view id) {
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

session& fake_state::create_session(std::optional<std::string> title,
                                    std::optional<std::string> parent_id, std::string directory) {
    auto s = std::make_unique<session>();
    s->id = new_id("ses");
    s->directory = directory;
    auto now = now_ms();
    s->info = {{"id", s->id},
               {"title", title ? *title : std::string("New session")},
               {"directory", std::move(directory)},
               {"time", {{"created", now}, {"updated", now}}}};
    if (parent_id) s->info["parentID"] = *parent_id;
    auto& ref = *s;
    sessions_.emplace(s->id, std::move(s));
    stats_.add("sessions_created", 1);
    return ref;
}

json::object fake_state::busy_sessions(std::optional<std::string_view> directory) const {
    json::object out;
    for (auto const& [id, s] : sessions_) {
        if (directory && s->directory != *directory) continue;
        bool const running = !s->turns.empty() && s->turns.front()->started;
        if (running) out[id] = json::object{{"type", "busy"}};
    }
    return out;
}

namespace {

// A live session as the flood sees it: where its events go and its current tool call.
struct flood_target {
    std::string id;
    std::string directory;
    std::string message_id;
    std::string text_part_id;
    bool deltas_only = false;  // end_mark: the session whose tool update ends the flood
    std::int64_t calls = 0;
    bool call_open = false;  // a running update went out; the completed one comes next
    std::string part_id;
    std::string call_id;
    std::string command;
    std::int64_t call_start_ms = 0;
    steady_clock::time_point last_tool{};
    bool tool_next = false;  // mixed with no gap: every other event
};

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               steady_clock::now().time_since_epoch())
        .count();
}

std::string flood_delta(flood_target const& t, std::int64_t seq) {
    return fmt::format(
        R"({{"id":"evt_flood{}","type":"message.part.delta","properties":{{"sessionID":"{}",)"
        R"("messageID":"{}","partID":"{}","field":"text","delta":"word{} "}}}})",
        seq, t.id, t.message_id, t.text_part_id, seq % 100);
}

// The next update of the session's tool call (running, then completed), the shapes of
// `opencode serve`'s bash tool parts (tests/e2e/FINDINGS.md "Tool part").
std::string flood_tool(flood_target& t, std::int64_t seq, std::string_view label) {
    auto const title = fmt::format("{}seq={} t={}", label, seq, steady_ns());
    auto const now = now_ms();
    std::string state;
    if (!t.call_open) {
        ++t.calls;
        t.call_open = true;
        t.part_id = fmt::format("prt_flood{}x{}", t.id.substr(4), t.calls);
        t.call_id = fmt::format("call_flood{}", t.calls);
        t.command = title;
        t.call_start_ms = now;
        state = fmt::format(
            R"({{"status":"running","input":{{"command":"{}"}},"time":{{"start":{}}}}})", title,
            now);
    } else {
        t.call_open = false;
        state =
            fmt::format(R"({{"status":"completed","input":{{"command":"{}"}},"output":"ok\n",)"
                        R"("metadata":{{"output":"ok\n","exit":0,"truncated":false}},"title":"{}",)"
                        R"("time":{{"start":{},"end":{}}}}})",
                        t.command, title, t.call_start_ms, now);
    }
    return fmt::format(
        R"({{"id":"evt_flood{}","type":"message.part.updated","properties":{{"sessionID":"{}",)"
        R"("part":{{"id":"{}","sessionID":"{}","messageID":"{}","type":"tool","tool":"bash",)"
        R"("callID":"{}","state":{}}},"time":{}}}}})",
        seq, t.id, t.part_id, t.id, t.message_id, t.call_id, state, now);
}

}  // namespace

asio::awaitable<void> fake_state::flood(flood_spec spec) {
    constexpr std::int64_t batch = 256;
    constexpr std::size_t max_backlog = 4096;
    asio::steady_timer pause(ex_);
    auto const wait_for_readers = [&]() -> asio::awaitable<void> {
        pause.expires_after(std::chrono::milliseconds(1));
        [[maybe_unused]] auto [ec] = co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    };
    if (spec.what == flood_spec::kind::reasoning) {
        for (std::int64_t sent = 0; sent < spec.events && !stopping_;) {
            // Paced by the readers, so a flood never gets a subscriber dropped for falling behind.
            if (bus_.backlog() > max_backlog) {
                co_await wait_for_readers();
                continue;
            }
            std::int64_t n = 0;
            for (; n < batch && sent < spec.events; ++n, ++sent) {
                auto const sid = new_id("ses");
                bus_.publish("/elsewhere", "message.part.updated",
                             {{"part",
                               {{"id", new_id("prt")},
                                {"sessionID", sid},
                                {"messageID", new_id("msg")},
                                {"type", "reasoning"},
                                {"text", "thinking about something else"}}}});
            }
            stats_.add("flood_events", n);
        }
        co_return;
    }

    std::vector<flood_target> targets;
    for (auto const& [id, s] : sessions_) {
        if (s->turns.empty() || !s->turns.front()->started || s->turns.front()->done) continue;
        auto const& t = *s->turns.front();
        auto& target = targets.emplace_back();
        target.id = s->id;
        target.directory = s->directory;
        target.message_id = t.message_id;
        target.text_part_id = t.text_part_id;
    }
    if (targets.empty()) co_return;
    if (spec.end_mark) targets.front().deltas_only = true;
    auto const gap = std::chrono::milliseconds(spec.tool_gap_ms);
    auto const start = steady_clock::now();
    std::int64_t const body = spec.end_mark ? spec.events - 1 : spec.events;
    std::int64_t sent = 0;
    std::size_t next = 0;
    while (sent < body && !stopping_) {
        if (bus_.backlog() > max_backlog) {
            co_await wait_for_readers();
            continue;
        }
        std::int64_t allowed = batch;
        if (spec.rate > 0) {
            auto const elapsed = std::chrono::duration<double>(steady_clock::now() - start);
            auto const due = static_cast<std::int64_t>(spec.rate * elapsed.count()) + 1;
            allowed = std::min(batch, due - sent);
            if (allowed <= 0) {
                co_await wait_for_readers();  // ~1 ms: at 10 000/s, bursts of ~10 events
                continue;
            }
        }
        std::int64_t n = 0;
        std::int64_t tools = 0;
        for (; n < allowed && sent < body; ++n, ++sent) {
            auto& t = targets[next];
            next = (next + 1) % targets.size();
            bool tool = false;
            if (t.deltas_only || spec.what == flood_spec::kind::delta) {
                tool = false;
            } else if (spec.what == flood_spec::kind::tool) {
                tool = true;
            } else if (gap.count() > 0) {
                tool = steady_clock::now() - t.last_tool >= gap;
            } else {
                tool = t.tool_next;
                t.tool_next = !t.tool_next;
            }
            if (tool) {
                ++tools;
                t.last_tool = steady_clock::now();
                bus_.publish_serialized(t.directory, flood_tool(t, sent, ""));
            } else {
                bus_.publish_serialized(t.directory, flood_delta(t, sent));
            }
        }
        stats_.add("flood_tools", tools);
        stats_.add("flood_events", n);
    }
    if (spec.end_mark && !stopping_ && sent == body) {
        auto& t = targets.front();
        t.call_open = false;
        bus_.publish_serialized(t.directory, flood_tool(t, sent, "end "));
        stats_.add("flood_tools", 1);
        stats_.add("flood_events", 1);
    }
}

std::shared_ptr<turn> fake_state::start_turn(session& s, turn_spec spec,
                                             json::object const& request) {
    auto t = std::make_shared<turn>(ex_);
    t->spec = std::move(spec);
    t->owner = &s;
    t->user_message_id = new_id("msg");
    t->message_id = new_id("msg");
    t->step_part_id = new_id("prt");
    t->text_part_id = new_id("prt");

    // The user message is stored as sent (directives included), like the real server would.
    json::object user_info{{"id", t->user_message_id},
                           {"sessionID", s.id},
                           {"role", "user"},
                           {"time", {{"created", now_ms()}}}};
    if (auto const* agent = request.if_contains("agent")) user_info["agent"] = *agent;
    if (auto const* model = request.if_contains("model")) user_info["model"] = *model;
    if (auto const* system = request.if_contains("system")) user_info["system"] = *system;
    json::array user_parts;
    for (auto const& p : request.at("parts").as_array()) {
        user_parts.push_back({{"id", new_id("prt")},
                              {"sessionID", s.id},
                              {"messageID", t->user_message_id},
                              {"type", "text"},
                              {"text", p.at("text")}});
    }
    bus_.publish(s.directory, "message.updated", {{"info", user_info}});
    for (auto const& p : user_parts) publish_part(s, p.as_object());
    s.messages.push_back({{"info", std::move(user_info)}, {"parts", std::move(user_parts)}});

    s.turns.push_back(t);
    stats_.add("prompts_started", 1);
    stats_.add("prompts_in_flight", 1);
    asio::co_spawn(ex_, run_turn(t), [](std::exception_ptr e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (std::exception const& x) {
            fmt::print(stderr, "fake_opencode: turn failed: {}\n", x.what());
        }
    });
    return t;
}

void fake_state::abort(std::string_view session_id) {
    stats_.record_abort(session_id);
    auto* s = find_session(session_id);
    if (!s) return;
    std::erase_if(pending_, [&](pending_request const& p) {
        return p.request.at("sessionID").as_string() == session_id;
    });
    for (auto& t : s->turns) {
        if (t->done) continue;
        t->aborted = true;
        t->signal.cancel();
    }
}

void fake_state::shutdown() {
    stopping_ = true;
    for (auto& [id, s] : sessions_) {
        for (auto& t : s->turns) {
            t->signal.cancel();
            t->done_signal.cancel();
        }
    }
    stats_.shutdown();
    bus_.shutdown();
}

asio::awaitable<void> fake_state::wait_done(std::shared_ptr<turn> t) {
    while (!t->done && !stopping_) {
        [[maybe_unused]] auto [ec] = co_await t->done_signal.async_wait(use_tuple);
        if (co_await cancel_requested()) co_return;
    }
}

asio::awaitable<void> fake_state::sleep_until(turn& t, steady_clock::time_point due) {
    t.signal.expires_at(due);
    [[maybe_unused]] auto [ec] = co_await t.signal.async_wait(use_tuple);
}

json::object fake_state::assistant_info(turn const& t, bool completed) const {
    json::object time{{"created", t.created_ms}};
    if (completed) time["completed"] = now_ms();
    bool const billed = completed && t.spec.mode != fault::error;
    // parentID: the turn's user message, as the real server's (the key of its diff).
    json::object info{
        {"id", t.message_id},   {"sessionID", t.owner->id},     {"parentID", t.user_message_id},
        {"role", "assistant"},  {"time", std::move(time)},      {"modelID", "fake-model"},
        {"providerID", "fake"}, {"cost", billed ? 0.0012 : 0.0}};
    std::int64_t output_tokens = 0;
    if (billed) output_tokens = count_words(t.aborted ? t.streamed : t.spec.output);
    info["tokens"] = {{"input", completed ? t.spec.input_tokens : 0},
                      {"output", output_tokens},
                      {"reasoning", 0},
                      {"cache", {{"read", 0}, {"write", 0}}}};
    if (completed && !t.aborted && t.spec.mode != fault::error) {
        info["finish"] = t.ended_on_tool ? "tool-calls" : "stop";
    }
    if (completed && t.aborted) {
        info["error"] = error_body("MessageAbortedError", "The operation was aborted.");
    } else if (completed && t.spec.mode == fault::error) {
        info["error"] = {{"name", "APIError"},
                         {"data", {{"message", "fake provider error"}, {"statusCode", 503}}}};
    }
    return info;
}

void fake_state::begin_turn(turn& t) {
    session& s = *t.owner;
    t.started = true;
    t.created_ms = now_ms();
    // An agentic turn shows its text part only after its steps, as the real server's last LLM
    // call does.
    t.text_started = t.spec.mode != fault::error && !t.spec.agentic();
    auto parts = message_parts(t, false);
    t.message_index = s.messages.size();
    s.messages.push_back({{"info", assistant_info(t, false)}, {"parts", parts}});

    bus_.publish(s.directory, "session.status",
                 {{"sessionID", s.id}, {"status", {{"type", "busy"}}}});
    bus_.publish(s.directory, "message.updated", {{"info", assistant_info(t, false)}});
    for (auto const& p : parts) publish_part(s, p.as_object());
}

void fake_state::publish_part(session const& s, json::object const& part) {
    bus_.publish(s.directory, "message.part.updated",
                 {{"sessionID", s.id}, {"part", part}, {"time", now_ms()}});
}

json::array fake_state::message_parts(turn const& t, bool final) const {
    json::array parts{step_start_part(t)};
    for (auto const& p : t.tool_parts) parts.push_back(p);
    if (!t.patch_part.empty()) parts.push_back(t.patch_part);
    if (t.text_started) {
        std::string_view text;
        if (final) text = t.aborted ? std::string_view(t.streamed) : t.spec.output;
        parts.push_back(text_part(t, text));
    }
    return parts;
}

void fake_state::store_message(turn& t) {
    t.owner->messages.at(t.message_index) = {{"info", assistant_info(t, false)},
                                             {"parts", message_parts(t, false)}};
}

std::size_t fake_state::add_tool_part(turn& t, std::string_view tool) {
    t.tool_parts.push_back(
        {{"id", new_id("prt")},
         {"sessionID", t.owner->id},
         {"messageID", t.message_id},
         {"type", "tool"},
         {"tool", tool},
         {"callID", "call_" + new_id("c").substr(2, 12)},
         {"state", {{"status", "pending"}, {"input", json::object{}}, {"raw", ""}}}});
    publish_part(*t.owner, t.tool_parts.back());
    store_message(t);
    return t.tool_parts.size() - 1;
}

void fake_state::set_tool_state(turn& t, std::size_t index, json::object state) {
    auto& part = t.tool_parts.at(index);
    part["state"] = std::move(state);
    publish_part(*t.owner, part);
    store_message(t);
}

void fake_state::finish_turn(turn& t) {
    session& s = *t.owner;
    if (!t.started) t.created_ms = now_ms();  // aborted while still queued
    // A tool still pending or running when the turn ends (an abort) fails.
    for (std::size_t i = 0; i < t.tool_parts.size(); ++i) {
        auto const& state = t.tool_parts[i].at("state").as_object();
        auto const status = state.at("status").as_string();
        if (status != "pending" && status != "running") continue;
        json::object failed{
            {"status", "error"}, {"input", state.at("input")}, {"error", "Tool execution aborted"}};
        auto const* time = state.if_contains("time");
        failed["time"] = {{"start", time ? time->at("start").as_int64() : now_ms()},
                          {"end", now_ms()}};
        set_tool_state(t, i, std::move(failed));
    }
    auto info = assistant_info(t, true);
    json::array parts;
    if (t.started) parts = message_parts(t, true);
    json::object result{{"info", info}, {"parts", parts}};
    if (t.started) {
        s.messages.at(t.message_index) = result;
    } else {
        s.messages.push_back(result);
    }

    if (t.started && t.text_started) publish_part(s, parts.back().as_object());
    bus_.publish(s.directory, "message.updated", {{"info", info}});
    if (auto const* error = info.if_contains("error")) {
        bus_.publish(s.directory, "session.error", {{"sessionID", s.id}, {"error", *error}});
    }
    bus_.publish(s.directory, "session.status",
                 {{"sessionID", s.id}, {"status", {{"type", "idle"}}}});
    bus_.publish(s.directory, "session.idle", {{"sessionID", s.id}});

    t.result = std::move(result);
    bool const was_front = !s.turns.empty() && s.turns.front().get() == &t;
    std::erase_if(s.turns, [&](auto const& p) { return p.get() == &t; });
    if (was_front && !s.turns.empty()) s.turns.front()->signal.cancel();
    stats_.add("prompts_in_flight", -1);
    stats_.add("prompts_completed", 1);
    // When the turn's end went out: the synchronous reply follows at once, and a prompt_async
    // caller learns it from the session.idle just published.
    stats_.record_answer(s.id);
    t.done = true;
    t.done_signal.cancel();
}

asio::awaitable<void> fake_state::run_turn(std::shared_ptr<turn> t) {
    session& s = *t->owner;
    while (!t->aborted && !stopping_ && s.turns.front() != t) {
        co_await sleep_until(*t, steady_clock::time_point::max());
    }
    if (stopping_) co_return;

    if (!t->aborted) {
        begin_turn(*t);
        if (!t->spec.write_file.empty()) write_file(*t);
        bool goes_on = co_await run_usage_steps(*t);
        if (goes_on) goes_on = co_await run_steps(t);
        if (stopping_) co_return;
        if (goes_on) co_await stream_text(*t);
        if (stopping_) co_return;
    }
    finish_turn(*t);
}

void fake_state::write_file(turn& t) {
    session& s = *t.owner;
    std::ofstream(std::filesystem::path(s.directory) / t.spec.write_file, std::ios::trunc)
        << t.spec.write_text;
    t.patch_part = {{"id", new_id("prt")},
                    {"sessionID", s.id},
                    {"messageID", t.message_id},
                    {"type", "patch"},
                    {"hash", "0000000000000000000000000000000000000000"},
                    {"files", {(std::filesystem::path(s.directory) / t.spec.write_file).string()}}};
    publish_part(s, t.patch_part);
    store_message(t);
    asio::co_spawn(ex_, summarize(s.id, t.user_message_id, t.spec.write_file, t.spec.summary_ms),
                   asio::detached);
}

asio::awaitable<void> fake_state::summarize(std::string session_id, std::string user_message,
                                            std::string file, std::int64_t ms) {
    auto* s = find_session(session_id);
    if (!s) co_return;
    bus_.publish(s->directory, "session.diff",
                 {{"sessionID", session_id}, {"diff", json::array{}}});
    asio::steady_timer timer(ex_, std::chrono::milliseconds(ms));
    [[maybe_unused]] auto [ec] = co_await timer.async_wait(use_tuple);
    s = find_session(session_id);
    if (!s || stopping_) co_return;
    auto& files = s->written[user_message];
    files.push_back(std::move(file));
    auto diffs = file_diffs(s->directory, files);
    for (auto& m : s->messages) {
        auto& info = m.at("info").as_object();
        if (info.at("id").as_string() != user_message) continue;
        info["summary"] = {{"diffs", std::move(diffs)}};
        bus_.publish(s->directory, "message.updated", {{"info", info}});
        break;
    }
}

asio::awaitable<void> fake_state::pause(turn& t, std::int64_t ms) {
    auto const due = steady_clock::now() + std::chrono::milliseconds(ms);
    while (!interrupted(t) && steady_clock::now() < due) co_await sleep_until(t, due);
}

asio::awaitable<void> fake_state::maybe_silence(turn& t) {
    if (t.silence_taken) co_return;
    t.silence_taken = true;
    co_await pause(t, t.spec.silent_ms);
}

asio::awaitable<bool> fake_state::wait_answer(std::shared_ptr<turn> t, std::string const& id) {
    t->answer.reset();
    while (!t->answer && !interrupted(*t)) {
        co_await sleep_until(*t, steady_clock::time_point::max());
    }
    std::erase_if(pending_, [&](pending_request const& p) { return p.id == id; });
    co_return t->answer.has_value();
}

asio::awaitable<bool> fake_state::run_usage_steps(turn& t) {
    session& s = *t.owner;
    auto const& spec = t.spec;
    auto usage = [&](json::object info, double share, bool done) {
        info["cost"] = spec.step_cost * share;
        auto const tokens =
            static_cast<std::int64_t>(static_cast<double>(spec.step_tokens) * share);
        info["tokens"] = {{"input", tokens},
                          {"output", tokens},
                          {"reasoning", 0},
                          {"cache", {{"read", 0}, {"write", 0}}}};
        if (done) {
            info["time"].as_object()["completed"] = now_ms();
            info["finish"] = "tool-calls";
        }
        return info;
    };
    for (std::int64_t step = 0; step < spec.usage_steps; ++step) {
        json::object const base{{"id", new_id("msg")},
                                {"sessionID", s.id},
                                {"role", "assistant"},
                                {"parentID", t.user_message_id},
                                {"time", {{"created", now_ms()}}},
                                {"modelID", "fake-model"},
                                {"providerID", "fake"}};
        // Stored before the turn's final message, which stays the last assistant message.
        auto const index = t.message_index++;
        auto put = [&](json::object info) {
            s.messages.insert(s.messages.begin() + static_cast<std::ptrdiff_t>(index),
                              json::object{{"info", info}, {"parts", json::array{}}});
            bus_.publish(s.directory, "message.updated", {{"info", std::move(info)}});
        };
        auto update = [&](json::object info) {
            s.messages.at(index) = json::object{{"info", info}, {"parts", json::array{}}};
            bus_.publish(s.directory, "message.updated", {{"info", std::move(info)}});
        };
        put(usage(base, 0, false));
        co_await pause(t, spec.step_ms / 2);
        if (interrupted(t)) co_return false;
        update(usage(base, 0.5, false));
        co_await pause(t, spec.step_ms - spec.step_ms / 2);
        if (interrupted(t)) co_return false;
        update(usage(base, 1, true));
    }
    co_return true;
}

asio::awaitable<bool> fake_state::run_steps(std::shared_ptr<turn> tp) {
    turn& t = *tp;
    session& s = *t.owner;
    auto const& spec = t.spec;
    if (!spec.agentic()) {
        co_await maybe_silence(t);
        co_return !interrupted(t);
    }
    for (auto const& step : spec.tools) {
        auto const i = add_tool_part(t, step.tool);
        json::object input{{"command", step.title}};
        auto const start = now_ms();
        set_tool_state(t, i,
                       {{"status", "running"}, {"input", input}, {"time", {{"start", start}}}});
        co_await maybe_silence(t);
        co_await pause(t, step.ms / 2);
        if (interrupted(t)) co_return false;
        set_tool_state(t, i,
                       {{"status", "running"},
                        {"input", input},
                        {"metadata", {{"output", step.output}}},
                        {"time", {{"start", start}}}});
        co_await pause(t, step.ms - step.ms / 2);
        if (interrupted(t)) co_return false;
        json::object time{{"start", start}, {"end", now_ms()}};
        if (step.fail) {
            set_tool_state(t, i,
                           {{"status", "error"},
                            {"input", input},
                            {"error", step.output},
                            {"time", std::move(time)}});
            t.lines.push_back("tool failed: " + step.output);
        } else {
            set_tool_state(
                t, i,
                {{"status", "completed"},
                 {"input", input},
                 {"output", step.output},
                 {"metadata", {{"output", step.output}, {"exit", 0}, {"truncated", false}}},
                 {"title", step.title},
                 {"time", std::move(time)}});
            t.lines.push_back("tool said: " + step.output);
        }
    }
    if (spec.permission) {
        auto const& perm = *spec.permission;
        auto const i = add_tool_part(t, perm.permission);
        auto const command = join(perm.patterns, " && ");
        json::object input{{"command", command}};
        auto const start = now_ms();
        set_tool_state(t, i,
                       {{"status", "running"}, {"input", input}, {"time", {{"start", start}}}});
        co_await maybe_silence(t);
        if (interrupted(t)) co_return false;
        json::array patterns;
        json::array always;
        for (auto const& p : perm.patterns) {
            patterns.emplace_back(p);
            auto a = always_pattern(p);
            if (std::find(always.begin(), always.end(), json::value(a)) == always.end())
                always.emplace_back(a);
        }
        // An earlier "always" for every pattern of this ask lets the tool run unasked, as the
        // real server does for later calls matching `always`.
        std::vector<std::string> keys;
        for (auto const& a : always)
            keys.push_back(perm.permission + '\n' + std::string(a.as_string()));
        bool const allowed = std::all_of(
            keys.begin(), keys.end(), [&](auto const& k) { return s.always_allowed.contains(k); });
        auto const id = new_id("per");
        json::object request{{"id", id},
                             {"sessionID", s.id},
                             {"permission", perm.permission},
                             {"patterns", std::move(patterns)},
                             {"metadata", {{"command", command}}},
                             {"always", std::move(always)},
                             {"tool", tool_ref(t, t.tool_parts[i])}};
        if (allowed) {
            t.answer = json::object{{"reply", "always"}};
        } else {
            pending_.push_back({pending_request::kind::permission, id, s.directory, request, tp});
            bus_.publish(s.directory, "permission.asked", std::move(request));
            stats_.add("permissions_asked", 1);
            if (!co_await wait_answer(tp, id)) co_return false;
        }
        auto const reply = std::string(t.answer->at("reply").as_string());
        if (reply == "always") s.always_allowed.insert(keys.begin(), keys.end());
        auto const* message = t.answer->if_contains("message");
        json::object time{{"start", start}, {"end", now_ms()}};
        if (reply == "reject") {
            std::string error = "The user rejected permission to use this specific tool call.";
            if (message) {
                error =
                    "The user rejected permission to use this specific tool call with the "
                    "following feedback: " +
                    std::string(message->as_string());
            }
            set_tool_state(t, i,
                           {{"status", "error"},
                            {"input", input},
                            {"error", error},
                            {"time", std::move(time)}});
            if (!message) {
                t.ended_on_tool = true;
                co_return false;
            }
            t.lines.push_back("permission rejected: " + std::string(message->as_string()));
        } else {
            set_tool_state(t, i,
                           {{"status", "running"},
                            {"input", input},
                            {"metadata", {{"output", perm.output}}},
                            {"time", {{"start", start}}}});
            set_tool_state(
                t, i,
                {{"status", "completed"},
                 {"input", input},
                 {"output", perm.output},
                 {"metadata", {{"output", perm.output}, {"exit", 0}, {"truncated", false}}},
                 {"title", command},
                 {"time", std::move(time)}});
            t.lines.push_back("permission " + reply + ": " + perm.output);
        }
    }
    if (spec.question) {
        auto const& q = *spec.question;
        auto const i = add_tool_part(t, "question");
        json::array options;
        for (auto const& o : q.options) {
            options.push_back({{"label", o}, {"description", "Answer " + o}});
        }
        json::object question{
            {"question", q.question}, {"header", q.header}, {"options", std::move(options)}};
        if (q.multiple) question["multiple"] = true;
        json::object input{{"questions", json::array{question}}};
        auto const start = now_ms();
        auto const id = new_id("que");
        json::object request{{"id", id},
                             {"sessionID", s.id},
                             {"questions", json::array{question}},
                             {"tool", tool_ref(t, t.tool_parts[i])}};
        pending_.push_back({pending_request::kind::question, id, s.directory, request, tp});
        bus_.publish(s.directory, "question.asked", std::move(request));
        stats_.add("questions_asked", 1);
        set_tool_state(t, i,
                       {{"status", "running"}, {"input", input}, {"time", {{"start", start}}}});
        co_await maybe_silence(t);
        if (!co_await wait_answer(tp, id)) co_return false;
        json::object time{{"start", start}, {"end", now_ms()}};
        auto const* answers = t.answer->if_contains("answers");
        if (!answers) {
            set_tool_state(t, i,
                           {{"status", "error"},
                            {"input", input},
                            {"error", "The user dismissed this question"},
                            {"time", std::move(time)}});
            t.ended_on_tool = true;
            co_return false;
        }
        // The first answer is the one to this (only) question.
        std::vector<std::string> labels;
        if (!answers->as_array().empty()) {
            for (auto const& a : answers->as_array().front().as_array())
                labels.emplace_back(a.as_string());
        }
        auto output = fmt::format(
            "User has answered your questions: \"{}\"=\"{}\". You can now continue with the "
            "user's answers in mind.",
            q.question, join(labels, ", "));
        set_tool_state(t, i,
                       {{"status", "completed"},
                        {"input", input},
                        {"output", output},
                        {"metadata", {{"answers", *answers}, {"truncated", false}}},
                        {"title", "Asked 1 question"},
                        {"time", std::move(time)}});
        t.lines.push_back("answered: " + join(labels, ","));
    }
    if (!spec.fixed_output) t.spec.output = join(t.lines, "\n");
    co_return !interrupted(t);
}

json::array fake_state::pending(pending_request::kind type,
                                std::optional<std::string> const& directory) const {
    json::array out;
    for (auto const& p : pending_) {
        if (p.type != type || (directory && *directory != p.directory)) continue;
        out.push_back(p.request);
    }
    return out;
}

bool fake_state::answer(pending_request::kind type, std::string_view id,
                        std::string_view replied_type, json::object event, json::object reply) {
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](pending_request const& p) { return p.type == type && p.id == id; });
    if (it == pending_.end()) return false;
    auto const owner = it->owner.lock();
    auto const directory = it->directory;
    json::object props{{"sessionID", it->request.at("sessionID")}, {"requestID", id}};
    for (auto& [k, v] : event) props[k] = std::move(v);
    pending_.erase(it);
    bus_.publish(directory, replied_type, std::move(props));
    if (owner && !owner->done) {
        owner->answer = std::move(reply);
        owner->signal.cancel();
    }
    return true;
}

asio::awaitable<void> fake_state::stream_text(turn& turn_ref) {
    auto* const t = &turn_ref;
    session& s = *t->owner;
    if (!t->text_started && t->spec.mode != fault::error) {
        t->text_started = true;
        publish_part(s, text_part(*t, ""));
        store_message(*t);
    }
    auto const start = steady_clock::now();
    bool const never_ends = t->spec.mode == fault::hang || t->spec.mode == fault::stall;
    auto const end = never_ends ? steady_clock::time_point::max()
                                : start + std::chrono::milliseconds(t->spec.latency_ms);
    // Deltas at equal steps inside the turn, the last one a step before its end, so a
    // reader sees partial text mid-turn. Failing and stuck providers stream nothing.
    auto const pieces = t->spec.mode == fault::none ? split_chunks(t->spec.output, t->spec.chunks)
                                                    : std::vector<std::string_view>{};
    auto const step = std::chrono::milliseconds(t->spec.latency_ms) /
                      static_cast<std::int64_t>(pieces.size() + 1);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        auto const due = start + step * static_cast<std::int64_t>(i + 1);
        while (!t->aborted && !stopping_ && steady_clock::now() < due) {
            co_await sleep_until(*t, due);
        }
        if (t->aborted || stopping_) break;
        t->streamed.append(pieces[i]);
        bus_.publish(s.directory, "message.part.delta",
                     {{"sessionID", s.id},
                      {"messageID", t->message_id},
                      {"partID", t->text_part_id},
                      {"field", "text"},
                      {"delta", pieces[i]}});
    }
    while (!t->aborted && !stopping_ && steady_clock::now() < end) {
        co_await sleep_until(*t, end);
    }
}

}  // namespace fake
