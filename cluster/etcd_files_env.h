// EtcdFilesEnv: an Env whose files under one directory live in etcd, one key
// per file (PREFIX + path relative to the directory), so that every node of a
// cluster reads and writes the same ones; every other path goes to the
// wrapped Env. The server gives it to the auth service, whose state
// (<data_dir>/auth/: clients, signing keys, revocations) is thereby shared by
// all nodes (docs/cluster.md).
//
// Under the directory: a file written through NewWritableFile is kept in
// memory; a "*.tmp" file reaches etcd when it is renamed (Env::WriteFileAtomic's
// temp file + rename: one etcd transaction), any other at Close.
//
// Lost updates: a file is replaced only if etcd still has the version this
// Env last read or wrote (a transaction on its mod_revision; absent if it
// was absent). Otherwise another node changed it since: the write fails with
// Conflict ("etcd_file_changed") and etcd keeps the other node's version;
// the caller reads the file again (AuthService::Reload) before retrying.
// Deletes and truncations are not conditioned. Directories are implicit
// (CreateDirs, SyncDir, SetPermissions, LockFile do nothing; GetChildren
// lists the names one level below). Reads go to etcd every time.
//
// Thread-safety: as safe as the wrapped Env; the pending temp files are
// behind a mutex.
#ifndef BRANCHDB_CLUSTER_ETCD_FILES_ENV_H_
#define BRANCHDB_CLUSTER_ETCD_FILES_ENV_H_

#include <map>
#include <optional>
#include <memory>
#include <string>

#include "base/env.h"
#include "base/mutex.h"
#include "cluster/etcd_client.h"

namespace branchdb::cluster {

class EtcdFilesEnv final : public EnvWrapper {
 public:
  // Files under dir (a path as the caller spells it) go to etcd keys
  // key_prefix + relative path. etcd (not owned) must outlive this Env.
  EtcdFilesEnv(Env* target, EtcdClient* etcd, std::string dir, std::string key_prefix);

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  bool FileExists(const std::string& path) override;
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Result<uint64_t> GetFileSize(const std::string& path) override;
  Status DeleteFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;
  Status CreateDirs(const std::string& dir) override;
  Status DeleteDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Status SetPermissions(const std::string& path, uint32_t mode) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

  // Called by the in-memory files (etcd_files_env.cc) when closed.
  Status Closed(const std::string& key, std::string contents);

 private:
  // The etcd key of path, or nullopt when path is not under dir_.
  std::optional<std::string> KeyOf(const std::string& path) const;
  Result<std::optional<std::string>> Read(const std::string& key);
  // Puts value at key if etcd has the revision of key this Env last saw;
  // deletes also_delete ("": nothing) in the same transaction.
  Status PutIfUnchanged(const std::string& key, const std::string& value,
                        const std::string& also_delete);

  EtcdClient* const etcd_;
  const std::string dir_;
  const std::string key_prefix_;
  Mutex mu_;
  std::map<std::string, std::string> pending_ GUARDED_BY(mu_);  // closed, not yet renamed
  // The mod_revision of each key when this Env last read or wrote it (0: absent).
  std::map<std::string, int64_t> seen_ GUARDED_BY(mu_);
};

}  // namespace branchdb::cluster

#endif  // BRANCHDB_CLUSTER_ETCD_FILES_ENV_H_
