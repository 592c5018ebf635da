// Who a bearer token is (DESIGN §6, issue #19): the state-dir token is principal "local" (admin),
// the tokens file adds named principals with their admin flag and job quota. Tokens are compared
// by SHA-256 in constant time; a reload replaces the set and tells the connections of principals
// whose token no longer authenticates, so they close. No sockets: routes.cpp asks it.
#pragma once

#include "common/tokens_file.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace agentd::daemon {

struct principal {
    std::string name{common::local_principal};
    bool admin = true;
};

class principals {
  public:
    // `local_token`: the state-dir token's text; `extra`: the tokens file's principals.
    principals(std::string const& local_token, std::vector<common::principal_entry> extra = {});

    // The principal of a presented token (hashed once, compared with every hash), or nullopt.
    std::optional<principal> find(std::string_view token) const;

    // Replaces the tokens file's principals. Connections of the principals whose token changed
    // or went away are told (on_revoked), so they close.
    void replace(std::vector<common::principal_entry> extra);
    std::size_t count() const { return extra_.size(); }
    // Changes with every replace(): what a connection remembered of a token is stale then.
    std::uint64_t generation() const { return generation_; }
    // Each principal's max_running (0: no quota of its own).
    std::unordered_map<std::string, std::size_t> quotas() const;

    // Calls `f(name)` for each revoked principal until the handle is dropped.
    using revoked_listener = std::function<void(std::string const&)>;
    std::shared_ptr<void> on_revoked(revoked_listener f);

  private:
    using digest = std::array<unsigned char, 32>;
    struct entry {
        digest hash{};
        common::principal_entry info;
    };
    digest local_{};
    std::vector<entry> extra_;
    std::uint64_t generation_ = 0;
    std::shared_ptr<std::list<revoked_listener>> listeners_ =
        std::make_shared<std::list<revoked_listener>>();
};

}  // namespace agentd::daemon
