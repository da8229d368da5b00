#include "server/compute/supervisor.h"

#include <chrono>

#include "storage/vfs/vfs.h"

namespace branchdb::server::compute {

struct ComputeSupervisor::Compute {
  std::string key;
  // Held by the current lease holder: taken in Acquire and let go when the
  // Lease ends (Release), so across functions, where clang's analysis cannot
  // follow it; hence these two, not analysed.
  Mutex use_mu;
  void TakeLease() NO_THREAD_SAFETY_ANALYSIS { use_mu.Lock(); }
  void EndLease() NO_THREAD_SAFETY_ANALYSIS { use_mu.Unlock(); }

  // Guarded by the supervisor's mu_ (not annotated: clang resolves a
  // GUARDED_BY here against Compute, not the supervisor).
  int leases = 0;
  bool active = false;  // a budget slot is taken (connection open or opening)
  bool suspend_on_release = false;
  bool invalidate_on_release = false;
  bool removed = false;
  int64_t last_used_micros = 0;
  int64_t last_cold_start_nanos = 0;
  uint64_t cold_starts = 0;
  int64_t idle_timeout_seconds = 0;

  // Changed only by the lease holder (use_mu held) or, when leases == 0,
  // under mu_. A Compute never dies holding them: CloseLocked moves both into
  // a Closed, whose member order destroys the sandbox first (it unhooks db),
  // and every path that drops a compute closes it first (ForgetLocked when it
  // is erased: now, or at its last lease's Release; the destructor, which
  // requires no live lease).
  // Destroyed here, they would go in the wrong order: db (declared last) first.
  std::unique_ptr<sql::Sandbox> sandbox;
  storage::SqliteHandle db;
};

ComputeSupervisor::ComputeSupervisor(SupervisorOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<ComputeSupervisor>> ComputeSupervisor::Create(SupervisorOptions options) {
  if (options.clock == nullptr || !options.open || options.budget < 1 ||
      options.idle_timeout_seconds < 0) {
    return Status::InvalidArgument("ComputeSupervisor needs a clock, a factory and budget >= 1");
  }
  options.sandbox.clock = options.clock;
  std::unique_ptr<ComputeSupervisor> s(new ComputeSupervisor(std::move(options)));
  if (s->options_.sweep_interval_seconds > 0) {
    s->sweeper_ = std::thread([p = s.get()] { p->SweeperLoop(); });
  }
  return s;
}

ComputeSupervisor::~ComputeSupervisor() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  stop_cv_.SignalAll();
  if (sweeper_.joinable()) sweeper_.join();
  std::vector<Closed> closed;
  MutexLock l(mu_);
  for (auto& [key, c] : computes_) CloseLocked(*c, &closed);
  computes_.clear();
}

void ComputeSupervisor::SweeperLoop() {
  MutexLock l(mu_);
  while (!stopping_) {
    stop_cv_.WaitFor(mu_, std::chrono::seconds(options_.sweep_interval_seconds));
    if (stopping_) break;
    l.Unlock();
    Sweep();
    l.Lock();
  }
}

void ComputeSupervisor::CloseLocked(Compute& c, std::vector<Closed>* closed) {
  if (c.db || c.sandbox) closed->push_back(Closed{std::move(c.db), std::move(c.sandbox)});
  if (c.active) {
    c.active = false;
    active_--;
  }
  c.suspend_on_release = false;
  c.invalidate_on_release = false;
}

bool ComputeSupervisor::EvictOneLocked(const Compute* except, std::vector<Closed>* closed) {
  Compute* victim = nullptr;
  for (auto& [key, c] : computes_) {
    if (c.get() == except || !c->active || c->leases > 0 || !c->db) continue;
    if (victim == nullptr || c->last_used_micros < victim->last_used_micros) victim = c.get();
  }
  if (victim == nullptr) return false;
  CloseLocked(*victim, closed);
  return true;
}

Result<std::unique_ptr<ComputeSupervisor::Lease>> ComputeSupervisor::Acquire(
    const std::string& key) {
  std::shared_ptr<Compute> c;
  {
    MutexLock l(mu_);
    if (stopping_) return Status::Unavailable("server is shutting down", "shutting_down");
    auto& slot = computes_[key];
    if (!slot) {
      slot = std::make_shared<Compute>();
      slot->key = key;
      slot->idle_timeout_seconds = options_.idle_timeout_seconds;
    }
    c = slot;
    c->leases++;
    c->last_used_micros = options_.clock->NowMicros();
  }
  c->TakeLease();
  auto give_up = [&](Status s) -> Result<std::unique_ptr<Lease>> {
    c->EndLease();
    MutexLock l(mu_);
    if (c->active && !c->db) {
      c->active = false;
      active_--;
    }
    c->leases--;
    return s;
  };
  if (!c->db) {
    {
      std::vector<Closed> evicted;
      MutexLock l(mu_);
      if (!c->active) {
        if (active_ >= options_.budget && !EvictOneLocked(c.get(), &evicted)) {
          c->EndLease();
          c->leases--;
          return Status::ResourceExhausted(
              "all " + std::to_string(options_.budget) +
                  " computes are busy; retry shortly or raise compute.budget",
              "compute_budget");
        }
        c->active = true;
        active_++;
      }
    }
    int64_t t0 = options_.clock->NowMonotonicNanos();
    auto db = options_.open(key);
    if (!db.ok()) return give_up(db.status());
    auto sandbox = sql::Sandbox::Attach(db->get(), options_.sandbox);
    if (!sandbox.ok()) {
      // Attach reads the database; when the store refused (e.g. the branch was
      // deleted under us), its error says more than SQLite's "disk I/O error".
      Status vfs = storage::LastVfsError(db->get());
      return give_up(vfs.ok() ? sandbox.status() : vfs);
    }
    c->db = std::move(*db);
    c->sandbox = std::move(*sandbox);
    int64_t nanos = options_.clock->NowMonotonicNanos() - t0;
    {
      MutexLock l(mu_);
      c->cold_starts++;
      c->last_cold_start_nanos = nanos;
    }
    if (options_.on_cold_start) options_.on_cold_start(key, nanos);
  }
  return std::unique_ptr<Lease>(new Lease(this, c));
}

void ComputeSupervisor::Release(const std::shared_ptr<Compute>& c) {
  c->EndLease();
  std::vector<Closed> closed;
  MutexLock l(mu_);
  c->leases--;
  c->last_used_micros = options_.clock->NowMicros();
  if (c->leases == 0 && (c->suspend_on_release || c->invalidate_on_release || c->removed)) {
    CloseLocked(*c, &closed);
  }
  if (c->removed) released_cv_.SignalAll();
}

int ComputeSupervisor::Sweep() {
  std::vector<Closed> closed;
  MutexLock l(mu_);
  int64_t now = options_.clock->NowMicros();
  int suspended = 0;
  for (auto& [key, c] : computes_) {
    if (!c->active || c->leases > 0 || !c->db || c->idle_timeout_seconds <= 0) continue;
    if (now - c->last_used_micros >= c->idle_timeout_seconds * 1000000) {
      CloseLocked(*c, &closed);
      suspended++;
    }
  }
  return suspended;
}

Status ComputeSupervisor::Suspend(const std::string& key) {
  std::vector<Closed> closed;
  MutexLock l(mu_);
  auto it = computes_.find(key);
  if (it == computes_.end()) {
    return Status::NotFound("no compute for " + key + " (it never ran)", "compute_not_found");
  }
  Compute& c = *it->second;
  if (c.leases == 0) {
    CloseLocked(c, &closed);
  } else {
    c.suspend_on_release = true;
  }
  return Status::OK();
}

void ComputeSupervisor::Invalidate(const std::string& key) {
  std::vector<Closed> closed;
  MutexLock l(mu_);
  auto it = computes_.find(key);
  if (it == computes_.end()) return;
  Compute& c = *it->second;
  if (c.leases == 0) {
    CloseLocked(c, &closed);
  } else {
    c.invalidate_on_release = true;
  }
}

void ComputeSupervisor::Remove(const std::string& key) {
  std::vector<Closed> closed;
  MutexLock l(mu_);
  auto it = computes_.find(key);
  if (it == computes_.end()) return;
  std::shared_ptr<Compute> c = it->second;
  computes_.erase(it);
  ForgetLocked(*c, &closed);
}

void ComputeSupervisor::ForgetLocked(Compute& c, std::vector<Closed>* closed) {
  if (c.leases == 0) {
    CloseLocked(c, closed);
  } else {
    c.removed = true;  // closed when the last lease ends
  }
}

void ComputeSupervisor::RemoveByPrefix(const std::string& prefix, bool wait_for_leases) {
  std::vector<Closed> closed;
  MutexLock l(mu_);
  std::vector<std::shared_ptr<Compute>> leased;
  for (auto it = computes_.lower_bound(prefix);
       it != computes_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    std::shared_ptr<Compute> c = it->second;
    it = computes_.erase(it);
    ForgetLocked(*c, &closed);
    if (c->leases > 0) leased.push_back(std::move(c));
  }
  if (!wait_for_leases) return;
  auto released = [&] {
    for (const auto& c : leased) {
      if (c->leases > 0) return false;
    }
    return true;
  };
  while (!released()) released_cv_.Wait(mu_);
}

void ComputeSupervisor::SetIdleTimeout(const std::string& key, int64_t seconds) {
  MutexLock l(mu_);
  auto& slot = computes_[key];
  if (!slot) {
    slot = std::make_shared<Compute>();
    slot->key = key;
  }
  slot->idle_timeout_seconds = seconds < 0 ? 0 : seconds;
}

ComputeInfo ComputeSupervisor::InfoLocked(const Compute& c) const {
  ComputeInfo info;
  info.key = c.key;
  info.active = c.active;
  info.last_used_micros = c.last_used_micros;
  info.last_cold_start_nanos = c.last_cold_start_nanos;
  info.cold_starts = c.cold_starts;
  info.leases = c.leases;
  info.idle_timeout_seconds = c.idle_timeout_seconds;
  return info;
}

Result<ComputeInfo> ComputeSupervisor::Info(const std::string& key) const {
  MutexLock l(mu_);
  auto it = computes_.find(key);
  if (it == computes_.end()) {
    return Status::NotFound("no compute for " + key + " (it never ran)", "compute_not_found");
  }
  return InfoLocked(*it->second);
}

std::vector<ComputeInfo> ComputeSupervisor::List() const {
  MutexLock l(mu_);
  std::vector<ComputeInfo> out;
  for (const auto& [key, c] : computes_) out.push_back(InfoLocked(*c));
  return out;
}

int ComputeSupervisor::ActiveCount() const {
  MutexLock l(mu_);
  return active_;
}

ComputeSupervisor::Lease::~Lease() { owner_->Release(compute_); }
sqlite3* ComputeSupervisor::Lease::db() const { return compute_->db.get(); }
sql::Sandbox& ComputeSupervisor::Lease::sandbox() const { return *compute_->sandbox; }
const std::string& ComputeSupervisor::Lease::key() const { return compute_->key; }

}  // namespace branchdb::server::compute
