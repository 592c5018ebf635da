// The command line of a fake upstream: `--flag value` or `--flag=value`, --help, a listen
// address, counts; and its main's exit codes (2 on bad usage, 1 when serving fails).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

namespace fake_common {

// A non-negative integer flag value; throws std::invalid_argument naming the flag.
std::int64_t flag_count(std::string_view flag, std::string_view value);

struct listen_address {
    std::string host;  // without the brackets of [::1]
    unsigned short port = 0;
};
listen_address parse_listen(std::string_view value);

// Walks argv; `switches` take no value (on_flag gets an empty one). --help prints `usage` and
// exits 0. on_flag throws std::invalid_argument for an unknown flag or a bad value.
void parse_flags(int argc, char** argv, std::string_view usage,
                 std::initializer_list<std::string_view> switches,
                 std::function<void(std::string_view flag, std::string_view value)> const& on_flag);

// Runs parse (a std::exception: the message and usage on stderr, exit 2), then serve (a
// std::exception: exit 1); `name` prefixes the messages.
int fake_main(std::string_view name, std::string_view usage, std::function<void()> const& parse,
              std::function<int()> const& serve);

}  // namespace fake_common
