// IdempotencyStore: remembers the response of every POST that carried an
// Idempotency-Key, so that a retried agent call returns the first response and
// applies nothing twice, also across a restart of the server.
//
// Entries live in a small SQLite database (<data_dir>/idempotency.db, WAL,
// synchronous=NORMAL: an entry survives a crash of the process; a power loss
// may lose the last ones). An entry is keyed by (scope, key): the scope is the
// authenticated principal, so two clients never see each other's entries. An
// entry also records the request's fingerprint (method, target, SHA-256 of the
// body); the same key with another fingerprint is refused. Entries expire
// after ttl_seconds (read through the injected Clock) and are purged lazily.
//
// Protocol for one request: Begin() -> kProceed: run it, then Finish() with the
// response (or Abandon() when it is not to be remembered, e.g. a 5xx).
// While a request is between Begin and Finish/Abandon, a concurrent Begin with
// the same (scope, key) gets kInFlight.
//
// Thread-safety: all methods are safe for concurrent use.
#ifndef BRANCHDB_SERVER_HTTP_IDEMPOTENCY_H_
#define BRANCHDB_SERVER_HTTP_IDEMPOTENCY_H_

#include <memory>
#include <set>
#include <string>
#include <utility>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"

struct sqlite3;

namespace branchdb::server::http {

struct StoredResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// SHA-256 (hex) of method + " " + target + "\n" + body.
std::string RequestFingerprint(const std::string& method, const std::string& target,
                               const std::string& body);

class IdempotencyStore {
 public:
  enum class Outcome {
    kProceed,   // new key: run the request
    kReplay,    // same key and fingerprint: answer with `response`
    kMismatch,  // same key, other request: refuse (422 idempotency_key_reused)
    kInFlight,  // same key, still running: refuse (409 idempotency_key_in_use)
  };
  struct BeginResult {
    Outcome outcome = Outcome::kProceed;
    StoredResponse response;  // kReplay only
  };

  // Opens or creates the database at path. clock is not owned.
  static Result<std::unique_ptr<IdempotencyStore>> Open(const std::string& path, Clock* clock,
                                                        int64_t ttl_seconds);
  ~IdempotencyStore();
  IdempotencyStore(const IdempotencyStore&) = delete;
  IdempotencyStore& operator=(const IdempotencyStore&) = delete;

  Result<BeginResult> Begin(const std::string& scope, const std::string& key,
                            const std::string& fingerprint);
  // Stores the response and ends the in-flight state.
  Status Finish(const std::string& scope, const std::string& key, const std::string& fingerprint,
                const StoredResponse& response);
  // Ends the in-flight state without storing anything (the key can be retried).
  void Abandon(const std::string& scope, const std::string& key);

  // Deletes expired entries; returns how many.
  Result<int64_t> PurgeExpired();

 private:
  IdempotencyStore(sqlite3* db, Clock* clock, int64_t ttl_seconds);

  Clock* const clock_;
  const int64_t ttl_micros_;
  Mutex mu_;  // a leaf: held across the store's own SQLite calls only
  sqlite3* db_ GUARDED_BY(mu_);  // owned
  std::set<std::pair<std::string, std::string>> in_flight_ GUARDED_BY(mu_);
  int64_t last_purge_micros_ GUARDED_BY(mu_) = 0;
};

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_IDEMPOTENCY_H_
