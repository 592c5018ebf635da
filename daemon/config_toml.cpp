// toml++ behind config_toml.hpp: a file becomes flat dotted keys, so config.cpp checks every key
// and type in one place; writing goes through toml++ too, so strings are always quoted right.
#include "daemon/config_toml.hpp"

#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace agentd::daemon {
namespace {

// Strings only: no key takes an array of anything else.
toml_value array_value(toml::array const& array) {
    std::vector<std::string> items;
    for (auto const& item : array) {
        auto const* s = item.as_string();
        if (!s) return toml_other{"an array of non-strings"};
        items.push_back(s->get());
    }
    return items;
}

toml_value to_value(toml::node const& node) {
    switch (node.type()) {
        case toml::node_type::boolean:
            return node.as_boolean()->get();
        case toml::node_type::integer:
            return node.as_integer()->get();
        case toml::node_type::string:
            return node.as_string()->get();
        case toml::node_type::array:
            return array_value(*node.as_array());
        case toml::node_type::floating_point:
            return node.as_floating_point()->get();
        case toml::node_type::date:
            return toml_other{"a date"};
        case toml::node_type::time:
            return toml_other{"a time"};
        case toml::node_type::date_time:
            return toml_other{"a date-time"};
        default:
            return toml_other{"a table"};
    }
}

void flatten(toml::table const& table, std::string const& prefix, std::vector<toml_entry>& out) {
    for (auto const& [key, node] : table) {
        auto name = prefix + std::string(key.str());
        if (auto const* sub = node.as_table())
            flatten(*sub, name + ".", out);
        else
            out.push_back({name, to_value(node)});
    }
}

}  // namespace

std::variant<std::vector<toml_entry>, std::string> read_toml_file(std::string const& path) {
    std::ifstream in(path);
    if (!in) return std::string("cannot read: ") + std::strerror(errno);
    std::ostringstream text;
    text << in.rdbuf();
    auto const doc = text.str();
    try {
        auto table = toml::parse(std::string_view(doc), std::string_view(path));
        std::vector<toml_entry> entries;
        flatten(table, "", entries);
        return entries;
    } catch (toml::parse_error const& e) {
        return "line " + std::to_string(e.source().begin.line) + ", column " +
               std::to_string(e.source().begin.column) + ": " + std::string(e.description());
    }
}

std::string write_toml(std::vector<toml_entry> const& entries,
                       std::vector<std::string> const& comments) {
    toml::table root;
    for (auto const& [key, value] : entries) {
        auto dot = key.find('.');
        auto* table = &root;
        if (dot != std::string::npos)
            table = root.emplace<toml::table>(key.substr(0, dot)).first->second.as_table();
        auto leaf = dot == std::string::npos ? key : key.substr(dot + 1);
        std::visit(
            [&](auto const& v) {
                using type = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<type, std::vector<std::string>>) {
                    toml::array array;
                    for (auto const& item : v) array.push_back(item);
                    table->insert_or_assign(leaf, std::move(array));
                } else if constexpr (!std::is_same_v<type, toml_other>) {
                    table->insert_or_assign(leaf, v);
                }
            },
            value);
    }
    std::ostringstream out;
    for (auto const& line : comments) out << "# " << line << "\n";
    out << toml::toml_formatter(root) << "\n";
    return out.str();
}

}  // namespace agentd::daemon
