// UTF-8 helpers for text that crosses into JSON: cutting at a byte cap without splitting a
// character, and cleaning bytes that are not valid UTF-8 (a proxy's Latin-1 error page).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace agentd::protocol {

// Length of the longest prefix of `s` of at most `max` bytes that ends on a character boundary.
std::size_t utf8_prefix(std::string_view s, std::size_t max);
// `s` with every byte that is not part of a valid UTF-8 sequence replaced by '?'.
std::string utf8_clean(std::string_view s);

}  // namespace agentd::protocol
