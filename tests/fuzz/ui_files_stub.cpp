// The dashboard files for the libFuzzer build of http_fuzz, which does not run the generator of
// daemon/ui_embedded.cpp: two small files, so /ui routes still resolve.
#include "daemon/ui_assets.hpp"

#include <array>

namespace agentd::daemon {

std::span<embedded_file const> embedded_ui_files() {
    static constexpr std::array<embedded_file, 2> files{{
        {"index.html", "<!doctype html>"},
        {"app.js", "void 0;"},
    }};
    return files;
}

}  // namespace agentd::daemon
