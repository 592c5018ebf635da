// Tolerant readers of upstream JSON shared by the backends' parsers: a bounded parse that never
// throws, typed field access that yields empty values for missing or mistyped fields, and the
// short, printable excerpt of upstream text shown to callers in error messages.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace agentd::jobs::upstream {

// `sp`: where the value's storage comes from (a monotonic buffer for a value parsed, read and
// dropped in one go, such as an event frame).
std::optional<boost::json::value> parse_json(std::string_view body,
                                             boost::json::storage_ptr sp = {});
std::string_view string_at(boost::json::object const& o, std::string_view key);
boost::json::object const* object_at(boost::json::object const& o, std::string_view key);
// 0 when `o` is null or the field is missing or not a number.
std::int64_t int_at(boost::json::object const* o, std::string_view key);
// At most 200 bytes, valid UTF-8, control characters as spaces.
std::string excerpt(std::string_view s);

}  // namespace agentd::jobs::upstream
