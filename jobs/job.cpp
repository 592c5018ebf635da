// What a job keeps of its task once it has ended; see job.hpp.
#include "jobs/job.hpp"

#include <fmt/format.h>

#include <limits>

namespace agentd::jobs {

namespace {

// The first `n` code points of `s` (whole UTF-8 sequences: continuation bytes are 10xxxxxx).
std::string first_chars(std::string_view s, std::size_t n) {
    std::size_t i = 0;
    for (std::size_t seen = 0; i < s.size(); ++i) {
        bool lead = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
        if (lead && seen++ == n) break;
    }
    return std::string(s.substr(0, i));
}

std::int64_t saturated_add(std::int64_t a, std::int64_t b) {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum))
        return a < 0 ? std::numeric_limits<std::int64_t>::min()
                     : std::numeric_limits<std::int64_t>::max();
    return sum;
}

// Both amounts at the fewest decimals (2 to 8) that tell them apart: "0.52 > 0.50", and a
// bound of 0.001 still shows as "0.0012 > 0.0010", not "0.00 > 0.00".
std::string cost_pair(double used, double bound) {
    int digits = 2;
    while (digits < 8 &&
           fmt::format("{:.{}f}", used, digits) == fmt::format("{:.{}f}", bound, digits))
        ++digits;
    return fmt::format("{:.{}f} > {:.{}f}", used, digits, bound, digits);
}

}  // namespace

void add_usage(protocol::job_usage& sum, protocol::job_usage const& u) {
    sum.input_tokens = saturated_add(sum.input_tokens, u.input_tokens);
    sum.output_tokens = saturated_add(sum.output_tokens, u.output_tokens);
    sum.cost += u.cost;
}

protocol::job_usage summed_usage(job const& j) {
    protocol::job_usage sum;
    for (auto const& [id, u] : j.agentic().usage_by_message) add_usage(sum, u);
    return sum;
}

std::optional<std::string> over_budget(protocol::task_budget const& b,
                                       protocol::job_usage const& usage) {
    if (b.max_cost && usage.cost > *b.max_cost)
        return "budget exhausted: cost " + cost_pair(usage.cost, *b.max_cost);
    auto tokens = saturated_add(usage.input_tokens, usage.output_tokens);
    if (b.max_tokens && tokens > *b.max_tokens)
        return fmt::format("budget exhausted: tokens {} > {}", tokens, *b.max_tokens);
    return std::nullopt;
}

protocol::pending_request const* find_request(job const& j, std::string_view id) {
    for (auto const& r : j.view.requests)
        if (r.id == id) return &r;
    return nullptr;
}

std::optional<std::string> upstream_directory(job const& j) {
    if (j.view.worktree) return j.view.worktree->directory;
    return j.task.directory.optional();
}

protocol::task_preview preview_of(protocol::task const& t) {
    return {first_chars(t.prompt, protocol::task_preview::prompt_chars), t.agent, t.model,
            t.directory};
}

std::span<protocol::step const> job::agentic_state::kept_steps() const {
    auto n = std::min(steps.size(), steps_kept);
    return {steps.end() - static_cast<std::ptrdiff_t>(n), steps.end()};
}

std::span<protocol::step> job::agentic_state::kept_steps() {
    auto n = std::min(steps.size(), steps_kept);
    return {steps.end() - static_cast<std::ptrdiff_t>(n), steps.end()};
}

protocol::step& job::agentic_state::add_step(protocol::step s) {
    steps.push_back(std::move(s));
    if (steps.size() > steps_kept) {
        auto& gone = steps[steps.size() - steps_kept - 1];  // it just left the window
        std::string().swap(gone.title);
        std::string().swap(gone.output_tail);
    }
    if (steps.size() > steps_kept + steps_slack)
        steps.erase(steps.begin(), steps.end() - static_cast<std::ptrdiff_t>(steps_kept));
    return steps.back();
}

void compact_finished(job& j) {
    j.task.prompt = first_chars(j.task.prompt, protocol::task_preview::prompt_chars);
    j.task.prompt.shrink_to_fit();
    j.task.system.reset();
    if (j.has_runtime()) {
        auto& r = j.runtime_mut();
        std::string().swap(r.partial);
        // Nothing `continue` or peek needs, and no call still running (a job cancelled while
        // its call stops is compacted before its run ends).
        if (!r.control && r.upstream_server.empty() && r.holder.empty() && r.user_message.empty() &&
            !r.transcript.system && r.transcript.turns.empty())
            j.drop_runtime();
    }
    j.view.activity.reset();
    j.view.requests.clear();
    if (!j.has_agentic()) return;
    auto& a = j.agentic_mut();
    if (a.steps.empty()) return j.drop_agentic();  // only usage or requests: nothing to keep
    // Peek of a finished job still lists its steps, without their output (10 000 retained jobs
    // with 100 steps of 2 KiB would be 2 GB).
    a.steps.erase(a.steps.begin(),
                  a.steps.end() - static_cast<std::ptrdiff_t>(a.kept_steps().size()));
    for (auto& s : a.steps) std::string().swap(s.output_tail);
    a.asked.clear();
    a.answering.clear();
    a.usage_by_message.clear();
}

}  // namespace agentd::jobs
