// libsystemd's sd_notify, sd_watchdog_enabled and sd_listen_fds behind notify.hpp, and the
// watchdog's timer on the io_context.
#include "daemon/notify.hpp"

#include <boost/asio/steady_timer.hpp>

#include <systemd/sd-daemon.h>

#include <chrono>

namespace agentd::daemon {

void notify_service_manager(std::string const& state) {
    sd_notify(0, state.c_str());
}

std::vector<int> systemd_listen_fds() {
    int n = sd_listen_fds(1);
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) fds.push_back(SD_LISTEN_FDS_START + i);
    return fds;
}

struct watchdog::impl : std::enable_shared_from_this<watchdog::impl> {
    boost::asio::steady_timer timer;
    std::chrono::microseconds interval;

    impl(boost::asio::any_io_executor ex, std::chrono::microseconds every)
        : timer(std::move(ex)), interval(every) {}

    void arm() {
        timer.expires_after(interval);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (ec) return;
            sd_notify(0, "WATCHDOG=1");
            self->arm();
        });
    }
};

watchdog::watchdog(boost::asio::any_io_executor ex) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    // Half the interval, as sd_watchdog_enabled(3) advises: one late ping is not yet fatal.
    impl_ = std::make_shared<impl>(std::move(ex), std::chrono::microseconds(usec / 2));
    impl_->arm();
}

watchdog::~watchdog() {
    if (impl_) impl_->timer.cancel();
}

}  // namespace agentd::daemon
