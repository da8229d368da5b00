// FaultInjectionEnv: an EnvWrapper for crash, fault and power-loss tests, in the
// spirit of LevelDB's db/fault_injection_test.cc and RocksDB's
// utilities/fault_injection_fs.h.
//
// It does three things on top of the Env it wraps:
//
// 1. Counts every fallible file operation (opening, appending, syncing,
//    closing, reading, renaming, deleting, truncating, listing, stat, locking,
//    directory creation and sync). FailNth(spec) makes the n-th counted
//    operation after the call (and optionally every later one) fail with EIO
//    (Status::IOError) or ENOSPC (Status::ResourceExhausted, reason
//    "disk_full"), optionally only among some kinds of operation, or only
//    among the operations a predicate picks (by kind and path). A failing
//    operation has no effect, except:
//      - an Append with FaultSpec::partial_write writes a prefix first (what a
//        short write followed by ENOSPC does);
//      - a Sync with drop_unsynced_on_sync_failure (the default) also throws
//        away the file's unsynced bytes, as Linux does with dirty pages after
//        a writeback error: a later fsync then "succeeds" on lost data.
//
// 2. Tracks durability as a power loss would see it: per file, the bytes made
//    durable by Sync (TruncateFile syncs too, as Env promises); per directory,
//    which names were made durable by SyncDir (creations, renames, deletions).
//    Files the env has not seen being created are assumed wholly durable when
//    first touched. Directories themselves (CreateDirs) are assumed durable.
//
//    It also counts, per kind, every operation called (CallCount) and the
//    bytes read (BytesRead), can make every Sync take a while (a slow disk),
//    and can skip syncs while reporting them done (a store that "forgets" to
//    fsync, for the power-loss check's self-test).
//
//    Writes may also overwrite durable bytes (an Append over zeros written
//    ahead by ExtendWithZeros): the bytes they replace are kept until the
//    next Sync, and a power loss may bring them back.
//
// 3. Produces the state a power loss could leave: SimulateCrash() rewrites the
//    tracked files in place (truncate to the synced size or keep a random
//    "torn" prefix of the unsynced tail; unsynced overwrites undone, or torn:
//    a random prefix of them kept, in offset order; remove names whose creation was not
//    dir-synced; optionally bring back names whose rename or deletion was not
//    dir-synced); SnapshotCrashState() writes that state to another directory
//    without touching the live files, e.g. from a sync-point callback.
//
// Thread-safety: all methods are thread-safe. Mutating operations are
// serialized by one (recursive) mutex held across the wrapped call, so a
// snapshot taken from the sync callback sees a consistent state.
#ifndef BRANCHDB_TESTS_UTIL_FAULT_INJECTION_ENV_H_
#define BRANCHDB_TESTS_UTIL_FAULT_INJECTION_ENV_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"

namespace branchdb::testing {

// Kinds of counted operation, as bits of a mask.
enum OpKind : uint32_t {
  kOpNewWritableFile = 1u << 0,
  kOpAppend = 1u << 1,
  kOpSync = 1u << 2,
  kOpClose = 1u << 3,
  kOpNewRandomAccessFile = 1u << 4,
  kOpRead = 1u << 5,
  kOpRename = 1u << 6,
  kOpDelete = 1u << 7,
  kOpTruncate = 1u << 8,
  kOpCreateDirs = 1u << 9,
  kOpDeleteDir = 1u << 10,
  kOpSyncDir = 1u << 11,
  kOpGetChildren = 1u << 12,
  kOpGetFileSize = 1u << 13,
  kOpLockFile = 1u << 14,
};
inline constexpr uint32_t kAllOps = (1u << 15) - 1;
// Operations that change the file system.
inline constexpr uint32_t kWriteOps = kOpNewWritableFile | kOpAppend | kOpSync | kOpClose |
                                      kOpRename | kOpDelete | kOpTruncate | kOpCreateDirs |
                                      kOpDeleteDir | kOpSyncDir;
// Operations that make data durable.
inline constexpr uint32_t kSyncOps = kOpSync | kOpSyncDir | kOpTruncate;

// "Append", "Sync", ... (one bit), for messages.
std::string_view OpKindName(uint32_t kind);

enum class FaultType {
  kIOError,   // EIO: Status::IOError
  kNoSpace,   // ENOSPC: Status::ResourceExhausted, reason "disk_full"
};

struct FaultSpec {
  // 1-based index, among the operations matching op_mask counted from the
  // FailNth call, of the operation to fail.
  uint64_t nth = 1;
  FaultType type = FaultType::kIOError;
  // Also fail every later matching operation (a dead disk / a full disk).
  bool sticky = false;
  // Which operations are counted and may fail. Default: all.
  uint32_t op_mask = kAllOps;
  // A failing Append first writes the first half of its data.
  bool partial_write = false;
  // When set, only the operations matching op_mask for which it returns true
  // are counted (and may fail); path is the operation's file or directory
  // ("from -> to" for a rename). Called under the env's mutex for every
  // operation matching op_mask, in order, so it may keep state (e.g. "the
  // first SyncDir after a rename of a segment"). Default: every operation.
  std::function<bool(uint32_t kind, const std::string& path)> only_if;
};

// What a simulated power loss keeps of the bytes appended after the last Sync.
enum class TailMode {
  kDropUnsynced,  // nothing
  kTornTail,      // a random prefix (maybe empty, maybe all) of them
  kKeepAll,       // all of them (a process crash rather than a power loss)
  // A random prefix of them, then up to the file's written length zeros or
  // random bytes (blocks allocated but their data never written).
  kGarbageTail,
};

struct CrashOptions {
  TailMode tail = TailMode::kDropUnsynced;
  // Remove names created since their directory's last SyncDir.
  bool drop_unsynced_creations = true;
  // Undo renames and deletions made since their directory's last SyncDir
  // (the old name comes back with its synced contents).
  bool undo_unsynced_renames_and_deletes = true;
  // Seed of the torn-tail choices.
  uint64_t seed = 0;
};

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target = Env::Default());
  ~FaultInjectionEnv() override;

  // --- Faults ----------------------------------------------------------------

  // Arms a fault (replacing any previous one) and restarts the count.
  void FailNth(const FaultSpec& spec);
  void FailNth(uint64_t n, FaultType type, bool sticky = false, uint32_t op_mask = kAllOps) {
    FaultSpec spec;
    spec.nth = n;
    spec.type = type;
    spec.sticky = sticky;
    spec.op_mask = op_mask;
    FailNth(spec);
  }
  // Disarms the fault; FaultFired() etc. keep their values until the next FailNth.
  void ClearFault();
  // Whether the armed fault made at least one operation fail.
  bool FaultFired() const;
  // Number of operations failed since the last FailNth.
  uint64_t FaultsFired() const;
  // Kind (OpKind bit) and path of the first failed operation; 0 / "" if none.
  uint32_t FiredOpKind() const;
  std::string FiredOpDescription() const;
  // Operations matching the armed mask (all operations when none is armed)
  // counted since the last FailNth / ResetCounter.
  uint64_t OpCount() const;
  void ResetCounter();

  // Default true: a failed Sync truncates the live file to its synced size.
  void SetDropUnsyncedOnSyncFailure(bool drop);

  // Makes every file Sync take at least this long (a slow disk), so that
  // concurrent callers pile up behind it (group commit). Default 0.
  void SetSyncDelayMicros(int64_t micros) { sync_delay_micros_.store(micros); }

  // Makes every file Sync (files) and every SyncDir (dirs) return OK without
  // doing anything: not counted, not failed, and the data stays unsynced for
  // the crash images — a store that forgets to fsync. Default: false, false.
  void SetSkipSyncs(bool files, bool dirs) {
    skip_file_syncs_.store(files);
    skip_dir_syncs_.store(dirs);
  }

  // Operations of the kinds in mask called since the env was created, failed
  // or not (those made by a sync callback and skipped syncs excluded).
  uint64_t CallCount(uint32_t mask) const;
  // Bytes returned by the reads of random-access files since the env was created.
  uint64_t BytesRead() const { return bytes_read_.load(); }

  // Called after every successful Sync, SyncDir and TruncateFile, with the
  // operation kind and path, while the env's mutex is held: every other
  // operation waits, and the callback may call SnapshotCrashState (it must
  // not use the store). Pass nullptr to remove.
  void SetSyncCallback(std::function<void(uint32_t kind, const std::string& path)> callback);
  // Same, called just before every Sync and SyncDir is carried out (after any
  // injected fault was decided not to fire): the moment when the bytes being
  // synced are written but not yet durable — where torn tails come from.
  void SetBeforeSyncCallback(
      std::function<void(uint32_t kind, const std::string& path)> callback);

  // --- Power loss --------------------------------------------------------------

  // Rewrites the tracked files under the directories the env has seen to what
  // a power loss could leave, and forgets all unsynced state (everything
  // left is durable). REQUIRES: no file of the env is open for writing
  // (destroy the store first).
  Status SimulateCrash(const CrashOptions& options = {});
  // LevelDB's name for SimulateCrash with the default options.
  Status DropUnsyncedData() { return SimulateCrash(CrashOptions{}); }

  // Writes to dest_dir (created; must be empty or missing) a copy of src_dir
  // (flat: regular files only) as a power loss at this instant would leave
  // it (dest_dir stays empty when src_dir does not exist). Does not change
  // src_dir or the env's state. Safe from the sync callback.
  Status SnapshotCrashState(const std::string& src_dir, const std::string& dest_dir,
                            const CrashOptions& options = {});

  // Bytes of path known to be durable (nullopt if the env does not track it).
  std::optional<uint64_t> SyncedSize(const std::string& path) const;
  // Whether path's directory entry is durable (nullopt if untracked).
  std::optional<bool> EntryDurable(const std::string& path) const;

  // --- Env ---------------------------------------------------------------------
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path,
                                                        OpenMode mode) override;
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override;
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override;
  Result<uint64_t> GetFileSize(const std::string& path) override;
  Status DeleteFile(const std::string& path) override;
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;
  Status CreateDirs(const std::string& dir) override;
  Status DeleteDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path) override;

 private:
  friend class FaultWritableFile;
  friend class FaultRandomAccessFile;

  using InodeId = uint64_t;
  struct Inode {
    std::string live_path;      // empty once unlinked
    uint64_t size = 0;          // bytes written (live)
    uint64_t synced_size = 0;   // bytes durable
    std::optional<std::string> saved;  // synced contents, kept when unlinked
    // Durable bytes replaced by writes not yet synced (an Append over zeros
    // written ahead, WritableFile::ExtendWithZeros), by offset, not
    // overlapping: a power loss may bring them back.
    std::map<uint64_t, std::string> overwritten;
  };
  struct DirState {
    std::map<std::string, InodeId> live;     // name -> inode, tracked names only
    std::map<std::string, InodeId> durable;  // as of the last SyncDir
  };

  // Counts one operation; returns the injected error if it must fail.
  // REQUIRES: mu_ held.
  Status MaybeFail(uint32_t kind, const std::string& path);
  // Inode of path, tracking an existing untracked file as wholly durable;
  // 0 if path does not exist. REQUIRES: mu_ held.
  InodeId Track(const std::string& path);
  InodeId LiveInode(const std::string& path) const;
  bool InDurableView(InodeId id) const;
  // Keeps the synced bytes of id in memory before its last name goes away.
  Status SaveIfNeeded(InodeId id);
  void CollectGarbage();
  // Synced (or torn) contents of id for a crash image.
  Result<std::string> CrashContents(InodeId id, const CrashOptions& options,
                                    std::mt19937_64* rng);
  void RunSyncCallback(uint32_t kind, const std::string& path);
  void RunBeforeSyncCallback(uint32_t kind, const std::string& path);

  // Called by the wrapped files.
  // Before a write of [offset, offset + n): keeps the durable bytes it replaces.
  Status SaveOverwritten(InodeId id, uint64_t offset, uint64_t n);
  // After a write that ended at `end`.
  void OnWritten(InodeId id, uint64_t end);
  // Puts back the first bytes (in offset order) of the overwritten ranges
  // into data, all but `keep_new` of them.
  static void RestoreOverwritten(const Inode& inode, uint64_t keep_new, std::string* data);
  Status FileSyncFailed(InodeId id);
  void OnSynced(InodeId id);

  std::atomic<int64_t> sync_delay_micros_{0};
  std::atomic<bool> skip_file_syncs_{false};
  std::atomic<bool> skip_dir_syncs_{false};
  std::atomic<uint64_t> bytes_read_{0};
  mutable std::recursive_mutex mu_;
  std::array<uint64_t, 32> calls_{};  // by OpKind bit position
  std::optional<FaultSpec> fault_;
  uint64_t op_count_ = 0;
  uint64_t faults_fired_ = 0;
  uint32_t fired_kind_ = 0;
  std::string fired_desc_;
  bool drop_unsynced_on_sync_failure_ = true;
  std::function<void(uint32_t, const std::string&)> sync_callback_;
  std::function<void(uint32_t, const std::string&)> before_sync_callback_;
  bool in_callback_ = false;

  InodeId next_inode_ = 1;
  std::map<InodeId, Inode> inodes_;
  std::map<std::string, DirState> dirs_;
};

// Splits "a/b/c" into {"a/b", "c"} ("." for a bare name).
std::pair<std::string, std::string> SplitPath(const std::string& path);

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_UTIL_FAULT_INJECTION_ENV_H_
