// Token → principal by SHA-256 in constant time, and the reload's revocations; see principals.hpp.
#include "daemon/principals.hpp"

#include <algorithm>
#include <stdexcept>

namespace agentd::daemon {

namespace {

using digest = std::array<unsigned char, 32>;

digest from_hex(std::string_view hex) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    digest out{};
    if (hex.size() != 64) throw std::invalid_argument("a SHA-256 has 64 hex digits");
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<unsigned char>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return out;
}

// Whether two digests are equal; the time does not depend on where they differ.
bool same(digest const& a, digest const& b) {
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace

principals::principals(std::string const& local_token, std::vector<common::principal_entry> extra)
    : local_(common::sha256(local_token)) {
    replace(std::move(extra));
}

std::optional<principal> principals::find(std::string_view token) const {
    if (token.empty()) return std::nullopt;
    auto const hash = common::sha256(token);
    // Every hash is compared, so the time says nothing about which one matched.
    entry const* match = nullptr;
    for (auto const& e : extra_)
        if (same(e.hash, hash)) match = &e;
    if (same(local_, hash)) return principal{};
    if (!match) return std::nullopt;
    return principal{match->info.name, match->info.admin};
}

void principals::replace(std::vector<common::principal_entry> extra) {
    std::vector<entry> next;
    next.reserve(extra.size());
    for (auto& e : extra) next.push_back({from_hex(e.sha256), std::move(e)});
    std::vector<std::string> revoked;
    for (auto const& old : extra_) {
        bool kept = std::any_of(next.begin(), next.end(), [&](entry const& n) {
            return n.info.name == old.info.name && same(n.hash, old.hash);
        });
        if (!kept) revoked.push_back(old.info.name);
    }
    extra_ = std::move(next);
    ++generation_;
    auto listeners = listeners_;  // a listener may drop its own handle while called
    for (auto const& name : revoked)
        for (auto const& f : std::vector<revoked_listener>(listeners->begin(), listeners->end()))
            f(name);
}

std::unordered_map<std::string, std::size_t> principals::quotas() const {
    std::unordered_map<std::string, std::size_t> out;
    for (auto const& e : extra_)
        if (e.info.max_running > 0) out.emplace(e.info.name, e.info.max_running);
    return out;
}

std::shared_ptr<void> principals::on_revoked(revoked_listener f) {
    auto list = listeners_;
    auto it = list->insert(list->end(), std::move(f));
    return std::shared_ptr<void>(nullptr, [list, it](void*) { list->erase(it); });
}

}  // namespace agentd::daemon
