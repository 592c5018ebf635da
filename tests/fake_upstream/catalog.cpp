// The fake server's agents and providers; see catalog.hpp.
#include "catalog.hpp"

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include <algorithm>
#include <string_view>

namespace fake {
namespace json = boost::json;

namespace {

struct agent_spec {
    std::string_view name;
    std::string_view description;
    std::string_view mode;
    bool hidden;
};

constexpr agent_spec agents[] = {
    {"build", "The default agent. Executes tools based on configured permissions.", "primary",
     false},
    {"compaction", "", "primary", true},
    {"explore", "Fast agent specialized for exploring codebases.", "subagent", false},
    {"general", "General-purpose agent for researching complex questions.", "subagent", false},
    {"plan", "Plan mode. Disallows all edit tools.", "primary", false},
    {"summary", "", "primary", true},
    {"title", "", "primary", true},
};

struct model_spec {
    std::string_view provider;
    std::string_view id;
    std::string_view name;
};

constexpr model_spec models[] = {
    {"anthropic", "claude-x", "Claude X"},
    {"fake", "fake-model", "Fake Model"},
    {"fake", "fake-small", "Fake Small"},
};

json::object media(bool text) {
    return {{"text", text}, {"audio", false}, {"image", false}, {"video", false}, {"pdf", false}};
}

json::object model_json(model_spec const& m) {
    return {{"id", m.id},
            {"providerID", m.provider},
            {"api", {{"id", m.id}, {"url", ""}, {"npm", "@ai-sdk/openai-compatible"}}},
            {"name", m.name},
            {"family", ""},
            {"capabilities",
             {{"temperature", false},
              {"reasoning", false},
              {"attachment", false},
              {"toolcall", true},
              {"input", media(true)},
              {"output", media(true)},
              {"interleaved", false}}},
            {"cost", {{"input", 1.5}, {"output", 6}, {"cache", {{"read", 0}, {"write", 0}}}}},
            {"limit", {{"context", 100000}, {"output", 4096}}},
            {"status", "active"},
            {"options", json::object{}},
            {"headers", json::object{}},
            {"release_date", ""},
            {"variants", json::object{}}};
}

}  // namespace

json::array agents_json() {
    json::array out;
    for (auto const& a : agents) {
        json::object o{{"name", a.name},
                       {"mode", a.mode},
                       {"native", true},
                       {"permission",
                        json::array{{{"permission", "*"}, {"pattern", "*"}, {"action", "allow"}}}},
                       {"options", json::object{}}};
        if (!a.description.empty()) o["description"] = a.description;
        if (a.hidden) o["hidden"] = true;
        out.push_back(std::move(o));
    }
    return out;
}

json::object providers_json() {
    json::object by_id;
    json::object defaults;
    for (auto const& m : models) {
        auto& p = by_id[m.provider];
        if (p.is_null()) {
            p = json::object{{"id", m.provider},          {"name", m.provider},
                             {"source", "config"},        {"env", json::array{}},
                             {"options", json::object{}}, {"models", json::object{}}};
            defaults[m.provider] = m.id;
        }
        p.as_object()["models"].as_object()[m.id] = model_json(m);
    }
    json::array providers;
    for (auto& [id, p] : by_id) providers.push_back(std::move(p));
    return {{"providers", std::move(providers)}, {"default", std::move(defaults)}};
}

std::optional<std::string> unknown_in_prompt(json::object const& prompt) {
    if (auto const* agent = prompt.if_contains("agent")) {
        std::string_view name = agent->as_string();
        bool known = std::any_of(std::begin(agents), std::end(agents),
                                 [&](agent_spec const& a) { return a.name == name; });
        if (!known)
            return fmt::format(
                "Agent not found: \"{}\". Available agents: build, explore, general, plan", name);
    }
    if (auto const* model = prompt.if_contains("model")) {
        std::string_view provider = model->at("providerID").as_string();
        std::string_view id = model->at("modelID").as_string();
        bool known = std::any_of(std::begin(models), std::end(models), [&](model_spec const& m) {
            return m.provider == provider && m.id == id;
        });
        if (!known) return fmt::format("Model not found: {}/{}.", provider, id);
    }
    return std::nullopt;
}

}  // namespace fake
