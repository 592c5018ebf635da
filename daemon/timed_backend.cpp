// timed_backend: forwards each call and records its wall time, whatever its outcome. One
// coroutine frame per upstream call is added, next to the HTTP exchange it measures.
#include "daemon/timed_backend.hpp"

#include <chrono>

namespace agentd::daemon {
namespace asio = boost::asio;
namespace up = jobs::upstream;

namespace {

// Records the time from construction to destruction, i.e. until the call's co_return.
class call_timer {
  public:
    call_timer(metrics& m, upstream_call call)
        : m_(m), call_(call), began_(std::chrono::steady_clock::now()) {}
    ~call_timer() {
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - began_;
        m_.observe_upstream(call_, took.count());
    }
    call_timer(call_timer const&) = delete;
    call_timer& operator=(call_timer const&) = delete;

  private:
    metrics& m_;
    upstream_call call_;
    std::chrono::steady_clock::time_point began_;
};

class timed final : public up::backend {
  public:
    timed(std::unique_ptr<up::backend> inner, metrics& m) : inner_(std::move(inner)), m_(m) {}

    std::string_view name() const override { return inner_->name(); }
    bool replays_transcript() const override { return inner_->replays_transcript(); }

    asio::awaitable<up::up_result<std::string>> create_upstream_session(
        up::upstream_session_request const& req, up::call_control& ctl) override {
        call_timer t(m_, upstream_call::create);
        auto out = co_await inner_->create_upstream_session(req, ctl);
        co_return out;
    }

    asio::awaitable<up::up_result<up::prompt_outcome>> prompt(std::string const& session,
                                                              up::prompt_request const& req,
                                                              up::call_control& ctl) override {
        call_timer t(m_, upstream_call::prompt);
        auto out = co_await inner_->prompt(session, req, ctl);
        co_return out;
    }

    asio::awaitable<up::up_result<void>> abort(
        std::string const& session, std::optional<std::string> const& directory) override {
        call_timer t(m_, upstream_call::abort);
        auto out = co_await inner_->abort(session, directory);
        co_return out;
    }

    asio::awaitable<up::up_result<std::string>> read_partial(
        std::string const& session, std::optional<std::string> const& directory) override {
        call_timer t(m_, upstream_call::read_partial);
        auto out = co_await inner_->read_partial(session, directory);
        co_return out;
    }

    asio::awaitable<up::up_result<std::optional<up::prompt_outcome>>> recover(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt) override {
        call_timer t(m_, upstream_call::recover);
        auto out = co_await inner_->recover(session, directory, own_prompt);
        co_return out;
    }

    asio::awaitable<up::up_result<std::optional<std::set<std::string>>>> busy_upstream_sessions(
        std::vector<std::optional<std::string>> const& directories) override {
        call_timer t(m_, upstream_call::recover);
        auto out = co_await inner_->busy_upstream_sessions(directories);
        co_return out;
    }

    asio::awaitable<up::up_result<up::prompt_outcome>> follow(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& own_prompt, up::call_control& ctl) override {
        auto out = co_await inner_->follow(session, directory, own_prompt, ctl);
        co_return out;
    }

    asio::awaitable<up::up_result<void>> respond(std::string const& session,
                                                 std::optional<std::string> const& directory,
                                                 up::request_reply const& reply) override {
        call_timer t(m_, upstream_call::respond);
        auto out = co_await inner_->respond(session, directory, reply);
        co_return out;
    }

    asio::awaitable<up::up_result<std::vector<protocol::pending_request>>> pending_requests(
        std::string const& session, std::optional<std::string> const& directory) override {
        call_timer t(m_, upstream_call::recover);
        auto out = co_await inner_->pending_requests(session, directory);
        co_return out;
    }

    // A worktree is part of creating an isolated job; a diff is a read like a partial's.
    asio::awaitable<up::up_result<protocol::worktree_ref>> create_worktree(
        std::optional<std::string> const& directory, up::call_control& ctl) override {
        call_timer t(m_, upstream_call::create);
        auto out = co_await inner_->create_worktree(directory, ctl);
        co_return out;
    }

    asio::awaitable<up::up_result<void>> remove_worktree(
        std::optional<std::string> const& directory, std::string const& worktree) override {
        auto out = co_await inner_->remove_worktree(directory, worktree);
        co_return out;
    }

    asio::awaitable<up::up_result<std::vector<protocol::file_change>>> session_diff(
        std::string const& session, std::optional<std::string> const& directory,
        std::string const& user_message, std::size_t max_bytes) override {
        call_timer t(m_, upstream_call::read_partial);
        auto out = co_await inner_->session_diff(session, directory, user_message, max_bytes);
        co_return out;
    }

    // Not timed: a wait on the event stream, part of the prompt's time as the job sees it.
    asio::awaitable<std::optional<bool>> turn_changed_files(std::string const& session,
                                                            up::prompt_outcome const& out,
                                                            up::call_control& ctl) override {
        auto changed = co_await inner_->turn_changed_files(session, out, ctl);
        co_return changed;
    }

    // Not timed: a pool's background check, not a job's call.
    asio::awaitable<up::up_result<void>> health(
        std::chrono::steady_clock::time_point deadline) override {
        auto out = co_await inner_->health(deadline);
        co_return out;
    }

    void start(std::shared_ptr<up::event_sink> sink) override { inner_->start(std::move(sink)); }
    void stop() override { inner_->stop(); }

  private:
    std::unique_ptr<up::backend> inner_;
    metrics& m_;
};

}  // namespace

std::unique_ptr<up::backend> timed_backend(std::unique_ptr<up::backend> inner, metrics& m) {
    return std::make_unique<timed>(std::move(inner), m);
}

}  // namespace agentd::daemon
