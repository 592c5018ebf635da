// random_hex over getrandom(2); see random.hpp.
#include "jobs/random.hpp"

#include <sys/random.h>

#include <stdexcept>
#include <vector>

namespace agentd::jobs {

std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    std::size_t got = 0;
    while (got < bytes) {
        auto n = ::getrandom(raw.data() + got, bytes - got, 0);
        if (n < 0) throw std::runtime_error("getrandom failed");
        got += static_cast<std::size_t>(n);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    for (auto b : raw) {
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 15]);
    }
    return out;
}

}  // namespace agentd::jobs
