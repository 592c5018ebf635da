// Plain-decimal JSON text: a pass over the serialized text that skips strings and rewrites
// exponent-form numbers by moving their decimal point. See json_text.hpp.
#include "protocol/json_text.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstring>

namespace agentd::protocol {
namespace {

bool number_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// `1.2E-3` -> `0.0012`, `1.5E0` -> `1.5`, `1E2` -> `100`, `-0E0` -> `-0`. Anything that does
// not parse as mantissa and exponent is returned as it was.
std::string expand(std::string_view token) {
    auto e = token.find_first_of("eE");
    std::string_view mantissa = token.substr(0, e);
    std::string_view exp_text = token.substr(e + 1);
    if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
    int exp = 0;
    auto [end, ec] = std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
    if (ec != std::errc{} || end != exp_text.data() + exp_text.size() || exp > 400 || exp < -400)
        return std::string(token);
    std::string out;
    if (!mantissa.empty() && mantissa.front() == '-') {
        out += '-';
        mantissa.remove_prefix(1);
    }
    auto dot = mantissa.find('.');
    std::string digits(mantissa.substr(0, dot));
    if (dot != std::string_view::npos) digits += mantissa.substr(dot + 1);
    if (digits.empty()) return std::string(token);
    // The decimal point sits after `point` digits.
    long point = static_cast<long>(dot == std::string_view::npos ? mantissa.size() : dot) + exp;
    if (point <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-point), '0');
        out += digits;
    } else if (static_cast<std::size_t>(point) >= digits.size()) {
        out += digits;
        out.append(static_cast<std::size_t>(point) - digits.size(), '0');
    } else {
        out += digits.substr(0, static_cast<std::size_t>(point));
        out += '.';
        out += digits.substr(static_cast<std::size_t>(point));
    }
    // Trailing zeros of a fraction say nothing; a bare trailing point is not JSON.
    if (out.find('.') != std::string::npos) {
        while (out.back() == '0') out.pop_back();
        if (out.back() == '.') out.pop_back();
    }
    return out;
}

}  // namespace

std::string plain_decimals(std::string text) {
    // Most replies hold no double at all, and Boost writes the exponent as `E`: one scan decides.
    if (std::memchr(text.data(), 'E', text.size()) == nullptr) return text;
    // Text between rewritten numbers is copied in runs, and strings are skipped with memchr: a
    // byte-by-byte copy was a sixth of an agents_status request's instructions (its usage.cost
    // is a double, so every reply takes this path). A text with no exponent number outside its
    // strings comes back as it was, without a copy.
    std::string out;
    std::size_t copied = 0;  // text[copied, i) is still to be copied to `out`
    std::size_t i = 0;
    char const* const data = text.data();
    std::size_t const size = text.size();
    while (i < size) {
        char c = data[i];
        if (c == '"') {  // skip the string, escapes included
            std::size_t j = i + 1;
            for (;;) {
                auto const* q = static_cast<char const*>(std::memchr(data + j, '"', size - j));
                if (!q) {
                    j = size;
                    break;
                }
                j = static_cast<std::size_t>(q - data);
                std::size_t backslashes = 0;
                while (j - backslashes > i + 1 && data[j - backslashes - 1] == '\\') ++backslashes;
                ++j;
                if (backslashes % 2 == 0) break;  // not escaped: the string's end
            }
            i = j;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            std::size_t j = i;
            while (j < size && number_char(data[j])) ++j;
            std::string_view token(data + i, j - i);
            if (token.find_first_of("eE") != std::string_view::npos) {
                if (out.empty()) out.reserve(size + 16);
                out.append(data + copied, i - copied);
                out += expand(token);
                copied = j;
            }
            i = j;
        } else {
            ++i;
        }
    }
    if (copied == 0) return text;
    out.append(data + copied, size - copied);
    return out;
}

std::string to_text(boost::json::value const& v) {
    return plain_decimals(boost::json::serialize(v));
}
std::string to_text(boost::json::object const& v) {
    return plain_decimals(boost::json::serialize(v));
}
std::string to_text(boost::json::array const& v) {
    return plain_decimals(boost::json::serialize(v));
}

}  // namespace agentd::protocol
