// Internal to server/sql: the state the authorizer and progress handler share
// with Sandbox::Execute. Not a public header.
#ifndef BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_
#define BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_

#include <cstdint>
#include <string>

#include "server/sql/sandbox.h"

namespace branchdb::server::sql {

struct Sandbox::State {
  Clock* clock = nullptr;
  bool internal = false;         // our own BEGIN/COMMIT/ROLLBACK: authorizer allows all
  bool read_only = false;        // the running script is read-only
  int64_t deadline_nanos = 0;    // 0: no deadline
  bool timed_out = false;        // the progress handler interrupted
  bool denied_read_only = false; // the last denial was a write in read-only mode
  std::string denial;            // why the authorizer last denied
};

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_SANDBOX_INTERNAL_H_
