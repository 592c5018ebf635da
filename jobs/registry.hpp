// Job registry: lookups by (principal, id) that answer "not found" for another principal's job,
// per-owner (principal, session) listings newest first, the index from upstream session to job
// used for nesting and for routing streamed text, and each job's children. Pure data structure.
#pragma once

#include "jobs/job.hpp"

#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace agentd::jobs {

class registry {
  public:
    void insert(job_ptr j);
    void erase(std::string const& id);
    // Binds the job to its upstream session once created.
    void bind_upstream(job_ptr const& j, std::string const& upstream_session);

    // Makes `j` a child of the job `parent_id` (DESIGN §2 nesting): cancelling a job cancels
    // its descendants. insert() indexes a child whose `parent` is set already.
    void adopt(job_ptr const& j, std::string const& parent_id);

    // nullptr when unknown or of another principal: the two cases are indistinguishable. Any
    // session of the principal reaches a job by id (DESIGN §2: ids are capabilities).
    job_ptr find(std::string const& principal, std::string const& id) const;
    // Whatever its principal (change notices of a shared store name ids only).
    job_ptr find_any(std::string const& id) const;
    // The job's children, their children and so on, parents before children; never the job.
    std::vector<job_ptr> descendants(std::string const& id) const;
    std::vector<job_ptr> list(owner const& o) const;  // newest first
    // Every session's jobs of one principal, newest first (dashboards).
    std::vector<job_ptr> list_principal(std::string const& principal) const;
    job_ptr find_by_upstream(std::string const& principal, std::string const& session) const;
    job_ptr find_by_upstream(std::string_view session) const;
    std::size_t size() const { return by_id_.size(); }
    // Calls f(job const&) for every job, in no particular order (metrics count them by state).
    template <class F>
    void for_each(F&& f) const {
        for (auto const& j : by_id_) f(*j);
    }

  private:
    // Lets the event stream look a session up by the string_view it parsed, without a copy.
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    // by_id_ holds the jobs themselves and reads each one's id through it: a separate key string
    // would be a second copy of every id (~50 B per job, a twentieth of a queued one).
    struct id_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view id) const {
            return std::hash<std::string_view>{}(id);
        }
        std::size_t operator()(job_ptr const& j) const { return (*this)(j->view.id); }
    };
    struct id_equal {
        using is_transparent = void;
        static std::string_view id_of(std::string_view id) { return id; }
        static std::string_view id_of(job_ptr const& j) { return j->view.id; }
        bool operator()(auto const& a, auto const& b) const { return id_of(a) == id_of(b); }
    };

    static std::string key(owner const& o);

    std::unordered_set<job_ptr, id_hash, id_equal> by_id_;
    // A multimap: instances sharing a store number their jobs apart, but two may collide.
    std::unordered_map<std::string, std::multimap<std::uint64_t, job_ptr>> by_owner_;
    std::unordered_map<std::string, job_ptr, string_hash, std::equal_to<>> by_upstream_;
    std::unordered_map<std::string, std::vector<std::string>> by_parent_;  // parent id → child ids
};

}  // namespace agentd::jobs
