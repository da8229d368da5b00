// RunServe: the `branchdb serve` command. Loads the configuration (defaults,
// then the TOML file, then BRANCHDB_* environment variables, then flags; see
// docs/config.md), validates it, starts the HTTP service and blocks until
// SIGTERM or SIGINT stops it gracefully: no new connections, requests in
// flight finish, then the stores close.
//
// Returns the process exit code: 0 after a clean stop, 2 for a bad
// configuration, 1 when the server cannot start (e.g. the port is taken).
#ifndef BRANCHDB_SERVER_SERVE_H_
#define BRANCHDB_SERVER_SERVE_H_

#include "server/config.h"

namespace branchdb::server {

int RunServe(const ServeFlags& flags);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_SERVE_H_
