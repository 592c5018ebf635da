// The checks before launch, pure parts; see catalog.hpp. A list of the wrong shape is a
// `protocol` failure (the opencode backend then launches unchecked), never an exception.
#include "jobs/upstream/catalog.hpp"

#include "jobs/upstream/json_read.hpp"
#include "jobs/upstream/openai_parse.hpp"
#include "jobs/upstream/opencode_parse.hpp"

#include <fmt/format.h>
#include <boost/json/value.hpp>

#include <algorithm>

namespace agentd::jobs::upstream {
namespace json = boost::json;
using protocol::error_kind;
using protocol::error_phase;

namespace {

upstream_error shape_error(std::string_view what) {
    return {error_kind::protocol, error_phase::create, std::string(what), std::nullopt};
}

bool ok_status(unsigned status) {
    return status >= 200 && status < 300;
}

std::string quoted(std::string_view s) {
    return fmt::format("\"{}\"", excerpt(s));
}

std::string model_check(opencode_catalog const& c, std::string const& model) {
    auto slash = model.find('/');
    auto provider = model.substr(0, slash);
    auto id = slash == std::string::npos ? std::string() : model.substr(slash + 1);
    if (auto it = c.models.find(provider); it != c.models.end()) {
        auto const& ids = it->second;
        if (std::binary_search(ids.begin(), ids.end(), id)) return {};
        std::vector<std::string> named;
        for (auto const& m : ids) named.push_back(provider + "/" + m);
        return fmt::format("unknown model {}: provider \"{}\" has {}", quoted(model),
                           excerpt(provider), named.empty() ? "none" : name_list(named));
    }
    std::vector<std::string> all;
    for (auto const& [p, ids] : c.models)
        for (auto const& m : ids) all.push_back(p + "/" + m);
    return fmt::format("unknown model {}: no provider \"{}\"; the upstream has {}", quoted(model),
                       excerpt(provider), all.empty() ? "no models" : name_list(all));
}

}  // namespace

up_result<opencode_catalog> parse_opencode_agents(unsigned status, std::string_view body) {
    if (!ok_status(status)) return opencode::http_error(error_phase::create, status, body);
    auto v = parse_json(body);
    if (!v || !v->is_array()) return shape_error("GET /agent did not answer a list");
    opencode_catalog c;
    for (auto const& a : v->get_array()) {
        if (!a.is_object()) continue;
        auto name = string_at(a.get_object(), "name");
        if (name.empty()) continue;
        c.agents.emplace_back(name);
        auto const* hidden = a.get_object().if_contains("hidden");
        if (!hidden || !hidden->is_bool() || !hidden->get_bool()) c.shown_agents.emplace_back(name);
    }
    std::sort(c.shown_agents.begin(), c.shown_agents.end());
    return c;
}

up_result<void> parse_opencode_providers(unsigned status, std::string_view body,
                                         opencode_catalog& into) {
    if (!ok_status(status)) return opencode::http_error(error_phase::create, status, body);
    auto v = parse_json(body);
    auto const* providers =
        v && v->is_object() ? v->get_object().if_contains("providers") : nullptr;
    if (!providers || !providers->is_array())
        return shape_error("GET /config/providers did not answer {providers: [...]}");
    for (auto const& p : providers->get_array()) {
        if (!p.is_object()) continue;
        auto id = string_at(p.get_object(), "id");
        auto const* models = object_at(p.get_object(), "models");
        if (id.empty()) continue;
        auto& ids = into.models[std::string(id)];
        if (models)
            for (auto const& m : *models) ids.emplace_back(m.key());
        std::sort(ids.begin(), ids.end());
    }
    return {};
}

std::optional<std::string> check_opencode_task(opencode_catalog const& c,
                                               std::optional<std::string> const& agent,
                                               std::optional<std::string> const& model) {
    std::vector<std::string> problems;
    if (agent && std::find(c.agents.begin(), c.agents.end(), *agent) == c.agents.end())
        problems.push_back(
            fmt::format("unknown agent {}; the upstream has {}", quoted(*agent),
                        c.shown_agents.empty() ? "none" : name_list(c.shown_agents)));
    if (model) {
        if (auto why = model_check(c, *model); !why.empty()) problems.push_back(std::move(why));
    }
    if (problems.empty()) return std::nullopt;
    std::string out = problems.front();
    for (std::size_t i = 1; i < problems.size(); ++i) out += "; and " + problems[i];
    return out;
}

up_result<std::vector<std::string>> parse_openai_models(unsigned status, std::string_view body) {
    if (!ok_status(status)) return openai::http_error(status, body);
    auto v = parse_json(body);
    auto const* data = v && v->is_object() ? v->get_object().if_contains("data") : nullptr;
    if (!data || !data->is_array()) return shape_error("GET /models did not answer {data: [...]}");
    std::vector<std::string> ids;
    for (auto const& m : data->get_array()) {
        if (!m.is_object()) continue;
        if (auto id = string_at(m.get_object(), "id"); !id.empty()) ids.emplace_back(id);
    }
    return ids;
}

up_result<std::string> pick_openai_model(std::vector<std::string> const& served) {
    if (served.size() == 1) return served.front();
    constexpr std::string_view none =
        "no model: the task names none and agentd has no "
        "--upstream-model";
    if (served.empty())
        return upstream_error{error_kind::upstream, error_phase::create,
                              fmt::format("{}, and the upstream's GET /models lists none", none),
                              std::nullopt};
    return upstream_error{error_kind::upstream, error_phase::create,
                          fmt::format("{}; the upstream serves {} models, name one: {}", none,
                                      served.size(), name_list(served)),
                          std::nullopt};
}

std::string name_list(std::vector<std::string> const& names, std::size_t max) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < max; ++i) {
        if (i > 0) out += ", ";
        out += excerpt(names[i]);
    }
    if (names.size() > max) out += fmt::format(" … ({} more)", names.size() - max);
    return out;
}

}  // namespace agentd::jobs::upstream
