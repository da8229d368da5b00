// The checkpoint of a SQL action: what every route that commits SQL (the REST
// /sql route, Hrana's streams) records in the commit's annotation, so that a
// checkpoint made through either says the same (who, which request, a summary,
// the rows changed, and the full script for promote's replay:
// docs/branching.md).
//
// Thread-safety: pure, except AnnotateScript (the connection's thread).
#ifndef BRANCHDB_SERVER_SQL_ANNOTATE_H_
#define BRANCHDB_SERVER_SQL_ANNOTATE_H_

#include <cstdint>
#include <string>

#include "base/status.h"
#include "server/sql/sandbox.h"

struct sqlite3;

namespace branchdb::server::sql {

// The SQL's first ~200 bytes with blanks collapsed ("..." when cut).
std::string Summary(const std::string& sql);

// Annotates the next commit of db with script (client, sql, params),
// request_id and the rows changed since changes_before (a
// sqlite3_total_changes64 value); a script past catalog::kMaxScriptBytes is
// recorded as not replayable. branch_size_limit when the kept script would
// pass max_db_bytes (0: no cap). replayable false: the script cannot stand
// for the transaction (recorded as sql_omitted). REQUIRES: db inside the
// transaction to be committed.
Status AnnotateScript(sqlite3* db, const Script& script, const std::string& request_id,
                      int64_t changes_before, int64_t max_db_bytes, bool replayable = true);

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_ANNOTATE_H_
