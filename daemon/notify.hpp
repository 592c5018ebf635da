// systemd integration: the notifications of Type=notify (READY=1, STOPPING=1), the watchdog
// keep-alive and the listening sockets of socket activation. Each is a no-op outside systemd
// (no $NOTIFY_SOCKET, $WATCHDOG_USEC or $LISTEN_FDS), so main calls them unconditionally.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace agentd::daemon {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to the service manager.
void notify_service_manager(std::string const& state);

// The listening sockets systemd passed to this process (fds 3...), marked close-on-exec; empty
// when it passed none. Unsets $LISTEN_FDS and friends so that no child inherits them.
std::vector<int> systemd_listen_fds();

// While it lives, sends WATCHDOG=1 at half the interval systemd asked for ($WATCHDOG_USEC, for
// this process per $WATCHDOG_PID); does nothing when the watchdog is off. Pings come from the
// io_context, so a wedged event loop stops them and systemd restarts the service.
class watchdog {
  public:
    explicit watchdog(boost::asio::any_io_executor ex);
    ~watchdog();
    watchdog(watchdog const&) = delete;
    watchdog& operator=(watchdog const&) = delete;

  private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace agentd::daemon
