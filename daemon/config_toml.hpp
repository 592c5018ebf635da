// The TOML side of the configuration: reads a file into flat dotted keys ("limits.max_running")
// and writes such keys back as TOML. toml++ is heavy, so it stays in config_toml.cpp; the meaning
// of the keys (types, ranges, flags) is config.cpp's business.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace agentd::daemon {

// A value of a type no key uses (date, time, table array...): kept only to name it.
struct toml_other {
    std::string type_name;
};

using toml_value =
    std::variant<bool, std::int64_t, double, std::string, std::vector<std::string>, toml_other>;

struct toml_entry {
    std::string key;  // dotted: tables become prefixes
    toml_value value;
};

// The file's values, or an error message ("cannot read: ...", "line L, column C: ...").
std::variant<std::vector<toml_entry>, std::string> read_toml_file(std::string const& path);

// TOML text of `entries` (each key at most one table deep; no toml_other), after `comments`
// (lines written with a leading "# ").
std::string write_toml(std::vector<toml_entry> const& entries,
                       std::vector<std::string> const& comments);

}  // namespace agentd::daemon
