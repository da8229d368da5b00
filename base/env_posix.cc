// The POSIX Env and the real Clock. The only file in branchdb that calls the
// operating system's file and clock functions directly. Files are created with
// mode 0600 and directories with 0700 (existing ones keep their mode).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <thread>

#include "base/env.h"
#include "base/process.h"

namespace branchdb {
namespace {

// Everything branchdb creates is private to the service user (the data holds
// query results, secrets and whole databases).
constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

Status PosixError(std::string_view what, const std::string& path, int err) {
  std::string msg(what);
  msg += " ";
  msg += path;
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(std::move(msg), "disk_full");
  return Status::IOError(std::move(msg));
}

// Writes with pwrite at its write position (not O_APPEND), so that Appends
// can overwrite the zeros ExtendWithZeros wrote ahead of it.
class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size), end_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    synced_ = false;
    BRANCHDB_RETURN_IF_ERROR(WriteAt(size_, data.data(), data.size(), &size_));
    end_ = std::max(end_, size_);
    return Status::OK();
  }

  Status AppendDurable(std::string_view data) override {
    // Over zeros written ahead only: no block to allocate, so a failure is
    // the sync's (a full disk cannot fail it), and the size stays.
    if (!synced_ || !dsync_writes_ || data.empty() || size_ + data.size() > end_) {
      BRANCHDB_RETURN_IF_ERROR(Append(data));
      return AsSyncFailure(Sync());
    }
    // Everything written before is durable, so a write that syncs its own
    // range makes the whole file durable: one system call where Append and
    // Sync take two, and a wait for this range's writeback only, not a walk
    // of the whole file's.
    iovec v{const_cast<char*>(data.data()), data.size()};
    ssize_t w;
    do {
      w = ::pwritev2(fd_, &v, 1, static_cast<off_t>(size_), RWF_DSYNC);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
      dsync_writes_ = false;  // a kernel without RWF_DSYNC: nothing was written
      return AppendDurable(data);
    }
    if (w < 0) {
      synced_ = false;
      return AsSyncFailure(PosixError("write (RWF_DSYNC)", path_, errno));
    }
    size_ += static_cast<uint64_t>(w);
    if (static_cast<size_t>(w) == data.size()) return Status::OK();
    // A short write synced its part: the rest the plain way.
    BRANCHDB_RETURN_IF_ERROR(Append(data.substr(static_cast<size_t>(w))));
    return AsSyncFailure(Sync());
  }

  Status ExtendWithZeros(uint64_t end) override {
    static const std::string* const kZeros = new std::string(1 << 20, '\0');
    while (end_ < end) {
      synced_ = false;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(end - end_, kZeros->size()));
      BRANCHDB_RETURN_IF_ERROR(WriteAt(end_, kZeros->data(), n, &end_));
    }
    return Status::OK();
  }

  Status Sync() override {
    synced_ = false;
    if (::fdatasync(fd_) != 0) return PosixError("fdatasync", path_, errno);
    synced_ = true;
    return Status::OK();
  }

  Status Close() override {
    if (fd_ < 0) return Status::OK();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return PosixError("close", path_, errno);
    return Status::OK();
  }

  uint64_t Size() const override { return size_; }

 private:
  // pwrite of n bytes at offset; *pos advances by every byte written (also
  // when a later part fails).
  Status WriteAt(uint64_t offset, const char* p, size_t n, uint64_t* pos) {
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0) {
        if (errno == EINTR) continue;
        return PosixError("write", path_, errno);
      }
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
      *pos = offset;
    }
    return Status::OK();
  }

  const std::string path_;
  int fd_;
  uint64_t size_;  // the write position
  uint64_t end_;   // the file's size: size_ plus the zeros written ahead
  // Nothing written since the last successful Sync (false when opened: what
  // the file held may not be durable).
  bool synced_ = false;
  bool dsync_writes_ = true;  // pwritev2 takes RWF_DSYNC (Linux 4.7 and later)
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { ::close(fd_); }

  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return PosixError("pread", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Result<size_t> ReadSplit(uint64_t offset, char* head, size_t head_n, size_t n,
                           char* scratch) const override {
    iovec iov[2] = {{head, head_n}, {scratch, n}};
    ssize_t r;
    do {
      r = ::preadv(fd_, iov, 2, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return PosixError("preadv", path_, errno);
    const size_t done = static_cast<size_t>(r);
    if (done == head_n + n || r == 0) return done;
    // A short read not at the end of the file: the rest one piece at a time.
    size_t more = 0;
    if (done < head_n) {
      auto h = Read(offset + done, head_n - done, head + done);
      if (!h.ok()) return h.status();
      if (*h < head_n - done) return done + *h;
      more = *h;
    }
    const size_t body_done = done + more - head_n;
    auto b = Read(offset + head_n + body_done, n - body_done, scratch + body_done);
    if (!b.ok()) return b.status();
    return done + more + *b;
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  const int fd_;
};

class RealClock final : public Clock {
 public:
  int64_t NowMicros() override {
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  }
  int64_t NowMonotonicNanos() override {
    struct timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  void SleepForMicros(int64_t micros) override {
    std::this_thread::sleep_for(std::chrono::microseconds(micros));
  }
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    if (mode == OpenMode::kTruncate) flags |= O_TRUNC;  // kAppend: writes start at the end
    int fd = ::open(path.c_str(), flags, kFileMode);
    if (fd < 0) return PosixError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return PosixError("fstat", path, err);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("opendir", dir, errno);
    std::vector<std::string> out;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name == "." || name == "..") continue;
      out.emplace_back(name);
    }
    ::closedir(d);
    return out;
  }

  Result<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Status DeleteFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("unlink", path, errno);
    return Status::OK();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return PosixError("rename", from, errno);
    return Status::OK();
  }

  Status TruncateFile(const std::string& path, uint64_t size) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", path, errno);
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = PosixError("ftruncate", path, errno);
    } else if (::fdatasync(fd) != 0) {
      s = PosixError("fdatasync", path, errno);
    }
    ::close(fd);
    return s;
  }

  Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return Status::OK();
    std::string partial;
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      partial = dir.substr(0, pos);
      if (partial.empty()) continue;
      if (::mkdir(partial.c_str(), kDirMode) != 0 && errno != EEXIST) {
        return PosixError("mkdir", partial, errno);
      }
    }
    return Status::OK();
  }

  Status DeleteDir(const std::string& dir) override {
    if (::rmdir(dir.c_str()) != 0) return PosixError("rmdir", dir, errno);
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = PosixError("fsync", dir, errno);
    ::close(fd);
    return s;
  }

  Status SetPermissions(const std::string& path, uint32_t mode) override {
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
      return PosixError("chmod", path, errno);
    }
    return Status::OK();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
    if (fd < 0) return PosixError("open", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return Status::Unavailable("lock " + path + ": held by another process", "locked");
      }
      return PosixError("flock", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  Clock* GetClock() override { return Clock::Default(); }
};

}  // namespace

Clock* Clock::Default() {
  static RealClock* clock = new RealClock();
  return clock;
}

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

Result<FileDescriptorUsage> GetFileDescriptorUsage() {
  FileDescriptorUsage usage;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return PosixError("getrlimit", "NOFILE", errno);
  usage.limit = rl.rlim_cur == RLIM_INFINITY ? 0 : static_cast<uint64_t>(rl.rlim_cur);
  auto fds = Env::Default()->GetChildren("/proc/self/fd");  // its own fd is in it
  if (!fds.ok()) return fds.status();
  usage.open = fds->size();
  return usage;
}

Result<uint64_t> RaiseFileDescriptorLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return PosixError("getrlimit", "NOFILE", errno);
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return PosixError("setrlimit", "NOFILE", errno);
  }
  return rl.rlim_cur == RLIM_INFINITY ? uint64_t{0} : static_cast<uint64_t>(rl.rlim_cur);
}

bool PinMallocMmapThreshold() {
#if defined(__GLIBC__)
  return ::mallopt(M_MMAP_THRESHOLD, kMallocMmapThreshold) == 1;
#else
  return false;
#endif
}

}  // namespace branchdb
