// Command-line parsing and the main of the fake upstreams (see fake_main.hpp).
#include "fake_common/fake_main.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>

namespace fake_common {

std::int64_t flag_count(std::string_view flag, std::string_view value) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 0)
        throw std::invalid_argument(std::string(flag) + " wants a non-negative integer");
    return n;
}

listen_address parse_listen(std::string_view value) {
    auto colon = value.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument("--listen wants HOST:PORT");
    auto port = flag_count("--listen port", value.substr(colon + 1));
    if (port > 65535) throw std::invalid_argument("--listen port out of range");
    auto host = value.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return {std::string(host), static_cast<unsigned short>(port)};
}

void parse_flags(int argc, char** argv, std::string_view usage,
                 std::initializer_list<std::string_view> switches,
                 std::function<void(std::string_view, std::string_view)> const& on_flag) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        if (auto eq = arg.find('='); eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
        } else if (std::find(switches.begin(), switches.end(), arg) != switches.end()) {
            // a switch: no value
        } else if (arg == "--help" || arg == "-h") {
            std::fwrite(usage.data(), 1, usage.size(), stdout);
            std::exit(0);
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            throw std::invalid_argument(std::string(arg) + " needs a value");
        }
        on_flag(arg, value);
    }
}

int fake_main(std::string_view name, std::string_view usage, std::function<void()> const& parse,
              std::function<int()> const& serve) {
    try {
        parse();
    } catch (std::exception const& e) {
        std::fprintf(stderr, "%.*s: %s\n%.*s", int(name.size()), name.data(), e.what(),
                     int(usage.size()), usage.data());
        return 2;
    }
    try {
        return serve();
    } catch (std::exception const& e) {
        std::fprintf(stderr, "%.*s: %s\n", int(name.size()), name.data(), e.what());
        return 1;
    }
}

}  // namespace fake_common
