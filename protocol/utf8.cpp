// UTF-8 cutting and cleaning; see utf8.hpp.
#include "protocol/utf8.hpp"

namespace agentd::protocol {

namespace {

// Length of the valid sequence starting at s[i], or 0 when it is invalid or incomplete.
std::size_t sequence_at(std::string_view s, std::size_t i) {
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = b < 0x80         ? 1
                      : (b >> 5) == 6  ? 2
                      : (b >> 4) == 14 ? 3
                      : (b >> 3) == 30 ? 4
                                       : 0;
    if (len == 0 || i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
    if (len == 2 && b < 0xC2) return 0;  // overlong
    auto b1 = static_cast<unsigned char>(s[i + 1 < s.size() ? i + 1 : i]);
    if (len == 3 && ((b == 0xE0 && b1 < 0xA0) || (b == 0xED && b1 >= 0xA0))) return 0;
    if (len == 4 && ((b == 0xF0 && b1 < 0x90) || (b == 0xF4 && b1 >= 0x90) || b > 0xF4)) return 0;
    return len;
}

}  // namespace

std::size_t utf8_prefix(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s.size();
    std::size_t cut = max;
    // Back off over continuation bytes to the start of the character that straddles the cap.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return cut;
}

std::string utf8_clean(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        auto len = sequence_at(s, i);
        if (len == 0) {
            out.push_back('?');
            ++i;
        } else {
            out.append(s.substr(i, len));
            i += len;
        }
    }
    return out;
}

}  // namespace agentd::protocol
