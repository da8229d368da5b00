#include "server/http/idempotency.h"

#include <sqlite3.h>

#include "base/sha256.h"

namespace branchdb::server::http {
namespace {

Status IdempotencyStoreError(sqlite3* db, const std::string& what) {
  return Status::IOError(what + ": " + sqlite3_errmsg(db), "idempotency_store");
}

// A prepared statement finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Text(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

}  // namespace

std::string RequestFingerprint(const std::string& method, const std::string& target,
                               const std::string& body) {
  return Sha256Hex(method + " " + target + "\n" + body);
}

IdempotencyStore::IdempotencyStore(sqlite3* db, Clock* clock, int64_t ttl_seconds)
    : clock_(clock), ttl_micros_(ttl_seconds * 1000000), db_(db) {}

IdempotencyStore::~IdempotencyStore() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<IdempotencyStore>> IdempotencyStore::Open(const std::string& path,
                                                                 Clock* clock,
                                                                 int64_t ttl_seconds) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s = Status::IOError("open " + path + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
                               "idempotency_store");
    sqlite3_close_v2(db);
    return s;
  }
  std::unique_ptr<IdempotencyStore> store(new IdempotencyStore(db, clock, ttl_seconds));
  sqlite3_busy_timeout(db, 5000);
  const char* setup =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS idempotency ("
      "  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
      "  status INTEGER NOT NULL, content_type TEXT NOT NULL, body BLOB NOT NULL,"
      "  created_micros INTEGER NOT NULL, expires_micros INTEGER NOT NULL,"
      "  PRIMARY KEY (scope, key));"
      "CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency(expires_micros);";
  char* err = nullptr;
  if (sqlite3_exec(db, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Status::IOError("set up " + path + ": " + (err ? err : "?"), "idempotency_store");
    sqlite3_free(err);
    return s;
  }
  return store;
}

Result<IdempotencyStore::BeginResult> IdempotencyStore::Begin(const std::string& scope,
                                                              const std::string& key,
                                                              const std::string& fingerprint) {
  MutexLock l(mu_);
  BeginResult result;
  if (in_flight_.count({scope, key})) {
    result.outcome = Outcome::kInFlight;
    return result;
  }
  Stmt q(db_,
         "SELECT fingerprint, status, content_type, body FROM idempotency "
         "WHERE scope=?1 AND key=?2 AND expires_micros > ?3");
  if (!q.ok()) return IdempotencyStoreError(db_, "idempotency lookup");
  q.Text(1, scope);
  q.Text(2, key);
  sqlite3_bind_int64(q.get(), 3, clock_->NowMicros());
  int rc = sqlite3_step(q.get());
  if (rc == SQLITE_ROW) {
    std::string stored_fp(reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 0)));
    if (stored_fp != fingerprint) {
      result.outcome = Outcome::kMismatch;
      return result;
    }
    result.outcome = Outcome::kReplay;
    result.response.status = sqlite3_column_int(q.get(), 1);
    result.response.content_type =
        reinterpret_cast<const char*>(sqlite3_column_text(q.get(), 2));
    const void* body = sqlite3_column_blob(q.get(), 3);
    int n = sqlite3_column_bytes(q.get(), 3);
    if (body != nullptr) result.response.body.assign(static_cast<const char*>(body), n);
    return result;
  }
  if (rc != SQLITE_DONE) return IdempotencyStoreError(db_, "idempotency lookup");
  in_flight_.insert({scope, key});
  result.outcome = Outcome::kProceed;
  return result;
}

Status IdempotencyStore::Finish(const std::string& scope, const std::string& key,
                                const std::string& fingerprint, const StoredResponse& response) {
  MutexLock l(mu_);
  in_flight_.erase({scope, key});
  int64_t now = clock_->NowMicros();
  Stmt ins(db_,
           "INSERT OR REPLACE INTO idempotency(scope, key, fingerprint, status, content_type,"
           " body, created_micros, expires_micros) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)");
  if (!ins.ok()) return IdempotencyStoreError(db_, "idempotency insert");
  ins.Text(1, scope);
  ins.Text(2, key);
  ins.Text(3, fingerprint);
  sqlite3_bind_int(ins.get(), 4, response.status);
  ins.Text(5, response.content_type);
  sqlite3_bind_blob(ins.get(), 6, response.body.data(), static_cast<int>(response.body.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(ins.get(), 7, now);
  sqlite3_bind_int64(ins.get(), 8, now + ttl_micros_);
  if (sqlite3_step(ins.get()) != SQLITE_DONE) return IdempotencyStoreError(db_, "idempotency insert");
  // Purge at most once a minute, on the write path.
  if (now - last_purge_micros_ > 60ll * 1000000) {
    last_purge_micros_ = now;
    Stmt del(db_, "DELETE FROM idempotency WHERE expires_micros <= ?1");
    if (del.ok()) {
      sqlite3_bind_int64(del.get(), 1, now);
      (void)sqlite3_step(del.get());
    }
  }
  return Status::OK();
}

void IdempotencyStore::Abandon(const std::string& scope, const std::string& key) {
  MutexLock l(mu_);
  in_flight_.erase({scope, key});
}

Result<int64_t> IdempotencyStore::PurgeExpired() {
  MutexLock l(mu_);
  Stmt del(db_, "DELETE FROM idempotency WHERE expires_micros <= ?1");
  if (!del.ok()) return IdempotencyStoreError(db_, "idempotency purge");
  sqlite3_bind_int64(del.get(), 1, clock_->NowMicros());
  if (sqlite3_step(del.get()) != SQLITE_DONE) return IdempotencyStoreError(db_, "idempotency purge");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

}  // namespace branchdb::server::http
