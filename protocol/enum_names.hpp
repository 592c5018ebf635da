// Enum <-> wire text, in one place for every enum that has a text form (states, error kinds,
// config words, metric labels): BOOST_DESCRIBE_ENUM beside the enum lists its enumerators, and
// to_string / from_string / enum_names read that list, so a new enumerator is named where it is
// declared. Header-only: the planner and agentctl use it without linking the protocol library.
#pragma once

#include <boost/describe/enum.hpp>
#include <boost/describe/enumerators.hpp>
#include <boost/mp11/algorithm.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace agentd::protocol {

template <class E>
concept described_enum = std::is_enum_v<E> && boost::describe::has_describe_enumerators<E>::value;

namespace enum_detail {

// An enumerator's wire name is its C++ name, unless its enum declares another one with a
// non-template `constexpr std::optional<std::string_view> wire_name(E)` beside it (found by
// argument-dependent lookup, and preferred to this template): `auto` is a C++ keyword, say.
template <class E>
constexpr std::optional<std::string_view> wire_name(E) {
    return std::nullopt;
}

template <class E>
constexpr auto make_entries() {
    using list = boost::describe::describe_enumerators<E>;
    std::array<std::pair<E, std::string_view>, boost::mp11::mp_size<list>::value> out{};
    std::size_t i = 0;
    boost::mp11::mp_for_each<list>([&](auto d) {
        auto renamed = wire_name(d.value);
        out[i++] = {d.value, renamed ? *renamed : std::string_view(d.name)};
    });
    return out;
}

template <class E>
constexpr auto make_names() {
    constexpr auto entries = make_entries<E>();
    std::array<std::string_view, entries.size()> out{};
    for (std::size_t i = 0; i < entries.size(); ++i) out[i] = entries[i].second;
    return out;
}

}  // namespace enum_detail

// Every enumerator with its wire name, in declaration order.
template <described_enum E>
inline constexpr auto enum_entries = enum_detail::make_entries<E>();

// The wire names alone, in declaration order (a config's choices, a schema's enum, metric labels).
template <described_enum E>
inline constexpr auto enum_names = enum_detail::make_names<E>();

template <described_enum E>
constexpr std::string_view to_string(E e) {
    for (auto const& [value, name] : enum_entries<E>)
        if (value == e) return name;
    return "unknown";  // a value outside the enum: never produced by agentd itself
}

template <described_enum E>
constexpr std::optional<E> from_string(std::string_view text) {
    for (auto const& [value, name] : enum_entries<E>)
        if (name == text) return value;
    return std::nullopt;
}

}  // namespace agentd::protocol
