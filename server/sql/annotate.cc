#include "server/sql/annotate.h"

#include <sqlite3.h>

#include "catalog/annotation.h"

namespace branchdb::server::sql {

std::string Summary(const std::string& sql) {
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
    if (out.size() >= 200) {
      out += "...";
      break;
    }
  }
  return out;
}

Status AnnotateScript(sqlite3* db, const Script& script, const std::string& request_id,
                      int64_t changes_before, int64_t max_db_bytes, bool replayable) {
  catalog::Annotation a;
  a.kind = "sql";
  a.client_id = script.client;
  a.request_id = request_id;
  a.summary = Summary(script.sql);
  a.rows = sqlite3_total_changes64(db) - changes_before;
  a.sql = script.sql;
  if (!replayable || script.sql.size() > catalog::kMaxScriptBytes) {
    a.sql_omitted = true;
  } else if (!script.params.is_null()) {
    a.params_json = script.params.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    a.params_json_is_dump = true;
  }
  return catalog::AnnotateNextCommit(db, a, max_db_bytes);
}

}  // namespace branchdb::server::sql
