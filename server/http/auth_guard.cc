#include "server/http/auth_guard.h"

#include <httplib.h>

#include "catalog/catalog.h"
#include "server/http/errors.h"

namespace branchdb::server::http {

void SendBearerError(httplib::Response& res, const auth::BearerError& error) {
  auth::HttpReply reply = auth::BearerErrorReply(error, "branchdb");
  std::string code(error.ErrorCode());
  if (code.empty()) code = "unauthenticated";
  std::string message = error.description;
  if (message.empty()) {
    message = "a bearer token is required: get one at POST /oauth/token (client credentials)";
  }
  nlohmann::json details = nlohmann::json::object();
  if (!error.scope.empty()) details["scope"] = error.scope;
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
  auto b = services.catalog->GetBranch(std::string(project), std::string(branch), false);
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
