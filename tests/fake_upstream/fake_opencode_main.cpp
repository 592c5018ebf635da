// Entry point of fake_opencode, a stand-in for `opencode serve` in agentd's tests. Parses the
// flags and hands over to the server; exits 0 on SIGTERM/SIGINT, 2 on bad usage.
#include "options.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage =
    "usage: fake_opencode [--listen HOST:PORT] [--latency-ms N] [--create-latency-ms N]\n"
    "                     [--heartbeat-ms N] [--password P] [--unscoped-events]\n"
    "                     [--event-queue-bytes N]\n";

std::int64_t parse_count(std::string_view flag, std::string_view value) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 0) {
        throw std::invalid_argument(std::string(flag) + " wants a non-negative integer");
    }
    return n;
}

void parse_listen(std::string_view value, fake::options& opts) {
    auto colon = value.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument("--listen wants HOST:PORT");
    auto port = parse_count("--listen port", value.substr(colon + 1));
    if (port > 65535) throw std::invalid_argument("--listen port out of range");
    opts.host = std::string(value.substr(0, colon));
    if (opts.host.size() >= 2 && opts.host.front() == '[' && opts.host.back() == ']') {
        opts.host = opts.host.substr(1, opts.host.size() - 2);
    }
    opts.port = static_cast<unsigned short>(port);
}

// Later flags win, so a caller can override defaults it was handed.
fake::options parse_args(int argc, char** argv) {
    fake::options opts;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (arg == "--unscoped-events") {
            opts.scoped_events = false;
            continue;
        } else if (arg == "--help" || arg == "-h") {
            std::fputs(usage.data(), stdout);
            std::exit(0);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            throw std::invalid_argument(std::string(arg) + " needs a value");
        }
        if (arg == "--listen") {
            parse_listen(value, opts);
        } else if (arg == "--latency-ms") {
            opts.latency_ms = parse_count(arg, value);
        } else if (arg == "--create-latency-ms") {
            opts.create_latency_ms = parse_count(arg, value);
        } else if (arg == "--heartbeat-ms") {
            opts.heartbeat_ms = parse_count(arg, value);
        } else if (arg == "--event-queue-bytes") {
            opts.event_queue_bytes = static_cast<std::size_t>(parse_count(arg, value));
        } else if (arg == "--password") {
            opts.password = std::string(value);
        } else {
            throw std::invalid_argument("unknown flag " + std::string(arg));
        }
    }
    return opts;
}

}  // namespace

int main(int argc, char** argv) {
    fake::options opts;
    try {
        opts = parse_args(argc, argv);
    } catch (std::exception const& e) {
        std::fprintf(stderr, "fake_opencode: %s\n%s", e.what(), usage.data());
        return 2;
    }
    try {
        return fake::run_server(opts);
    } catch (std::exception const& e) {
        std::fprintf(stderr, "fake_opencode: %s\n", e.what());
        return 1;
    }
}
