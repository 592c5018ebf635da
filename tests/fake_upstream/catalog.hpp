// What the fake OpenCode server can run, in the shapes of `opencode serve` 1.18.33 (captured in
// tests/e2e/captured/bad_agent_model.jsonl): GET /agent, GET /config/providers, and the reason a
// prompt naming an unknown agent or model fails (the real server answers it with a bare 500 and
// tells the reason only in a session.error event). The server counts the lists it served
// (agent_lists, provider_lists) and the prompts it refused (unknown_prompts).
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>

namespace fake {

// build and plan (primary), explore and general (subagent), compaction, summary and title
// (hidden).
boost::json::array agents_json();
// Providers "anthropic" (claude-x) and "fake" (fake-model, fake-small), with defaults.
boost::json::object providers_json();
// Why a validated prompt body cannot run ("Agent not found: …", "Model not found: p/m."), as
// the real server's session.error says; nullopt when its agent and model exist.
std::optional<std::string> unknown_in_prompt(boost::json::object const& prompt);

}  // namespace fake
