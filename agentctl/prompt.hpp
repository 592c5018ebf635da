// The inline prompt of `wait` and `watch` on a terminal: asks the person about one pending
// request (a permission: allow once, always or deny; a question: its options numbered, or free
// text where it allows that) and returns what agents_respond needs. Streams in and out, so unit
// tests drive it with strings.
#pragma once

#include "requests.hpp"

#include <boost/json/object.hpp>

#include <istream>
#include <optional>
#include <ostream>

namespace agentctl {

// The agents_respond fields ({decision, message?} or {answers}) for `r`, asking again after a
// reply that does not fit; nullopt when `in` ends first.
std::optional<boost::json::object> ask(input_request const& r, std::istream& in, std::ostream& out);

}  // namespace agentctl
