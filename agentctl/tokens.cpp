// token add|list|revoke over the tokens file; see tokens.hpp.
#include "tokens.hpp"

#include "discover.hpp"
#include "exit_codes.hpp"

#include "common/names.hpp"
#include "common/tokens_file.hpp"

#include <fmt/core.h>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <sstream>
#include <variant>

namespace agentctl {
namespace {

namespace common = agentd::common;
namespace fs = std::filesystem;

fs::path tokens_path(invocation const& inv) {
    if (inv.cmd.token.tokens_file) return *inv.cmd.token.tokens_file;
    auto dir = resolve_state_dir(inv.globals);
    if (dir.empty()) throw usage_error("no state directory (HOME is unset): pass --tokens-file");
    return common::default_tokens_path(dir);
}

// The file's principals after the same checks agentd makes (no symlink, not group-writable,
// every key valid), so agentctl never builds on a file agentd would refuse.
std::vector<common::principal_entry> checked(fs::path const& path) {
    auto read = common::read_tokens_file(path, false);
    if (auto const* error = std::get_if<std::string>(&read)) throw std::runtime_error(*error);
    return std::get<std::vector<common::principal_entry>>(std::move(read));
}

std::string text_of(fs::path const& path) {
    std::ifstream in(path);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    return text.str();
}

void written(fs::path const& path, std::string const& text) {
    if (auto error = common::write_file_atomically(path, text)) throw std::runtime_error(*error);
}

void reload_hint(fs::path const& path) {
    fmt::print(stderr,
               "agentctl: {} updated; agentd applies it on reload: systemctl reload agentd "
               "(user service: systemctl --user reload agentd; else kill -HUP <agentd's pid>)\n",
               path.string());
}

int add(invocation const& inv, fs::path const& path) {
    auto const& name = inv.cmd.args.at(0);
    if (!common::valid_name(name) || name == common::local_principal)
        throw usage_error(fmt::format(
            "token add: '{}' is not a principal name ([A-Za-z0-9_.-]{{1,64}}, not \"local\")",
            name));
    checked(path);
    auto token = common::new_token();
    common::principal_entry e{name, common::sha256_hex(token), inv.cmd.token.admin,
                              static_cast<std::size_t>(inv.cmd.token.max_running)};
    auto updated = common::with_principal(text_of(path), e);
    if (auto const* error = std::get_if<1>(&updated))
        throw std::runtime_error(path.string() + ": " + *error);
    written(path, std::get<0>(updated));
    fmt::print("{}\n", token);
    std::fflush(stdout);
    reload_hint(path);
    return exit_ok;
}

int list(invocation const& inv, fs::path const& path) {
    auto all = checked(path);
    if (inv.globals.json) {
        boost::json::array out;
        for (auto const& e : all)
            out.push_back(boost::json::object{
                {"name", e.name}, {"admin", e.admin}, {"max_running", e.max_running}});
        fmt::print("{}\n", boost::json::serialize(out));
        return exit_ok;
    }
    fmt::print("{:<24} {:<6} {}\n", "NAME", "ADMIN", "MAX_RUNNING");
    for (auto const& e : all)
        fmt::print("{:<24} {:<6} {}\n", e.name, e.admin ? "yes" : "no",
                   e.max_running == 0 ? std::string("-") : std::to_string(e.max_running));
    return exit_ok;
}

int revoke(invocation const& inv, fs::path const& path) {
    auto const& name = inv.cmd.args.at(0);
    checked(path);
    auto updated = common::without_principal(text_of(path), name);
    if (!updated) {
        fmt::print(stderr, "agentctl: no principal '{}' in {}\n", name, path.string());
        return exit_unknown_name;
    }
    written(path, *updated);
    reload_hint(path);
    return exit_ok;
}

}  // namespace

int run_token(invocation const& inv) {
    try {
        auto path = tokens_path(inv);
        if (inv.cmd.kind == command_kind::token_add) return add(inv, path);
        if (inv.cmd.kind == command_kind::token_list) return list(inv, path);
        return revoke(inv, path);
    } catch (usage_error const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_usage;
    } catch (std::exception const& e) {
        fmt::print(stderr, "agentctl: {}\n", e.what());
        return exit_failed;
    }
}

}  // namespace agentctl
