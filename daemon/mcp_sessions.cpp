// MCP session bookkeeping: random ids from the kernel CSPRNG, idle expiry checked whenever a
// session is looked up or created (sessions only appear through initialize, so that bounds them
// without a timer), and eviction at a principal's cap that never touches a busy session.
#include "daemon/mcp_sessions.hpp"

#include "jobs/random.hpp"

#include <boost/json/serialize.hpp>

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

bool mcp_session::take_reply(boost::json::object const& response) {
    auto const* id = response.if_contains("id");
    if (!id) return false;
    auto it = awaiting.find(boost::json::serialize(*id));
    if (it == awaiting.end()) return false;
    auto take = std::move(it->second);
    awaiting.erase(it);
    take(response);
    return true;
}

bool mcp_session::mark_elicited(std::string const& job, std::string const& request) {
    auto key = job + '\n' + request;
    if (!elicited_.insert(key).second) return false;
    elicited_order_.push_back(std::move(key));
    if (elicited_order_.size() > max_elicited) {
        elicited_.erase(elicited_order_.front());
        elicited_order_.pop_front();
    }
    return true;
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

mcp_sessions::mcp_sessions(options opts) : opts_(opts) {}

bool mcp_sessions::expired(mcp_session const& s, mcp_session::clock::time_point now) const {
    return s.in_flight.empty() && now - s.last_used > opts_.idle_timeout;
}

void mcp_sessions::end_session(std::shared_ptr<mcp_session> const& s) {
    s->ended = true;
    std::vector<std::function<void()>> stops;
    for (auto const& [id, stop] : s->in_flight) stops.push_back(stop);
    for (auto const& stop : stops) stop();
}

bool mcp_sessions::make_room(std::string const& principal) {
    auto now = mcp_session::clock::now();
    std::erase_if(sessions_, [&](auto const& kv) {
        if (!expired(*kv.second, now)) return false;
        end_session(kv.second);
        return true;
    });
    std::size_t count = 0;
    auto victim = sessions_.end();
    // Never-used sessions go before used ones, each kind least recently used first.
    auto rank = [](mcp_session const& s) { return std::tuple(s.used, s.last_used); };
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        auto const& s = *it->second;
        if (s.principal != principal) continue;
        ++count;
        if (!s.in_flight.empty()) continue;
        if (victim == sessions_.end() || rank(s) < rank(*victim->second)) victim = it;
    }
    if (count < opts_.max_sessions) return true;
    if (victim == sessions_.end()) return false;
    end_session(victim->second);
    sessions_.erase(victim);
    return true;
}

std::shared_ptr<mcp_session> mcp_sessions::open(std::string const& principal) {
    if (!make_room(principal)) return nullptr;
    auto s = std::make_shared<mcp_session>();
    s->id = opts_.id_prefix + jobs::random_hex(16);
    s->principal = principal;
    s->last_used = mcp_session::clock::now();
    sessions_.emplace(s->id, s);
    return s;
}

std::shared_ptr<mcp_session> mcp_sessions::find(std::string_view id) {
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

bool mcp_sessions::end(std::string_view id) {
    auto it = sessions_.find(std::string(id));
    if (it == sessions_.end()) return false;
    end_session(it->second);
    sessions_.erase(it);
    return true;
}

void mcp_sessions::end_all(std::string const& principal) {
    std::erase_if(sessions_, [&](auto const& kv) {
        if (kv.second->principal != principal) return false;
        end_session(kv.second);
        return true;
    });
}

}  // namespace agentd::daemon
