// Registry implementation; see registry.hpp.
#include "jobs/registry.hpp"

#include <algorithm>

namespace agentd::jobs {

std::string registry::key(owner const& o) {
    std::string k = o.principal;
    k.push_back('\0');  // cannot occur in either part, so keys never collide
    k += o.session;
    return k;
}

void registry::insert(job_ptr j) {
    by_owner_[key(j->own)].emplace(j->seq, j);
    by_id_.emplace(j->view.id, std::move(j));
}

void registry::erase(std::string const& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return;
    auto const& j = it->second;
    if (j->view.upstream) {
        auto up = by_upstream_.find(j->view.upstream->session);
        if (up != by_upstream_.end() && up->second == j) by_upstream_.erase(up);
    }
    auto owner_it = by_owner_.find(key(j->own));
    if (owner_it != by_owner_.end()) {
        owner_it->second.erase(j->seq);
        if (owner_it->second.empty()) by_owner_.erase(owner_it);
    }
    by_id_.erase(it);
}

void registry::bind_upstream(job_ptr const& j, std::string const& upstream_session) {
    by_upstream_[upstream_session] = j;
}

job_ptr registry::find(owner const& o, std::string const& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end() || !(it->second->own == o)) return nullptr;
    return it->second;
}

std::vector<job_ptr> registry::list(owner const& o) const {
    std::vector<job_ptr> out;
    auto it = by_owner_.find(key(o));
    if (it == by_owner_.end()) return out;
    out.reserve(it->second.size());
    for (auto r = it->second.rbegin(); r != it->second.rend(); ++r) out.push_back(r->second);
    return out;
}

std::vector<job_ptr> registry::list_principal(std::string const& principal) const {
    std::string prefix = principal;
    prefix.push_back('\0');
    std::vector<job_ptr> out;
    for (auto const& [k, jobs] : by_owner_) {
        if (!k.starts_with(prefix)) continue;
        for (auto const& [seq, j] : jobs) out.push_back(j);
    }
    std::sort(out.begin(), out.end(),
              [](job_ptr const& a, job_ptr const& b) { return a->seq > b->seq; });
    return out;
}

job_ptr registry::find_by_upstream(std::string const& principal, std::string const& session) const {
    auto j = find_by_upstream(session);
    return j && j->own.principal == principal ? j : nullptr;
}

job_ptr registry::find_by_upstream(std::string_view session) const {
    auto it = by_upstream_.find(session);
    return it == by_upstream_.end() ? nullptr : it->second;
}

}  // namespace agentd::jobs
