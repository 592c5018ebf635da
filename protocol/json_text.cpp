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
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == '"') {  // copy the string, escapes included
            std::size_t j = i + 1;
            while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
            j = std::min(j + 1, text.size());
            out.append(text, i, j - i);
            i = j;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            std::size_t j = i;
            while (j < text.size() && number_char(text[j])) ++j;
            std::string_view token(text.data() + i, j - i);
            if (token.find_first_of("eE") != std::string_view::npos)
                out += expand(token);
            else
                out += token;
            i = j;
        } else {
            out += c;
            ++i;
        }
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
