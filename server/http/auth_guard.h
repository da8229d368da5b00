// Bearer authentication and authorization of /v1 routes (RFC 6750), through
// auth::AuthService. On failure the response is written here: the status and
// WWW-Authenticate challenge from the auth library, and the API's error body
// {"error":{"code":"invalid_token"|"insufficient_scope"|"invalid_request"|
// "unauthenticated","message":..,"details":{"scope":..}}}.
//
// Thread-safety: stateless; safe for concurrent use.
#ifndef BRANCHDB_SERVER_HTTP_AUTH_GUARD_H_
#define BRANCHDB_SERVER_HTTP_AUTH_GUARD_H_

#include <optional>
#include <string>
#include <string_view>

#include "auth/auth.h"
#include "server/http/router.h"
#include "server/services.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace branchdb::server::http {

// The request's bearer token verified (Authorization header), once per
// request: the verdict is kept in ctx.bearer and returned again on the next
// call for the same request. REQUIRES: services.auth.
const RequestContext::Bearer& Authenticated(Services& services, const httplib::Request& req,
                                            RequestContext& ctx);

// Verifies the request's bearer token (Authenticated: not again when the
// router already did for admission or idempotency) and that it may perform
// op on project/branch ("" when not about one); for a database credential
// also that the names still denote the project and branch it was issued for
// (401 invalid_token after a delete + re-create or a rename); and for
// rollback, reset and delete of a protected branch the right its protection
// asks (ProtectionRefusal). nullopt after
// writing the error response when refused. With no auth service wired,
// refuses with 503.
std::optional<auth::Principal> RequireAuth(Services& services, const httplib::Request& req,
                                           httplib::Response& res, RequestContext& ctx,
                                           auth::Operation op, std::string_view project = "",
                                           std::string_view branch = "");

// The right a branch's guard asks of who for op (docs/auth.md, "Protection"):
// rollback, reset or delete of a protected branch, a SQL write (op
// kSqlWrite) on a branch whose writes policy is promote_only, and a change
// of a guarded branch's guards or name (op kProtectBranch) need
// branches:protect (auth::Operation::kProtectBranch). nullopt when op is not
// guarded there or who holds the right; else the 403 refusal (api_code
// branch_protected or branch_promote_only). A branch that does not exist is
// not refused here.
std::optional<auth::BearerError> ProtectionRefusal(Services& services,
                                                   const auth::Principal& who,
                                                   auth::Operation op, std::string_view project,
                                                   std::string_view branch);

// Why who may not write SQL on project/branch: nullopt when it may. The scope
// and branch patterns (kSqlWrite), then the branch's writes policy
// (ProtectionRefusal). The one check of REST, Hrana and MCP's run_sql.
std::optional<auth::BearerError> SqlWriteRefusal(Services& services, const auth::Principal& who,
                                                 std::string_view project,
                                                 std::string_view branch);

// The ids project and branch have now (catalog project id, branch timeline),
// for issuing a credential bound to them; an id is "" when its name denotes
// nothing.
auth::BranchIdentity BranchIdentityOf(Services& services, std::string_view project,
                                      std::string_view branch);

// Writes the refusal of a bearer-protected request (the one way every route
// sends one): the status and WWW-Authenticate challenge from the auth
// library, and the API's error body (code "unauthenticated" when the error
// has none, a hint at POST /oauth/token when it has no description,
// details.scope for insufficient_scope).
void SendBearerError(httplib::Response& res, const auth::BearerError& error);

// Copies an auth::HttpReply to res 1:1 (JSON content type when it has a body).
void SendAuthReply(httplib::Response& res, const auth::HttpReply& reply);

// The client id of the request's bearer token, or "" (the admission and
// idempotency scope); verifies through Authenticated, so the handler does not
// verify again.
std::string PrincipalOf(Services& services, const httplib::Request& req, RequestContext& ctx);

}  // namespace branchdb::server::http

#endif  // BRANCHDB_SERVER_HTTP_AUTH_GUARD_H_
