// Shared parts of the benchmarks that drive a real ApiServer over HTTP
// (server_bench, load_bench): the server in this process, its admin token,
// keep-alive clients, and checked JSON POSTs. Every failure prints
// "<program>: <what>" and exits 1 (a benchmark has nothing to recover).
#ifndef BRANCHDB_BENCH_BENCH_HTTP_H_
#define BRANCHDB_BENCH_BENCH_HTTP_H_

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "bench/bench_util.h"
#include "server/config.h"
#include "server/server.h"

namespace branchdb::bench {

// Prints "<program>: what" to stderr and exits 1.
[[noreturn]] void Die(const std::string& program, const std::string& what);

// An ApiServer on 127.0.0.1 (a free port), plain HTTP, default limits except
// what the BRANCHDB_* environment (docs/config.md) and then tweak change, in
// a ScratchDir, computes never suspended by idleness, the access log off
// (level warn: the numbers exclude its cost). Stopped and joined when
// destroyed.
class BenchServer {
 public:
  BenchServer(const std::string& program,
              const std::function<void(server::Config&)>& tweak = nullptr);
  ~BenchServer();
  BenchServer(const BenchServer&) = delete;
  BenchServer& operator=(const BenchServer&) = delete;

  int port() const { return port_; }
  // An access token of the bootstrap admin client.
  const std::string& admin_token() const { return admin_token_; }
  server::ApiServer& server() { return *server_; }
  [[noreturn]] void Die(const std::string& what) const { bench::Die(program_, what); }

  // A keep-alive client (TCP_NODELAY, as curl does) with token as its bearer
  // ("" = none).
  std::unique_ptr<httplib::Client> Client(const std::string& token) const;
  // POSTs JSON; dies unless the answer's status is want. Returns its body.
  nlohmann::json Post(httplib::Client& c, const std::string& path, const nlohmann::json& body,
                      int want) const;
  // An access token of client id (client credentials grant).
  std::string Token(const std::string& id, const std::string& secret) const;
  // A new OAuth client with sql:read and sql:write; its token.
  std::string NewClientToken(const std::string& name) const;

 private:
  const std::string program_;
  ScratchDir dir_;
  std::unique_ptr<server::ApiServer> server_;
  int port_ = 0;
  std::thread serve_;
  std::string admin_token_;
};

// The body of a point SELECT of key k: {"sql":"SELECT v FROM t WHERE id = ?","params":[k]}.
std::string PointSelectBody(int64_t k);

}  // namespace branchdb::bench

#endif  // BRANCHDB_BENCH_BENCH_HTTP_H_
