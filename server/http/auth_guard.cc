#include "server/http/auth_guard.h"

#include <httplib.h>

#include "catalog/catalog.h"
#include "server/http/errors.h"

namespace branchdb::server::http {

void SendBearerError(httplib::Response& res, const auth::BearerError& error) {
  auth::HttpReply reply = auth::BearerErrorReply(error, "branchdb");
  std::string code(error.api_code.empty() ? error.ErrorCode() : error.api_code);
  if (code.empty()) code = "unauthenticated";
  std::string message = error.description;
  if (message.empty()) {
    message = "a bearer token is required: get one at POST /oauth/token (client credentials)";
  }
  nlohmann::json details = nlohmann::json::object();
  if (!error.scope.empty()) details["scope"] = error.scope;
  if (!error.branch_patterns.empty()) details["branches"] = error.branch_patterns;
  SendJson(res, reply.status,
           {{"error", {{"code", code}, {"message", message}, {"details", details}}}});
  for (const auto& [name, value] : reply.headers) {
    if (name == "WWW-Authenticate") res.set_header(name.c_str(), value);
  }
}

auth::BranchIdentity BranchIdentityOf(Services& services, std::string_view project,
                                      std::string_view branch) {
  auth::BranchIdentity ids;
  if (services.catalog == nullptr) return ids;
  auto p = services.catalog->GetProject(std::string(project));
  auto b = services.catalog->GetBranchRow(std::string(project), std::string(branch));
  if (p.ok()) ids.project_id = p->id;
  if (b.ok()) ids.branch_id = std::to_string(b->timeline);
  return ids;
}

void SendAuthReply(httplib::Response& res, const auth::HttpReply& reply) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name.c_str(), value);
  if (!reply.body.empty()) res.set_content(reply.body, "application/json");
}

const RequestContext::Bearer& Authenticated(Services& services, const httplib::Request& req,
                                            RequestContext& ctx) {
  if (!ctx.bearer) {
    RequestContext::Bearer& b = ctx.bearer.emplace();
    b.principal = services.auth->Authenticate(req.get_header_value("Authorization"), &b.error);
  }
  return *ctx.bearer;
}

namespace {

// The operations that a branch's protection guards (beside lifting it, which
// the PATCH handler checks: it depends on the body).
bool GuardedByProtection(auth::Operation op) {
  return op == auth::Operation::kDeleteBranch || op == auth::Operation::kResetBranch ||
         op == auth::Operation::kRollbackBranch;
}

}  // namespace

std::optional<auth::BearerError> ProtectionRefusal(Services& services,
                                                   const auth::Principal& who,
                                                   auth::Operation op, std::string_view project,
                                                   std::string_view branch) {
  if (services.catalog == nullptr || branch.empty()) return std::nullopt;
  // The row alone: no wait for the branch's pending commits (GetBranch's head).
  auto b = services.catalog->GetBranchRow(std::string(project), std::string(branch));
  if (!b.ok()) return std::nullopt;  // the handler answers branch_not_found
  const bool promote_only_write = op == auth::Operation::kSqlWrite && b->writes_promote_only;
  const bool guard_change = op == auth::Operation::kProtectBranch &&
                            (b->is_protected || b->writes_promote_only);
  if (!promote_only_write && !guard_change && !(GuardedByProtection(op) && b->is_protected)) {
    return std::nullopt;
  }
  auto error = services.auth->Authorize(who, auth::Operation::kProtectBranch, project, branch);
  if (!error) return std::nullopt;
  error->api_code = promote_only_write ? "branch_promote_only" : "branch_protected";
  error->branch_patterns.clear();
  error->description =
      promote_only_write
          ? "branch '" + std::string(branch) +
                "' takes writes only through promote (writes policy promote_only): SQL writes "
                "on it need the scope branches:protect (or admin); create a branch of it, write "
                "there, then promote"
      : guard_change
          ? "branch '" + std::string(branch) +
                "' is guarded (protected or writes promote_only): changing its protection, "
                "writes policy or name needs the scope branches:protect (or admin)"
          : "branch '" + std::string(branch) + "' is protected: " +
                std::string(auth::OperationName(op)) +
                " on it needs the scope branches:protect (or admin)";
  return error;
}

std::optional<auth::BearerError> SqlWriteRefusal(Services& services, const auth::Principal& who,
                                                 std::string_view project,
                                                 std::string_view branch) {
  if (auto error = services.auth->Authorize(who, auth::Operation::kSqlWrite, project, branch)) {
    return error;
  }
  return ProtectionRefusal(services, who, auth::Operation::kSqlWrite, project, branch);
}

std::optional<auth::Principal> RequireAuth(Services& services, const httplib::Request& req,
                                           httplib::Response& res, RequestContext& ctx,
                                           auth::Operation op, std::string_view project,
                                           std::string_view branch) {
  if (services.auth == nullptr) {
    SendError(res, Status::Unavailable("authentication is not available", "auth_unavailable"));
    return std::nullopt;
  }
  const RequestContext::Bearer& bearer = Authenticated(services, req, ctx);
  if (!bearer.principal) {
    SendBearerError(res, bearer.error);
    return std::nullopt;
  }
  auto error = services.auth->Authorize(*bearer.principal, op, project, branch);
  // A credential names its branch and carries the ids it had: the name must
  // still denote that very branch (not a re-created or renamed-onto one).
  if (!error && bearer.principal->kind == auth::Principal::Kind::kDbCredential) {
    error = auth::CheckCredentialBinding(*bearer.principal,
                                         BranchIdentityOf(services, project, branch));
  }
  // Rollback, reset and delete of a protected branch: branches:protect too.
  if (!error && GuardedByProtection(op)) {
    error = ProtectionRefusal(services, *bearer.principal, op, project, branch);
  }
  if (!error) return bearer.principal;
  SendBearerError(res, *error);
  return std::nullopt;
}

std::string PrincipalOf(Services& services, const httplib::Request& req, RequestContext& ctx) {
  if (services.auth == nullptr || !req.has_header("Authorization")) return "";
  const RequestContext::Bearer& bearer = Authenticated(services, req, ctx);
  return bearer.principal ? bearer.principal->client_id : "";
}

}  // namespace branchdb::server::http
