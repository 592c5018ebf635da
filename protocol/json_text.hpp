// JSON text as agentd sends it: Boost.JSON 1.81 writes every double in exponent form (`0E0`,
// `1.2E-3`); DESIGN §2 wants plain decimals (`0`, `0.0012`) for values such as usage.cost.
#pragma once

#include <boost/json/fwd.hpp>

#include <string>

namespace agentd::protocol {

// json::serialize, with every number in exponent form rewritten as the same value in plain
// decimal notation (exactly: the digits move, nothing is rounded). Strings are left alone.
std::string to_text(boost::json::value const& v);
std::string to_text(boost::json::object const& v);
std::string to_text(boost::json::array const& v);

// The rewrite alone, over any JSON text.
std::string plain_decimals(std::string text);

}  // namespace agentd::protocol
