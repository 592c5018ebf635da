// Scanner of `[[fake ...]]` blocks (see directive_blocks.hpp). Pure string handling: no I/O, so
// it is cheap to compile and easy to reason about.
#include "fake_common/directive_blocks.hpp"

#include <charconv>
#include <stdexcept>

namespace fake_common {
namespace {

constexpr std::string_view block_open = "[[fake";
constexpr std::string_view block_close = "]]";

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void apply_token(std::string_view token, directive_key const& on_key) {
    auto eq = token.find('=');
    if (eq == std::string_view::npos || eq == 0)
        throw std::invalid_argument("bad fake directive token '" + std::string(token) +
                                    "' (want key=value)");
    on_key(token.substr(0, eq), token.substr(eq + 1));
}

void apply_block(std::string_view body, directive_key const& on_key) {
    std::size_t i = 0;
    while (i < body.size()) {
        while (i < body.size() && is_space(body[i])) ++i;
        std::size_t start = i;
        while (i < body.size() && !is_space(body[i])) ++i;
        if (i > start) apply_token(body.substr(start, i - start), on_key);
    }
}

}  // namespace

std::string strip_directive_blocks(std::string_view text, directive_key const& on_key) {
    std::string result;
    result.reserve(text.size());
    std::size_t pos = 0;
    for (;;) {
        auto open = text.find(block_open, pos);
        // "[[fakeX" is ordinary text: a block needs whitespace or the closing "]]" after "fake".
        while (open != std::string_view::npos) {
            auto after = open + block_open.size();
            if (after < text.size() && (is_space(text[after]) || text[after] == ']')) break;
            open = text.find(block_open, open + 1);
        }
        if (open == std::string_view::npos) break;
        auto close = text.find(block_close, open + block_open.size());
        if (close == std::string_view::npos)
            throw std::invalid_argument("unterminated [[fake ...]] directive");
        result.append(text.substr(pos, open - pos));
        apply_block(text.substr(open + block_open.size(), close - open - block_open.size()),
                    on_key);
        pos = close + block_close.size();
    }
    result.append(text.substr(pos));
    return result;
}

std::int64_t directive_count(std::string_view key, std::string_view value, std::int64_t max) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc{} || end != value.data() + value.size() || n < 0 || n > max)
        throw std::invalid_argument("bad fake directive value " + std::string(key) + "=" +
                                    std::string(value));
    return n;
}

}  // namespace fake_common
