// Integration fixture for agentd on the PostgreSQL store: like agentd_test (one fake upstream,
// one real agentd), but agentd runs with --store on a fresh database of the test cluster, and
// every restart keeps that flag (so kill -9 and restart find the same database).
#pragma once

#include "integration/agentd_fixture.hpp"
#include "support/pg_cluster.hpp"

namespace agentd::test {

class postgres_agentd_test : public agentd_test {
  protected:
    void SetUp() override {
        if (!pg_cluster::shared().running()) pg_cluster::shared().start();
        url_ = pg_cluster::shared().create_database();
        fake_ = std::make_unique<fake_upstream>(FAKE_OPENCODE_PATH);
        agentd_ = std::make_unique<agentd_process>(fake_->url(), store_flags());
    }
    // Hides agentd_test's: the store flags come first, then `extra`.
    void restart_agentd(std::vector<std::string> extra) {
        auto flags = store_flags();
        flags.insert(flags.end(), extra.begin(), extra.end());
        agentd_.reset();
        agentd_ = std::make_unique<agentd_process>(fake_->url(), std::move(flags));
    }
    std::vector<std::string> store_flags() const { return {"--store", url_}; }

    std::string url_;
};

}  // namespace agentd::test
