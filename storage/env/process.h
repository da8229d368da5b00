// Process-wide file matters that are not one file operation: SQLite files made
// private before SQLite opens them.
//
// Thread-safety: safe for concurrent use.
#ifndef BRANCHDB_STORAGE_ENV_PROCESS_H_
#define BRANCHDB_STORAGE_ENV_PROCESS_H_

#include <string>

#include "storage/env/env.h"

namespace branchdb {

// Makes the SQLite database file path private before SQLite opens it: creates
// it empty (0600, as Env creates files) when missing, and sets it and its
// companions that exist ("-wal", "-shm", "-journal", which SQLite creates with
// the database file's mode) to 0600.
Status PrepareSqliteFile(Env* env, const std::string& path);

}  // namespace branchdb

#endif  // BRANCHDB_STORAGE_ENV_PROCESS_H_
