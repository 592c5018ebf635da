// pg_cluster; see pg_cluster.hpp. Commands run through /bin/sh with their output in a log file
// of the cluster's dir (shown when they fail); every path is one this file made.
#include "support/pg_cluster.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace agentd::test {
namespace fs = std::filesystem;

namespace {

fs::path find_bin() {
    fs::path debian = "/usr/lib/postgresql/15/bin";
    if (fs::exists(debian / "initdb")) return debian;
    if (char const* path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        std::string d;
        while (std::getline(dirs, d, ':'))
            if (!d.empty() && fs::exists(fs::path(d) / "initdb") &&
                fs::exists(fs::path(d) / "pg_ctl"))
                return d;
    }
    throw std::runtime_error(
        "PostgreSQL 15 is not installed (no initdb in /usr/lib/postgresql/15/bin nor on the "
        "PATH): run scripts/setup.sh, which installs postgresql-15");
}

// A loopback port nobody listens on now (the kernel's pick).
int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot pick a free loopback port");
    ::close(fd);
    return ntohs(a.sin_port);
}

std::string read_file(fs::path const& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class shared_environment : public ::testing::Environment {
  public:
    void TearDown() override { cluster.reset(); }
    std::unique_ptr<pg_cluster> cluster;
};

shared_environment* environment() {
    static auto* env = static_cast<shared_environment*>(
        ::testing::AddGlobalTestEnvironment(new shared_environment));
    return env;
}

}  // namespace

pg_cluster::pg_cluster() : bin_(find_bin()) {
    as_postgres_ = ::geteuid() == 0;
    std::string templ = (fs::temp_directory_path() / "agentd-pg-XXXXXX").string();
    if (!::mkdtemp(templ.data())) throw std::runtime_error("cannot create a temp dir");
    dir_ = templ;
    if (as_postgres_) {
        passwd const* pw = ::getpwnam("postgres");
        if (!pw)
            throw std::runtime_error(
                "running as root but there is no `postgres` user: run scripts/setup.sh");
        if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
            throw std::runtime_error("cannot chown the cluster's dir to postgres");
    }
    port_ = free_port();
    try {
        run(
            fmt::format("'{}/initdb' -D '{}/data' --no-sync -A trust -U postgres -E UTF8 "
                        "--locale=C.UTF-8",
                        bin_.string(), dir_.string()));
        start();
    } catch (...) {
        fs::remove_all(dir_);
        throw;
    }
}

pg_cluster::~pg_cluster() {
    try {
        stop();
    } catch (std::exception const& e) {
        ADD_FAILURE() << e.what();
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

pg_cluster& pg_cluster::shared() {
    auto* env = environment();
    if (!env->cluster) env->cluster = std::make_unique<pg_cluster>();
    return *env->cluster;
}

void pg_cluster::run(std::string const& command) const {
    auto log = dir_ / "command.log";
    auto line = as_postgres_ ? fmt::format("runuser -u postgres -- {}", command) : command;
    int rc = std::system(fmt::format("{} > '{}' 2>&1", line, log.string()).c_str());
    if (rc != 0)
        throw std::runtime_error(fmt::format("`{}` failed ({}):\n{}\nserver log:\n{}", line, rc,
                                             read_file(log), read_file(dir_ / "server.log")));
}

void pg_cluster::start() {
    run(
        fmt::format("'{}/pg_ctl' -D '{}/data' -l '{}/server.log' -w -t 30 start -o \"-p {} -k {} "
                    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                    "-c full_page_writes=off\"",
                    bin_.string(), dir_.string(), dir_.string(), port_, dir_.string()));
    running_ = true;
}

void pg_cluster::stop() {
    if (!running_) return;
    run(fmt::format("'{}/pg_ctl' -D '{}/data' -m fast -w -t 30 stop", bin_.string(),
                    dir_.string()));
    running_ = false;
}

std::string pg_cluster::url(std::string const& db) const {
    return fmt::format("postgres://postgres@127.0.0.1:{}/{}", port_, db);
}

std::string pg_cluster::create_database() {
    auto name = fmt::format("test_{}_{}", ::getpid(), ++databases_);
    PGconn* c = PQconnectdb(url("postgres").c_str());
    std::string error;
    if (PQstatus(c) != CONNECTION_OK) {
        error = PQerrorMessage(c);
    } else {
        PGresult* r = PQexec(
            c, fmt::format("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0", name).c_str());
        if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
        PQclear(r);
    }
    PQfinish(c);
    if (!error.empty()) throw std::runtime_error("cannot create a test database: " + error);
    return url(name);
}

}  // namespace agentd::test
