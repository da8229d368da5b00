#include "tests/util/fault_injection_env.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

namespace branchdb::testing {
namespace {

std::string Normalize(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// Reads up to n bytes from the start of path through env.
Result<std::string> ReadPrefix(Env* env, const std::string& path, uint64_t n) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string out(n, '\0');
  auto got = (*file)->Read(0, n, out.data());
  if (!got.ok()) return got.status();
  out.resize(*got);
  return out;
}

// Reads n bytes at offset of path through env (fewer at its end).
Result<std::string> ReadRange(Env* env, const std::string& path, uint64_t offset, uint64_t n) {
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string out(n, '\0');
  auto got = (*file)->Read(offset, n, out.data());
  if (!got.ok()) return got.status();
  out.resize(*got);
  return out;
}

Status WriteWhole(Env* env, const std::string& path, std::string_view contents, bool sync) {
  auto file = env->NewWritableFile(path, Env::OpenMode::kTruncate);
  if (!file.ok()) return file.status();
  BRANCHDB_RETURN_IF_ERROR((*file)->Append(contents));
  if (sync) BRANCHDB_RETURN_IF_ERROR((*file)->Sync());
  return (*file)->Close();
}

}  // namespace

std::string_view OpKindName(uint32_t kind) {
  switch (kind) {
    case kOpNewWritableFile: return "NewWritableFile";
    case kOpAppend: return "Append";
    case kOpSync: return "Sync";
    case kOpClose: return "Close";
    case kOpNewRandomAccessFile: return "NewRandomAccessFile";
    case kOpRead: return "Read";
    case kOpRename: return "RenameFile";
    case kOpDelete: return "DeleteFile";
    case kOpTruncate: return "TruncateFile";
    case kOpCreateDirs: return "CreateDirs";
    case kOpDeleteDir: return "DeleteDir";
    case kOpSyncDir: return "SyncDir";
    case kOpGetChildren: return "GetChildren";
    case kOpGetFileSize: return "GetFileSize";
    case kOpLockFile: return "LockFile";
    default: return "?";
  }
}

std::pair<std::string, std::string> SplitPath(const std::string& path) {
  std::string p = Normalize(path);
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return {".", p};
  if (slash == 0) return {"/", p.substr(1)};
  return {p.substr(0, slash), p.substr(slash + 1)};
}

// --- Wrapped files -------------------------------------------------------------

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionEnv* env, std::unique_ptr<WritableFile> target,
                    FaultInjectionEnv::InodeId id, std::string path)
      : env_(env), target_(std::move(target)), id_(id), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    std::lock_guard<std::recursive_mutex> lock(env_->mu_);
    Status fault = env_->MaybeFail(kOpAppend, path_);
    if (!fault.ok()) {
      if (env_->fault_.has_value() && env_->fault_->partial_write && data.size() > 1) {
        std::string_view half = data.substr(0, data.size() / 2);
        const uint64_t offset = target_->Size();
        if (env_->SaveOverwritten(id_, offset, half.size()).ok() && target_->Append(half).ok()) {
          env_->OnWritten(id_, offset + half.size());
        }
      }
      return fault;
    }
    const uint64_t offset = target_->Size();
    BRANCHDB_RETURN_IF_ERROR(env_->SaveOverwritten(id_, offset, data.size()));
    Status s = target_->Append(data);
    if (s.ok()) env_->OnWritten(id_, offset + data.size());
    return s;
  }

  Status ExtendWithZeros(uint64_t end) override {
    std::lock_guard<std::recursive_mutex> lock(env_->mu_);
    BRANCHDB_RETURN_IF_ERROR(env_->MaybeFail(kOpAppend, path_));
    Status s = target_->ExtendWithZeros(end);
    if (s.ok()) env_->OnWritten(id_, end);
    return s;
  }

  Status Sync() override {
    if (env_->skip_file_syncs_.load()) return Status::OK();
    if (int64_t delay = env_->sync_delay_micros_.load(); delay > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay));  // outside the lock
    }
    std::lock_guard<std::recursive_mutex> lock(env_->mu_);
    Status s = env_->MaybeFail(kOpSync, path_);
    if (s.ok()) {
      env_->RunBeforeSyncCallback(kOpSync, path_);
      s = target_->Sync();
    }
    if (!s.ok()) {
      Status drop = env_->FileSyncFailed(id_);
      (void)drop;  // the sync's own error is what the caller must see
      return s;
    }
    env_->OnSynced(id_);
    env_->RunSyncCallback(kOpSync, path_);
    return Status::OK();
  }

  Status Close() override {
    std::lock_guard<std::recursive_mutex> lock(env_->mu_);
    if (closed_) return Status::OK();
    closed_ = true;
    Status fault = env_->MaybeFail(kOpClose, path_);
    Status s = target_->Close();  // the descriptor is gone even when close() fails
    return fault.ok() ? s : fault;
  }

  uint64_t Size() const override { return target_->Size(); }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<WritableFile> target_;
  const FaultInjectionEnv::InodeId id_;
  const std::string path_;
  bool closed_ = false;
};

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultInjectionEnv* env, std::unique_ptr<RandomAccessFile> target,
                        std::string path)
      : env_(env), target_(std::move(target)), path_(std::move(path)) {}

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    {
      std::lock_guard<std::recursive_mutex> lock(env_->mu_);
      Status fault = env_->MaybeFail(kOpRead, path_);
      if (!fault.ok()) return fault;
    }
    auto read = target_->Read(offset, n, scratch);
    if (read.ok()) env_->bytes_read_.fetch_add(*read);
    return read;
  }

 private:
  FaultInjectionEnv* const env_;
  std::unique_ptr<RandomAccessFile> target_;
  const std::string path_;
};

// --- Faults --------------------------------------------------------------------

FaultInjectionEnv::FaultInjectionEnv(Env* target) : EnvWrapper(target) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::FailNth(const FaultSpec& spec) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  fault_ = spec;
  op_count_ = 0;
  faults_fired_ = 0;
  fired_kind_ = 0;
  fired_desc_.clear();
}

void FaultInjectionEnv::ClearFault() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  fault_.reset();
}

bool FaultInjectionEnv::FaultFired() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return faults_fired_ > 0;
}

uint64_t FaultInjectionEnv::FaultsFired() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return faults_fired_;
}

uint32_t FaultInjectionEnv::FiredOpKind() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return fired_kind_;
}

std::string FaultInjectionEnv::FiredOpDescription() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return fired_desc_;
}

uint64_t FaultInjectionEnv::OpCount() const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  return op_count_;
}

void FaultInjectionEnv::ResetCounter() {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  op_count_ = 0;
}

void FaultInjectionEnv::SetDropUnsyncedOnSyncFailure(bool drop) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  drop_unsynced_on_sync_failure_ = drop;
}

void FaultInjectionEnv::SetSyncCallback(
    std::function<void(uint32_t kind, const std::string& path)> callback) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  sync_callback_ = std::move(callback);
}

uint64_t FaultInjectionEnv::CallCount(uint32_t mask) const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  uint64_t n = 0;
  for (int bit = 0; bit < 32; ++bit) {
    if (mask & (1u << bit)) n += calls_[bit];
  }
  return n;
}

Status FaultInjectionEnv::MaybeFail(uint32_t kind, const std::string& path) {
  if (in_callback_) return Status::OK();
  ++calls_[std::countr_zero(kind)];
  if (!fault_.has_value()) {
    ++op_count_;
    return Status::OK();
  }
  if ((kind & fault_->op_mask) == 0) return Status::OK();
  if (fault_->only_if && !fault_->only_if(kind, path)) return Status::OK();
  ++op_count_;
  const bool fail = op_count_ == fault_->nth || (fault_->sticky && op_count_ > fault_->nth);
  if (!fail) return Status::OK();
  std::string what = std::string(OpKindName(kind)) + " " + path + " (op #" +
                     std::to_string(op_count_) + ")";
  if (faults_fired_++ == 0) {
    fired_kind_ = kind;
    fired_desc_ = what;
  }
  if (fault_->type == FaultType::kNoSpace) {
    return Status::ResourceExhausted("injected ENOSPC: " + what, "disk_full");
  }
  return Status::IOError("injected EIO: " + what);
}

void FaultInjectionEnv::SetBeforeSyncCallback(
    std::function<void(uint32_t kind, const std::string& path)> callback) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  before_sync_callback_ = std::move(callback);
}

void FaultInjectionEnv::RunBeforeSyncCallback(uint32_t kind, const std::string& path) {
  if (!before_sync_callback_ || in_callback_) return;
  in_callback_ = true;
  before_sync_callback_(kind, path);
  in_callback_ = false;
}

void FaultInjectionEnv::RunSyncCallback(uint32_t kind, const std::string& path) {
  if (!sync_callback_ || in_callback_) return;
  in_callback_ = true;
  sync_callback_(kind, path);
  in_callback_ = false;
}

// --- Durability tracking ---------------------------------------------------------

FaultInjectionEnv::InodeId FaultInjectionEnv::LiveInode(const std::string& path) const {
  auto [dir, name] = SplitPath(path);
  auto d = dirs_.find(dir);
  if (d == dirs_.end()) return 0;
  auto it = d->second.live.find(name);
  return it == d->second.live.end() ? 0 : it->second;
}

FaultInjectionEnv::InodeId FaultInjectionEnv::Track(const std::string& path) {
  if (InodeId id = LiveInode(path); id != 0) return id;
  auto size = target()->GetFileSize(path);
  if (!size.ok()) return 0;
  auto [dir, name] = SplitPath(path);
  InodeId id = next_inode_++;
  Inode& inode = inodes_[id];
  inode.live_path = Normalize(path);
  inode.size = *size;
  inode.synced_size = *size;
  dirs_[dir].live[name] = id;
  dirs_[dir].durable[name] = id;
  return id;
}

bool FaultInjectionEnv::InDurableView(InodeId id) const {
  for (const auto& [dir, state] : dirs_) {
    for (const auto& [name, other] : state.durable) {
      if (other == id) return true;
    }
  }
  return false;
}

Status FaultInjectionEnv::SaveIfNeeded(InodeId id) {
  auto it = inodes_.find(id);
  if (it == inodes_.end() || it->second.saved.has_value() || !InDurableView(id)) {
    return Status::OK();
  }
  auto data = ReadPrefix(target(), it->second.live_path, it->second.synced_size);
  if (!data.ok()) return data.status();
  RestoreOverwritten(it->second, 0, &*data);
  it->second.saved = std::move(*data);
  return Status::OK();
}

void FaultInjectionEnv::CollectGarbage() {
  std::set<InodeId> referenced;
  for (const auto& [dir, state] : dirs_) {
    for (const auto& [name, id] : state.live) referenced.insert(id);
    for (const auto& [name, id] : state.durable) referenced.insert(id);
  }
  for (auto it = inodes_.begin(); it != inodes_.end();) {
    // Unlinked and unreferenced inodes may still have an open writer; their
    // writes are then ignored (OnWritten checks existence).
    if (referenced.count(it->first) == 0) {
      it = inodes_.erase(it);
    } else {
      ++it;
    }
  }
}

Status FaultInjectionEnv::SaveOverwritten(InodeId id, uint64_t offset, uint64_t n) {
  auto it = inodes_.find(id);
  if (it == inodes_.end() || it->second.live_path.empty()) return Status::OK();
  Inode& inode = it->second;
  const uint64_t stop = std::min(offset + n, inode.synced_size);
  uint64_t pos = offset;
  while (pos < stop) {
    auto next = inode.overwritten.upper_bound(pos);
    if (next != inode.overwritten.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second.size() > pos) {  // saved already
        pos = prev->first + prev->second.size();
        continue;
      }
    }
    const uint64_t until = next == inode.overwritten.end() ? stop : std::min(stop, next->first);
    auto old = ReadRange(target(), inode.live_path, pos, until - pos);
    if (!old.ok()) return old.status();
    if (old->size() != until - pos) return Status::IOError("short read of " + inode.live_path);
    inode.overwritten[pos] = std::move(*old);
    pos = until;
  }
  return Status::OK();
}

void FaultInjectionEnv::OnWritten(InodeId id, uint64_t end) {
  auto it = inodes_.find(id);
  if (it != inodes_.end()) it->second.size = std::max(it->second.size, end);
}

void FaultInjectionEnv::RestoreOverwritten(const Inode& inode, uint64_t keep_new,
                                           std::string* data) {
  for (const auto& [offset, old] : inode.overwritten) {
    const uint64_t kept = std::min<uint64_t>(keep_new, old.size());
    keep_new -= kept;
    if (offset + kept >= data->size()) continue;
    const uint64_t n = std::min<uint64_t>(old.size() - kept, data->size() - offset - kept);
    data->replace(offset + kept, n, old, kept, n);
  }
}

void FaultInjectionEnv::OnSynced(InodeId id) {
  auto it = inodes_.find(id);
  if (it == inodes_.end()) return;
  it->second.synced_size = it->second.size;
  it->second.overwritten.clear();
}

Status FaultInjectionEnv::FileSyncFailed(InodeId id) {
  if (!drop_unsynced_on_sync_failure_) return Status::OK();
  auto it = inodes_.find(id);
  if (it == inodes_.end() || it->second.live_path.empty()) return Status::OK();
  Inode& inode = it->second;
  inode.size = inode.synced_size;
  if (!inode.overwritten.empty()) {
    // The overwritten bytes are lost too: the file reads back as it was synced.
    auto data = ReadPrefix(target(), inode.live_path, inode.synced_size);
    if (!data.ok()) return data.status();
    RestoreOverwritten(inode, 0, &*data);
    inode.overwritten.clear();
    return WriteWhole(target(), inode.live_path, *data, /*sync=*/true);
  }
  return target()->TruncateFile(inode.live_path, inode.synced_size);
}

std::optional<uint64_t> FaultInjectionEnv::SyncedSize(const std::string& path) const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  InodeId id = LiveInode(path);
  if (id == 0) return std::nullopt;
  return inodes_.at(id).synced_size;
}

std::optional<bool> FaultInjectionEnv::EntryDurable(const std::string& path) const {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  InodeId id = LiveInode(path);
  if (id == 0) return std::nullopt;
  auto [dir, name] = SplitPath(path);
  const auto& durable = dirs_.at(dir).durable;
  auto it = durable.find(name);
  return it != durable.end() && it->second == id;
}

// --- Env operations ----------------------------------------------------------------

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path,
                                                                         OpenMode mode) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpNewWritableFile, path));
  InodeId id = Track(path);  // an existing file
  auto file = target()->NewWritableFile(path, mode);
  if (!file.ok()) return file.status();
  if (id == 0) {
    auto [dir, name] = SplitPath(path);
    id = next_inode_++;
    inodes_[id].live_path = Normalize(path);
    dirs_[dir].live[name] = id;  // not durable until SyncDir
  } else if (mode == OpenMode::kTruncate) {
    // Pessimistic: the old contents may be gone after a crash.
    inodes_[id].size = 0;
    inodes_[id].synced_size = 0;
    inodes_[id].overwritten.clear();
  }
  return std::unique_ptr<WritableFile>(
      new FaultWritableFile(this, std::move(*file), id, Normalize(path)));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::NewRandomAccessFile(
    const std::string& path) {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpNewRandomAccessFile, path));
  }
  auto file = target()->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(this, std::move(*file), path));
}

Result<std::vector<std::string>> FaultInjectionEnv::GetChildren(const std::string& dir) {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpGetChildren, dir));
  }
  return target()->GetChildren(dir);
}

Result<uint64_t> FaultInjectionEnv::GetFileSize(const std::string& path) {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpGetFileSize, path));
  }
  return target()->GetFileSize(path);
}

Status FaultInjectionEnv::DeleteFile(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpDelete, path));
  InodeId id = Track(path);
  if (id != 0) BRANCHDB_RETURN_IF_ERROR(SaveIfNeeded(id));
  BRANCHDB_RETURN_IF_ERROR(target()->DeleteFile(path));
  if (id != 0) {
    auto [dir, name] = SplitPath(path);
    dirs_[dir].live.erase(name);
    inodes_[id].live_path.clear();
    CollectGarbage();
  }
  return Status::OK();
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpRename, from + " -> " + to));
  InodeId from_id = Track(from);
  InodeId to_id = Track(to);
  if (to_id != 0 && to_id != from_id) BRANCHDB_RETURN_IF_ERROR(SaveIfNeeded(to_id));
  BRANCHDB_RETURN_IF_ERROR(target()->RenameFile(from, to));
  if (from_id == 0 || from_id == to_id) return Status::OK();
  auto [from_dir, from_name] = SplitPath(from);
  auto [to_dir, to_name] = SplitPath(to);
  dirs_[from_dir].live.erase(from_name);
  dirs_[to_dir].live[to_name] = from_id;
  inodes_[from_id].live_path = Normalize(to);
  if (to_id != 0) inodes_[to_id].live_path.clear();
  CollectGarbage();
  return Status::OK();
}

Status FaultInjectionEnv::TruncateFile(const std::string& path, uint64_t size) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpTruncate, path));
  InodeId id = Track(path);
  BRANCHDB_RETURN_IF_ERROR(target()->TruncateFile(path, size));
  if (id != 0) {
    inodes_[id].size = size;
    inodes_[id].synced_size = size;  // Env::TruncateFile syncs
    inodes_[id].overwritten.clear();
  }
  RunSyncCallback(kOpTruncate, path);
  return Status::OK();
}

Status FaultInjectionEnv::CreateDirs(const std::string& dir) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpCreateDirs, dir));
  return target()->CreateDirs(dir);
}

Status FaultInjectionEnv::DeleteDir(const std::string& dir) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpDeleteDir, dir));
  return target()->DeleteDir(dir);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  if (skip_dir_syncs_.load()) return Status::OK();
  std::lock_guard<std::recursive_mutex> lock(mu_);
  BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpSyncDir, dir));
  RunBeforeSyncCallback(kOpSyncDir, dir);
  BRANCHDB_RETURN_IF_ERROR(target()->SyncDir(dir));
  auto it = dirs_.find(Normalize(dir));
  if (it != dirs_.end()) {
    it->second.durable = it->second.live;
    CollectGarbage();
  }
  RunSyncCallback(kOpSyncDir, dir);
  return Status::OK();
}

Result<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    BRANCHDB_RETURN_IF_ERROR(MaybeFail(kOpLockFile, path));
  }
  return target()->LockFile(path);
}

// --- Crash images -----------------------------------------------------------------

Result<std::string> FaultInjectionEnv::CrashContents(InodeId id, const CrashOptions& options,
                                                     std::mt19937_64* rng) {
  const Inode& inode = inodes_.at(id);
  uint64_t keep = inode.synced_size;
  if (inode.size > inode.synced_size) {
    if (options.tail == TailMode::kKeepAll) {
      keep = inode.size;
    } else if (options.tail == TailMode::kTornTail) {
      keep = inode.synced_size + (*rng)() % (inode.size - inode.synced_size + 1);
    }
  }
  uint64_t garbage = 0;
  if (options.tail == TailMode::kGarbageTail && inode.size > inode.synced_size) {
    keep = inode.synced_size + (*rng)() % (inode.size - inode.synced_size + 1);
    garbage = (*rng)() % (inode.size - keep + 1);
  }
  std::string data;
  if (inode.live_path.empty()) {
    data = inode.saved.value_or(std::string());
    if (data.size() > keep) data.resize(keep);
  } else {
    auto read = ReadPrefix(target(), inode.live_path, keep);
    if (!read.ok()) return read.status();
    data = std::move(*read);
    // Unsynced overwrites of durable bytes: undone, kept, or torn (the first
    // of them kept, in offset order).
    uint64_t overwritten = 0;
    for (const auto& [offset, old] : inode.overwritten) overwritten += old.size();
    uint64_t keep_new = 0;
    if (options.tail == TailMode::kKeepAll) {
      keep_new = overwritten;
    } else if (options.tail != TailMode::kDropUnsynced && overwritten > 0) {
      keep_new = (*rng)() % (overwritten + 1);
    }
    RestoreOverwritten(inode, keep_new, &data);
  }
  if (garbage > 0) {
    const bool zeros = (*rng)() % 2 == 0;
    for (uint64_t i = 0; i < garbage; ++i) {
      data.push_back(zeros ? '\0' : static_cast<char>((*rng)() & 0xff));
    }
  }
  return data;
}

namespace {

// The names a crash leaves in one directory, and the inode behind each.
template <typename DirState>
std::map<std::string, uint64_t> CrashView(const DirState& state, const CrashOptions& options) {
  std::map<std::string, uint64_t> out;
  for (const auto& [name, id] : state.live) {
    auto d = state.durable.find(name);
    const bool durable_here = d != state.durable.end() && d->second == id;
    if (durable_here || !options.drop_unsynced_creations) out[name] = id;
  }
  if (options.undo_unsynced_renames_and_deletes) {
    for (const auto& [name, id] : state.durable) {
      if (out.count(name) == 0) out[name] = id;
    }
  }
  return out;
}

}  // namespace

Status FaultInjectionEnv::SimulateCrash(const CrashOptions& options) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::mt19937_64 rng(options.seed);
  struct Planned {
    std::string path;
    std::string contents;
  };
  std::vector<Planned> writes;
  std::vector<std::string> removals;
  for (const auto& [dir, state] : dirs_) {
    std::map<std::string, uint64_t> view = CrashView(state, options);
    for (const auto& [name, id] : view) {
      auto contents = CrashContents(id, options, &rng);
      if (!contents.ok()) return contents.status().WithContext("crash image of " + name);
      writes.push_back({JoinPath(dir, name), std::move(*contents)});
    }
    std::set<std::string> names;
    for (const auto& [name, id] : state.live) names.insert(name);
    for (const auto& [name, id] : state.durable) names.insert(name);
    for (const auto& name : names) {
      if (view.count(name) == 0) removals.push_back(JoinPath(dir, name));
    }
  }
  for (const auto& path : removals) {
    if (target()->FileExists(path)) BRANCHDB_RETURN_IF_ERROR(target()->DeleteFile(path));
  }
  for (const auto& w : writes) {
    BRANCHDB_RETURN_IF_ERROR(WriteWhole(target(), w.path, w.contents, /*sync=*/true));
  }
  for (const auto& [dir, state] : dirs_) BRANCHDB_RETURN_IF_ERROR(target()->SyncDir(dir));
  // Everything on disk is now durable; forget the history.
  dirs_.clear();
  inodes_.clear();
  return Status::OK();
}

Status FaultInjectionEnv::SnapshotCrashState(const std::string& src_dir,
                                             const std::string& dest_dir,
                                             const CrashOptions& options) {
  std::lock_guard<std::recursive_mutex> lock(mu_);
  std::mt19937_64 rng(options.seed);
  BRANCHDB_RETURN_IF_ERROR(target()->CreateDirs(dest_dir));
  auto children = target()->GetChildren(src_dir);
  if (!children.ok() && children.status().IsNotFound()) return Status::OK();  // nothing yet
  if (!children.ok()) return children.status();
  const std::string dir = Normalize(src_dir);
  static const DirState kEmpty;
  auto found = dirs_.find(dir);
  const DirState& state = found == dirs_.end() ? kEmpty : found->second;
  std::map<std::string, uint64_t> view = CrashView(state, options);
  for (const auto& name : *children) {
    if (state.live.count(name) != 0 || state.durable.count(name) != 0) continue;
    const std::string path = JoinPath(src_dir, name);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    auto size = target()->GetFileSize(path);
    if (!size.ok()) return size.status();
    auto data = ReadPrefix(target(), path, *size);  // untracked: assumed durable
    if (!data.ok()) return data.status();
    BRANCHDB_RETURN_IF_ERROR(WriteWhole(target(), JoinPath(dest_dir, name), *data, false));
  }
  for (const auto& [name, id] : view) {
    auto contents = CrashContents(id, options, &rng);
    if (!contents.ok()) return contents.status().WithContext("crash image of " + name);
    BRANCHDB_RETURN_IF_ERROR(WriteWhole(target(), JoinPath(dest_dir, name), *contents, false));
  }
  return Status::OK();
}

}  // namespace branchdb::testing
