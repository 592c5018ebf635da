// Pure pieces of the checks before launch (DESIGN §5): the upstream's lists (opencode's GET
// /agent and GET /config/providers, an OpenAI-compatible server's GET /models) parsed, a task's
// agent and model checked against them, and the messages that list what exists. No I/O, so each
// piece is unit-tested on its own.
#pragma once

#include "jobs/upstream/backend.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agentd::jobs::upstream {

// What an opencode server (for one directory) can run.
struct opencode_catalog {
    std::vector<std::string> agents;        // every agent's name, hidden ones too
    std::vector<std::string> shown_agents;  // those not `hidden`, sorted: what a message lists
    std::map<std::string, std::vector<std::string>> models;  // provider id → model ids, sorted
};

// GET /agent: `[{name, hidden?, …}]`.
up_result<opencode_catalog> parse_opencode_agents(unsigned status, std::string_view body);
// GET /config/providers: `{providers: [{id, models: {<model id>: {…}}}], default}` into `into`.
up_result<void> parse_opencode_providers(unsigned status, std::string_view body,
                                         opencode_catalog& into);

// Why a task naming `agent` and `model` ("provider/model") cannot run on this server, listing
// the agents or models that exist (a known provider's models, else all); nullopt when both are
// known or not named.
std::optional<std::string> check_opencode_task(opencode_catalog const& c,
                                               std::optional<std::string> const& agent,
                                               std::optional<std::string> const& model);

// GET /models of an OpenAI-compatible server: `{data: [{id, …}]}` → the ids in order.
up_result<std::vector<std::string>> parse_openai_models(unsigned status, std::string_view body);

// The model a task without one runs on: the only one served; otherwise why there is none to
// pick (none served, or several, listed).
up_result<std::string> pick_openai_model(std::vector<std::string> const& served);

// `names` joined by ", ", each made printable, at most `max` of them, then "… (N more)".
std::string name_list(std::vector<std::string> const& names, std::size_t max = 50);

}  // namespace agentd::jobs::upstream
