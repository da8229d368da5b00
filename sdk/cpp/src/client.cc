// The operations of branchdb::client::Client (client.h): each builds one
// HTTP request, sends it through the Transport and decodes the answer.
#include "branchdb/client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "parse.h"
#include "transport.h"

#ifndef BRANCHDB_SDK_VERSION
#define BRANCHDB_SDK_VERSION "0.0.0"
#endif

namespace branchdb::client {

using internal::BodySource;
using internal::Decode;
using internal::DecodeList;
using internal::Describe;
using internal::EncodeQuery;
using internal::HttpRequest;

const char* Version() { return BRANCHDB_SDK_VERSION; }

namespace {

constexpr const char* kOAuthTokenSuffix = "/oauth/token";

// A time for the API: Unix seconds (all digits) as a number, else the string.
Json TimeJson(const std::string& t) {
  if (!t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoll(t);
  }
  return t;
}

// Appends "&k=v" / "?k=v" to a path.
void AddQuery(std::string& path, const std::string& key, const std::string& value) {
  path += path.find('?') == std::string::npos ? '?' : '&';
  path += EncodeQuery(key) + "=" + EncodeQuery(value);
}

Status NonEmpty(const std::string& value, const char* what) {
  if (value.empty()) return Error::InvalidArgument(std::string(what) + " must not be empty");
  return Status::OK();
}

std::string ProjectPath(const std::string& project) {
  return "/v1/projects/" + EncodePathSegment(project);
}

std::string BranchPath(const std::string& project, const std::string& branch,
                       const std::string& sub = "") {
  return ProjectPath(project) + "/branches/" + EncodePathSegment(branch) + sub;
}

HttpRequest Get(std::string path) {
  HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.retry = true;
  return r;
}

// A mutating POST. Idempotent ones carry an Idempotency-Key (given, or fresh)
// that every retry repeats; the others (answers holding a secret, which the
// server never stores) are sent once.
HttpRequest Post(std::string path, const Json& body, bool idempotent,
                 const std::optional<std::string>& key = std::nullopt) {
  HttpRequest r;
  r.method = "POST";
  r.path = std::move(path);
  if (!body.is_null()) {
    r.body = body.dump();
    r.content_type = "application/json";
  }
  if (idempotent) {
    r.idempotency_key = key ? *key : NewIdempotencyKey();
    r.retry = true;
  }
  return r;
}

// Exactly one of the set fields of a target, as {"key": value}.
Result<Json> OneOf(const char* what, std::initializer_list<std::pair<const char*, Json>> fields) {
  Json out = Json::object();
  for (const auto& [k, v] : fields) {
    if (!v.is_null()) out[k] = v;
  }
  if (out.size() > 1) {
    return Error::InvalidArgument(std::string(what) + ": give exactly one target, got " +
                                  std::to_string(out.size()));
  }
  return out;
}

template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json();
}

}  // namespace

class Client::Impl {
 public:
  Impl(ClientOptions options, internal::Origin api, internal::Origin token)
      : transport(std::move(options), std::move(api), std::move(token)) {}

  // Sends; a non-2xx answer becomes an API error.
  Result<RawResponse> Call(const HttpRequest& r) {
    auto res = transport.Send(r);
    if (!res.ok()) return res.error();
    if (res->status < 200 || res->status >= 300) return internal::ApiErrorFrom(*res, Describe(r));
    return res;
  }

  Result<Json> CallJson(const HttpRequest& r) {
    auto res = Call(r);
    if (!res.ok()) return res.error();
    Json j = Json::parse(res->body, nullptr, false);
    if (j.is_discarded()) {
      return Error::UnexpectedResponse(res->status, Describe(r) + ": the answer is not JSON: " +
                                                        res->body.substr(0, 80));
    }
    return j;
  }

  template <typename T>
  Result<T> CallAs(const HttpRequest& r) {
    auto j = CallJson(r);
    if (!j.ok()) return j.error();
    return Decode<T>(*j, 200);
  }

  template <typename T>
  Result<std::vector<T>> CallList(const HttpRequest& r, const char* key) {
    auto j = CallJson(r);
    if (!j.ok()) return j.error();
    return DecodeList<T>(*j, key, 200);
  }

  // DELETE: a retried DELETE whose earlier attempt went through finds
  // nothing (404 on attempt > 1): that is success.
  Status Delete(std::string path) {
    HttpRequest r;
    r.method = "DELETE";
    r.path = std::move(path);
    r.retry = true;
    auto res = Call(r);
    if (!res.ok() && !(res.error().IsNotFound() && res.error().attempts() > 1)) return res.error();
    return Status::OK();
  }

  Result<Branch> Import(const std::string& project, BodySource source,
                        const ImportRequest& request) {
    if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
    if (auto s = NonEmpty(request.branch, "branch"); !s.ok()) return s.error();
    std::string path = ProjectPath(project) + "/import";
    AddQuery(path, "branch", request.branch);
    HttpRequest r = Post(path, Json(), true, request.idempotency_key);
    r.content_type = "application/vnd.sqlite3";
    if (source.size > 0) r.source = std::move(source);
    r.upload_progress = request.progress;
    return CallAs<Branch>(r);
  }

  internal::Transport transport;
};

Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto api = internal::ParseUrl(options.url);
  if (!api.ok()) return api.error();
  if (options.client_id.empty() != options.client_secret.empty()) {
    return Error::InvalidArgument("client credentials need both client_id and client_secret");
  }
  if (options.token_url.empty()) {
    std::string base = options.url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    options.token_url = base + kOAuthTokenSuffix;
  }
  auto token = internal::ParseUrl(options.token_url);
  if (!token.ok()) return Error::InvalidArgument("token_url: " + token.error().message());
  if (options.retry.max_retries < 0) options.retry.max_retries = 0;
  if (options.connect_timeout.count() <= 0 || options.io_timeout.count() <= 0) {
    return Error::InvalidArgument("timeouts must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(*api), std::move(*token));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->transport.options(); }

// ---- service -----------------------------------------------------------------------

Result<Json> Client::Health() {
  HttpRequest r = Get("/healthz");
  r.authenticate = false;
  return impl_->CallJson(r);
}

Result<std::string> Client::Metrics() {
  HttpRequest r = Get("/metrics");
  r.authenticate = false;
  auto res = impl_->Call(r);
  if (!res.ok()) return res.error();
  return std::move(res->body);
}

// ---- tokens ------------------------------------------------------------------------

Result<std::string> Client::AccessToken() { return impl_->transport.Token(); }

int64_t Client::TokensFetched() const { return impl_->transport.tokens_fetched(); }

Result<TokenIntrospection> Client::Introspect(const std::string& token) {
  if (!impl_->transport.has_client_credentials()) {
    return Error::InvalidArgument("introspection needs client credentials");
  }
  std::string t = token;
  if (t.empty()) {
    auto cur = AccessToken();
    if (!cur.ok()) return cur.error();
    t = *cur;
  }
  auto res = impl_->transport.OAuthPost("/oauth/introspect", {{"token", t}});
  if (!res.ok()) return res.error();
  if (res->status != 200) return internal::ApiErrorFrom(*res, "POST /oauth/introspect");
  return Decode<TokenIntrospection>(Json::parse(res->body, nullptr, false), res->status);
}

Status Client::Revoke(const std::string& token) {
  if (!impl_->transport.has_client_credentials()) {
    return Error::InvalidArgument("revocation needs client credentials");
  }
  std::string t = token;
  if (t.empty()) {
    auto cur = AccessToken();
    if (!cur.ok()) return cur.error();
    t = *cur;
  }
  auto res = impl_->transport.OAuthPost("/oauth/revoke", {{"token", t}});
  if (!res.ok()) return res.error();
  if (res->status != 200) return internal::ApiErrorFrom(*res, "POST /oauth/revoke");
  impl_->transport.Invalidate(t);
  return Status::OK();
}

// ---- OAuth clients -----------------------------------------------------------------

Result<NewClient> Client::CreateClient(const CreateClientRequest& request) {
  if (request.scopes.empty()) return Error::InvalidArgument("scopes must not be empty");
  Json body = {{"name", request.name}, {"scopes", request.scopes}};
  if (!request.projects.empty()) body["projects"] = request.projects;
  if (!request.branches.empty()) body["branches"] = request.branches;
  if (request.max_branch_ttl_seconds) {
    body["max_branch_ttl_seconds"] = *request.max_branch_ttl_seconds;
  }
  if (!request.quotas.empty()) body["quotas"] = request.quotas;
  return impl_->CallAs<NewClient>(Post("/v1/clients", body, /*idempotent=*/false));
}

Result<std::vector<ClientInfo>> Client::ListClients() {
  return impl_->CallList<ClientInfo>(Get("/v1/clients"), "clients");
}

Status Client::DeleteClient(const std::string& client_id) {
  if (auto s = NonEmpty(client_id, "client_id"); !s.ok()) return s;
  return impl_->Delete("/v1/clients/" + EncodePathSegment(client_id));
}

// ---- projects ----------------------------------------------------------------------

Result<Project> Client::CreateProject(const CreateProjectRequest& request) {
  if (auto s = NonEmpty(request.name, "project name"); !s.ok()) return s.error();
  Json body = {{"name", request.name}};
  if (request.restore_window_seconds) body["restore_window_seconds"] = *request.restore_window_seconds;
  return impl_->CallAs<Project>(Post("/v1/projects", body, true, request.idempotency_key));
}

Result<std::vector<Project>> Client::ListProjects() {
  return impl_->CallList<Project>(Get("/v1/projects"), "projects");
}

Result<Project> Client::GetProject(const std::string& project) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  return impl_->CallAs<Project>(Get(ProjectPath(project)));
}

Result<Project> Client::UpdateProject(const std::string& project,
                                      const UpdateProjectRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  Json body = Json::object();
  if (request.restore_window_seconds) body["restore_window_seconds"] = *request.restore_window_seconds;
  if (!request.quotas.empty()) {
    Json quotas = Json::object();
    for (const auto& [name, value] : request.quotas) quotas[name] = value ? Json(*value) : Json();
    body["quotas"] = quotas;
  }
  if (request.default_branch_ttl_seconds) {
    const auto& ttl = *request.default_branch_ttl_seconds;
    body["default_branch_ttl_seconds"] = ttl ? Json(*ttl) : Json();
  }
  if (request.durability) {
    const auto& d = *request.durability;
    body["durability"] = d ? Json(*d) : Json();
  }
  HttpRequest r = Post(ProjectPath(project), body, false);
  r.method = "PATCH";
  r.retry = true;  // setting a value twice is setting it once
  return impl_->CallAs<Project>(r);
}

Status Client::DeleteProject(const std::string& project, bool force) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s;
  std::string path = ProjectPath(project);
  if (force) AddQuery(path, "force", "true");
  return impl_->Delete(path);
}

// ---- branches ----------------------------------------------------------------------

Result<Branch> Client::CreateBranch(const std::string& project, const CreateBranchRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(request.name, "branch name"); !s.ok()) return s.error();
  const BranchPoint& at = request.at;
  auto at_json = OneOf("at", {{"lsn", OrNull(at.lsn)},
                              {"timestamp", at.timestamp ? TimeJson(*at.timestamp) : Json()},
                              {"checkpoint", OrNull(at.checkpoint)},
                              {"label", OrNull(at.label)}});
  if (!at_json.ok()) return at_json.error();
  Json body = {{"name", request.name}};
  if (request.parent) body["parent"] = *request.parent;
  if (!at_json->empty()) body["at"] = *at_json;
  if (request.ttl_seconds) body["ttl_seconds"] = *request.ttl_seconds;
  if (request.expires_at) body["expires_at"] = TimeJson(*request.expires_at);
  if (request.is_protected) body["protected"] = *request.is_protected;
  if (request.writes) body["writes"] = *request.writes;
  return impl_->CallAs<Branch>(
      Post(ProjectPath(project) + "/branches", body, true, request.idempotency_key));
}

Result<std::vector<Branch>> Client::ListBranches(const std::string& project) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  return impl_->CallList<Branch>(Get(ProjectPath(project) + "/branches"), "branches");
}

Result<Branch> Client::GetBranch(const std::string& project, const std::string& branch) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  return impl_->CallAs<Branch>(Get(BranchPath(project, branch)));
}

Result<Branch> Client::UpdateBranch(const std::string& project, const std::string& branch,
                                    const UpdateBranchRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  if (request.expires_at && request.clear_expires_at) {
    return Error::InvalidArgument("expires_at: set it or clear it, not both");
  }
  if (request.idle_timeout_seconds && request.reset_idle_timeout) {
    return Error::InvalidArgument("idle_timeout_seconds: set it or reset it, not both");
  }
  Json body = Json::object();
  if (request.name) body["name"] = *request.name;
  if (request.is_protected) body["protected"] = *request.is_protected;
  if (request.writes) body["writes"] = *request.writes;
  if (request.ttl_seconds) body["ttl_seconds"] = *request.ttl_seconds;
  if (request.expires_at) body["expires_at"] = TimeJson(*request.expires_at);
  if (request.clear_expires_at) body["expires_at"] = nullptr;
  if (request.idle_timeout_seconds) body["idle_timeout_seconds"] = *request.idle_timeout_seconds;
  if (request.reset_idle_timeout) body["idle_timeout_seconds"] = nullptr;
  HttpRequest r = Post(BranchPath(project, branch), body, false);
  r.method = "PATCH";
  // A rename is not repeatable (the old name is gone after the first one).
  r.retry = !(request.name && *request.name != branch);
  return impl_->CallAs<Branch>(r);
}

Status Client::DeleteBranch(const std::string& project, const std::string& branch) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s;
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s;
  return impl_->Delete(BranchPath(project, branch));
}

// ---- SQL ---------------------------------------------------------------------------

Result<SqlResult> Client::Sql(const std::string& project, const std::string& branch,
                              const SqlRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  if (!request.params.is_null() && !request.params.is_array() && !request.params.is_object()) {
    return Error::InvalidArgument("params: expected a JSON array, object or null");
  }
  Json body = {{"sql", request.sql}};
  if (!request.params.is_null()) body["params"] = request.params;
  if (request.read_only) body["read_only"] = true;
  if (request.page_size) body["page_size"] = *request.page_size;
  if (request.cursor) body["cursor"] = *request.cursor;
  return impl_->CallAs<SqlResult>(
      Post(BranchPath(project, branch, "/sql"), body, true, request.idempotency_key));
}

// ---- checkpoints, rollback, reset, promote -------------------------------------------

Result<Usage> Client::GetUsage(const std::string& project, const std::string& client) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  std::string path = ProjectPath(project) + "/usage";
  if (!client.empty()) AddQuery(path, "client", client);
  return impl_->CallAs<Usage>(Get(path));
}

Result<AuditPage> Client::ListAudit(const std::string& project, const ListAuditRequest& request) {
  std::string path = project.empty() ? "/v1/audit" : ProjectPath(project) + "/audit";
  if (request.client) AddQuery(path, "client", *request.client);
  if (request.since) AddQuery(path, "since", *request.since);
  if (request.cursor) AddQuery(path, "cursor", *request.cursor);
  if (request.limit) AddQuery(path, "limit", std::to_string(*request.limit));
  return impl_->CallAs<AuditPage>(Get(path));
}

Result<CheckpointPage> Client::ListCheckpoints(const std::string& project,
                                               const std::string& branch,
                                               const ListCheckpointsRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  std::string path = BranchPath(project, branch, "/checkpoints");
  if (request.limit) AddQuery(path, "limit", std::to_string(*request.limit));
  if (request.cursor) AddQuery(path, "cursor", *request.cursor);
  return impl_->CallAs<CheckpointPage>(Get(path));
}

Result<Checkpoint> Client::LabelCheckpoint(const std::string& project, const std::string& branch,
                                           const LabelCheckpointRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  if (auto s = NonEmpty(request.label, "label"); !s.ok()) return s.error();
  Json body = {{"label", request.label}};
  if (request.lsn) body["lsn"] = *request.lsn;
  return impl_->CallAs<Checkpoint>(
      Post(BranchPath(project, branch, "/checkpoints"), body, true, request.idempotency_key));
}

Result<MoveResult> Client::Rollback(const std::string& project, const std::string& branch,
                                    const RollbackTarget& to,
                                    const std::optional<std::string>& idempotency_key) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  auto target = OneOf("rollback", {{"checkpoint", OrNull(to.checkpoint)},
                                   {"lsn", OrNull(to.lsn)},
                                   {"timestamp", to.timestamp ? TimeJson(*to.timestamp) : Json()},
                                   {"actions", OrNull(to.actions)},
                                   {"label", OrNull(to.label)}});
  if (!target.ok()) return target.error();
  if (target->empty()) return Error::InvalidArgument("rollback: give exactly one target");
  return impl_->CallAs<MoveResult>(Post(BranchPath(project, branch, "/rollback"),
                                        {{"to", *target}}, true, idempotency_key));
}

Result<MoveResult> Client::Reset(const std::string& project, const std::string& branch,
                                 const std::optional<std::string>& idempotency_key) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  return impl_->CallAs<MoveResult>(
      Post(BranchPath(project, branch, "/reset"), Json(), true, idempotency_key));
}

Result<PromoteResult> Client::Promote(const std::string& project, const std::string& branch,
                                      const PromoteRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  Json body = Json::object();
  if (request.mode) body["mode"] = *request.mode;
  if (request.dry_run) body["dry_run"] = true;
  if (request.verify) body["verify"] = *request.verify;
  if (request.on_conflict) body["on_conflict"] = *request.on_conflict;
  if (request.max_retries) body["max_retries"] = *request.max_retries;
  return impl_->CallAs<PromoteResult>(
      Post(BranchPath(project, branch, "/promote"), body, true, request.idempotency_key));
}

// ---- schema, diff ------------------------------------------------------------------

Result<SchemaInfo> Client::GetSchema(const std::string& project, const std::string& branch,
                                     std::optional<uint64_t> lsn) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  std::string path = BranchPath(project, branch, "/schema");
  if (lsn) AddQuery(path, "lsn", std::to_string(*lsn));
  return impl_->CallAs<SchemaInfo>(Get(path));
}

Result<DiffResult> Client::Diff(const std::string& project, const std::string& branch,
                                const DiffRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  if (request.kind != "schema" && request.kind != "data" && request.kind != "patch") {
    return Error::InvalidArgument("diff kind: expected \"schema\", \"data\" or \"patch\", got \"" +
                                  request.kind + "\"");
  }
  std::string path = BranchPath(project, branch, "/diff");
  AddQuery(path, "kind", request.kind);
  if (request.base) AddQuery(path, "base", *request.base);
  if (request.base_lsn) AddQuery(path, "base_lsn", std::to_string(*request.base_lsn));
  if (request.lsn) AddQuery(path, "lsn", std::to_string(*request.lsn));
  if (!request.tables.empty()) {
    std::string tables;
    for (const auto& t : request.tables) tables += (tables.empty() ? "" : ",") + t;
    AddQuery(path, "tables", tables);
  }
  if (request.limit) AddQuery(path, "limit", std::to_string(*request.limit));
  if (request.cursor) AddQuery(path, "cursor", *request.cursor);
  return impl_->CallAs<DiffResult>(Get(path));
}

// ---- credentials, compute ------------------------------------------------------------

Result<Credential> Client::CreateCredential(const std::string& project, const std::string& branch,
                                            const CredentialRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  Json body = {{"access", request.access}};
  if (request.ttl_seconds) body["ttl_seconds"] = *request.ttl_seconds;
  // The answer holds a secret, which the server never stores for a replay:
  // no key, no retry.
  return impl_->CallAs<Credential>(
      Post(BranchPath(project, branch, "/credentials"), body, /*idempotent=*/false));
}

Result<ComputeState> Client::GetCompute(const std::string& project, const std::string& branch) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  return impl_->CallAs<ComputeState>(Get(BranchPath(project, branch, "/compute")));
}

Result<ComputeState> Client::SuspendCompute(const std::string& project,
                                            const std::string& branch) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  return impl_->CallAs<ComputeState>(
      Post(BranchPath(project, branch, "/compute/suspend"), Json(), true));
}

// ---- export, import ------------------------------------------------------------------

Result<ExportResult> Client::Export(const std::string& project, const std::string& branch,
                                    const DataSinkCallback& sink, const ExportRequest& request) {
  if (auto s = NonEmpty(project, "project"); !s.ok()) return s.error();
  if (auto s = NonEmpty(branch, "branch"); !s.ok()) return s.error();
  if (!sink) return Error::InvalidArgument("export: no sink");
  std::string path = BranchPath(project, branch, "/export");
  if (request.lsn) AddQuery(path, "lsn", std::to_string(*request.lsn));
  uint64_t delivered = 0;
  HttpRequest r = Get(path);
  r.sink = [&](const char* data, size_t n) {
    delivered += n;
    return sink(data, n);
  };
  r.before_retry = [&] { return delivered == 0; };
  r.download_progress = request.progress;
  auto res = impl_->Call(r);
  if (!res.ok()) return res.error();
  ExportResult out;
  out.bytes = delivered;
  std::string lsn = res->Header("x-branchdb-lsn");
  if (!lsn.empty() && lsn.find_first_not_of("0123456789") == std::string::npos && lsn.size() < 20) {
    out.lsn = std::stoull(lsn);
  }
  return out;
}

Result<ExportResult> Client::ExportToFile(const std::string& project, const std::string& branch,
                                          const std::string& path, const ExportRequest& request) {
  if (path.empty()) return Error::InvalidArgument("export: empty file path");
  std::string part = path + ".part";
  FILE* f = std::fopen(part.c_str(), "wb");
  if (f == nullptr) return Error::Io("cannot create " + part + ": " + std::strerror(errno));
  std::string write_error;
  uint64_t written = 0;
  auto sink = [&](const char* data, size_t n) {
    if (std::fwrite(data, 1, n, f) != n) {
      write_error = "cannot write " + part + ": " + std::strerror(errno);
      return false;
    }
    written += n;
    return true;
  };
  // Export() retries only before the first byte; a file can start over, so
  // whole-file retries happen here.
  Result<ExportResult> res = Error::InvalidArgument("not run");
  int max = std::max(0, options().retry.max_retries);
  for (int attempt = 0;; ++attempt) {
    if (std::fflush(f) != 0 || std::fseek(f, 0, SEEK_SET) != 0 || ftruncate(fileno(f), 0) != 0) {
      write_error = "cannot truncate " + part + ": " + std::strerror(errno);
      break;
    }
    written = 0;
    res = Export(project, branch, sink, request);
    if (res.ok() || !res.error().IsNetwork() || written == 0 || attempt >= max) break;
  }
  bool ok = res.ok() && write_error.empty();
  if (ok && (std::fflush(f) != 0 || fsync(fileno(f)) != 0)) {
    write_error = "cannot write " + part + ": " + std::strerror(errno);
    ok = false;
  }
  if (std::fclose(f) != 0 && ok) {
    write_error = "cannot close " + part + ": " + std::strerror(errno);
    ok = false;
  }
  if (ok && std::rename(part.c_str(), path.c_str()) != 0) {
    write_error = "cannot rename " + part + " to " + path + ": " + std::strerror(errno);
    ok = false;
  }
  if (!ok) {
    std::remove(part.c_str());
    if (!write_error.empty()) return Error::Io(write_error);
    return res.error();
  }
  return res;
}

Result<Branch> Client::ImportFile(const std::string& project, const std::string& path,
                                  const ImportRequest& request) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error::Io("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error::Io(path + ": not a regular file");
  }
  BodySource source;
  source.size = static_cast<uint64_t>(st.st_size);
  source.read = [fd, &path](uint64_t offset, char* buf, size_t len, std::string* error) -> int64_t {
    ssize_t n;
    do {
      n = ::pread(fd, buf, len, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) *error = "cannot read " + path + ": " + std::strerror(errno);
    return n;
  };
  auto res = impl_->Import(project, std::move(source), request);
  ::close(fd);
  return res;
}

Result<Branch> Client::ImportData(const std::string& project, const std::string& data,
                                  const ImportRequest& request) {
  BodySource source;
  source.size = data.size();
  source.read = [&data](uint64_t offset, char* buf, size_t len, std::string*) -> int64_t {
    if (offset >= data.size()) return 0;
    size_t n = std::min<size_t>(len, data.size() - offset);
    std::memcpy(buf, data.data() + offset, n);
    return static_cast<int64_t>(n);
  };
  return impl_->Import(project, std::move(source), request);
}

// ---- raw access ----------------------------------------------------------------------

Result<RawResponse> Client::Send(const std::string& method, const std::string& path_and_query,
                                 const std::string& body, const std::string& content_type,
                                 bool idempotent,
                                 const std::optional<std::string>& idempotency_key) {
  if (path_and_query.empty() || path_and_query.front() != '/') {
    return Error::InvalidArgument("path must start with '/'");
  }
  HttpRequest r;
  r.method = method;
  r.path = path_and_query;
  r.body = body;
  r.content_type = content_type;
  r.retry = idempotent;
  r.idempotency_key = idempotency_key;
  if (idempotent && method == "POST" && !r.idempotency_key) r.idempotency_key = NewIdempotencyKey();
  return impl_->transport.Send(r);
}

// ---- free functions ------------------------------------------------------------------

Result<AdminCredentials> LoadAdminCredentials(const std::string& data_dir) {
  std::string path = data_dir + "/admin-credentials.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::Io("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  Json j = Json::parse(ss.str(), nullptr, false);
  if (!j.is_object() || !j.contains("client_id") || !j["client_id"].is_string() ||
      !j.contains("client_secret") || !j["client_secret"].is_string()) {
    return Error::UnexpectedResponse(0, path + ": expected {\"client_id\",\"client_secret\",...}");
  }
  AdminCredentials out;
  out.client_id = j["client_id"];
  out.client_secret = j["client_secret"];
  if (j.contains("token_url") && j["token_url"].is_string()) out.token_url = j["token_url"];
  const std::string suffix = kOAuthTokenSuffix;
  if (out.token_url.size() > suffix.size() &&
      out.token_url.compare(out.token_url.size() - suffix.size(), suffix.size(), suffix) == 0) {
    out.url = out.token_url.substr(0, out.token_url.size() - suffix.size());
  }
  return out;
}

}  // namespace branchdb::client
