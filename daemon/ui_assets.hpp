// The dashboard (GET /ui): its files, embedded into the binary at build time from daemon/ui/
// (the generated ui_embedded.cpp), and the strict headers it is served with. No Beast here.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace agentd::daemon {

struct embedded_file {
    std::string_view name;  // file name under daemon/ui/
    std::string_view data;
};

// Every file of daemon/ui/ that the build embedded; defined in the generated ui_embedded.cpp.
std::span<embedded_file const> embedded_ui_files();

struct ui_asset {
    std::string_view content_type;
    std::string_view body;
};

// Whether a request path belongs to the dashboard (/ui and anything under /ui/).
bool is_ui_path(std::string_view path);
// The file served at `path` (/ui, /ui/ → index.html; /ui/app.js; /ui/app.css), or nullopt.
std::optional<ui_asset> find_ui_asset(std::string_view path);

// Only our own script and style, no inline code, no eval, nothing from elsewhere; the page
// talks only to its own origin (Chromium counts ws:// of the same host as 'self').
inline constexpr std::string_view ui_content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

}  // namespace agentd::daemon
