// The conversation agentd keeps for an upstream that keeps none (openai, DESIGN §5): the system
// text and the completed turns of a chain of jobs, replayed before a follow-up's prompt.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace agentd::jobs::upstream {

struct chat_turn {
    std::string user;
    std::string assistant;
};

struct transcript {
    std::optional<std::string> system;
    std::vector<chat_turn> turns;
};

}  // namespace agentd::jobs::upstream
