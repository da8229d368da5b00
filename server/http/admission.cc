#include "server/http/admission.h"

namespace branchdb::server::http {

Result<Admission::Slot> Admission::TryAcquire(const std::string& client) {
  MutexLock l(mu_);
  if (total_ >= max_total_) {
    return Status::ResourceExhausted(
        "the server is running its maximum of " + std::to_string(max_total_) +
            " SQL requests (sql.max_concurrent); retry after Retry-After seconds",
        "too_many_requests");
  }
  int& mine = running_[client];
  if (mine >= max_per_client_) {
    return Status::ResourceExhausted(
        "this client already runs " + std::to_string(max_per_client_) +
            " SQL requests at once (sql.max_concurrent_per_client); wait for one to finish, "
            "then retry (Retry-After)",
        "too_many_requests");
  }
  ++mine;
  ++total_;
  return Slot(this, client);
}

void Admission::Release(const std::string& client) {
  MutexLock l(mu_);
  --total_;
  auto it = running_.find(client);
  if (it != running_.end() && --it->second <= 0) running_.erase(it);
}

}  // namespace branchdb::server::http
