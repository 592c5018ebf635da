// Unpredictable identifiers from the kernel's CSPRNG (getrandom): job ids and auth tokens.
#pragma once

#include <cstddef>
#include <string>

namespace agentd::jobs {

std::string random_hex(std::size_t bytes);

}  // namespace agentd::jobs
