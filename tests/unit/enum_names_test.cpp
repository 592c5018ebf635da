// The one enum <-> wire text mapping (protocol/enum_names.hpp): for every enum that has a text
// form, the wire words in order (DESIGN.md, config files and dashboards rely on them), and every
// enumerator round-tripping through to_string and from_string.
#include "protocol/enum_names.hpp"
#include "daemon/config.hpp"
#include "daemon/metrics.hpp"
#include "jobs/health.hpp"
#include "jobs/upstream/backend.hpp"
#include "planner/traits.hpp"
#include "protocol/job_view.hpp"
#include "protocol/params.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace agentd::protocol {
namespace {

// `auto` is a keyword, so this enumerator's wire name differs from its C++ name.
static_assert(to_string(planner::approval_mode::auto_approve) == "auto");

template <class E>
void expect_names(std::vector<std::string_view> const& wire) {
    EXPECT_EQ(std::vector<std::string_view>(enum_names<E>.begin(), enum_names<E>.end()), wire);
    for (auto const& [value, name] : enum_entries<E>) {
        EXPECT_EQ(to_string(value), name);
        EXPECT_EQ(from_string<E>(name), value) << name;
    }
    EXPECT_EQ(from_string<E>("no_such_word"), std::nullopt);
    EXPECT_EQ(from_string<E>(""), std::nullopt);
}

TEST(enum_names, job_view_words) {
    expect_names<job_state>(
        {"queued", "running", "waiting", "completed", "failed", "cancelled", "interrupted"});
    expect_names<error_kind>(
        {"transport", "timeout", "upstream", "protocol", "cancelled", "interrupted", "limit"});
    expect_names<error_phase>({"create", "prompt", "abort"});
    expect_names<wait_mode>({"all", "any"});
}

TEST(enum_names, config_words) {
    expect_names<daemon::auth_mode>({"token", "none"});
    expect_names<jobs::upstream::backend_kind>({"opencode", "openai"});
    expect_names<planner::approval_mode>({"auto", "deny", "ask"});
}

TEST(enum_names, metric_labels) {
    expect_names<jobs::store_op>({"start", "save", "erase", "flush", "checkpoint"});
    expect_names<daemon::upstream_call>(
        {"create", "prompt", "abort", "read_partial", "recover", "respond"});
}

TEST(enum_names, renamed_enumerator_is_known_only_by_its_wire_name) {
    EXPECT_EQ(from_string<planner::approval_mode>("auto"), planner::approval_mode::auto_approve);
    EXPECT_EQ(from_string<planner::approval_mode>("auto_approve"), std::nullopt);
}

TEST(enum_names, a_value_outside_the_enum_is_unknown) {
    EXPECT_EQ(to_string(static_cast<job_state>(99)), "unknown");
}

TEST(enum_names, state_text_is_terminal_unless_queued_or_running) {
    EXPECT_FALSE(is_terminal(std::string_view("queued")));
    EXPECT_FALSE(is_terminal(std::string_view("running")));
    for (std::string_view s : {"completed", "failed", "cancelled", "interrupted", "not_found", ""})
        EXPECT_TRUE(is_terminal(s)) << s;
}

}  // namespace
}  // namespace agentd::protocol
