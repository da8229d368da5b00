// Env: every file-system operation and every clock read of branchdb goes through
// an Env, so that tests can inject faults (EIO, ENOSPC, torn or dropped unsynced
// writes) and move time. No code outside base/env*.cc calls open(), fsync() or
// std::chrono::system_clock::now().
//
// Env::Default() is the POSIX implementation. EnvWrapper forwards every call to a
// target Env, so a test can override one call. Clock is separate (as in RocksDB),
// so that a MockClock can be combined with the real file system.
//
// Thread-safety: Env and Clock implementations are safe for concurrent use.
// A WritableFile is used by one thread at a time; a RandomAccessFile's Read() may
// be called from many threads at once.
#ifndef BRANCHDB_BASE_ENV_H_
#define BRANCHDB_BASE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace branchdb {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time in microseconds since the Unix epoch.
  virtual int64_t NowMicros() = 0;
  // A monotonic clock for measuring intervals, in nanoseconds from an arbitrary origin.
  virtual int64_t NowMonotonicNanos() = 0;
  // Blocks for about `micros` (a MockClock just moves its time forward).
  virtual void SleepForMicros(int64_t micros) = 0;

  // The real clock. Never deleted.
  static Clock* Default();
};

// A file being written sequentially. Data is durable only after Sync() succeeds.
// Appends go to the write position, Size(); a file may extend past it with
// zeros written ahead (ExtendWithZeros), which later Appends overwrite.
class WritableFile {
 public:
  WritableFile() = default;
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;
  virtual ~WritableFile() = default;  // closes without syncing

  virtual Status Append(std::string_view data) = 0;
  // fdatasync(): everything appended so far is durable once this returns OK.
  // A failed Sync leaves the file's durable contents unknown: callers must not
  // retry and report success (fail-stop).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Append(data), then Sync(): data and everything appended before it are
  // durable once this returns OK. A file may do both in one call (POSIX:
  // pwritev2 with RWF_DSYNC, over blocks already written and with nothing
  // earlier left unsynced: one system call, and a wait for this write's
  // range only). A failure of the write alone is Append's (a full disk:
  // reason disk_full); any failure once the data may have reached the file
  // is a failed sync's, with reason kSyncFailed (AsSyncFailure).
  virtual Status AppendDurable(std::string_view data) {
    BRANCHDB_RETURN_IF_ERROR(Append(data));
    return AsSyncFailure(Sync());
  }
  static constexpr std::string_view kSyncFailed = "sync_failed";
  static Status AsSyncFailure(const Status& s) {
    return s.ok() ? s : Status::IOError(s.message(), std::string(kSyncFailed));
  }
  // The write position: the file's size when opened plus everything appended
  // since (zeros written ahead by ExtendWithZeros do not count).
  virtual uint64_t Size() const = 0;
  // Preallocation with written zeros: writes zeros from the file's physical
  // end up to `end` bytes, leaving the write position where it is, so that
  // later Appends overwrite already written (allocated, sized) blocks and a
  // Sync of them need not change the file's size. The zeros are durable after
  // the next Sync. A hint: the default does nothing (the file just grows with
  // its Appends); a wrapper that wants the POSIX file's behaviour forwards it.
  // Not thread-safe against Append (call both from the same thread or lock).
  virtual Status ExtendWithZeros(uint64_t end) {
    (void)end;
    return Status::OK();
  }
};

// A file read at arbitrary offsets (pread). Read() is thread-safe.
class RandomAccessFile {
 public:
  RandomAccessFile() = default;
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;
  virtual ~RandomAccessFile() = default;

  // Reads up to n bytes at offset into scratch; returns the count read (short
  // only at end of file).
  virtual Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const = 0;
  // Reads up to head_n + n bytes at offset: the first head_n into head, the
  // rest into scratch (a page read straight into its caller's buffer, its
  // checksum beside it); returns the count read, as Read. The default reads
  // through Read and copies; the POSIX file reads both with one preadv.
  virtual Result<size_t> ReadSplit(uint64_t offset, char* head, size_t head_n, size_t n,
                                   char* scratch) const;
};

// Held while a process owns a directory (flock); released when destroyed.
class FileLock {
 public:
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  virtual ~FileLock() = default;
};

class Env {
 public:
  Env() = default;
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  virtual ~Env() = default;

  // The POSIX Env with Clock::Default(). Never deleted.
  static Env* Default();

  enum class OpenMode {
    kTruncate,  // create, or truncate an existing file to 0 bytes
    kAppend,    // create, or open an existing file and append at its end
  };
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                                OpenMode mode) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, without "." and "..".
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  virtual Status DeleteFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  // Shortens (or extends with zeros) a file to size bytes, and syncs it.
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // Creates dir and any missing parents; OK if it exists.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Removes an empty directory.
  virtual Status DeleteDir(const std::string& dir) = 0;
  // fsync() of a directory: makes creations, renames and deletions in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // chmod(): sets the permission bits of path (e.g. 0600 for files holding secrets).
  virtual Status SetPermissions(const std::string& path, uint32_t mode) = 0;
  // Takes an exclusive advisory lock on path (created if missing). Fails with
  // Unavailable when another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) = 0;

  virtual Clock* GetClock() = 0;

  // Conveniences built only from the calls above, so faults injected there apply.
  Result<std::string> ReadFileToString(const std::string& path);
  // Writes path atomically and durably: temp file, Sync, rename, SyncDir.
  // A nonzero mode (e.g. 0600 for secrets) is set on the temp file while it is
  // still empty, before any content is written.
  Status WriteFileAtomic(const std::string& path, std::string_view contents, uint32_t mode = 0);
};

// Forwards every call to target. Subclass it to override a few calls in tests.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Env* target() const { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    return target_->NewWritableFile(path, mode);
  }
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    return target_->NewRandomAccessFile(path);
  }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return target_->GetChildren(dir);
  }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    return target_->GetFileSize(path);
  }
  Status DeleteFile(const std::string& path) override { return target_->DeleteFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status TruncateFile(const std::string& path, uint64_t size) override {
    return target_->TruncateFile(path, size);
  }
  Status CreateDirs(const std::string& dir) override { return target_->CreateDirs(dir); }
  Status DeleteDir(const std::string& dir) override { return target_->DeleteDir(dir); }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Status SetPermissions(const std::string& path, uint32_t mode) override {
    return target_->SetPermissions(path, mode);
  }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return target_->LockFile(path);
  }
  Clock* GetClock() override { return target_->GetClock(); }

 private:
  Env* const target_;
};

// Joins two path parts with exactly one '/'.
std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace branchdb

#endif  // BRANCHDB_BASE_ENV_H_
