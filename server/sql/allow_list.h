// The reviewed SQL surface of the linked SQLite: every SQL function and every
// virtual-table module it offers, each allowed or denied with the reason.
//
// The sandbox enforces these tables: its authorizer refuses a function that is
// denied or not listed here (sql_forbidden), and Sandbox::Attach drops every
// module that is not allowed (sqlite3_drop_modules), so a denied or unreviewed
// module is "no such module" / "no such table"; CREATE VIRTUAL TABLE with one
// is refused by the authorizer. A SQLite upgrade that adds a function or a
// module leaves it refused until it is reviewed here (tests/security's
// sql_surface_test enumerates pragma_function_list and pragma_module_list and
// fails on any name missing from these tables).
//
// Modules named pragma_* are the table-valued forms of PRAGMAs: the PRAGMA
// allow-list (sandbox.h) decides them.
//
// Thread-safety: the tables are immutable; every function may be called from
// any thread.
#ifndef BRANCHDB_SERVER_SQL_ALLOW_LIST_H_
#define BRANCHDB_SERVER_SQL_ALLOW_LIST_H_

#include <string_view>
#include <vector>

namespace branchdb::server::sql {

struct Review {
  std::string_view name;    // lower case, as pragma_function_list / module_list show it
  bool allowed = false;
  std::string_view reason;  // why it is safe, or why it is refused
};

// All reviewed functions and modules.
const std::vector<Review>& FunctionReviews();
const std::vector<Review>& ModuleReviews();

// The review of a function or module (name in any case), nullptr when it was
// never reviewed (and so is refused).
const Review* FindFunctionReview(std::string_view name);
const Review* FindModuleReview(std::string_view name);

}  // namespace branchdb::server::sql

#endif  // BRANCHDB_SERVER_SQL_ALLOW_LIST_H_
