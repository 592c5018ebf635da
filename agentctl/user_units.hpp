// The per-user systemd units of `agentctl service install`, as packaging/user/ holds them:
// embedded at build time (user_units.cpp.in), so the packaged files and the written ones agree.
#pragma once

#include <string_view>

namespace agentctl {

extern std::string_view const user_service_unit;  // packaging/user/agentd.service
extern std::string_view const user_socket_unit;   // packaging/user/agentd.socket

}  // namespace agentctl
