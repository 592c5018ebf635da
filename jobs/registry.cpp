// Registry implementation; see registry.hpp.
#include "jobs/registry.hpp"

#include <algorithm>
#include <unordered_set>

namespace agentd::jobs {

std::string registry::key(owner const& o) {
    std::string k = o.principal;
    k.push_back('\0');  // cannot occur in either part, so keys never collide
    k += o.session;
    return k;
}

void registry::insert(job_ptr j) {
    by_owner_[key(j->own)].emplace(j->seq, j);
    if (j->parent) by_parent_[*j->parent].push_back(j->view.id);
    by_id_.insert(std::move(j));
}

void registry::adopt(job_ptr const& j, std::string const& parent_id) {
    j->parent = parent_id;
    by_parent_[parent_id].push_back(j->view.id);
}

void registry::erase(std::string const& id) {
    auto it = by_id_.find(std::string_view(id));
    if (it == by_id_.end()) return;
    auto const& j = *it;
    if (j->view.upstream) {
        auto up = by_upstream_.find(j->view.upstream->session);
        if (up != by_upstream_.end() && up->second == j) by_upstream_.erase(up);
    }
    if (j->parent) {
        auto siblings = by_parent_.find(*j->parent);
        if (siblings != by_parent_.end()) {
            std::erase(siblings->second, id);
            if (siblings->second.empty()) by_parent_.erase(siblings);
        }
    }
    // Its children stay (they may still run); with the parent gone nobody can name it to cancel.
    by_parent_.erase(id);
    auto owner_it = by_owner_.find(key(j->own));
    if (owner_it != by_owner_.end()) {
        auto [first, last] = owner_it->second.equal_range(j->seq);
        for (auto o = first; o != last; ++o) {
            if (o->second != j) continue;
            owner_it->second.erase(o);
            break;
        }
        if (owner_it->second.empty()) by_owner_.erase(owner_it);
    }
    by_id_.erase(it);
}

void registry::bind_upstream(job_ptr const& j, std::string const& upstream_session) {
    by_upstream_[upstream_session] = j;
}

job_ptr registry::find_any(std::string const& id) const {
    auto it = by_id_.find(std::string_view(id));
    return it == by_id_.end() ? nullptr : *it;
}

job_ptr registry::find(std::string const& principal, std::string const& id) const {
    auto it = by_id_.find(std::string_view(id));
    if (it == by_id_.end() || (*it)->own.principal != principal) return nullptr;
    return *it;
}

std::vector<job_ptr> registry::descendants(std::string const& id) const {
    std::vector<job_ptr> out;
    std::unordered_set<std::string> seen{id};  // a tree by construction; the set keeps it so
    std::vector<std::string> level{id};
    while (!level.empty()) {
        std::vector<std::string> next;
        for (auto const& parent : level) {
            auto children = by_parent_.find(parent);
            if (children == by_parent_.end()) continue;
            for (auto const& child : children->second) {
                auto it = by_id_.find(std::string_view(child));
                if (it == by_id_.end() || !seen.insert(child).second) continue;
                out.push_back(*it);
                next.push_back(child);
            }
        }
        level = std::move(next);
    }
    return out;
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
