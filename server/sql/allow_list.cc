// The reviewed SQL surface (allow_list.h): the linked SQLite's functions and
// virtual-table modules, each with the reason it is allowed or refused.
// Reviewed against Debian's libsqlite3 3.40.1 (FTS3/4/5, R*Tree, DBSTAT,
// STMTVTAB, math functions, SOUNDEX, FTS3_TOKENIZER compiled in).
#include "server/sql/allow_list.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <unordered_map>

namespace branchdb::server::sql {
namespace {

constexpr std::string_view kCore = "core scalar function: computes on its arguments only";
constexpr std::string_view kAggregate = "aggregate: computes on the rows it is given";
constexpr std::string_view kWindow = "window function: computes on the rows it is given";
constexpr std::string_view kMath = "math function (SQLITE_ENABLE_MATH_FUNCTIONS): pure";
constexpr std::string_view kDate = "date and time function: pure, or reads the clock";
constexpr std::string_view kJson = "JSON function: parses and builds values, bounded by "
                                   "SQLITE_LIMIT_LENGTH";
constexpr std::string_view kFtsAux = "full-text auxiliary function: reads the FTS table it is "
                                     "given";
constexpr std::string_view kInternal =
    "SQLite's own, for ALTER TABLE's nested SQL (SQLITE_FUNC_INTERNAL: user SQL gets "
    "'no such function')";
constexpr std::string_view kPerRequest =
    "connection counter, made per request by the sandbox (no other client's value shows)";
constexpr std::string_view kInfo = "reports the library's version or build options";

std::vector<Review> BuildFunctions() {
  std::vector<Review> r;
  auto allow = [&](std::initializer_list<std::string_view> names, std::string_view why) {
    for (auto n : names) r.push_back({n, true, why});
  };
  auto deny = [&](std::string_view name, std::string_view why) { r.push_back({name, false, why}); };
  allow({"->", "->>", "abs", "char", "coalesce", "format", "glob", "hex", "ifnull", "iif", "instr",
         "length", "like", "likelihood", "likely", "lower", "ltrim", "max", "min", "nullif",
         "printf", "quote", "random", "randomblob", "replace", "round", "rtrim", "soundex", "substr",
         "substring", "subtype", "trim", "typeof", "unicode", "unlikely", "upper", "zeroblob"},
        kCore);
  allow({"avg", "count", "group_concat", "sum", "total", "json_group_array",
         "json_group_object"},
        kAggregate);
  allow({"cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value",
         "ntile", "percent_rank", "rank", "row_number"},
        kWindow);
  allow({"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
         "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
         "power", "radians", "sign", "sin", "sinh", "sqrt", "tan", "tanh", "trunc"},
        kMath);
  allow({"current_date", "current_time", "current_timestamp", "date", "datetime", "julianday",
         "strftime", "time", "unixepoch"},
        kDate);
  allow({"json", "json_array", "json_array_length", "json_extract", "json_insert", "json_object",
         "json_patch", "json_quote", "json_remove", "json_replace", "json_set", "json_type",
         "json_valid"},
        kJson);
  allow({"bm25", "highlight", "match", "matchinfo", "offsets", "snippet"}, kFtsAux);
  allow({"optimize"},
        "FTS3/4 optimize(t): merges the table's own segments (a write: refused when read-only)");
  allow({"fts5_source_id"}, kInfo);
  allow({"sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_source_id",
         "sqlite_version"},
        kInfo);
  allow({"rtreecheck"}, "R*Tree integrity check: reads the named R*Tree's own tables");
  allow({"changes", "last_insert_rowid", "total_changes"}, kPerRequest);
  allow({"sqlite_rename_column", "sqlite_rename_table", "sqlite_rename_test",
         "sqlite_rename_quotefix", "sqlite_drop_column"},
        kInternal);
  deny("fts3_tokenizer",
       "leaks a library address and, given a pointer as a bound parameter, installs an "
       "arbitrary tokenizer: the next FTS query crashes the server (issue 13 item 1)");
  deny("fts5", "C API handshake (returns the fts5_api pointer through sqlite3_bind_pointer); no "
               "use from SQL");
  deny("load_extension", "loads native code into the server");
  deny("sqlite_log", "writes into the process's SQLite error log (log forging)");
  deny("rtreenode", "debugging aid: decodes a raw R*Tree node blob given by the caller");
  deny("rtreedepth", "debugging aid: decodes a raw R*Tree node blob given by the caller");
  deny("affinity", "SQLite test-only internal function");
  deny("expr_compare", "SQLite test-only internal function");
  deny("expr_implies_expr", "SQLite test-only internal function");
  deny("implies_nonnull_row", "SQLite test-only internal function");
  deny("readfile", "file access on the server (sqlite3 shell extension)");
  deny("writefile", "file access on the server (sqlite3 shell extension)");
  deny("edit", "runs an editor on the server (sqlite3 shell extension)");
  deny("eval", "runs SQL text built at run time (ext/misc/eval.c)");
  return r;
}

std::vector<Review> BuildModules() {
  return {
      {"fts3", true, "full-text search tables of user schemas; tokenizers are the built-in ones "
                     "(fts3_tokenizer() is denied)"},
      {"fts4", true, "full-text search tables of user schemas (as fts3)"},
      {"fts4aux", true, "reads the term index of an FTS4 table of the same database"},
      {"fts5", true, "full-text search tables of user schemas"},
      {"fts5vocab", true, "reads the term index of an FTS5 table of the same database"},
      {"rtree", true, "R*Tree spatial index tables of user schemas"},
      {"rtree_i32", true, "R*Tree with integer coordinates"},
      {"json_each", true, "table-valued JSON function: reads its argument"},
      {"json_tree", true, "table-valued JSON function: reads its argument"},
      {"dbstat", true, "read-only page statistics of this branch's own database; a full pass "
                       "is bounded by the statement timeout"},
      {"fts3tokenize", false, "tokenizer probe (debugging); FTS tables do not need it"},
      {"sqlite_stmt", false, "lists the connection's prepared statements: another client's SQL "
                             "on the shared connection"},
      {"sqlite_dbpage", false, "raw page read and write: bypasses the authorizer's table checks"},
      {"bytecode", false, "debugging aid: compiles and shows arbitrary statements"},
      {"tables_used", false, "debugging aid: compiles arbitrary statements"},
      {"zipfile", false, "reads and writes files on the server (sqlite3 shell extension)"},
      {"fsdir", false, "lists files on the server (sqlite3 shell extension)"},
  };
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

using Index = std::unordered_map<std::string_view, const Review*>;

Index BuildIndex(const std::vector<Review>& list) {
  Index index;
  for (const auto& r : list) index.emplace(r.name, &r);
  return index;
}

const Review* Find(const Index& index, std::string_view name) {
  auto it = index.find(Lower(name));
  return it == index.end() ? nullptr : it->second;
}

}  // namespace

const std::vector<Review>& FunctionReviews() {
  static const std::vector<Review> r = BuildFunctions();
  return r;
}

const std::vector<Review>& ModuleReviews() {
  static const std::vector<Review> r = BuildModules();
  return r;
}

const Review* FindFunctionReview(std::string_view name) {
  static const Index index = BuildIndex(FunctionReviews());
  return Find(index, name);
}

const Review* FindModuleReview(std::string_view name) {
  static const Review kPragma{"pragma_*", true,
                              "table-valued PRAGMA: the PRAGMA allow-list decides (sandbox.h)"};
  if (Lower(name).rfind("pragma_", 0) == 0) return &kPragma;
  static const Index index = BuildIndex(ModuleReviews());
  return Find(index, name);
}

}  // namespace branchdb::server::sql
