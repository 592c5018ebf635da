// agentctl: command-line client of agentd (DESIGN §8). Parses the command line and runs it;
// everything else lives in agentctl_core so the unit tests can link it.
#include "app.hpp"

int main(int argc, char** argv) {
    auto parsed = agentctl::parse_cli(argc, argv);
    if (auto const* code = std::get_if<int>(&parsed)) return *code;
    return agentctl::run(std::get<agentctl::invocation>(parsed));
}
