// watch and the live wait display: a ws_handler each, over one /ws connection subscribed with a
// snapshot (agents_subscribe {snapshot: true}), so the board starts complete and every later
// change arrives as an agents_event. A terminal gets its block redrawn in place every tick. When
// a followed job waits for input, the handler ends the session, the requests are settled
// (input.hpp: asked inline, or printed with exit 5) and a new session starts from a new snapshot.
#include "live.hpp"

#include "app.hpp"
#include "discover.hpp"
#include "exit_codes.hpp"
#include "input.hpp"
#include "live_view.hpp"
#include "rpc.hpp"
#include "ws_client.hpp"

#include <fmt/core.h>

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

namespace agentctl {
namespace {

using namespace std::chrono_literals;
constexpr auto tick = 100ms;  // spinner and elapsed refresh on a terminal

std::string subscribe_request(invocation const& inv, bool all) {
    boost::json::object params{{"snapshot", true}};
    if (all)
        params["all"] = true;
    else
        params["session"] = inv.globals.session.value_or("default");
    return encode_request({"agents_subscribe", std::move(params)});
}

std::vector<std::string> split_lines(std::string const& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// The block drawn last on the terminal, so the next draw can go back over it.
class terminal_block {
  public:
    void draw(std::vector<std::string> lines) {
        auto columns = terminal_columns();  // asked each time: the window may be resized
        for (auto& line : lines) line = fit_width(line, columns);
        fmt::print("{}", redraw(drawn_, lines));
        std::fflush(stdout);
        drawn_ = lines.size();
    }

  private:
    std::size_t drawn_ = 0;
};

void print_line(std::string const& line) {
    fmt::print("{}", line);
    std::fflush(stdout);  // a pipe reader follows changes as they happen
}

// A handler that stops its session when a followed job has a request nobody has settled yet
// (unless --on-input ignore), so that it can be settled between sessions.
class answering_handler : public ws_handler {
  public:
    explicit answering_handler(invocation const& inv) : inv_(inv) {}

    // The requests the session stopped for (empty when it ended for another reason).
    std::vector<input_request> take_asks() { return std::exchange(asks_, {}); }

    // Before the next session: those requests are settled and `away` was spent on them.
    virtual void resume(live_clock::duration away) = 0;

  protected:
    // True when a job among `ids` on `board` has requests not yet asked about: they are then
    // kept for take_asks() and the session should stop.
    bool stop_for_input(job_board const& board, std::vector<std::string> const& ids) {
        if (inv_.cmd.ignore_input) return false;
        for (auto const& id : ids) {
            auto const* view = board.find(id);
            if (view == nullptr) continue;
            for (auto& r : requests_of(*view)) {
                std::string request_id(r.request.at("id").as_string());
                if (handled_.insert(request_id).second) asks_.push_back(std::move(r));
            }
        }
        return !asks_.empty();
    }

    invocation const& inv_;

  private:
    std::set<std::string> handled_;  // request ids asked about (answered or not) in this run
    std::vector<input_request> asks_;
};

class watcher final : public answering_handler {
  public:
    watcher(invocation const& inv, bool tty) : answering_handler(inv), tty_(tty) {}

    void resume(live_clock::duration) override {
        board_ = {};
        snapshot_ = false;
        block_ = {};
    }

    std::vector<std::string> opening() override {
        return {subscribe_request(inv_, inv_.cmd.watch_all)};
    }

    bool on_message(std::string_view text) override {
        auto msg = classify(text);
        auto now = live_clock::now();
        if (msg.what == ws_message::kind::response) {
            board_.take_snapshot(msg.result, now);
            snapshot_ = true;
            if (inv_.cmd.watch_once) {
                print_line(board_table(board_, now, terminal_columns()));
                return false;
            }
            for (auto const& id : board_.ids()) note(id);
            if (!tty_)  // oldest first, as later changes will follow
                for (auto const& id : board_.ids()) print_line(event_line(board_.at(id, now)));
        } else if (msg.what == ws_message::kind::event) {
            bool changed = board_.update(msg.job, now);
            auto id = read_job(msg.job).id;
            note(id);
            if (!tty_ && changed) print_line(event_line(board_.at(id, now)));
        } else {
            return true;
        }
        if (tty_) block_.draw(split_lines(board_table(board_, now, terminal_columns())));
        if (snapshot_ && !inv_.cmd.watch_once && stop_for_input(board_, board_.ids())) return false;
        return !(inv_.cmd.until_idle && snapshot_ && board_.idle());
    }

    bool on_tick() override {
        if (tty_ && snapshot_)
            block_.draw(split_lines(board_table(board_, live_clock::now(), terminal_columns())));
        return true;
    }

    // 0 when every job that was unfinished during the watch completed.
    int exit_code() const {
        bool bad = std::any_of(watched_.begin(), watched_.end(), [&](std::string const& id) {
            const auto* view = board_.find(id);
            return view == nullptr || !is_completed(read_job(*view).state);
        });
        return bad ? exit_failed : exit_ok;
    }

  private:
    void note(std::string const& id) {
        if (!board_.terminal(id)) watched_.insert(id);
    }

    bool tty_;
    job_board board_;
    bool snapshot_ = false;
    std::set<std::string> watched_;
    terminal_block block_;
};

class progress final : public answering_handler {
  public:
    // No deadline: until the jobs end.
    progress(invocation const& inv, std::vector<std::string> ids,
             std::optional<live_clock::time_point> deadline)
        : answering_handler(inv),
          ids_(std::move(ids)),
          selected_(!ids_.empty()),
          deadline_(deadline) {}

    void resume(live_clock::duration away) override {
        board_ = {};
        snapshot_ = false;
        block_ = {};
        if (deadline_) *deadline_ += away;  // time spent answering is not waiting time
    }

    std::vector<std::string> opening() override { return {subscribe_request(inv_, false)}; }

    bool on_message(std::string_view text) override {
        auto msg = classify(text);
        auto now = live_clock::now();
        if (msg.what == ws_message::kind::response) {
            board_.take_snapshot(msg.result, now);
            snapshot_ = true;
            if (!selected_) unfinished_from_snapshot();
            selected_ = true;
        } else if (msg.what == ws_message::kind::event) {
            board_.update(msg.job, now);
        }
        draw(now);
        if (snapshot_ && stop_for_input(board_, ids_)) return false;
        return !finished(now);
    }

    bool on_tick() override {
        auto now = live_clock::now();
        ++frame_;
        draw(now);
        return !finished(now);
    }

    std::vector<std::string> const& ids() const { return ids_; }

  private:
    // Without ids: the session's jobs not yet finished now, oldest first (as agents_wait does).
    void unfinished_from_snapshot() {
        for (auto const& id : board_.ids())
            if (!board_.terminal(id)) ids_.push_back(id);
    }

    bool finished(live_clock::time_point now) const {
        if (deadline_ && now >= *deadline_) return true;
        if (!snapshot_) return false;
        auto done = [&](std::string const& id) { return board_.terminal(id); };
        return inv_.cmd.wait_any && !ids_.empty() ? std::any_of(ids_.begin(), ids_.end(), done)
                                                  : std::all_of(ids_.begin(), ids_.end(), done);
    }

    void draw(live_clock::time_point now) {
        if (snapshot_) block_.draw(progress_lines(board_, ids_, now, frame_, terminal_columns()));
    }

    std::vector<std::string> ids_;
    bool selected_;  // ids_ holds the jobs to wait for (given, or taken from the first snapshot)
    std::optional<live_clock::time_point> deadline_;
    job_board board_;
    bool snapshot_ = false;
    std::size_t frame_ = 0;
    terminal_block block_;
};

void follow(invocation const& inv, ws_handler& handler) {
    auto to = parse_url(resolve_url(inv.globals));
    auto creds = resolve_credentials(inv.globals);
    run_ws(to, creds.token, std::chrono::milliseconds(inv.globals.http_timeout_ms), tick, handler);
}

// Sessions until the handler ends one for a reason other than input; nullopt then, or the exit
// code when input was needed and nobody here could give it.
std::optional<int> follow_answering(invocation const& inv, answering_handler& handler) {
    for (;;) {
        follow(inv, handler);
        auto asks = handler.take_asks();
        if (asks.empty()) return std::nullopt;
        auto asked = live_clock::now();
        if (auto code = settle(inv, asks)) return code;
        handler.resume(live_clock::now() - asked);
    }
}

}  // namespace

std::size_t terminal_columns() {
    winsize size{};
    bool known = ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0;
    return known ? size.ws_col : 80;
}

bool wants_live_display(invocation const& inv) {
    return !inv.globals.json && ::isatty(STDOUT_FILENO) == 1;
}

int run_watch(invocation const& inv) {
    watcher w(inv, wants_live_display(inv));
    if (auto code = follow_answering(inv, w)) return *code;
    return inv.cmd.until_idle ? w.exit_code() : exit_ok;
}

int run_live_wait(invocation const& inv, std::vector<std::string> ids) {
    std::optional<live_clock::time_point> deadline;
    if (inv.cmd.wait_timeout_ms)
        deadline = live_clock::now() + std::chrono::milliseconds(*inv.cmd.wait_timeout_ms);
    progress p(inv, std::move(ids), deadline);
    if (auto code = follow_answering(inv, p)) return *code;
    // The outcome as the daemon states it, printed like a plain wait: asked with timeout 0 now
    // that the display has seen the jobs end (or the time run out).
    if (p.ids().empty()) return exit_ok;  // nothing was unfinished: nothing to report
    auto final_wait = inv;
    final_wait.cmd.kind = command_kind::wait;
    final_wait.cmd.args = p.ids();
    final_wait.cmd.wait_timeout_ms = 0;
    return run_request(final_wait);
}

}  // namespace agentctl
