// agentd's entry point: parse flags, open the state dir and token, wire the upstream backend,
// job manager, RPC service and listeners onto one io_context, and run until SIGTERM/SIGINT.
#include "daemon/auth.hpp"
#include "daemon/config.hpp"
#include "daemon/rpc.hpp"
#include "daemon/server.hpp"
#include "jobs/manager.hpp"
#include "jobs/upstream/opencode.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>
#include <variant>

namespace {

using namespace agentd;

std::unique_ptr<jobs::upstream::backend> make_backend(boost::asio::any_io_executor ex,
                                                      daemon::config const& c) {
    auto target = jobs::origin::parse(c.upstream_url);
    if (!target) throw std::runtime_error("bad --upstream-url '" + c.upstream_url + "' (want http://HOST:PORT[/path])");
    jobs::upstream::opencode_config oc;
    oc.target = *target;
    oc.username = c.upstream_username;
    oc.password = c.upstream_password;
    oc.request_timeout = c.upstream_timeout;
    oc.max_output = c.limits.max_output_bytes;
    return jobs::upstream::make_opencode_backend(std::move(ex), std::move(oc));
}

int run(daemon::config const& c) {
    boost::asio::io_context ioc(1);
    // Before the listening line: a supervisor may signal as soon as it has read it.
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    daemon::server_options so{c.listen, std::nullopt, c.allowed_hosts, c.allowed_origins,
                              c.max_body_bytes, c.max_connections, c.read_timeout};
    if (c.auth == daemon::auth_mode::token) so.token = daemon::load_or_create_token(c.state_dir);

    jobs::manager manager(ioc.get_executor(), c.limits, make_backend(ioc.get_executor(), c));
    daemon::rpc_service rpc(ioc.get_executor(), manager, c.approval, protocol::codec_limits{},
                            c.dispatch);
    daemon::server srv(ioc.get_executor(), so, rpc);
    srv.open();
    manager.start();
    srv.start();

    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        std::cerr << "agentd: signal " << sig << ", shutting down\n";
        srv.stop();
        manager.stop();
        ioc.stop();
    });
    ioc.run();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = daemon::parse_config(argc, argv);
    if (auto const* code = std::get_if<int>(&parsed)) return *code;
    try {
        return run(std::get<daemon::config>(parsed));
    } catch (std::exception const& e) {
        std::cerr << "agentd: " << e.what() << "\n";
        return 1;
    }
}
