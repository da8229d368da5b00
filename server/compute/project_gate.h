// ProjectGate: keeps a project's page store alive while requests use
// connections to it. Every request that opens or leases a branch connection
// holds the project's gate shared; deleting a project holds it exclusive, so
// it waits for those requests, drops the computes, and only then deletes the
// store (the catalog requires connections closed before DeleteProject).
//
// Thread-safety: all methods are safe for concurrent use. Gates are created on
// first use and never freed (one small entry per project name ever used).
#ifndef BRANCHDB_SERVER_COMPUTE_PROJECT_GATE_H_
#define BRANCHDB_SERVER_COMPUTE_PROJECT_GATE_H_

#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

namespace branchdb::server::compute {

class ProjectGate {
 public:
  std::shared_lock<std::shared_mutex> Shared(const std::string& project) {
    return std::shared_lock<std::shared_mutex>(Get(project));
  }
  std::unique_lock<std::shared_mutex> Exclusive(const std::string& project) {
    return std::unique_lock<std::shared_mutex>(Get(project));
  }

 private:
  std::shared_mutex& Get(const std::string& project) {
    std::lock_guard<std::mutex> l(mu_);
    auto& slot = gates_[project];
    if (!slot) slot = std::make_unique<std::shared_mutex>();
    return *slot;
  }

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<std::shared_mutex>> gates_;  // guarded by mu_
};

}  // namespace branchdb::server::compute

#endif  // BRANCHDB_SERVER_COMPUTE_PROJECT_GATE_H_
