// EtcdClient: etcd's v3 API through its JSON gateway over HTTP (POST
// /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn, /v3/lease/grant,
// /v3/lease/keepalive, /v3/lease/revoke), as served by etcd 3.4 (Debian 12's
// etcd-server). Keys and values are bytes here; base64 on the wire is this
// file's business. No watch: callers poll with Range and compare revisions
// (docs/cluster.md says why that is enough for membership and ownership).
//
// Failures: a connection error, an answer that is not etcd's JSON, or etcd's
// UNAVAILABLE (no leader) is retried on the next endpoint, up to
// Options::attempts tries in all, with a short backoff; then Unavailable
// ("etcd_unavailable"). An error etcd gives ({"error":...,"code":N}, e.g.
// "requested lease not found") is not retried: FailedPrecondition
// ("etcd_error"), or NotFound for a lease that is gone ("etcd_lease_not_found").
//
// Thread-safety: safe for concurrent use; each call opens its own connection.
#ifndef BRANCHDB_CLUSTER_ETCD_CLIENT_H_
#define BRANCHDB_CLUSTER_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace branchdb::cluster {

struct EtcdOptions {
  // Client URLs, e.g. {"http://127.0.0.1:2379"}; tried in turn. Required.
  std::vector<std::string> endpoints;
  // Connect, read and write timeout of one HTTP call. Default: 2000 ms.
  int64_t timeout_ms = 2000;
  // Tries of one operation over all endpoints before Unavailable. Default: 3.
  int attempts = 3;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0: none
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;  // the store's revision when read
};

// One comparison of a transaction: the key's field against a value.
struct Compare {
  enum class Target { kCreateRevision, kModRevision, kValue };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kCreateRevision;
  Op op = Op::kEqual;
  int64_t revision = 0;  // kCreateRevision, kModRevision (0 = "the key does not exist")
  std::string value;     // kValue
};

// One operation of a transaction's branch.
struct TxnOp {
  enum class Kind { kPut, kDelete, kRange };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;      // kPut
  int64_t lease = 0;      // kPut
  bool prefix = false;    // kDelete, kRange: every key starting with key
};

struct TxnResult {
  bool succeeded = false;  // the comparisons held: the success ops ran
  // The KeyValues of each kRange op of the branch that ran, in op order
  // (empty vectors for other ops).
  std::vector<std::vector<KeyValue>> ranges;
  int64_t revision = 0;
};

class EtcdClient {
 public:
  // InvalidArgument when no endpoint is given or one is not http://HOST:PORT.
  static Result<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The value of key (nullopt when absent).
  Result<std::optional<KeyValue>> Get(const std::string& key);
  // Every key starting with prefix, in key order.
  Result<RangeResult> RangePrefix(const std::string& prefix);
  // Sets key; lease 0: none. Returns the new revision.
  Result<int64_t> Put(const std::string& key, const std::string& value, int64_t lease = 0);
  // Deletes key (or, with prefix, every key under it); returns how many went.
  Result<int64_t> Delete(const std::string& key, bool prefix = false);
  // If every compare holds, runs success, else failure; atomically.
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure);

  // A lease of ttl_seconds (etcd may grant more: its minimum is about 2 s).
  struct Lease {
    int64_t id = 0;
    int64_t ttl_seconds = 0;
  };
  Result<Lease> LeaseGrant(int64_t ttl_seconds);
  // Renews the lease; returns its TTL again. NotFound ("etcd_lease_not_found")
  // when the lease has expired or was revoked: its keys are gone.
  Result<int64_t> LeaseKeepAlive(int64_t id);
  // Ends the lease now, deleting its keys. OK when it was already gone.
  Status LeaseRevoke(int64_t id);

 private:
  explicit EtcdClient(EtcdOptions options);
  // POSTs body (JSON) to path on an endpoint, with the retries above; the
  // parsed JSON answer as text.
  Result<std::string> Call(const std::string& path, const std::string& body);

  const EtcdOptions options_;
};

// The key just past every key starting with prefix (etcd's range_end for a prefix).
std::string PrefixEnd(const std::string& prefix);

}  // namespace branchdb::cluster

#endif  // BRANCHDB_CLUSTER_ETCD_CLIENT_H_
