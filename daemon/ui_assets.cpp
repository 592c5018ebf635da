// Maps a /ui request path to the embedded dashboard file and its content type; the bytes
// themselves live in the generated ui_embedded.cpp. See ui_assets.hpp.
#include "daemon/ui_assets.hpp"

#include <array>
#include <utility>

namespace agentd::daemon {

namespace {

constexpr std::string_view prefix = "/ui";

constexpr std::array<std::pair<std::string_view, std::string_view>, 3> content_types{{
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
}};

std::optional<std::string_view> content_type_of(std::string_view name) {
    for (auto const& [ext, type] : content_types)
        if (name.ends_with(ext)) return type;
    return std::nullopt;
}

}  // namespace

bool is_ui_path(std::string_view path) {
    return path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/');
}

std::optional<ui_asset> find_ui_asset(std::string_view path) {
    if (!is_ui_path(path)) return std::nullopt;
    auto name = path.substr(prefix.size());
    if (name.empty() || name == "/") name = "/index.html";
    name.remove_prefix(1);
    for (auto const& f : embedded_ui_files()) {
        if (f.name != name) continue;
        auto type = content_type_of(f.name);
        if (!type) return std::nullopt;
        return ui_asset{*type, f.data};
    }
    return std::nullopt;
}

}  // namespace agentd::daemon
