// agentd's entry point: parse flags, open the state dir and token, wire the upstream backend,
// job manager, RPC service and listeners onto one io_context, and run until SIGTERM/SIGINT
// (SIGHUP re-reads the tokens file of the principals).
#include "common/log.hpp"
#include "common/names.hpp"
#include "common/state_dir.hpp"
#include "common/url.hpp"
#include "daemon/auth.hpp"
#include "daemon/config.hpp"
#include "daemon/metrics.hpp"
#include "daemon/notify.hpp"
#include "daemon/principals.hpp"
#include "daemon/rpc.hpp"
#include "daemon/server.hpp"
#include "daemon/state_dir.hpp"
#include "daemon/timed_backend.hpp"
#include "jobs/manager.hpp"
#include "jobs/postgres_store.hpp"
#include "jobs/random.hpp"
#include "jobs/sqlite_store.hpp"
#include "jobs/upstream/openai.hpp"
#include "jobs/upstream/opencode.hpp"
#include "jobs/upstream/pool.hpp"
#include "protocol/version.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <variant>

namespace {

using namespace agentd;

std::unique_ptr<jobs::upstream::backend> make_openai_backend(boost::asio::any_io_executor ex,
                                                             daemon::config const& c,
                                                             std::string const& url) {
    auto target = common::parse_url(url).value;
    if (!target || target->scheme == common::url_scheme::unix_socket)
        throw std::runtime_error("bad --upstream-url '" + url +
                                 "' (want http[s]://HOST[:PORT][/path], e.g. .../v1)");
    jobs::upstream::openai_config oc;
    oc.target = *target;
    oc.api_key = c.upstream_api_key;
    oc.default_model = c.upstream_model;
    oc.ca_file = c.upstream_ca_file;
    oc.request_timeout = c.upstream_timeout;
    oc.max_output = c.limits.max_output_bytes;
    return jobs::upstream::make_openai_backend(std::move(ex), std::move(oc));
}

std::unique_ptr<jobs::upstream::backend> make_backend(boost::asio::any_io_executor ex,
                                                      daemon::config const& c,
                                                      std::string const& url) {
    if (c.upstream_backend == jobs::upstream::backend_kind::openai)
        return make_openai_backend(std::move(ex), c, url);
    auto target = common::parse_url(url).value;
    if (!target || target->scheme != common::url_scheme::http)
        throw std::runtime_error("bad --upstream-url '" + url + "' (want http://HOST:PORT[/path])");
    jobs::upstream::opencode_config oc;
    oc.target = *target;
    oc.username = c.upstream_username;
    oc.password = c.upstream_password;
    oc.request_timeout = c.upstream_timeout;
    oc.max_output = c.limits.max_output_bytes;
    auto const per_server = c.upstream_max_running_per_server;
    oc.max_idle_connections = std::max<std::size_t>(
        oc.max_idle_connections,
        per_server > 0 ? std::min(per_server, c.limits.max_running) : c.limits.max_running);
    return jobs::upstream::make_opencode_backend(std::move(ex), std::move(oc));
}

// This instance's name on a shared store: configured, else kept in STATE_DIR/instance (host name
// and a random suffix, made once), so a restart under the same state takes its jobs back.
std::string instance_name(daemon::config const& c) {
    if (c.store_instance) return *c.store_instance;
    auto const file = std::filesystem::path(c.state_dir) / "instance";
    std::string name;
    if (std::ifstream in(file); in) std::getline(in, name);
    if (common::valid_name(name)) return name;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    for (char const* p = host; *p && name.size() < 40; ++p)
        name += std::isalnum(static_cast<unsigned char>(*p)) || *p == '.' || *p == '-' ? *p : '-';
    name = (name.empty() ? "agentd" : name) + "-" + jobs::random_hex(4);
    std::ofstream(file) << name << '\n';
    return name;
}

// SQLite in the state directory, or PostgreSQL (DESIGN §9); throws when the store is unusable.
std::unique_ptr<jobs::store> open_store(boost::asio::any_io_executor ex, daemon::config const& c,
                                        std::string const& instance) {
    if (c.store == daemon::store_backend::postgres)
        return std::make_unique<jobs::postgres_store>(
            std::move(ex), *c.store_url,
            jobs::postgres_options{.instance = instance, .lease_ttl = c.store_lease_ttl});
    return std::make_unique<jobs::sqlite_store>(std::filesystem::path(c.state_dir) / "agentd.db");
}

// Every configured server behind one pool (one server: no health checks, today's behaviour),
// each timed into the metrics.
std::unique_ptr<jobs::upstream::backend> make_pool(boost::asio::any_io_executor ex,
                                                   daemon::config const& c, daemon::metrics& m) {
    std::vector<jobs::upstream::pool_member> members;
    for (auto const& url : c.upstream_urls)
        members.push_back({url, daemon::timed_backend(make_backend(ex, c, url), m)});
    return jobs::upstream::make_pool(
        std::move(ex), std::move(members),
        {c.upstream_max_running_per_server, c.upstream_health_interval});
}

// DESIGN §7: restored jobs are settled before any client can see them, so the listeners accept
// only once recovery is done (bounded, so an unreachable upstream cannot keep agentd closed).
boost::asio::awaitable<void> serve_after_recovery(jobs::manager& manager, daemon::server& srv,
                                                  bool const& stopping) {
    co_await manager.recover(std::chrono::seconds(5));
    if (stopping) co_return;
    srv.start();
    daemon::notify_service_manager("READY=1");
}

// The graceful path: jobs drain (persisted as they end), connections finish their answers
// (the ones released by the drain, waits on ended jobs, are still being written).
boost::asio::awaitable<void> shutdown(boost::asio::io_context& ioc, jobs::manager& manager,
                                      daemon::server& srv, boost::asio::signal_set& signals,
                                      std::chrono::milliseconds grace) {
    co_await manager.drain(grace);
    srv.stop();
    co_await srv.join(std::chrono::milliseconds(100));
    signals.cancel();
    ioc.stop();
}

// The named principals: the configured tokens file (which must exist), else STATE_DIR/tokens.toml
// when there is one. An error names the file and the key.
std::vector<common::principal_entry> read_principals(daemon::config const& c) {
    auto path = c.tokens_file ? std::filesystem::path(*c.tokens_file)
                              : common::default_tokens_path(c.state_dir);
    auto read = common::read_tokens_file(path, c.tokens_file.has_value());
    if (auto const* error = std::get_if<std::string>(&read)) throw std::runtime_error(*error);
    return std::get<std::vector<common::principal_entry>>(std::move(read));
}

// SIGHUP: the tokens file again. A revoked token is refused from its next request on and its
// WebSocket and MCP sessions close; on an error the previous principals stay.
void reload_principals(daemon::config const& c, daemon::principals& table, jobs::manager& manager) {
    try {
        table.replace(read_principals(c));
    } catch (std::exception const& e) {
        log::error("principals_reload_failed",
                   {{"error", e.what()}, {"action", "kept the previous principals"}});
        return;
    }
    manager.set_quotas(table.quotas());
    log::info("principals_reloaded", {{"count", table.count()}});
}

void on_hangup(boost::asio::signal_set& hangup, daemon::config const& c,
               std::shared_ptr<daemon::principals> const& table, jobs::manager& manager) {
    hangup.async_wait([&hangup, &c, table, &manager](boost::system::error_code ec, int) {
        if (ec) return;
        if (table)
            reload_principals(c, *table, manager);
        else
            log::info("principals_reloaded", {{"count", 0}, {"auth", "none"}});
        on_hangup(hangup, c, table, manager);
    });
}

int run(daemon::config const& c) {
    boost::asio::io_context ioc(1);
    // Before the listening line: a supervisor may signal as soon as it has read it.
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    boost::asio::signal_set hangup(ioc, SIGHUP);
    daemon::server_options so{.listen = c.listen,
                              .principals = nullptr,
                              .allowed_hosts = c.allowed_hosts,
                              .allowed_origins = c.allowed_origins,
                              .max_body_bytes = c.max_body_bytes,
                              .max_connections = c.max_connections,
                              .read_timeout = c.read_timeout,
                              .ws_max_outbox_bytes = c.ws_max_outbox_bytes,
                              .ws_idle_timeout = c.ws_idle_timeout,
                              .inherited_fds = daemon::systemd_listen_fds(),
                              .max_mcp_sessions = c.max_mcp_sessions,
                              .first_request_timeout = c.first_request_timeout,
                              .mcp_session_prefix = {}};
    daemon::ensure_state_dir(c.state_dir);
    daemon::verify_state_dir(c.state_dir);
    if (c.auth == daemon::auth_mode::token) {
        daemon::verify_token_file(common::token_path(c.state_dir), c.token_mode);
        so.principals = std::make_shared<daemon::principals>(
            daemon::load_or_create_token(c.state_dir, c.token_mode), read_principals(c));
        if (so.principals->count() > 0)
            log::info("principals_loaded", {{"count", so.principals->count()}});
    }
    auto const instance =
        c.store == daemon::store_backend::postgres ? instance_name(c) : std::string();
    if (!instance.empty()) so.mcp_session_prefix = instance + ".";
    auto db = open_store(ioc.get_executor(), c, instance);

    daemon::metrics stats(std::string(agentd::version),
                          std::string(protocol::to_string(c.upstream_backend)));
    auto limits = c.limits;
    limits.max_diff_bytes = c.max_response_bytes;
    jobs::manager manager(ioc.get_executor(), limits, make_pool(ioc.get_executor(), c, stats),
                          db.get());
    if (so.principals) manager.set_quotas(so.principals->quotas());
    stats.watch_background([&manager] { return manager.background(); });
    stats.watch_servers([&manager] { return manager.servers(); });
    // Before start(): jobs interrupted while restoring count as finished.
    // Another instance's jobs (a shared store) count there, not here.
    auto counting = manager.listen([&stats](jobs::job const& j) {
        if (j.runtime().holder.empty()) stats.job_changed(j.view);
    });
    daemon::rpc_service rpc(manager, c.approval,
                            protocol::codec_limits{.max_response_bytes = c.max_response_bytes},
                            &stats);
    if (auto* shared = manager.shared())
        shared->serve(
            [&rpc](std::string request) { return rpc.answer_forwarded(std::move(request)); });
    daemon::server srv(ioc.get_executor(), so, rpc);
    srv.open();
    manager.start();
    bool stopping = false;
    boost::asio::co_spawn(ioc, serve_after_recovery(manager, srv, stopping), boost::asio::detached);
    daemon::watchdog alive(ioc.get_executor());
    on_hangup(hangup, c, so.principals, manager);

    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) return;
        log::info("signal", {{"signal", sig}, {"action", "draining (again to exit at once)"}});
        stopping = true;
        daemon::notify_service_manager("STOPPING=1");
        // The store is consistent after every write, so a second signal may simply leave.
        signals.async_wait([](boost::system::error_code again, int second) {
            if (!again) std::_Exit(128 + second);
        });
        srv.stop();
        hangup.cancel();
        boost::asio::co_spawn(ioc, shutdown(ioc, manager, srv, signals, c.shutdown_grace),
                              boost::asio::detached);
    });
    ioc.run();
    log::info("stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = daemon::parse_config(argc, argv);
    if (auto const* code = std::get_if<int>(&parsed)) return *code;
    auto const& c = std::get<daemon::config>(parsed);
    log::configure(c.log_level,
                   {c.log_format, log::is_journal_stream(std::getenv("JOURNAL_STREAM"), 2)});
    try {
        return run(c);
    } catch (std::exception const& e) {
        log::error("fatal", {{"error", e.what()}});
        return 1;
    }
}
