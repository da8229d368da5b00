// Usage and the audit trail (issue #18; docs/api.md, "Usage" and "Audit trail"):
//   GET /v1/projects/{p}/usage[?client=ID]
//       -> {"project","client_id","quotas","branches","logical_bytes","exclusive_bytes",
//           "commits","commits_last_minute","active_computes","compute_seconds","requests",
//           "counting_since","per_branch":[{"name","owner","logical_bytes",
//           "exclusive_bytes","shared_bytes","commits","compute_active"}]}
//   GET /v1/projects/{p}/audit[?client=&since=&cursor=&limit=]  (scope admin)
//   GET /v1/audit[?client=&since=&cursor=&limit=]  server-wide events (unrestricted admin)
//       -> {"events":[{"seq","time","project","branch","client_id","jti","request_id",
//           "operation","status","code","details"}],"next_cursor"}
// and RecordCall (routes/audit.h), the hook every route's call goes through.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "auth/auth.h"
#include "server/guard/guard.h"
#include "server/http/errors.h"
#include "server/http/log_value.h"
#include "server/routes/audit.h"
#include "server/routes/call.h"
#include "server/routes/common.h"
#include "server/routes/quota_input.h"

namespace branchdb::server::routes {

using nlohmann::json;

namespace {

// --- what is recorded --------------------------------------------------------

struct Audited {
  const char* method;
  const char* path;
  const char* operation;
  bool always;  // false: only refusals (auth, quota) are recorded
};

#define BRANCHDB_BRANCH "/v1/projects/{project}/branches/{branch}"
constexpr Audited kAudited[] = {
    {"POST", "/oauth/token", "token.issue", true},
    {"POST", "/oauth/revoke", "token.revoke", true},
    {"POST", "/v1/clients", "client.create", true},
    {"DELETE", "/v1/clients/{client_id}", "client.delete", true},
    {"POST", "/v1/projects", "project.create", true},
    {"PATCH", "/v1/projects/{project}", "project.update", true},
    {"DELETE", "/v1/projects/{project}", "project.delete", true},
    {"POST", "/v1/projects/{project}/branches", "branch.create", true},
    {"PATCH", BRANCHDB_BRANCH, "branch.update", true},  // branch.protect / branch.unprotect
    {"DELETE", BRANCHDB_BRANCH, "branch.delete", true},
    {"POST", BRANCHDB_BRANCH "/checkpoints", "checkpoint.label", true},
    {"POST", BRANCHDB_BRANCH "/rollback", "branch.rollback", true},
    {"POST", BRANCHDB_BRANCH "/reset", "branch.reset", true},
    {"POST", BRANCHDB_BRANCH "/promote", "branch.promote", true},
    {"POST", BRANCHDB_BRANCH "/compute/suspend", "compute.suspend", true},
    {"POST", BRANCHDB_BRANCH "/credentials", "credential.issue", true},
    {"POST", "/v1/projects/{project}/import", "branch.import", true},
    {"POST", BRANCHDB_BRANCH "/sql", "sql", false},
};
#undef BRANCHDB_BRANCH

// Every entry names a route of the table.
constexpr bool AllAuditedAreRoutes() {
  for (const Audited& a : kAudited) {
    if (RouteIndex(a.method, a.path) == kApiRouteCount) return false;
  }
  return true;
}
static_assert(AllAuditedAreRoutes(), "kAudited names a route that kApiRoutes lacks");

const Audited* FindAudited(const Route& route) {
  for (const Audited& a : kAudited) {
    if (std::string_view(a.method) == route.method && std::string_view(a.path) == route.path) {
      return &a;
    }
  }
  return nullptr;
}

// Members of a successful answer worth keeping (never a secret or a token).
constexpr const char* kKeptAnswerFields[] = {"head_lsn", "previous_head_lsn", "target_lsn",
                                             "access", "expires_at", "fast_forward"};

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+' || ch == '-') v = 62;
    else if (ch == '/' || ch == '_') v = 63;
    else if (ch == '=') break;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

// The client id an OAuth endpoint request authenticates as (form client_id,
// else HTTP Basic's user), "" when none.
std::string OAuthClientId(const httplib::Request& req) {
  auto form = auth::ParseFormBody(req.body);
  if (form.ok()) {
    for (const auto& [k, v] : *form) {
      if (k == "client_id") return v;
    }
  }
  const std::string header = req.get_header_value("Authorization");
  if (header.rfind("Basic ", 0) != 0) return "";
  auto decoded = Base64Decode(header.substr(6));
  if (!decoded) return "";
  return decoded->substr(0, decoded->find(':'));
}

// The jti of the access token an answer of /oauth/token holds ("" if none).
std::string IssuedJti(const json& answer) {
  if (!answer.is_object() || !answer.contains("access_token") ||
      !answer["access_token"].is_string()) {
    return "";
  }
  const std::string token = answer["access_token"].get<std::string>();
  const size_t a = token.find('.'), b = token.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) return "";
  auto payload = Base64Decode(std::string_view(token).substr(a + 1, b - a - 1));
  if (!payload) return "";
  json claims = json::parse(*payload, nullptr, false);
  return claims.is_object() && claims.contains("jti") && claims["jti"].is_string()
             ? claims["jti"].get<std::string>()
             : "";
}

bool IsRefusal(int status, const std::string& code) {
  return status == 401 || status == 403 || code == "quota_exceeded" ||
         code == "invalid_client" || code == "insufficient_scope";
}

}  // namespace

void RecordCall(const Route& route, Call& c) {
  guard::Guard* g = c.s.guard;
  if (g == nullptr) return;
  const auth::Principal* who = c.who ? &*c.who : nullptr;
  if (who == nullptr && c.ctx.bearer && c.ctx.bearer->principal) who = &*c.ctx.bearer->principal;
  const std::string client_id = who ? who->client_id : "";
  if (!c.project.empty()) g->CountRequest(c.project, client_id);
  const Audited* audited = FindAudited(route);
  // Most calls are neither: their answer (a SQL result, a diff) is not parsed.
  if (!(audited != nullptr && audited->always) && c.res.status < 400) return;

  json answer = json::parse(c.res.body, nullptr, false);
  std::string code;
  json details = json::object();
  if (c.res.status >= 400 && answer.is_object() && answer.contains("error")) {
    const json& e = answer["error"];
    if (e.is_object()) {
      if (e.contains("code") && e["code"].is_string()) code = e["code"].get<std::string>();
      if (e.contains("details") && e["details"].is_object()) details = e["details"];
    } else if (e.is_string()) {
      code = e.get<std::string>();  // OAuth's own error shape
    }
  }
  if (!(audited != nullptr && audited->always) && !IsRefusal(c.res.status, code)) return;

  catalog::AuditEvent e;
  e.project = c.project;
  e.branch = c.branch;
  e.client_id = client_id;
  e.jti = who ? who->jti : "";
  e.request_id = c.ctx.request_id;
  e.operation = audited ? audited->operation : "request";
  e.status = c.res.status;
  e.code = code;
  details["route"] = std::string(route.method) + " " + route.path;
  json body = json::parse(c.req.body, nullptr, false);
  const std::string op = e.operation;
  if (op == "branch.create" && body.is_object() && body.contains("name") &&
      body["name"].is_string()) {
    e.branch = body["name"].get<std::string>();
  } else if (op == "branch.import") {
    e.branch = c.req.get_param_value("branch");
  } else if (op == "project.create" && body.is_object() && body.contains("name") &&
             body["name"].is_string()) {
    e.project = body["name"].get<std::string>();
  } else if (op == "branch.update" && body.is_object() && body.contains("protected") &&
             body["protected"].is_boolean()) {
    e.operation = body["protected"].get<bool>() ? "branch.protect" : "branch.unprotect";
  } else if (op == "branch.rollback" && body.is_object() && body.contains("to")) {
    details["to"] = body["to"];
  } else if (op == "client.delete") {
    details["target_client_id"] = c.ctx.Param("client_id");
  } else if (op == "token.issue" || op == "token.revoke") {
    if (e.client_id.empty()) e.client_id = OAuthClientId(c.req);
    if (op == "token.issue" && c.res.status == 200) e.jti = IssuedJti(answer);
  }
  if (c.res.status < 400 && answer.is_object()) {
    if (op == "client.create" && answer.contains("client_id")) {
      details["target_client_id"] = answer["client_id"];
    }
    for (const char* f : kKeptAnswerFields) {
      if (answer.contains(f)) details[f] = answer[f];
    }
  }
  e.details_json = http::DumpJson(details);
  if (Status st = g->Audit(&e); !st.ok()) {
    c.s.logger->error("event=audit_failed operation={} request_id={} error=\"{}\"", e.operation,
                      e.request_id, http::LogValue(st.ToString()));
  }
}

// --- GET .../usage -----------------------------------------------------------

void HandleUsage(Call& c) {
  if (c.s.guard == nullptr) {
    return http::SendError(c.res, Status::Unavailable("usage is not available", "unavailable"));
  }
  const std::string client = c.req.get_param_value("client");
  BRANCHDB_TRY_SEND(c.res, u, c.s.guard->ProjectUsage(c.project, client, true));
  json per_branch = json::array();
  for (const auto& b : u->branches) {
    per_branch.push_back({{"name", b.name},
                          {"owner", b.owner.empty() ? json(nullptr) : json(b.owner)},
                          {"logical_bytes", b.logical_bytes},
                          {"exclusive_bytes", b.exclusive_bytes},
                          {"shared_bytes", b.shared_bytes},
                          {"commits", b.commits},
                          {"compute_active", b.compute_active}});
  }
  Quotas quotas;
  if (client.empty()) {
    BRANCHDB_TRY_SEND(c.res, settings, c.s.guard->Settings(c.project));
    quotas = settings->quotas;
  } else if (c.s.auth != nullptr) {
    auto info = c.s.auth->GetClient(client);
    if (info.ok()) quotas = info->quotas;
  }
  http::SendJson(c.res, 200,
                 {{"project", u->project},
                  {"client_id", client.empty() ? json(nullptr) : json(client)},
                  {"quotas", QuotasJson(quotas)},
                  {"branches", u->branches.size()},
                  {"logical_bytes", u->logical_bytes},
                  {"exclusive_bytes", u->exclusive_bytes},
                  {"commits", u->commits},
                  {"commits_last_minute", u->commits_last_minute},
                  {"active_computes", u->active_computes},
                  {"compute_seconds", u->compute_seconds},
                  {"requests", u->requests},
                  {"counting_since", FormatTime(u->since_micros)},
                  {"per_branch", per_branch}});
}

// --- GET .../audit -------------------------------------------------------------

namespace {

// A cursor is "a1.<seq>": the last event of the page before. Opaque to clients.
Result<int64_t> DecodeAuditCursor(const std::string& text) {
  Status bad = Status::InvalidArgument(
      "cursor: not a cursor of this server (send an answer's next_cursor unchanged)",
      "invalid_cursor");
  if (text.rfind("a1.", 0) != 0) return bad;
  int64_t seq = 0;
  const char* first = text.data() + 3;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, seq);
  if (first == last || ec != std::errc() || end != last || seq < 0) return bad;
  return seq;
}

json EventJson(const catalog::AuditEvent& e) {
  json details = json::parse(e.details_json, nullptr, false);
  if (!details.is_object()) details = json::object();
  auto opt = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return {{"seq", e.seq},
          {"time", FormatTime(e.time_micros)},
          {"project", opt(e.project)},
          {"branch", opt(e.branch)},
          {"client_id", opt(e.client_id)},
          {"jti", opt(e.jti)},
          {"request_id", e.request_id},
          {"operation", e.operation},
          {"status", e.status},
          {"code", opt(e.code)},
          {"details", details}};
}

void SendAudit(Call& c, std::optional<std::string> project) {
  if (c.s.guard == nullptr) {
    return http::SendError(c.res, Status::Unavailable("audit is not available", "unavailable"));
  }
  catalog::AuditQuery q;
  q.project = std::move(project);
  q.client_id = c.req.get_param_value("client");
  BRANCHDB_TRY_SEND(c.res, limit, QueryInt(c.req, "limit", {1, 1000}));
  q.limit = limit->value_or(100);
  if (c.req.has_param("since")) {
    const std::string text = c.req.get_param_value("since");
    const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
    // Unix seconds (digits) or RFC 3339, as everywhere else in the API.
    json value = digits && text.size() <= 15 ? json(std::stoll(text)) : json(text);
    BRANCHDB_TRY_SEND(c.res, since, ParseTime(value, "since"));
    q.since_micros = *since;
  }
  if (c.req.has_param("cursor")) {
    BRANCHDB_TRY_SEND(c.res, after, DecodeAuditCursor(c.req.get_param_value("cursor")));
    q.after_seq = *after;
  }
  const int64_t page = q.limit;
  q.limit = page + 1;  // one more: is there a next page?
  BRANCHDB_TRY_SEND(c.res, events, c.s.guard->ledger().Query(q));
  json out = json::array();
  const bool more = static_cast<int64_t>(events->size()) > page;
  if (more) events->pop_back();
  for (const auto& e : *events) out.push_back(EventJson(e));
  json next = more ? json("a1." + std::to_string(events->back().seq)) : json(nullptr);
  http::SendJson(c.res, 200, {{"events", out}, {"next_cursor", next}});
}

}  // namespace

void HandleProjectAudit(Call& c) {
  // The project must exist (its trail outlives a deleted one, but is read
  // through a live project of that name only).
  BRANCHDB_TRY_SEND(c.res, p, c.s.catalog->GetProject(c.project));
  SendAudit(c, c.project);
}

void HandleServerAudit(Call& c) { SendAudit(c, std::nullopt); }

}  // namespace branchdb::server::routes
