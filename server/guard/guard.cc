#include "server/guard/guard.h"

#include <sqlite3.h>

#include <algorithm>

#include "catalog/catalog.h"
#include "server/compute/supervisor.h"
#include "storage/vfs/vfs.h"

namespace branchdb::server::guard {

using nlohmann::json;

// Binds var to the value of expr (a Result), or returns its error.
#define GUARD_ASSIGN(var, expr)          \
  auto var##_result = (expr);            \
  if (!var##_result.ok()) return var##_result.status(); \
  auto& var = *var##_result

namespace {
constexpr int64_t kWindowMicros = 60 * 1000000ll;  // max_commits_per_minute's window

std::string ProjectPrefix(const std::string& project) { return project + "/"; }

// The database size of db's open transaction: SQLite's pager knows it
// (PRAGMA page_count, allowed by the sandbox) before the pages reach the VFS
// at COMMIT; the VFS's figure when larger.
uint64_t PendingBytes(sqlite3* db) {
  uint64_t bytes = storage::BranchSpace(db).database;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA main.page_count", -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    bytes = std::max<uint64_t>(bytes, static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)) *
                                          storage::kPageSize);
  }
  sqlite3_finalize(stmt);
  return bytes;
}
}  // namespace

Status Refusal::ToStatus() const {
  std::string who = scope == "project" ? "project '" + owner + "'" : "client " + owner;
  return Status::ResourceExhausted("quota " + quota + " of " + who + " reached: limit " +
                                       std::to_string(limit) + ", current " +
                                       std::to_string(current) +
                                       " (nothing was changed; raise the quota with PATCH "
                                       "/v1/projects/{project} or free some)",
                                   "quota_exceeded");
}

json Refusal::Details() const {
  json d = {{"quota", quota}, {"scope", scope}, {"limit", limit}, {"current", current}};
  d[scope == "project" ? "project" : "client_id"] = owner;
  return d;
}

Guard::Guard(GuardOptions options, std::unique_ptr<catalog::Ledger> ledger)
    : options_(options),
      ledger_(std::move(ledger)),
      started_micros_(options.clock->NowMicros()) {
  flusher_ = std::thread([this] { FlushLoop(); });
}

Guard::~Guard() {
  {
    MutexLock l(mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
  flusher_.join();
  (void)FlushCommitCounts();  // a failure loses these counts, as a crash would
}

void Guard::FlushLoop() {
  MutexLock l(mu_);
  while (!stop_) {
    stop_cv_.WaitFor(mu_, options_.flush_interval);
    if (stop_) break;
    l.Unlock();
    (void)FlushCommitCounts();  // kept for the next flush on failure
    l.Lock();
  }
}

Status Guard::FlushCommitCounts() {
  MutexLock flushing(flush_mu_);
  std::map<std::tuple<std::string, uint64_t, std::string>, int64_t> taken;
  {
    MutexLock l(mu_);
    taken.swap(unflushed_commits_);
  }
  if (taken.empty()) return Status::OK();
  // One ledger transaction per project.
  std::map<std::string, std::vector<catalog::CommitCount>> by_project;
  for (const auto& [key, n] : taken) {
    by_project[std::get<0>(key)].push_back({std::get<1>(key), std::get<2>(key), n});
  }
  Status first;
  for (const auto& [project_id, counts] : by_project) {
    Status s = ledger_->AddCommits(project_id, counts);
    if (s.ok()) continue;
    if (first.ok()) first = s;
    MutexLock l(mu_);  // back, for the next flush
    for (const auto& c : counts) {
      unflushed_commits_[{project_id, c.timeline, c.client_id}] += c.commits;
    }
  }
  return first;
}

// --- settings --------------------------------------------------------------

Result<catalog::ProjectSettings> Guard::Settings(const std::string& project) {
  auto p = options_.catalog->GetProject(project);
  if (!p.ok()) return p.status();
  {
    MutexLock l(mu_);
    auto it = settings_.find(p->id);
    if (it != settings_.end()) return it->second;
  }
  auto loaded = ledger_->GetSettings(p->id);
  if (!loaded.ok()) return loaded.status();
  MutexLock l(mu_);
  settings_.emplace(p->id, *loaded);
  return loaded;
}

Status Guard::PutSettings(const std::string& project, const catalog::ProjectSettings& settings) {
  auto p = options_.catalog->GetProject(project);
  if (!p.ok()) return p.status();
  BRANCHDB_RETURN_IF_ERROR(ledger_->PutSettings(p->id, settings));
  MutexLock l(mu_);
  settings_[p->id] = settings;
  return Status::OK();
}

void Guard::ForgetProject(const std::string& project_id) {
  {
    MutexLock l(mu_);
    for (auto it = unflushed_commits_.begin(); it != unflushed_commits_.end();) {
      it = std::get<0>(it->first) == project_id ? unflushed_commits_.erase(it) : std::next(it);
    }
  }
  (void)ledger_->ForgetProject(project_id);  // stale rows are keyed by a dead id: harmless
  MutexLock l(mu_);
  settings_.erase(project_id);
  figures_.clear();  // by name: a project re-created under it starts afresh
}

Guard::ProjectLock Guard::LockProject(const std::string& project) {
  std::shared_ptr<std::mutex> m;
  {
    MutexLock l(mu_);
    auto& slot = project_locks_[project];
    if (!slot) slot = std::make_shared<std::mutex>();
    m = slot;  // kept in the map: a project's lock lives as long as the server
  }
  return ProjectLock(*m);
}

Result<std::optional<int64_t>> Guard::DefaultTtlMicros(const std::string& project,
                                                       const auth::Principal& who) {
  if (who.scopes.Has(auth::Scope::kAdmin)) return std::optional<int64_t>();
  auto settings = Settings(project);
  if (!settings.ok()) return settings.status();
  if (!settings->default_branch_ttl_seconds) return std::optional<int64_t>();
  return std::optional<int64_t>(*settings->default_branch_ttl_seconds * 1000000);
}

Quotas Guard::ClientQuotas(const std::string& client_id) {
  if (options_.auth == nullptr || client_id.empty()) return {};
  auto c = options_.auth->GetClient(client_id);
  return c.ok() ? c->quotas : Quotas{};
}

struct Guard::Branches {
  std::string project_id;
  std::vector<catalog::BranchInfo> list;
  std::map<uint64_t, std::string> owners;  // timeline -> client id
  std::shared_ptr<storage::PageStore> store;

  std::string OwnerOf(const catalog::BranchInfo& b) const {
    auto it = owners.find(b.timeline);
    return it == owners.end() ? "" : it->second;
  }
  // The logical bytes of b's head (its database size).
  uint64_t LogicalBytes(const catalog::BranchInfo& b) const {
    auto pages = store->DbSizeAt(b.head);
    return pages.ok() ? uint64_t{*pages} * storage::kPageSize : 0;
  }
};

Result<Guard::Branches> Guard::ListBranches(const std::string& project) {
  Branches out;
  auto p = options_.catalog->GetProject(project);
  if (!p.ok()) return p.status();
  out.project_id = p->id;
  auto list = options_.catalog->ListBranches(project, false);
  if (!list.ok()) return list.status();
  out.list = std::move(*list);
  auto owners = ledger_->BranchOwners(p->id);
  if (!owners.ok()) return owners.status();
  for (auto& [t, c] : *owners) out.owners[t] = c;
  auto store = options_.catalog->Store(project);
  if (!store.ok()) return store.status();
  out.store = std::move(*store);
  return out;
}

Result<Guard::ByteFigure> Guard::Figure(const std::string& project) {
  const int64_t now = options_.clock->NowMicros();
  const int64_t max_age =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.flush_interval).count();
  {
    MutexLock l(mu_);
    auto it = figures_.find(project);
    if (it != figures_.end() && now - it->second.made_micros < max_age) return it->second;
  }
  GUARD_ASSIGN(branches, ListBranches(project));
  ByteFigure figure;
  figure.made_micros = now;
  for (const auto& b : branches.list) {
    figure.branches[b.name] = BranchBytes{branches.LogicalBytes(b), branches.OwnerOf(b)};
  }
  MutexLock l(mu_);
  figures_[project] = figure;
  return figure;
}

int64_t Guard::WindowCount(std::deque<int64_t>& window, int64_t now) {
  while (!window.empty() && window.front() <= now - kWindowMicros) window.pop_front();
  return static_cast<int64_t>(window.size());
}

// --- checks ----------------------------------------------------------------

Status Guard::CheckBranchCreate(const std::string& project, const std::string& client_id,
                                Refusal* refused) {
  auto settings = Settings(project);
  if (!settings.ok()) return settings.status();
  const Quotas client = ClientQuotas(client_id);
  if (!settings->quotas.max_branches && !client.max_branches) return Status::OK();
  GUARD_ASSIGN(branches, ListBranches(project));
  const int64_t all = static_cast<int64_t>(branches.list.size());
  if (settings->quotas.max_branches && all >= *settings->quotas.max_branches) {
    *refused = {"max_branches", "project", project, *settings->quotas.max_branches, all};
    return refused->ToStatus();
  }
  if (client.max_branches) {
    int64_t own = 0;
    for (const auto& b : branches.list) own += branches.OwnerOf(b) == client_id;
    if (own >= *client.max_branches) {
      *refused = {"max_branches", "client", client_id, *client.max_branches, own};
      return refused->ToStatus();
    }
  }
  return Status::OK();
}

Status Guard::CheckWake(const std::string& project, const std::string& branch,
                        const std::string& client_id, Refusal* refused) {
  const std::string key = project + "/" + branch;
  auto info = options_.computes->Info(key);
  if (info.ok() && info->active) return Status::OK();
  auto settings = Settings(project);
  if (!settings.ok()) return settings.status();
  const Quotas client = ClientQuotas(client_id);
  if (!settings->quotas.max_active_computes && !client.max_active_computes) return Status::OK();
  // The project's active computes now (again after a suspension).
  auto active_now = [&] {
    std::vector<compute::ComputeInfo> active;
    for (auto& c : options_.computes->List()) {
      if (c.active && c.key.rfind(ProjectPrefix(project), 0) == 0) active.push_back(std::move(c));
    }
    return active;
  };
  // Counted against one quota: those of `counted`; at the limit, suspend the
  // least recently used idle one, else refuse.
  auto enforce = [&](std::vector<compute::ComputeInfo> counted, int64_t limit,
                     const std::string& scope, const std::string& owner) -> Status {
    std::sort(counted.begin(), counted.end(),
              [](const auto& a, const auto& b) { return a.last_used_micros < b.last_used_micros; });
    int64_t n = static_cast<int64_t>(counted.size());
    for (const auto& c : counted) {
      if (n < limit) break;
      if (c.leases == 0 && options_.computes->Suspend(c.key).ok()) --n;
    }
    if (n < limit) return Status::OK();
    *refused = {"max_active_computes", scope, owner, limit, n};
    return refused->ToStatus();
  };
  if (settings->quotas.max_active_computes) {
    BRANCHDB_RETURN_IF_ERROR(
        enforce(active_now(), *settings->quotas.max_active_computes, "project", project));
  }
  if (client.max_active_computes) {
    GUARD_ASSIGN(branches, ListBranches(project));
    std::map<std::string, std::string> owner_by_key;
    for (const auto& b : branches.list) owner_by_key[project + "/" + b.name] = branches.OwnerOf(b);
    if (owner_by_key[key] == client_id) {
      std::vector<compute::ComputeInfo> own;
      for (const auto& c : active_now()) {
        if (owner_by_key[c.key] == client_id) own.push_back(c);
      }
      BRANCHDB_RETURN_IF_ERROR(
          enforce(own, *client.max_active_computes, "client", client_id));
    }
  }
  return Status::OK();
}

Status Guard::CheckCommit(const std::string& project, const std::string& branch,
                          const std::string& client_id, sqlite3* db, Refusal* refused) {
  auto settings = Settings(project);
  if (!settings.ok()) return settings.status();
  const Quotas& pq = settings->quotas;
  const Quotas client = ClientQuotas(client_id);
  if (pq.max_bytes || client.max_bytes) {
    GUARD_ASSIGN(figure, Figure(project));
    const uint64_t pending = PendingBytes(db);
    uint64_t before = 0, after = 0, own_before = 0, own_after = 0;
    bool own_branch = false;
    for (const auto& [name, b] : figure.branches) {
      const uint64_t new_bytes = name == branch ? pending : b.bytes;
      before += b.bytes;
      after += new_bytes;
      if (!client_id.empty() && b.owner == client_id) {
        own_before += b.bytes;
        own_after += new_bytes;
        own_branch |= name == branch;
      }
    }
    if (pq.max_bytes && after > before && after > static_cast<uint64_t>(*pq.max_bytes)) {
      *refused = {"max_bytes", "project", project, *pq.max_bytes, static_cast<int64_t>(before)};
      return refused->ToStatus();
    }
    if (client.max_bytes && own_branch && own_after > own_before &&
        own_after > static_cast<uint64_t>(*client.max_bytes)) {
      *refused = {"max_bytes", "client", client_id, *client.max_bytes,
                  static_cast<int64_t>(own_before)};
      return refused->ToStatus();
    }
    // Passed: the figure holds the branch's new size from now on (a COMMIT
    // that then fails leaves it high until the next walk: stricter, not laxer).
    MutexLock l(mu_);
    auto it = figures_.find(project);
    if (it != figures_.end()) {
      auto b = it->second.branches.find(branch);
      if (b != it->second.branches.end()) b->second.bytes = pending;
    }
  }
  if (pq.max_commits_per_minute || client.max_commits_per_minute) {
    const int64_t now = options_.clock->NowMicros();
    MutexLock l(mu_);
    auto& pw = project_commits_[project];
    auto& cw = client_commits_[client_id];
    const int64_t in_project = WindowCount(pw, now);
    const int64_t by_client = WindowCount(cw, now);
    if (pq.max_commits_per_minute && in_project >= *pq.max_commits_per_minute) {
      *refused = {"max_commits_per_minute", "project", project, *pq.max_commits_per_minute,
                  in_project};
      return refused->ToStatus();
    }
    if (client.max_commits_per_minute && by_client >= *client.max_commits_per_minute) {
      *refused = {"max_commits_per_minute", "client", client_id, *client.max_commits_per_minute,
                  by_client};
      return refused->ToStatus();
    }
  }
  // Counted now, when it passes (a COMMIT that then fails still counts); the
  // windows hold the last minute only, whether a quota applies or not.
  const int64_t now = options_.clock->NowMicros();
  MutexLock l(mu_);
  for (auto* window : {&project_commits_[project], &client_commits_[client_id]}) {
    (void)WindowCount(*window, now);
    window->push_back(now);
  }
  return Status::OK();
}

Status Guard::CheckImport(const std::string& project, const std::string& client_id,
                          uint64_t bytes, Refusal* refused) {
  BRANCHDB_RETURN_IF_ERROR(CheckBranchCreate(project, client_id, refused));
  auto settings = Settings(project);
  if (!settings.ok()) return settings.status();
  const Quotas client = ClientQuotas(client_id);
  if (!settings->quotas.max_bytes && !client.max_bytes) return Status::OK();
  GUARD_ASSIGN(branches, ListBranches(project));
  uint64_t all = 0, own = 0;
  for (const auto& b : branches.list) {
    const uint64_t n = branches.LogicalBytes(b);
    all += n;
    if (!client_id.empty() && branches.OwnerOf(b) == client_id) own += n;
  }
  const auto& pmax = settings->quotas.max_bytes;
  if (pmax && all + bytes > static_cast<uint64_t>(*pmax)) {
    *refused = {"max_bytes", "project", project, *pmax, static_cast<int64_t>(all)};
    return refused->ToStatus();
  }
  if (client.max_bytes && own + bytes > static_cast<uint64_t>(*client.max_bytes)) {
    *refused = {"max_bytes", "client", client_id, *client.max_bytes, static_cast<int64_t>(own)};
    return refused->ToStatus();
  }
  return Status::OK();
}

// --- recording -------------------------------------------------------------

void Guard::BranchCreated(const std::string& project, const std::string& branch,
                          const std::string& client_id) {
  auto p = options_.catalog->GetProject(project);
  auto b = options_.catalog->GetBranch(project, branch, false);
  if (p.ok() && b.ok()) (void)ledger_->SetBranchOwner(p->id, b->timeline, client_id);
  MutexLock l(mu_);
  figures_.erase(project);  // a new branch: its bytes and owner
}

void Guard::Committed(const std::string& project, const std::string& branch,
                      const std::string& client_id) {
  auto p = options_.catalog->GetProject(project);
  auto b = options_.catalog->GetBranchRow(project, branch);
  if (!p.ok() || !b.ok()) return;
  MutexLock l(mu_);
  ++unflushed_commits_[{p->id, b->timeline, client_id}];
}

void Guard::CountRequest(const std::string& project, const std::string& client_id) {
  MutexLock l(mu_);
  ++projects_[project].requests;
  ++clients_[{project, client_id}].requests;
}

void Guard::CountCompute(const std::string& project, const std::string& client_id,
                         int64_t nanos) {
  MutexLock l(mu_);
  projects_[project].compute_nanos += nanos;
  clients_[{project, client_id}].compute_nanos += nanos;
}

// --- usage -----------------------------------------------------------------

Result<Usage> Guard::ProjectUsage(const std::string& project, const std::string& client_id,
                                  bool with_store_bytes) {
  GUARD_ASSIGN(branches, ListBranches(project));
  // The ledger's counts and those not yet in it, with no flush between.
  MutexLock flushing(flush_mu_);
  auto counts = ledger_->CommitCounts(branches.project_id);
  if (!counts.ok()) return counts.status();
  {
    MutexLock l(mu_);
    for (const auto& [key, n] : unflushed_commits_) {
      if (std::get<0>(key) == branches.project_id) {
        counts->push_back({std::get<1>(key), std::get<2>(key), n});
      }
    }
  }
  std::map<uint64_t, int64_t> commits_by_timeline;
  Usage u;
  u.project = project;
  u.client_id = client_id;
  u.since_micros = started_micros_;
  for (const auto& c : *counts) {
    if (!client_id.empty() && c.client_id != client_id) continue;
    commits_by_timeline[c.timeline] += c.commits;
    u.commits += c.commits;
  }
  std::map<std::string, bool> active;
  for (const auto& c : options_.computes->List()) {
    if (c.active && c.key.rfind(ProjectPrefix(project), 0) == 0) {
      active[c.key.substr(project.size() + 1)] = true;
    }
  }
  for (const auto& b : branches.list) {
    BranchUsage bu;
    bu.name = b.name;
    bu.owner = branches.OwnerOf(b);
    if (!client_id.empty() && bu.owner != client_id) continue;
    bu.logical_bytes = branches.LogicalBytes(b);
    if (with_store_bytes) {
      auto space = branches.store->Usage(b.timeline);
      if (space.ok()) {
        bu.exclusive_bytes = space->exclusive_bytes;
        bu.shared_bytes = space->shared_bytes;
      }
    }
    bu.commits = commits_by_timeline[b.timeline];
    bu.compute_active = active[b.name];
    u.logical_bytes += bu.logical_bytes;
    u.exclusive_bytes += bu.exclusive_bytes;
    u.active_computes += bu.compute_active;
    u.branches.push_back(std::move(bu));
  }
  const int64_t now = options_.clock->NowMicros();
  MutexLock l(mu_);
  const Counters& c =
      client_id.empty() ? projects_[project] : clients_[std::make_pair(project, client_id)];
  u.requests = c.requests;
  u.compute_seconds = static_cast<double>(c.compute_nanos) / 1e9;
  u.commits_last_minute = client_id.empty() ? WindowCount(project_commits_[project], now)
                                            : WindowCount(client_commits_[client_id], now);
  return u;
}

}  // namespace branchdb::server::guard
