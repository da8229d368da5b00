// ApiServer: the branchdb HTTP service. Builds every service from a validated
// Config (metrics, idempotency store, compute supervisor, ...), registers the
// routes (the table of server/routes/table.h), listens over HTTP or, with
// tls_cert_file and tls_key_file, HTTPS.
//
// Lifecycle: Create -> Bind -> Serve (blocks) ; Stop() from another thread
// (the signal thread on SIGTERM/SIGINT) makes Serve stop accepting, finish the
// requests in flight and return; destruction then closes the services (computes
// first, then the lower layers).
//
// Thread-safety: Stop() may be called from any thread, any number of times.
#ifndef BRANCHDB_SERVER_SERVER_H_
#define BRANCHDB_SERVER_SERVER_H_

#include <atomic>
#include <memory>

#include "base/env.h"
#include "base/status.h"
#include "server/config.h"
#include "server/services.h"

namespace httplib {
class Server;
}

namespace branchdb::server {

namespace http {
class Router;
}

class ApiServer {
 public:
  // REQUIRES: Validate(config) is empty. env (not owned) must outlive the server.
  // Creates data_dir. Errors from opening the stores under it.
  static Result<std::unique_ptr<ApiServer>> Create(const Config& config, Env* env);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds the listen address; returns the port (the chosen one for port 0).
  // Unavailable when the address is taken.
  Result<int> Bind();
  // Serves until Stop(). REQUIRES: Bind() succeeded.
  Status Serve();
  void Stop();

  int port() const { return port_; }
  Services& services() { return services_; }
  // The routes, for in-process calls (Router::Dispatch) without a socket:
  // usable right after Create().
  http::Router& router();

  struct Parts;  // owned components (server.cc)

 private:
  ApiServer(const Config& config, Env* env);
  Status Init();
  Status StartCluster();  // [cluster]: from Bind(), once the public URL is known

  const Config config_;
  Env* const env_;
  Services services_;
  std::unique_ptr<Parts> parts_;
  int port_ = -1;
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_SERVER_H_
