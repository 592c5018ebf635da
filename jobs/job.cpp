// What a job keeps of its task once it has ended; see job.hpp.
#include "jobs/job.hpp"

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

}  // namespace

protocol::pending_request const* find_request(job const& j, std::string_view id) {
    for (auto const& r : j.view.requests)
        if (r.id == id) return &r;
    return nullptr;
}

protocol::task_preview preview_of(protocol::task const& t) {
    return {first_chars(t.prompt, protocol::task_preview::prompt_chars), t.agent, t.model,
            t.directory};
}

void compact_finished(job& j) {
    j.task.prompt = first_chars(j.task.prompt, protocol::task_preview::prompt_chars);
    j.task.prompt.shrink_to_fit();
    j.task.system.reset();
    std::string().swap(j.partial);
    // Peek of a finished job still lists its steps, without their output (10 000 retained jobs
    // with 100 steps of 2 KiB would be 2 GB).
    for (auto& s : j.steps) std::string().swap(s.output_tail);
    j.view.activity.reset();
    j.view.requests.clear();
    j.asked.clear();
    j.answering.clear();
}

}  // namespace agentd::jobs
