// See cluster.h.
#include "cluster/cluster.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "base/mutex.h"

namespace branchdb::cluster {
namespace {

using nlohmann::json;

std::optional<OwnerInfo> ParseOwner(const std::string& project, const std::string& value) {
  json j = json::parse(value, nullptr, false);
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string()) return std::nullopt;
  OwnerInfo o;
  o.project = project;
  o.node = j["node"].get<std::string>();
  o.url = j.value("url", std::string());
  o.epoch = j.value("epoch", int64_t{0});
  return o;
}

std::string HomeOf(const std::string& value) {
  json j = json::parse(value, nullptr, false);
  return j.is_object() ? j.value("home", std::string()) : std::string();
}

int64_t ParseEpoch(const std::string& value) {
  try {
    return std::stoll(value);
  } catch (...) {
    return 0;
  }
}

}  // namespace

class ClusterNode::Impl {
 public:
  Impl(ClusterOptions options, std::unique_ptr<EtcdClient> etcd)
      : options_(std::move(options)),
        etcd_(std::move(etcd)),
        logger_(options_.logger ? options_.logger : spdlog::default_logger()) {}

  // Keys.
  std::string NodeKey(const std::string& name) const { return options_.prefix + "/nodes/" + name; }
  std::string OwnerKey(const std::string& p) const { return options_.prefix + "/owners/" + p; }
  std::string EpochKey(const std::string& p) const { return options_.prefix + "/epochs/" + p; }
  std::string ProjectKey(const std::string& p) const { return options_.prefix + "/projects/" + p; }
  std::string OwnerValue(int64_t epoch) const {
    return json{{"node", options_.node_name}, {"url", options_.advertise_url}, {"epoch", epoch}}
        .dump();
  }
  std::string HomeValue() const { return json{{"home", options_.node_name}}.dump(); }

  int64_t NowNanos() const { return options_.clock->NowMonotonicNanos(); }

  // A new lease and the node key under it. AlreadyExists when a live node
  // has the name.
  Status Register() {
    auto lease = etcd_->LeaseGrant(options_.lease_ttl_seconds);
    if (!lease.ok()) return lease.status();
    const int64_t started = NowNanos();
    auto txn = etcd_->Txn({{NodeKey(options_.node_name), Compare::Target::kCreateRevision,
                            Compare::Op::kEqual, 0, ""}},
                          {{TxnOp::Kind::kPut, NodeKey(options_.node_name),
                            options_.advertise_url, lease->id, false}},
                          {});
    if (!txn.ok() || !txn->succeeded) {
      (void)etcd_->LeaseRevoke(lease->id);
      if (!txn.ok()) return txn.status();
      return Status::AlreadyExists("a live node named " + options_.node_name +
                                       " is registered in etcd (node names must be unique; "
                                       "wait for its lease to expire or pick another name)",
                                   "node_name_taken");
    }
    MutexLock l(mu_);
    lease_id_ = lease->id;
    ttl_nanos_ = lease->ttl_seconds * 1'000'000'000;
    lease_deadline_ = started + ttl_nanos_;
    logger_->info("event=cluster_registered node={} lease={} ttl_seconds={}", options_.node_name,
                  lease->id, lease->ttl_seconds);
    return Status::OK();
  }

  int64_t Lease() const {
    MutexLock l(mu_);
    return lease_id_;
  }

  enum class TakeMode {
    kNew,       // also registers the name: fails when it exists
    kHome,      // a project whose home is this node (or not registered)
    kTakeOver,  // a registered project of another home: becomes ours (not yet in owned_)
  };

  // Takes the ownership of a project. Returns the epoch, AlreadyExists when
  // the mode does not allow the registry's home, FailedPrecondition when
  // another node owns it (or the registry or epoch changed since read).
  Result<int64_t> Take(const std::string& project, TakeMode mode) {
    const bool fresh = mode == TakeMode::kNew;
    const int64_t lease = Lease();
    if (lease == 0) return Status::Unavailable("no lease (re-registering)", "lease_lost");
    auto epoch_kv = etcd_->Get(EpochKey(project));
    if (!epoch_kv.ok()) return epoch_kv.status();
    auto reg = etcd_->Get(ProjectKey(project));
    if (!reg.ok()) return reg.status();
    if (mode == TakeMode::kTakeOver && !*reg) {
      return Status::NotFound("project " + project + " is not registered", "project_not_found");
    }
    if (*reg && mode != TakeMode::kTakeOver &&
        (fresh || HomeOf((*reg)->value) != options_.node_name)) {
      return Status::AlreadyExists("project " + project + " already exists in the cluster (home " +
                                       HomeOf((*reg)->value) + ")",
                                   "project_exists");
    }
    const int64_t epoch = (*epoch_kv ? ParseEpoch((*epoch_kv)->value) : 0) + 1;
    std::vector<Compare> compares = {
        {OwnerKey(project), Compare::Target::kCreateRevision, Compare::Op::kEqual, 0, ""},
        {EpochKey(project), Compare::Target::kModRevision, Compare::Op::kEqual,
         *epoch_kv ? (*epoch_kv)->mod_revision : 0, ""},
        {ProjectKey(project), Compare::Target::kModRevision, Compare::Op::kEqual,
         *reg ? (*reg)->mod_revision : 0, ""}};
    std::vector<TxnOp> success = {
        {TxnOp::Kind::kPut, OwnerKey(project), OwnerValue(epoch), lease, false},
        {TxnOp::Kind::kPut, EpochKey(project), std::to_string(epoch), 0, false}};
    // A takeover makes this node the home once it succeeded (TakeOver).
    if (!*reg) success.push_back({TxnOp::Kind::kPut, ProjectKey(project), HomeValue(), 0, false});
    auto txn = etcd_->Txn(compares, success, {});
    if (!txn.ok() && txn.status().reason() == "etcd_lease_not_found") {
      if (Lease() == lease) LoseLease("lease_expired");  // the keepalive loop registers again
      return Status::Unavailable("the node's lease expired while taking " + project, "lease_lost");
    }
    if (!txn.ok()) return txn.status();
    if (!txn->succeeded) {
      return Status::FailedPrecondition("project " + project + " is owned by another node",
                                        "not_owner");
    }
    MutexLock l(mu_);
    if (lease_id_ != lease) return Status::Unavailable("lease lost while taking", "lease_lost");
    if (mode == TakeMode::kTakeOver) {
      taking_[project] = epoch;
    } else {
      owned_[project] = epoch;
    }
    logger_->info("event=cluster_owner_taken project={} epoch={}{}", project, epoch,
                  mode == TakeMode::kTakeOver ? " takeover=true" : "");
    return epoch;
  }

  // Takes each project on this node's disk that no node owns (by the last
  // poll): at start, after a new lease, and on every poll (another node's
  // hold on it may have lapsed).
  void ClaimLocalProjects() {
    if (!options_.local_projects) return;
    for (const std::string& p : options_.local_projects()) {
      {
        MutexLock l(mu_);
        if (lease_id_ == 0 || owned_.count(p) || owners_.count(p)) continue;
      }
      auto taken = Take(p, TakeMode::kHome);
      if (!taken.ok()) {
        // A name registered by another node (a project made on this disk
        // before it joined): said once, not on every poll.
        if (taken.status().reason() == "project_exists" && !foreign_.insert(p).second) continue;
        logger_->warn("event=cluster_claim_failed project={} error=\"{}\"", p,
                      taken.status().ToString());
      }
    }
  }

  // Queues for the takeover thread the registered projects that nobody owns
  // and whose home is another node, when this node has no more projects than
  // any other live node (views may differ for a poll: etcd's transaction
  // decides between nodes that both try).
  bool IsLocal(const std::string& project) const {
    if (!options_.local_projects) return false;
    for (const std::string& p : options_.local_projects()) {
      if (p == project) return true;
    }
    return false;
  }

  void QueueTakeovers() {
    if (!options_.take_over) return;
    // Projects whose home is this node but whose copy is not here (this node
    // took them over, then came back on an empty disk) are taken over too.
    std::set<std::string> local;
    if (options_.local_projects) {
      for (std::string& p : options_.local_projects()) local.insert(std::move(p));
    }
    MutexLock l(mu_);
    if (lease_id_ == 0) return;
    std::map<std::string, size_t> load;
    for (const std::string& n : live_names_) load[n] = 0;
    for (const auto& [project, o] : owners_) {
      if (load.count(o.node)) ++load[o.node];
    }
    load[options_.node_name] = owned_.size() + taking_.size();
    size_t fewest = load[options_.node_name];
    for (const auto& [node, n] : load) fewest = std::min(fewest, n);
    if (load[options_.node_name] > fewest) return;
    const int64_t now = NowNanos();
    bool queued = false;
    for (const auto& [project, home] : registry_) {
      if ((home == options_.node_name && local.count(project)) || owners_.count(project) ||
          owned_.count(project) ||
          taking_.count(project) || queued_.count(project)) {
        continue;
      }
      if (auto f = retry_after_.find(project); f != retry_after_.end() && now < f->second) continue;
      queued_.insert(project);
      queued = true;
    }
    if (queued) cv_.SignalAll();
  }

  // The takeover thread: takes each queued project and brings it here.
  void TakeoverLoop() {
    MutexLock l(mu_);
    while (!stop_) {
      if (queued_.empty()) {
        cv_.Wait(mu_);
        continue;
      }
      const std::string project = *queued_.begin();
      queued_.erase(queued_.begin());
      if (owners_.count(project) || owned_.count(project)) continue;
      l.Unlock();
      TakeOver(project);
      l.Lock();
    }
  }

  void TakeOver(const std::string& project) {
    auto epoch = Take(project, TakeMode::kTakeOver);
    if (!epoch.ok()) {
      logger_->info("event=cluster_takeover_skipped project={} reason={}", project,
                    epoch.status().reason());
      return;
    }
    const int64_t started = NowNanos();
    Status s = options_.take_over(project, *epoch);
    // This node is the home from now on: the old home, back, no longer
    // claims its stale copy. Written only after a takeover that succeeded (a
    // failed one leaves the home, whose disk may have the only copy of what
    // the bucket lacks), and only while the owner key is still ours.
    if (s.ok()) {
      auto txn = etcd_->Txn({{OwnerKey(project), Compare::Target::kValue, Compare::Op::kEqual, 0,
                              OwnerValue(*epoch)}},
                            {{TxnOp::Kind::kPut, ProjectKey(project), HomeValue(), 0, false}}, {});
      if (!txn.ok()) s = txn.status().WithContext("registering the new home");
      else if (!txn->succeeded) s = Status::Unavailable("the ownership went meanwhile", "not_owner");
    }
    MutexLock l(mu_);
    auto it = taking_.find(project);
    const bool still = it != taking_.end() && it->second == *epoch;
    if (still) taking_.erase(it);
    if (s.ok() && still) {
      owned_[project] = *epoch;
      ++takeovers_;
      logger_->info("event=cluster_takeover project={} epoch={} seconds={:.3f}", project, *epoch,
                    static_cast<double>(NowNanos() - started) / 1e9);
      return;
    }
    ++takeover_failures_;
    retry_after_[project] = NowNanos() + 5'000'000'000;
    logger_->warn("event=cluster_takeover_failed project={} epoch={} error=\"{}\"", project,
                  *epoch, s.ok() ? "the lease was lost meanwhile" : s.ToString());
    l.Unlock();
    // Gives the ownership up (if etcd still has it) for another try.
    (void)etcd_->Txn({{OwnerKey(project), Compare::Target::kValue, Compare::Op::kEqual, 0,
                       OwnerValue(*epoch)}},
                     {{TxnOp::Kind::kDelete, OwnerKey(project), "", 0, false}}, {});
  }

  // Forgets every ownership at once (the lease is gone or going).
  void LoseLease(const std::string& why) {
    MutexLock l(mu_);
    if (lease_id_ == 0) return;
    logger_->warn("event=cluster_lease_lost node={} lease={} reason={} owned_projects={}",
                  options_.node_name, lease_id_, why, owned_.size());
    lease_id_ = 0;
    owned_.clear();
    taking_.clear();  // a takeover under way finds it gone, and gives up
  }

  void Poll() {
    auto nodes = etcd_->RangePrefix(options_.prefix + "/nodes/");
    auto owners = etcd_->RangePrefix(options_.prefix + "/owners/");
    if (nodes.ok() && owners.ok()) {
      std::map<std::string, OwnerInfo> by_project;
      const size_t cut = (options_.prefix + "/owners/").size();
      for (const KeyValue& kv : owners->kvs) {
        if (auto o = ParseOwner(kv.key.substr(cut), kv.value)) by_project[o->project] = *o;
      }
      std::set<std::string> live;
      const size_t node_cut = (options_.prefix + "/nodes/").size();
      for (const KeyValue& kv : nodes->kvs) live.insert(kv.key.substr(node_cut));
      std::optional<std::map<std::string, std::string>> registry;
      if (options_.take_over) {
        if (auto reg = etcd_->RangePrefix(options_.prefix + "/projects/"); reg.ok()) {
          registry.emplace();
          const size_t reg_cut = (options_.prefix + "/projects/").size();
          for (const KeyValue& kv : reg->kvs) (*registry)[kv.key.substr(reg_cut)] = HomeOf(kv.value);
        }
      }
      MutexLock l(mu_);
      live_nodes_ = nodes->kvs.size();
      live_names_ = std::move(live);
      owners_ = std::move(by_project);
      if (registry) registry_ = std::move(*registry);
    }
    for (size_t i = 0; i < options_.watches.size(); ++i) {
      auto range = etcd_->RangePrefix(options_.prefix + "/" + options_.watches[i].suffix);
      if (!range.ok()) continue;
      int64_t newest = 0;
      for (const KeyValue& kv : range->kvs) newest = std::max(newest, kv.mod_revision);
      const std::pair<int64_t, size_t> seen{newest, range->kvs.size()};
      if (watch_seen_[i] != seen) {
        const bool first = watch_seen_[i].first < 0;
        watch_seen_[i] = seen;
        if (!first) options_.watches[i].on_change();
      }
    }
  }

  // The keepalive and poll loop.
  void Run() {
    MutexLock l(mu_);
    int64_t next_keepalive = 0;
    while (!stop_) {
      const int64_t now = NowNanos();
      const bool due = now >= next_keepalive;
      const int64_t lease = lease_id_;
      const int64_t third = std::max<int64_t>(ttl_nanos_ / 3, 100'000'000);
      l.Unlock();
      if (due) {
        next_keepalive = now + third;
        KeepAlive(lease, now);
      }
      Poll();
      ClaimLocalProjects();
      QueueTakeovers();
      l.Lock();
      if (stop_) break;
      cv_.WaitFor(mu_, std::chrono::milliseconds(
                           std::min<int64_t>(options_.poll_interval_ms, third / 1'000'000)));
    }
  }

  void KeepAlive(int64_t lease, int64_t started) {
    if (lease != 0) {
      auto ttl = etcd_->LeaseKeepAlive(lease);
      if (ttl.ok()) {
        MutexLock l(mu_);
        if (lease_id_ == lease) lease_deadline_ = started + *ttl * 1'000'000'000;
        return;
      }
      if (ttl.status().reason() == "etcd_lease_not_found") {
        LoseLease("lease_expired");
      } else {
        logger_->warn("event=cluster_keepalive_failed error=\"{}\"", ttl.status().ToString());
        MutexLock l(mu_);
        if (NowNanos() < lease_deadline_) return;  // still ours for now
      }
      LoseLease("keepalive_failed_past_ttl");
    }
    // No lease: register again and claim what is ours.
    if (Status s = Register(); !s.ok()) {
      logger_->warn("event=cluster_register_failed error=\"{}\"", s.ToString());
      return;
    }
    ClaimLocalProjects();
  }

  Location Locate(const std::string& project) {
    {
      MutexLock l(mu_);
      if (owned_.count(project)) return {Location::Kind::kLocal, options_.node_name, "", owned_[project]};
      if (auto t = taking_.find(project); t != taking_.end()) {
        return {Location::Kind::kTaking, options_.node_name, "", t->second};
      }
      auto it = owners_.find(project);
      if (it != owners_.end() && it->second.node != options_.node_name) {
        return {Location::Kind::kRemote, it->second.node, it->second.url, it->second.epoch};
      }
    }
    auto owner = etcd_->Get(OwnerKey(project));
    if (owner.ok() && *owner) {
      if (auto o = ParseOwner(project, (*owner)->value); o && o->node != options_.node_name) {
        return {Location::Kind::kRemote, o->node, o->url, o->epoch};
      }
    }
    auto reg = etcd_->Get(ProjectKey(project));
    if (!reg.ok() || !*reg) return {};
    const std::string home = HomeOf((*reg)->value);
    if (home == options_.node_name && IsLocal(project)) {
      // Ours, not owned (a lost lease, a failed claim): try to own it again.
      auto taken = Take(project, TakeMode::kHome);
      if (taken.ok()) return {Location::Kind::kLocal, home, "", *taken};
    }
    return {Location::Kind::kUnavailable, home, "", 0};
  }

  Result<int64_t> CheckOwner(const std::string& project) {
    int64_t epoch = 0, lease = 0;
    {
      MutexLock l(mu_);
      auto it = owned_.find(project);
      if (it == owned_.end()) {
        return Status::Unavailable("this node does not own project " + project, "not_owner");
      }
      if (lease_id_ == 0 || NowNanos() >= lease_deadline_) {
        return Status::Unavailable(
            "this node's cluster lease has expired: it may no longer write project " + project,
            "lease_lost");
      }
      epoch = it->second;
      lease = lease_id_;
    }
    auto owner = etcd_->Get(OwnerKey(project));
    if (!owner.ok()) {
      return Status::Unavailable("cannot confirm ownership in etcd: " + owner.status().message(),
                                 "etcd_unavailable");
    }
    std::optional<OwnerInfo> o;
    if (*owner) o = ParseOwner(project, (*owner)->value);
    if (!o || o->node != options_.node_name || o->epoch != epoch || (*owner)->lease != lease) {
      MutexLock l(mu_);
      auto it = owned_.find(project);
      if (it != owned_.end() && it->second == epoch) owned_.erase(it);
      logger_->warn("event=cluster_owner_lost project={} epoch={}", project, epoch);
      return Status::Unavailable("this node no longer owns project " + project +
                                     " (its epoch " + std::to_string(epoch) + " is fenced off)",
                                 "not_owner");
    }
    return epoch;
  }

  Status Release(const std::string& project) {
    auto txn = etcd_->Txn({}, {{TxnOp::Kind::kDelete, OwnerKey(project), "", 0, false},
                               {TxnOp::Kind::kDelete, EpochKey(project), "", 0, false},
                               {TxnOp::Kind::kDelete, ProjectKey(project), "", 0, false}},
                          {});
    MutexLock l(mu_);
    owned_.erase(project);
    return txn.ok() ? Status::OK() : txn.status();
  }

  Result<ClusterView> View() {
    ClusterView view;
    auto all = etcd_->RangePrefix(options_.prefix + "/");
    if (!all.ok()) return all.status();
    view.revision = all->revision;
    const std::string nodes = options_.prefix + "/nodes/", owners = options_.prefix + "/owners/",
                      projects = options_.prefix + "/projects/";
    std::map<std::string, std::string> registry;
    std::set<std::string> owned;
    for (const KeyValue& kv : all->kvs) {
      if (kv.key.rfind(nodes, 0) == 0) {
        view.nodes.push_back({kv.key.substr(nodes.size()), kv.value, kv.lease});
      } else if (kv.key.rfind(owners, 0) == 0) {
        if (auto o = ParseOwner(kv.key.substr(owners.size()), kv.value)) {
          owned.insert(o->project);
          view.owners.push_back(std::move(*o));
        }
      } else if (kv.key.rfind(projects, 0) == 0) {
        registry[kv.key.substr(projects.size())] = HomeOf(kv.value);
      }
    }
    for (const auto& [project, home] : registry) {
      if (!owned.count(project)) view.unowned.emplace_back(project, home);
    }
    return view;
  }

  const ClusterOptions options_;
  const std::unique_ptr<EtcdClient> etcd_;
  const std::shared_ptr<spdlog::logger> logger_;

  // What each of options_.watches last saw ({newest mod_revision, keys});
  // {-1, 0} before the first poll. Start's poll, then the thread's only.
  std::vector<std::pair<int64_t, size_t>> watch_seen_;
  // Local projects whose name another node registered (logged once). Start's
  // claims, then the thread's only.
  std::set<std::string> foreign_;

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  int64_t lease_id_ GUARDED_BY(mu_) = 0;       // 0: none (lost, or re-registering)
  int64_t ttl_nanos_ GUARDED_BY(mu_) = 0;
  int64_t lease_deadline_ GUARDED_BY(mu_) = 0;  // monotonic: the lease is surely gone after
  std::map<std::string, int64_t> owned_ GUARDED_BY(mu_);  // project -> epoch
  std::map<std::string, OwnerInfo> owners_ GUARDED_BY(mu_);  // last poll
  size_t live_nodes_ GUARDED_BY(mu_) = 0;
  std::set<std::string> live_names_ GUARDED_BY(mu_);  // last poll
  // Takeover (options_.take_over only): the registry (project -> home) as of
  // the last poll; projects queued for the takeover thread; taken, being
  // brought here (project -> epoch); not tried again before (monotonic).
  std::map<std::string, std::string> registry_ GUARDED_BY(mu_);
  std::set<std::string> queued_ GUARDED_BY(mu_);
  std::map<std::string, int64_t> taking_ GUARDED_BY(mu_);
  std::map<std::string, int64_t> retry_after_ GUARDED_BY(mu_);
  uint64_t takeovers_ GUARDED_BY(mu_) = 0;
  uint64_t takeover_failures_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
  std::thread takeover_thread_;
};

Result<std::unique_ptr<ClusterNode>> ClusterNode::Start(ClusterOptions options) {
  if (options.node_name.empty() || options.advertise_url.empty() || options.clock == nullptr) {
    return Status::InvalidArgument("cluster: node_name, advertise_url and clock are required",
                                   "invalid_config");
  }
  EtcdOptions eo;
  eo.endpoints = options.etcd_endpoints;
  auto etcd = EtcdClient::Create(eo);
  if (!etcd.ok()) return etcd.status();
  auto impl = std::make_unique<Impl>(std::move(options), std::move(*etcd));
  impl->watch_seen_.assign(impl->options_.watches.size(), {-1, 0});
  // A node restarted at once after a crash finds its old key until its old
  // lease expires: waits for that (a TTL and a few seconds), no longer.
  Clock* clock = impl->options_.clock;
  const int64_t give_up =
      clock->NowMonotonicNanos() + (impl->options_.lease_ttl_seconds + 5) * 1'000'000'000;
  for (Status s = impl->Register(); !s.ok(); s = impl->Register()) {
    if (s.reason() != "node_name_taken" || clock->NowMonotonicNanos() > give_up) return s;
    clock->SleepForMicros(200'000);
  }
  impl->ClaimLocalProjects();
  impl->Poll();
  return std::unique_ptr<ClusterNode>(new ClusterNode(std::move(impl)));
}

ClusterNode::ClusterNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->thread_ = std::thread([impl = impl_.get()] { impl->Run(); });
  if (impl_->options_.take_over) {
    impl_->takeover_thread_ = std::thread([impl = impl_.get()] { impl->TakeoverLoop(); });
  }
}

ClusterNode::~ClusterNode() {
  {
    MutexLock l(impl_->mu_);
    impl_->stop_ = true;
  }
  impl_->cv_.SignalAll();
  if (impl_->thread_.joinable()) impl_->thread_.join();
  if (impl_->takeover_thread_.joinable()) impl_->takeover_thread_.join();
  if (int64_t lease = impl_->Lease(); lease != 0) (void)impl_->etcd_->LeaseRevoke(lease);
}

const std::string& ClusterNode::node_name() const { return impl_->options_.node_name; }
EtcdClient& ClusterNode::etcd() { return *impl_->etcd_; }
Location ClusterNode::Locate(const std::string& project) { return impl_->Locate(project); }
Status ClusterNode::CheckWrite(const std::string& project) {
  return impl_->CheckOwner(project).status();
}
Result<int64_t> ClusterNode::CheckOwner(const std::string& project) {
  return impl_->CheckOwner(project);
}
Result<int64_t> ClusterNode::ClaimNew(const std::string& project) {
  return impl_->Take(project, Impl::TakeMode::kNew);
}
Status ClusterNode::Release(const std::string& project) { return impl_->Release(project); }

std::optional<int64_t> ClusterNode::Epoch(const std::string& project) const {
  MutexLock l(impl_->mu_);
  auto it = impl_->owned_.find(project);
  if (it == impl_->owned_.end()) return std::nullopt;
  return it->second;
}

Result<ClusterView> ClusterNode::View() { return impl_->View(); }

uint64_t ClusterNode::TakeoverCount() const {
  MutexLock l(impl_->mu_);
  return impl_->takeovers_;
}
uint64_t ClusterNode::TakeoverFailures() const {
  MutexLock l(impl_->mu_);
  return impl_->takeover_failures_;
}

size_t ClusterNode::LiveNodeCount() const {
  MutexLock l(impl_->mu_);
  return impl_->live_nodes_;
}
size_t ClusterNode::OwnedProjectCount() const {
  MutexLock l(impl_->mu_);
  return impl_->owned_.size();
}
bool ClusterNode::LeaseHeld() const {
  MutexLock l(impl_->mu_);
  return impl_->lease_id_ != 0 && impl_->NowNanos() < impl_->lease_deadline_;
}

}  // namespace branchdb::cluster
