// MCP session bookkeeping: random ids from the kernel CSPRNG, idle expiry checked whenever a
// session is looked up or created (sessions only appear through initialize, so that bounds them
// without a timer), and LRU eviction at the cap that spares sessions with requests in flight.
#include "daemon/mcp_registry.hpp"

#include "jobs/random.hpp"

#include <algorithm>
#include <tuple>
#include <vector>

namespace agentd::daemon {

void mcp_session::cancel(std::string const& request_id) {
    auto [first, last] = in_flight.equal_range(request_id);
    std::vector<std::function<void()>> stops;
    for (auto it = first; it != last; ++it) stops.push_back(it->second);
    for (auto const& stop : stops) stop();  // a stop may end its request and unregister it
}

mcp_in_flight::mcp_in_flight(std::shared_ptr<mcp_session> session, std::string request_id,
                             std::function<void()> stop)
    : session_(std::move(session)) {
    it_ = session_->in_flight.emplace(std::move(request_id), std::move(stop));
    if (session_->ended) it_->second();
}

mcp_in_flight::~mcp_in_flight() {
    session_->in_flight.erase(it_);
    session_->last_used = mcp_session::clock::now();
}

mcp_registry::mcp_registry(options opts) : opts_(opts) {}

bool mcp_registry::expired(mcp_session const& s, mcp_session::clock::time_point now) const {
    return s.in_flight.empty() && now - s.last_used > opts_.idle_timeout;
}

void mcp_registry::end_session(std::shared_ptr<mcp_session> const& s) {
    s->ended = true;
    std::vector<std::function<void()>> stops;
    for (auto const& [id, stop] : s->in_flight) stops.push_back(stop);
    for (auto const& stop : stops) stop();
}

void mcp_registry::make_room() {
    auto now = mcp_session::clock::now();
    std::erase_if(sessions_, [&](auto const& kv) {
        if (!expired(*kv.second, now)) return false;
        end_session(kv.second);
        return true;
    });
    if (sessions_.size() < opts_.max_sessions || sessions_.empty()) return;
    auto victim =
        std::min_element(sessions_.begin(), sessions_.end(), [](auto const& a, auto const& b) {
            return std::tuple(!a.second->in_flight.empty(), a.second->last_used) <
                   std::tuple(!b.second->in_flight.empty(), b.second->last_used);
        });
    end_session(victim->second);
    sessions_.erase(victim);
}

std::shared_ptr<mcp_session> mcp_registry::open() {
    make_room();
    auto s = std::make_shared<mcp_session>();
    s->id = jobs::random_hex(16);
    s->last_used = mcp_session::clock::now();
    sessions_.emplace(s->id, s);
    return s;
}

std::shared_ptr<mcp_session> mcp_registry::find(std::string_view id) {
    auto it = sessions_.find(std::string(id));
    if (it == sessions_.end()) return nullptr;
    auto now = mcp_session::clock::now();
    if (expired(*it->second, now)) {
        end_session(it->second);
        sessions_.erase(it);
        return nullptr;
    }
    it->second->last_used = now;
    return it->second;
}

bool mcp_registry::end(std::string_view id) {
    auto it = sessions_.find(std::string(id));
    if (it == sessions_.end()) return false;
    end_session(it->second);
    sessions_.erase(it);
    return true;
}

}  // namespace agentd::daemon
