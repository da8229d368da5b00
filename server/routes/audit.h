// The audit trail's hook in every route (issue #18): what routes/table.cc
// calls after a route's handler (or its bearer refusal). Internal to
// server/routes.
#ifndef BRANCHDB_SERVER_ROUTES_AUDIT_H_
#define BRANCHDB_SERVER_ROUTES_AUDIT_H_

namespace branchdb::server::routes {

struct Call;
struct Route;

// Records call, answered, in the audit trail when it changed state or tried
// to (the routes of kAudited in routes/guard.cc, whatever their outcome), or
// when it was refused for authentication, authorization or a quota (any
// route); counts the request in its project's usage. Never fails the call: a
// ledger error is logged. REQUIRES: call.res holds the answer.
void RecordCall(const Route& route, Call& call);

}  // namespace branchdb::server::routes

#endif  // BRANCHDB_SERVER_ROUTES_AUDIT_H_
