// pg_cluster: a throw-away PostgreSQL 15 cluster for tests (DESIGN §9): initdb into a fresh temp
// dir (as the unprivileged `postgres` user when running as root, as CI does), started on a free
// loopback port with its socket in that dir, stopped (-m fast) and removed by the destructor.
// Missing binaries are a failure pointing at scripts/setup.sh, never a skip.
#pragma once

#include <filesystem>
#include <string>

namespace agentd::test {

class pg_cluster {
  public:
    pg_cluster();  // throws std::runtime_error saying what failed (and the server's log)
    ~pg_cluster();
    pg_cluster(pg_cluster const&) = delete;
    pg_cluster& operator=(pg_cluster const&) = delete;

    // The cluster of this test program: started on first use, stopped when the tests end (a
    // gtest Environment), also when they fail.
    static pg_cluster& shared();

    int port() const { return port_; }
    // postgres://postgres@127.0.0.1:PORT/db (trust authentication on loopback).
    std::string url(std::string const& db) const;
    // A new, empty database (UTF8) of its own for one test; returns its URL.
    std::string create_database();

    // For fault tests: stops the server (pg_ctl stop -m fast: connections are cut) and starts
    // it again on the same port and data.
    void stop();
    void start();
    bool running() const { return running_; }

  private:
    void run(std::string const& command) const;  // throws with the output when it fails

    std::filesystem::path bin_;
    std::filesystem::path dir_;
    int port_ = 0;
    bool as_postgres_ = false;
    bool running_ = false;
    int databases_ = 0;
};

}  // namespace agentd::test
