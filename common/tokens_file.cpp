// The tokens file: parsing and checking with toml++, SHA-256 with OpenSSL's EVP, the safe read
// and the atomic rewrite; see tokens_file.hpp.
#include "common/tokens_file.hpp"

#include "common/names.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace agentd::common {
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t max_quota = 100'000;      // limits.max_running's own bound
constexpr std::size_t max_file_bytes = 4 << 20;  // far beyond any real team
constexpr std::string_view digits = "0123456789abcdef";

std::string hex(unsigned char const* bytes, std::size_t n) {
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(digits[bytes[i] >> 4]);
        out.push_back(digits[bytes[i] & 15]);
    }
    return out;
}

bool lowercase_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<std::string> check_entry(std::string const& name, toml::table const& t,
                                       principal_entry& e) {
    auto key = "principals." + name;
    if (!valid_name(name)) return key + ": a name is [A-Za-z0-9_.-]{1,64}";
    if (name == local_principal)
        return key + ": \"local\" is reserved for the state directory's token";
    e.name = name;
    for (auto const& [k, v] : t) {
        auto where = key + "." + std::string(k.str());
        if (k == "sha256") {
            auto const* s = v.as_string();
            if (!s) return where + ": expected a string";
            auto const& text = s->get();
            if (text.size() != 64 || !lowercase_hex(text))
                return where + ": expected 64 lowercase hex digits (the token's SHA-256)";
            e.sha256 = text;
        } else if (k == "admin") {
            auto const* b = v.as_boolean();
            if (!b) return where + ": expected a boolean";
            e.admin = b->get();
        } else if (k == "max_running") {
            auto const* n = v.as_integer();
            if (!n) return where + ": expected an integer";
            if (n->get() < 0 || n->get() > max_quota)
                return where + ": " + std::to_string(n->get()) + " is out of range [0, " +
                       std::to_string(max_quota) + "]";
            e.max_running = static_cast<std::size_t>(n->get());
        } else {
            return where + ": unknown key";
        }
    }
    if (e.sha256.empty()) return key + ".sha256: missing";
    return std::nullopt;
}

std::optional<toml::table> parse_table(std::string_view text, std::string& error) {
    try {
        return toml::parse(text);
    } catch (toml::parse_error const& e) {
        error = "line " + std::to_string(e.source().begin.line) + ", column " +
                std::to_string(e.source().begin.column) + ": " + std::string(e.description());
        return std::nullopt;
    }
}

std::string to_text(toml::table const& root) {
    std::ostringstream out;
    out << toml::toml_formatter(root) << "\n";
    return out.str();
}

}  // namespace

std::array<unsigned char, 32> sha256(std::string_view text) {
    // Fetched once, with one context per thread: EVP_Digest(…, EVP_sha256(), …) makes OpenSSL 3
    // fetch the algorithm and allocate a context on every call, ~20 000 instructions, which
    // every authenticated request paid (more than the rest of an agents_status).
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> const ctx(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    std::array<unsigned char, 32> out{};
    unsigned int n = 0;
    if (!md || !ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), text.data(), text.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), out.data(), &n) != 1 || n != out.size())
        throw std::runtime_error("SHA-256 failed");
    return out;
}

std::string sha256_hex(std::string_view text) {
    auto const digest = sha256(text);
    return hex(digest.data(), digest.size());
}

std::string new_token() {
    std::array<unsigned char, 32> raw{};
    std::size_t got = 0;
    while (got < raw.size()) {
        auto n = ::getrandom(raw.data() + got, raw.size() - got, 0);
        if (n < 0 && errno != EINTR) throw std::runtime_error("getrandom failed");
        if (n > 0) got += static_cast<std::size_t>(n);
    }
    return hex(raw.data(), raw.size());
}

std::variant<std::vector<principal_entry>, std::string> parse_tokens(std::string_view text) {
    std::string error;
    auto root = parse_table(text, error);
    if (!root) return error;
    std::vector<principal_entry> out;
    std::map<std::string, std::string> by_hash;
    for (auto const& [k, v] : *root) {
        if (k != "principals") return "unknown key " + std::string(k.str());
        auto const* all = v.as_table();
        if (!all) return std::string("principals: expected a table");
        for (auto const& [name, entry] : *all) {
            auto const* t = entry.as_table();
            if (!t) return "principals." + std::string(name.str()) + ": expected a table";
            principal_entry e;
            if (auto why = check_entry(std::string(name.str()), *t, e)) return *why;
            auto [seen, fresh] = by_hash.emplace(e.sha256, e.name);
            if (!fresh)
                return "principals." + e.name + ".sha256: the same token as principals." +
                       seen->second;
            out.push_back(std::move(e));
        }
    }
    return out;
}

fs::path default_tokens_path(fs::path const& state_dir) {
    return state_dir / "tokens.toml";
}

std::variant<std::vector<principal_entry>, std::string> read_tokens_file(fs::path const& path,
                                                                         bool must_exist) {
    auto where = "tokens file " + path.string() + ": ";
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !must_exist) return std::vector<principal_entry>{};
        return where + (errno == ELOOP ? "it is a symbolic link" : std::strerror(errno));
    }
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return where + std::strerror(errno);
    if (!S_ISREG(st.st_mode)) return where + "not a regular file";
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        return where + "group or others may write it (chmod 600 or 640)";
    if (static_cast<std::size_t>(st.st_size) > max_file_bytes) return where + "too large";
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        auto n = ::read(fd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    auto parsed = parse_tokens(text);
    if (auto const* error = std::get_if<std::string>(&parsed)) return where + *error;
    return parsed;
}

std::variant<std::string, std::string> with_principal(std::string_view text,
                                                      principal_entry const& e) {
    std::string error;
    auto root = parse_table(text, error);
    if (!root) return std::variant<std::string, std::string>(std::in_place_index<1>, error);
    auto* all = root->emplace<toml::table>("principals").first->second.as_table();
    if (!all)
        return std::variant<std::string, std::string>(std::in_place_index<1>,
                                                      "principals: expected a table");
    auto* t = all->emplace<toml::table>(e.name).first->second.as_table();
    if (!t)
        return std::variant<std::string, std::string>(
            std::in_place_index<1>, "principals." + e.name + ": expected a table");
    t->insert_or_assign("sha256", e.sha256);
    t->insert_or_assign("admin", e.admin);
    if (e.max_running > 0)
        t->insert_or_assign("max_running", static_cast<std::int64_t>(e.max_running));
    else
        t->erase("max_running");
    return std::variant<std::string, std::string>(std::in_place_index<0>, to_text(*root));
}

std::optional<std::string> without_principal(std::string_view text, std::string const& name) {
    std::string error;
    auto root = parse_table(text, error);
    if (!root) return std::nullopt;
    auto* all = root->get_as<toml::table>("principals");
    if (!all || all->erase(name) == 0) return std::nullopt;
    return to_text(*root);
}

std::optional<std::string> write_file_atomically(fs::path const& path, std::string const& text) {
    auto temp = path;
    temp += ".tmp-XXXXXX";
    std::string name = temp.string();
    int fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) return "cannot create " + name + ": " + std::strerror(errno);
    bool ok = ::fchmod(fd, 0600) == 0;
    std::size_t written = 0;
    while (ok && written < text.size()) {
        auto n = ::write(fd, text.data() + written, text.size() - written);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) written += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    auto saved = errno;
    ::close(fd);
    if (ok && ::rename(name.c_str(), path.c_str()) == 0) return std::nullopt;
    if (ok) saved = errno;
    ::unlink(name.c_str());
    return "cannot write " + path.string() + ": " + std::strerror(saved);
}

}  // namespace agentd::common
