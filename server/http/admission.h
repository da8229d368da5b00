// Admission: bounds the requests that run SQL (the expensive ones), so that
// slow SQL cannot take every thread, core or connection of the server:
// at most max_total at once, and at most max_per_client of one client (its
// OAuth client id). A request over either limit is refused at once (the
// caller answers 429 with Retry-After), never queued behind the slow ones.
//
// Thread-safety: safe for concurrent use. A Slot must not outlive its Admission.
#ifndef BRANCHDB_SERVER_HTTP_ADMISSION_H_
#define BRANCHDB_SERVER_HTTP_ADMISSION_H_

#include <map>
#include <string>

#include "base/mutex.h"
#include "base/status.h"

namespace branchdb::server::http {

class Admission {
 public:
  Admission(int max_total, int max_per_client)
      : max_total_(max_total), max_per_client_(max_per_client) {}
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A place taken by TryAcquire; gives it back when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : owner_(other.owner_), client_(std::move(other.client_)) {
      other.owner_ = nullptr;
    }
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (owner_ != nullptr) owner_->Release(client_);
    }

   private:
    friend class Admission;
    Slot(Admission* owner, std::string client) : owner_(owner), client_(std::move(client)) {}
    Admission* owner_ = nullptr;
    std::string client_;
  };

  // A slot for client, or ResourceExhausted (reason "too_many_requests",
  // a message naming the limit) when a limit is reached.
  Result<Slot> TryAcquire(const std::string& client) EXCLUDES(mu_);

 private:
  void Release(const std::string& client) EXCLUDES(mu_);

  const int max_total_;
  const int max_per_client_;
  Mutex mu_;  // a leaf
  int total_ GUARDED_BY(mu_) = 0;
  std::map<std::string, int> running_ GUARDED_BY(mu_);
};

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_ADMISSION_H_
