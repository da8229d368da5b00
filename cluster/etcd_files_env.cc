// See etcd_files_env.h.
#include "cluster/etcd_files_env.h"

#include <cstring>
#include <set>

namespace branchdb::cluster {
namespace {

// A file being written: its bytes reach the Env (and etcd) at Close.
class MemoryWritableFile final : public WritableFile {
 public:
  MemoryWritableFile(EtcdFilesEnv* env, std::string key, std::string initial)
      : env_(env), key_(std::move(key)), data_(std::move(initial)) {}
  ~MemoryWritableFile() override { (void)Close(); }
  Status Append(std::string_view data) override {
    data_.append(data);
    return Status::OK();
  }
  Status Sync() override { return Status::OK(); }  // durable once in etcd
  Status Close() override {
    if (!closed_) {
      closed_ = true;
      return env_->Closed(key_, std::move(data_));
    }
    return Status::OK();
  }
  uint64_t Size() const override { return data_.size(); }

 private:
  EtcdFilesEnv* const env_;
  const std::string key_;
  std::string data_;
  bool closed_ = false;
};

class MemoryRandomAccessFile final : public RandomAccessFile {
 public:
  explicit MemoryRandomAccessFile(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (offset >= data_.size()) return size_t{0};
    const size_t len = std::min<size_t>(n, data_.size() - offset);
    std::memcpy(scratch, data_.data() + offset, len);
    return len;
  }

 private:
  const std::string data_;
};

class NoLock final : public FileLock {};

}  // namespace

EtcdFilesEnv::EtcdFilesEnv(Env* target, EtcdClient* etcd, std::string dir, std::string key_prefix)
    : EnvWrapper(target), etcd_(etcd), dir_(std::move(dir)), key_prefix_(std::move(key_prefix)) {}

std::optional<std::string> EtcdFilesEnv::KeyOf(const std::string& path) const {
  if (path == dir_) return key_prefix_;
  if (path.size() > dir_.size() && path.compare(0, dir_.size(), dir_) == 0 &&
      path[dir_.size()] == '/') {
    return key_prefix_ + path.substr(dir_.size() + 1);
  }
  return std::nullopt;
}

Result<std::optional<std::string>> EtcdFilesEnv::Read(const std::string& key) {
  {
    MutexLock l(mu_);
    auto it = pending_.find(key);
    if (it != pending_.end()) return std::optional<std::string>(it->second);
  }
  auto kv = etcd_->Get(key);
  if (!kv.ok()) return kv.status();
  MutexLock l(mu_);
  seen_[key] = *kv ? (*kv)->mod_revision : 0;
  if (!*kv) return std::optional<std::string>();
  return std::optional<std::string>((*kv)->value);
}

Status EtcdFilesEnv::PutIfUnchanged(const std::string& key, const std::string& value,
                                    const std::string& also_delete) {
  int64_t seen = 0;
  {
    MutexLock l(mu_);
    auto it = seen_.find(key);
    if (it != seen_.end()) seen = it->second;
  }
  std::vector<TxnOp> ops = {{TxnOp::Kind::kPut, key, value, 0, false}};
  if (!also_delete.empty()) ops.push_back({TxnOp::Kind::kDelete, also_delete, "", 0, false});
  auto txn = etcd_->Txn({{key, Compare::Target::kModRevision, Compare::Op::kEqual, seen, ""}}, ops,
                        {});
  if (!txn.ok()) return txn.status();
  if (!txn->succeeded) {
    return Status::Conflict(key + " was changed by another node since it was read; read it again",
                            "etcd_file_changed");
  }
  MutexLock l(mu_);
  seen_[key] = txn->revision;  // a transaction's writes all get its revision
  return Status::OK();
}

Status EtcdFilesEnv::Closed(const std::string& key, std::string contents) {
  if (key.size() >= 4 && key.compare(key.size() - 4, 4, ".tmp") == 0) {
    MutexLock l(mu_);
    pending_[key] = std::move(contents);  // put by the rename that follows
    return Status::OK();
  }
  return PutIfUnchanged(key, contents, "");
}

Result<std::unique_ptr<WritableFile>> EtcdFilesEnv::NewWritableFile(const std::string& path,
                                                                    OpenMode mode) {
  auto key = KeyOf(path);
  if (!key) return target()->NewWritableFile(path, mode);
  std::string initial;
  if (mode == OpenMode::kAppend) {
    auto old = Read(*key);
    if (!old.ok()) return old.status();
    initial = old->value_or("");
  }
  return std::unique_ptr<WritableFile>(new MemoryWritableFile(this, *key, std::move(initial)));
}

Result<std::unique_ptr<RandomAccessFile>> EtcdFilesEnv::NewRandomAccessFile(
    const std::string& path) {
  auto key = KeyOf(path);
  if (!key) return target()->NewRandomAccessFile(path);
  auto data = Read(*key);
  if (!data.ok()) return data.status();
  if (!*data) return Status::NotFound(path + ": no such file (in etcd)");
  return std::unique_ptr<RandomAccessFile>(new MemoryRandomAccessFile(std::move(**data)));
}

bool EtcdFilesEnv::FileExists(const std::string& path) {
  auto key = KeyOf(path);
  if (!key) return target()->FileExists(path);
  if (*key == key_prefix_) return true;  // the directory itself
  auto data = Read(*key);
  // An unreachable etcd reads as "exists": the read that follows fails loudly
  // instead of state being created anew over the shared one.
  return !data.ok() || data->has_value();
}

Result<std::vector<std::string>> EtcdFilesEnv::GetChildren(const std::string& dir) {
  auto key = KeyOf(dir);
  if (!key) return target()->GetChildren(dir);
  std::string prefix = *key;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  auto range = etcd_->RangePrefix(prefix);
  if (!range.ok()) return range.status();
  std::set<std::string> names;
  for (const KeyValue& kv : range->kvs) {
    std::string rest = kv.key.substr(prefix.size());
    names.insert(rest.substr(0, rest.find('/')));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<uint64_t> EtcdFilesEnv::GetFileSize(const std::string& path) {
  auto key = KeyOf(path);
  if (!key) return target()->GetFileSize(path);
  auto data = Read(*key);
  if (!data.ok()) return data.status();
  if (!*data) return Status::NotFound(path + ": no such file (in etcd)");
  return static_cast<uint64_t>((*data)->size());
}

Status EtcdFilesEnv::DeleteFile(const std::string& path) {
  auto key = KeyOf(path);
  if (!key) return target()->DeleteFile(path);
  {
    MutexLock l(mu_);
    if (pending_.erase(*key)) return Status::OK();
  }
  auto deleted = etcd_->Delete(*key);
  if (!deleted.ok()) return deleted.status();
  MutexLock l(mu_);
  seen_[*key] = 0;
  return Status::OK();
}

Status EtcdFilesEnv::RenameFile(const std::string& from, const std::string& to) {
  auto from_key = KeyOf(from), to_key = KeyOf(to);
  if (!from_key && !to_key) return target()->RenameFile(from, to);
  if (!from_key || !to_key) {
    return Status::InvalidArgument("cannot rename between etcd and local files: " + from);
  }
  auto data = Read(*from_key);
  if (!data.ok()) return data.status();
  if (!*data) return Status::NotFound(from + ": no such file (in etcd)");
  // One transaction: the new name is written (if unchanged since read) and
  // the old one (if it was ever put) removed together.
  Status put = PutIfUnchanged(*to_key, **data, *from_key);
  MutexLock l(mu_);
  pending_.erase(*from_key);
  return put;
}

Status EtcdFilesEnv::TruncateFile(const std::string& path, uint64_t size) {
  auto key = KeyOf(path);
  if (!key) return target()->TruncateFile(path, size);
  auto data = Read(*key);
  if (!data.ok()) return data.status();
  std::string value = data->value_or("");
  value.resize(size, '\0');
  auto put = etcd_->Put(*key, value);
  if (!put.ok()) return put.status();
  MutexLock l(mu_);
  seen_[*key] = *put;
  return Status::OK();
}

Status EtcdFilesEnv::CreateDirs(const std::string& dir) {
  return KeyOf(dir) ? Status::OK() : target()->CreateDirs(dir);
}
Status EtcdFilesEnv::DeleteDir(const std::string& dir) {
  return KeyOf(dir) ? Status::OK() : target()->DeleteDir(dir);
}
Status EtcdFilesEnv::SyncDir(const std::string& dir) {
  return KeyOf(dir) ? Status::OK() : target()->SyncDir(dir);
}
Status EtcdFilesEnv::SetPermissions(const std::string& path, uint32_t mode) {
  return KeyOf(path) ? Status::OK() : target()->SetPermissions(path, mode);
}
Result<std::unique_ptr<FileLock>> EtcdFilesEnv::LockFile(const std::string& path) {
  if (KeyOf(path)) return std::unique_ptr<FileLock>(new NoLock());
  return target()->LockFile(path);
}

}  // namespace branchdb::cluster
