// StorePool and PooledStore: lazily opened, idle-closed, self-reopening page
// stores (storage/store_pool.h).
#include "storage/store_pool.h"

#include <algorithm>
#include <vector>

#include "base/process.h"
#include "storage/log_format.h"

namespace branchdb::storage {
namespace {

bool StoppedByFsync(const Status& health) {
  return !health.ok() && health.reason() != "disk_full";
}

}  // namespace

// --- PooledStore ---------------------------------------------------------------

PooledStore::PooledStore(StorePool* pool, const PageStoreOptions& options, std::string dir)
    : pool_(pool), options_(options), env_(options.env), dir_(std::move(dir)) {
  last_use_micros_.store(NowMicros());
}

PooledStore::~PooledStore() {
  pool_->Unregister(this);
  WriterLock x(mu_);
  CloseLocked();
}

int64_t PooledStore::NowMicros() const { return env_->GetClock()->NowMonotonicNanos() / 1000; }

bool PooledStore::IsOpen() const {
  ReaderLock l(mu_);
  return store_ != nullptr;
}

Status PooledStore::OpenNow() {
  auto use = Acquire(false);
  return use.ok() ? Status::OK() : use.status();
}

void PooledStore::Retire(Status why) {
  {
    MutexLock l(retire_mu_);
    if (retired()) return;
    retired_status_ = std::move(why);
    retired_.store(true, std::memory_order_release);
  }
  TryClose();  // a call in the store keeps it open until the last owner goes
}

bool PooledStore::TryClose(int64_t last_use_micros) {
  if (!mu_.TryLock()) return false;
  WriterLock x(mu_, kAdoptLock);
  if (store_ == nullptr) return false;
  if (last_use_micros_.load() > last_use_micros) return false;
  if (StoppedByFsync(store_->Health())) return false;  // fail-stop: keeps refusing
  CloseLocked();
  return true;
}

void PooledStore::CloseLocked() const {
  if (store_ == nullptr) return;
  {
    MutexLock report(report_mu_);
    closed_durable_ = store_->DurableEnd();
  }
  store_.reset();
  pool_->open_count_--;
}

Status PooledStore::OpenLocked() const {
  BRANCHDB_RETURN_IF_ERROR(pool_->MakeRoom(this, pool_->options_.reserved_file_descriptors / 2));
  auto opened = PageStore::Open(options_, dir_);
  if (!opened.ok()) {
    const Status& s = opened.status();
    if (s.reason() == "disk_full") {
      return Status::ResourceExhausted(
          "disk full: the store cannot reopen yet; retry once space is freed", "disk_full");
    }
    if (s.IsCorruption()) {
      // The files fail their checks: nothing to retry until someone repairs
      // them. The message names the segment, not the directory (it reaches
      // API clients and /healthz).
      std::string why = s.message();
      const std::string context = "open page store " + dir_ + ": ";  // PageStore::Open's
      if (why.rfind(context, 0) == 0) why.erase(0, context.size());
      return Status::Unavailable("the project's store is damaged: " + why, "store_damaged");
    }
    return s;
  }
  store_ = std::move(*opened);
  pool_->open_count_++;
  return Status::OK();
}

bool PooledStore::NeedsReopenLocked() const {
  if (store_ == nullptr) return true;
  Status health = store_->Health();
  return health.reason() == "disk_full" &&
         NowMicros() - last_reopen_micros_ >= pool_->options_.disk_full_retry_micros;
}

Result<PooledStore::Use> PooledStore::Acquire(bool mutation) const {
  for (;;) {
    if (retired()) {
      MutexLock l(retire_mu_);
      return retired_status_;
    }
    if (std::optional<Use> use = UseIfOpen(mutation)) return std::move(*use);
    WriterLock x(mu_);
    if (store_ != nullptr && mutation && NeedsReopenLocked()) {
      // A full disk stopped its writes: recovery drops the half-written bytes.
      last_reopen_micros_ = NowMicros();
      CloseLocked();
    }
    if (store_ == nullptr && retired()) continue;  // never reopened once retired
    if (store_ == nullptr) {
      // Still full: a reopen that found no room is not retried at once.
      if ((open_error_.reason() == "disk_full" || open_error_.reason() == "store_damaged") &&
          NowMicros() - last_reopen_micros_ < pool_->options_.disk_full_retry_micros) {
        return open_error_;
      }
      open_error_ = OpenLocked();
      {
        MutexLock r(report_mu_);
        reported_open_error_ = open_error_;
        if (store_ != nullptr) damage_ = store_->Damage();
      }
      if (!open_error_.ok()) {
        last_reopen_micros_ = NowMicros();
        return open_error_;
      }
    }
    // Then take it shared (another caller may close it in between: loop).
  }
}

// Not analysed: the lock leaves the function in the Use, where the analysis
// cannot follow it.
std::optional<PooledStore::Use> PooledStore::UseIfOpen(bool mutation) const
    NO_THREAD_SAFETY_ANALYSIS {
  std::shared_lock<SharedMutex> l(mu_);
  if (store_ == nullptr || (mutation && NeedsReopenLocked())) return std::nullopt;
  last_use_micros_.store(NowMicros());
  return Use{std::move(l), store_.get()};
}

Result<TimelineId> PooledStore::CreateTimeline(Lsn base, std::string_view annotation) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->CreateTimeline(base, annotation);
}

Result<TimelineId> PooledStore::CreateTimeline(TimelineId ancestor, Lsn ancestor_lsn,
                                               std::string_view annotation) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->CreateTimeline(ancestor, ancestor_lsn, annotation);
}

Result<Lsn> PooledStore::ResetTimeline(TimelineId t, Lsn expected_head, Lsn base,
                                       std::string_view annotation) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->ResetTimeline(t, expected_head, base, annotation);
}

Status PooledStore::DropTimeline(TimelineId t) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->DropTimeline(t);
}

Result<TimelineInfo> PooledStore::GetTimeline(TimelineId t) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->GetTimeline(t);
}

std::vector<TimelineInfo> PooledStore::ListTimelines() const {
  auto list = ListTimelinesOrError();
  return list.ok() ? std::move(*list) : std::vector<TimelineInfo>();
}

Result<std::vector<TimelineInfo>> PooledStore::ListTimelinesOrError() const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ListTimelines();
}

Result<Lsn> PooledStore::Head(TimelineId t) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->Head(t);
}

Result<Lsn> PooledStore::Commit(TimelineId t, Lsn expected_head,
                                const std::vector<PageWrite>& pages, uint32_t db_size_pages,
                                std::string_view annotation, std::string_view payload) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->Commit(t, expected_head, pages, db_size_pages, annotation, payload);
}

Result<Lsn> PooledStore::CommitNoWait(TimelineId t, Lsn expected_head,
                                      const std::vector<PageWrite>& pages,
                                      uint32_t db_size_pages, std::string_view annotation,
                                      std::string_view payload) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->CommitNoWait(t, expected_head, pages, db_size_pages, annotation, payload);
}

Status PooledStore::WaitDurable(Lsn lsn) {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->WaitDurable(lsn);
}

Result<Lsn> PooledStore::ResolveLsn(TimelineId t, Lsn lsn) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ResolveLsn(t, lsn);
}

Status PooledStore::ReadPage(TimelineId t, PageNo pgno, Lsn lsn, std::string* out) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ReadPage(t, pgno, lsn, out);
}

Status PooledStore::ReadPageAt(Lsn state_lsn, PageNo pgno, std::string* out) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ReadPageAt(state_lsn, pgno, out);
}

Status PooledStore::ReadPageInto(Lsn state_lsn, PageNo pgno, char* out) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ReadPageInto(state_lsn, pgno, out);
}

Result<uint32_t> PooledStore::DbSize(TimelineId t, Lsn lsn) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->DbSize(t, lsn);
}

Result<uint32_t> PooledStore::DbSizeAt(Lsn state_lsn) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->DbSizeAt(state_lsn);
}

Result<RecordInfo> PooledStore::GetRecord(Lsn lsn) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->GetRecord(lsn);
}

Result<std::string> PooledStore::ReadPayload(Lsn lsn) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ReadPayload(lsn);
}

Result<std::vector<RecordInfo>> PooledStore::History(TimelineId t, Lsn before,
                                                     size_t limit) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->History(t, before, limit);
}

Result<std::vector<RecordInfo>> PooledStore::OwnRecords(TimelineId t, Lsn before,
                                                        size_t limit) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->OwnRecords(t, before, limit);
}

Result<Lsn> PooledStore::LsnAt(TimelineId t, int64_t time_micros) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->LsnAt(t, time_micros);
}

Result<std::vector<PageNo>> PooledStore::ChangedPages(Lsn a, Lsn b) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->ChangedPages(a, b);
}

Result<GcStats> PooledStore::Gc(const GcOptions& options) {
  auto use = Acquire(true);
  if (!use.ok()) return use.status();
  return use->store->Gc(options);
}

Result<SpaceUsage> PooledStore::Usage(TimelineId t) const {
  auto use = Acquire(false);
  if (!use.ok()) return use.status();
  return use->store->Usage(t);
}

uint64_t PooledStore::DiskBytes() const {
  {
    ReaderLock l(mu_);
    if (store_ != nullptr) return store_->DiskBytes();
  }
  auto names = env_->GetChildren(dir_);
  if (!names.ok()) return 0;
  uint64_t bytes = 0;
  for (const std::string& name : *names) {
    uint64_t number = 0;
    if (!internal::ParseSegmentFileName(name, &number)) continue;
    auto size = env_->GetFileSize(JoinPath(dir_, name));
    if (size.ok()) bytes += *size;
  }
  return bytes;
}

Status PooledStore::Health() const {
  ReaderLock l(mu_);
  return store_ != nullptr ? store_->Health() : Status::OK();
}

std::vector<std::string> PooledStore::Damage() const {
  MutexLock r(report_mu_);
  return damage_;
}

Status PooledStore::OpenError() const {
  MutexLock r(report_mu_);
  return reported_open_error_;
}

uint64_t PooledStore::PayloadBytes(TimelineId t) const {
  auto use = Acquire(false);
  if (!use.ok()) return 0;
  return use->store->PayloadBytes(t);
}

uint64_t PooledStore::RecordMetadataBytes() const {
  ReaderLock l(mu_);
  return store_ != nullptr ? store_->RecordMetadataBytes() : 0;
}

StoreStats PooledStore::Stats() const {
  ReaderLock l(mu_);
  return store_ != nullptr ? store_->Stats() : StoreStats{};
}

Lsn PooledStore::LastLsn() const {
  auto use = Acquire(false);
  if (!use.ok()) return 0;
  return use->store->LastLsn();
}

DurablePoint PooledStore::DurableEnd() const {
  ReaderLock l(mu_);  // not a use: a closed store stays closed, an idle one idle
  if (store_ != nullptr) return store_->DurableEnd();
  MutexLock report(report_mu_);
  return closed_durable_;
}

// --- StorePool -------------------------------------------------------------------

StorePool::StorePool(const StorePoolOptions& options)
    : options_(options), env_(options.env != nullptr ? options.env : Env::Default()) {}

StorePool::~StorePool() = default;

std::unique_ptr<PooledStore> StorePool::Add(const PageStoreOptions& options,
                                            const std::string& dir) {
  PageStoreOptions o = options;
  if (o.env == nullptr) o.env = env_;
  std::unique_ptr<PooledStore> store(new PooledStore(this, o, dir));
  Register(store.get());
  return store;
}

void StorePool::Register(PooledStore* store) {
  MutexLock l(mu_);
  stores_.insert(store);
}

void StorePool::Unregister(PooledStore* store) {
  MutexLock l(mu_);
  stores_.erase(store);
}

size_t StorePool::CloseIdle(int64_t idle_micros) {
  const int64_t cutoff = env_->GetClock()->NowMonotonicNanos() / 1000 - idle_micros;
  MutexLock l(mu_);
  size_t closed = 0;
  for (PooledStore* s : stores_) closed += s->TryClose(cutoff) ? 1 : 0;
  return closed;
}

Status StorePool::MakeRoom(const PooledStore* opening, uint64_t reserve) {
  const uint64_t need = reserve + kStoreFileDescriptors;
  auto enough = [&](FileDescriptorUsage* u) {
    auto usage = GetFileDescriptorUsage();
    if (!usage.ok() || usage->limit == 0) return true;  // nothing known: no limit to keep
    *u = *usage;
    return u->open + need <= u->limit;
  };
  FileDescriptorUsage usage;
  if (enough(&usage)) return Status::OK();
  MutexLock l(mu_);
  std::vector<std::pair<int64_t, PooledStore*>> lru;
  for (PooledStore* s : stores_) {
    if (s != opening) lru.emplace_back(s->last_use_micros_.load(), s);
  }
  std::sort(lru.begin(), lru.end());
  for (const auto& [last_use, s] : lru) {
    if (s->TryClose() && enough(&usage)) return Status::OK();
  }
  return Status::Unavailable(
      "too many open files: " + std::to_string(usage.open) + " of the process's limit of " +
          std::to_string(usage.limit) + " file descriptors are in use and " +
          std::to_string(need) + " must stay free; no idle project store is left to close " +
          "(retry later, or raise the limit: ulimit -n / systemd LimitNOFILE)",
      "too_many_open_files");
}

}  // namespace branchdb::storage
