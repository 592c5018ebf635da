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

// Just past the closing quote of the string that opens at `open` (its end when unterminated):
// the first quote after it that an even number of backslashes precedes.
std::size_t string_end(std::string_view s, std::size_t open) {
    for (auto at = open + 1;;) {
        auto quote = s.find('"', at);
        if (quote == std::string_view::npos) return s.size();
        std::size_t slashes = 0;
        while (quote - slashes > open + 1 && s[quote - slashes - 1] == '\\') ++slashes;
        if (slashes % 2 == 0) return quote + 1;
        at = quote + 1;
    }
}

}  // namespace

std::string plain_decimals(std::string text) {
    // Most replies hold no double at all, and Boost writes the exponent as `E`: one scan decides.
    if (std::memchr(text.data(), 'E', text.size()) == nullptr) return text;
    std::string out;
    out.reserve(text.size());
    std::string_view const all(text);
    std::size_t i = 0;
    while (i < all.size()) {
        // Strings are most of the text: each is copied whole, found with memchr, not walked.
        auto quote = all.find('"', i);
        auto plain = all.substr(i, quote == std::string_view::npos ? all.npos : quote - i);
        for (std::size_t at = 0; at < plain.size();) {
            char c = plain[at];
            if (c != '-' && (c < '0' || c > '9')) {
                out += c;
                ++at;
                continue;
            }
            auto end = at;
            while (end < plain.size() && number_char(plain[end])) ++end;
            auto token = plain.substr(at, end - at);
            if (token.find_first_of("eE") != std::string_view::npos)
                out += expand(token);
            else
                out += token;
            at = end;
        }
        if (quote == std::string_view::npos) break;
        auto end = string_end(all, quote);
        out.append(all.substr(quote, end - quote));
        i = end;
    }
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
