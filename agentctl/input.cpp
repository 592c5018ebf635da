// Settling requests for the live commands: the inline prompt (prompt.hpp) on a terminal, one
// agents_respond per answer, and the printed requests plus exit 5 where nobody can answer.
#include "input.hpp"

#include "app.hpp"
#include "exit_codes.hpp"
#include "prompt.hpp"
#include "render.hpp"

#include <fmt/core.h>

#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace agentctl {
namespace json = boost::json;

bool can_ask(invocation const& inv) {
    return !inv.globals.json && ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
}

void print_requests(std::vector<input_request> const& requests) {
    for (auto const& r : requests)
        for (auto const& line : request_lines(r)) fmt::print("{}\n", line);
    std::fflush(stdout);
}

void print_input_hint() {
    fmt::print(stderr,
               "agentctl: input needed: answer with `agentctl respond JOB REQUEST "
               "allow|always|deny` or `agentctl respond JOB REQUEST --answer LABEL`\n");
}

std::optional<int> settle(invocation const& inv, std::vector<input_request> const& requests) {
    if (!can_ask(inv)) {
        print_requests(requests);
        print_input_hint();
        return exit_input_needed;
    }
    for (std::size_t i = 0; i < requests.size(); ++i) {
        auto const& r = requests[i];
        std::fflush(stdout);
        auto reply = ask(r, std::cin, std::cout);
        if (!reply) {  // stdin ended: nobody is left to ask
            std::cout << "\n";
            print_requests({requests.begin() + static_cast<std::ptrdiff_t>(i), requests.end()});
            print_input_hint();
            return exit_input_needed;
        }
        json::object params{{"job", r.job}, {"request", r.request.at("id")}};
        if (!r.session.empty()) params["session"] = r.session;  // watch --all shows any session
        for (auto const& field : *reply) params[field.key()] = field.value();
        auto answered = call(inv, {"agents_respond", std::move(params)});
        // A failure (the request was settled elsewhere meanwhile) is already on stderr.
        if (auto const* result = std::get_if<json::object>(&answered)) {
            auto const* job = result->if_contains("job");
            auto view = read_job(job ? *job : json::value{});
            std::cout << fmt::format("  answered; {} is {}\n", short_id(view.id), view.state);
        }
        std::cout.flush();
    }
    return std::nullopt;
}

}  // namespace agentctl
