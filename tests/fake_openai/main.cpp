// Entry point of fake_openai, a stand-in for an OpenAI-compatible chat-completions server in
// agentd's tests. Parses the flags and hands over to the server; exits 0 on SIGTERM/SIGINT, 2 on
// bad usage.
#include "fake_common/fake_main.hpp"
#include "options.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view usage =
    "usage: fake_openai [--listen HOST:PORT] [--latency-ms N] [--api-key KEY]\n"
    "                   [--tls-cert PEM --tls-key PEM] [--models A,B] [--models-status N]\n";

// "a,b" → {a, b}; "" → none.
std::vector<std::string> split_list(std::string_view value) {
    std::vector<std::string> out;
    while (!value.empty()) {
        auto comma = value.find(',');
        out.emplace_back(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    return out;
}

// Later flags win, so a caller can override defaults it was handed.
void apply_flag(std::string_view flag, std::string_view value, fake_openai::options& opts) {
    if (flag == "--listen") {
        auto at = fake_common::parse_listen(value);
        opts.host = at.host;
        opts.port = at.port;
    } else if (flag == "--latency-ms") {
        opts.latency_ms = fake_common::flag_count(flag, value);
    } else if (flag == "--api-key") {
        opts.api_key = std::string(value);
    } else if (flag == "--tls-cert") {
        opts.tls_cert = std::string(value);
    } else if (flag == "--tls-key") {
        opts.tls_key = std::string(value);
    } else if (flag == "--models") {
        opts.models = split_list(value);
    } else if (flag == "--models-status") {
        auto status = fake_common::flag_count(flag, value);
        if (status < 100 || status > 599)
            throw std::invalid_argument("--models-status needs an HTTP status");
        opts.models_status = static_cast<unsigned>(status);
    } else {
        throw std::invalid_argument("unknown flag " + std::string(flag));
    }
}

}  // namespace

int main(int argc, char** argv) {
    fake_openai::options opts;
    return fake_common::fake_main(
        "fake_openai", usage,
        [&] {
            fake_common::parse_flags(argc, argv, usage, {},
                                     [&](auto flag, auto value) { apply_flag(flag, value, opts); });
            if (opts.tls_key && !opts.tls_cert)
                throw std::invalid_argument("--tls-key needs --tls-cert");
        },
        [&] { return fake_openai::run_server(opts); });
}
