// fake_upstream implementation: process start-up through the listening line, and thin JSON
// wrappers over the fake server's /_fake/ endpoints.
#include "fake_upstream.hpp"

#include "http_client.hpp"

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <csignal>
#include <cstdio>
#include <regex>
#include <stdexcept>

namespace agentd::test {
namespace {

constexpr auto startup_timeout = std::chrono::seconds(5);

boost::json::object parse_object(http_response const& res, std::string_view what) {
    if (res.status != 200) {
        throw std::runtime_error(fmt::format("{} answered {}: {}", what, res.status, res.body));
    }
    return boost::json::parse(res.body).as_object();
}

}  // namespace

fake_upstream::fake_upstream(std::string binary) : fake_upstream(std::move(binary), {}) {}

fake_upstream::fake_upstream(std::string binary, std::vector<std::string> extra_args) {
    std::vector<std::string> argv{std::move(binary), "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<child_process>(std::move(argv));
    static std::regex const listening(R"(fake_opencode listening on http://127\.0\.0\.1:(\d+))");
    auto port = process_->wait_for_line(listening, startup_timeout);
    if (!port) {
        throw std::runtime_error("fake_opencode did not start; stderr:\n" +
                                 process_->stderr_text());
    }
    port_ = static_cast<unsigned short>(std::stoi(*port));
}

fake_upstream::~fake_upstream() {
    if (!stopped_) stop();
    // What the fake logged is often the quickest explanation of a failed test.
    if (::testing::Test::HasFailure()) {
        std::fprintf(stderr, "---- fake_opencode stderr ----\n%s------------------------------\n",
                     process_->stderr_text().c_str());
    }
}

std::string fake_upstream::url() const {
    return fmt::format("http://127.0.0.1:{}", port_);
}

boost::json::object fake_upstream::stats() const {
    return parse_object(http_request(port_, "GET", "/_fake/stats"), "/_fake/stats");
}

bool fake_upstream::wait_counter(std::string const& name, std::int64_t min,
                                 std::chrono::milliseconds timeout) const {
    return wait_on(fmt::format("counter={}&min={}", name, min), timeout);
}

bool fake_upstream::wait_counter_at_most(std::string const& name, std::int64_t max,
                                         std::chrono::milliseconds timeout) const {
    return wait_on(fmt::format("counter={}&max={}", name, max), timeout);
}

bool fake_upstream::wait_on(std::string const& condition, std::chrono::milliseconds timeout) const {
    auto target = fmt::format("/_fake/wait?{}&timeout_ms={}", condition, timeout.count());
    // The server answers by itself at `timeout`; the client deadline only guards against a
    // wedged server.
    auto res = http_request(port_, "GET", target, {}, {}, timeout + std::chrono::seconds(5));
    return parse_object(res, "/_fake/wait").at("ok").as_bool();
}

void fake_upstream::reset() const {
    parse_object(http_request(port_, "POST", "/_fake/reset"), "/_fake/reset");
}

std::optional<int> fake_upstream::stop(std::chrono::milliseconds timeout) {
    stopped_ = true;
    process_->signal(SIGTERM);
    return process_->wait_exit(timeout);
}

}  // namespace agentd::test
