// Entry point of fake_opencode, a stand-in for `opencode serve` in agentd's tests. Parses the
// flags and hands over to the server; exits 0 on SIGTERM/SIGINT, 2 on bad usage.
#include "fake_common/fake_main.hpp"
#include "options.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage =
    "usage: fake_opencode [--listen HOST:PORT] [--latency-ms N] [--create-latency-ms N]\n"
    "                     [--heartbeat-ms N] [--password P] [--unscoped-events]\n"
    "                     [--event-queue-bytes N] [--endless-event-line]\n"
    "                     [--lists-latency-ms N] [--lists-fault F]\n";

// Later flags win, so a caller can override defaults it was handed.
void apply_flag(std::string_view flag, std::string_view value, fake::options& opts) {
    using fake_common::flag_count;
    if (flag == "--listen") {
        auto at = fake_common::parse_listen(value);
        opts.host = at.host;
        opts.port = at.port;
    } else if (flag == "--latency-ms") {
        opts.latency_ms = flag_count(flag, value);
    } else if (flag == "--create-latency-ms") {
        opts.create_latency_ms = flag_count(flag, value);
    } else if (flag == "--heartbeat-ms") {
        opts.heartbeat_ms = flag_count(flag, value);
    } else if (flag == "--event-queue-bytes") {
        opts.event_queue_bytes = static_cast<std::size_t>(flag_count(flag, value));
    } else if (flag == "--password") {
        opts.password = std::string(value);
    } else if (flag == "--unscoped-events") {
        opts.scoped_events = false;
    } else if (flag == "--lists-latency-ms") {
        opts.lists_latency_ms = flag_count(flag, value);
    } else if (flag == "--lists-fault") {
        auto f = fake::parse_fault(value);
        if (!f || *f == fake::fault::error || *f == fake::fault::stall)
            throw std::invalid_argument("--lists-fault needs an HTTP fault, not " +
                                        std::string(value));
        opts.lists_fault = *f;
    } else if (flag == "--endless-event-line") {
        opts.endless_event_line = true;
    } else {
        throw std::invalid_argument("unknown flag " + std::string(flag));
    }
}

}  // namespace

int main(int argc, char** argv) {
    fake::options opts;
    return fake_common::fake_main(
        "fake_opencode", usage,
        [&] {
            fake_common::parse_flags(argc, argv, usage,
                                     {"--unscoped-events", "--endless-event-line"},
                                     [&](auto flag, auto value) { apply_flag(flag, value, opts); });
        },
        [&] { return fake::run_server(opts); });
}
