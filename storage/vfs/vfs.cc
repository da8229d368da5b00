// The "branchdb" sqlite3_vfs and the public API of storage/vfs/vfs.h.
//
// File names are opaque handles: OpenConnection mints a fresh name, registers
// what it stands for (store, timeline, read-only state), and opens it; xOpen
// consumes the registration. Any other name (a host path, a reused handle, an
// ATTACH) is SQLITE_CANTOPEN, so no SQL can reach the host file system
// through this VFS. Unnamed temporary files live in memory (MemFile).
#include "storage/vfs/vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "base/env.h"
#include "storage/vfs/vfs_internal.h"

namespace branchdb::storage {

namespace vi = vfs_internal;

namespace {

constexpr int kMaxPathname = 512;
constexpr char kHandlePrefix[] = "branchdb-connection-";

// The open requests by handle name: OpenConnection registers one, xOpen takes it.
Mutex& RegistryMu() {
  static auto* mu = new Mutex;  // never destroyed: used until exit; a leaf
  return *mu;
}
std::map<std::string, vi::OpenRequest>& Registry() REQUIRES(RegistryMu()) {
  static auto* registry = new std::map<std::string, vi::OpenRequest>;
  return *registry;
}
std::atomic<uint64_t> g_next_handle{1};

// ---- sqlite3_vfs methods ------------------------------------------------------

// xOpen: a registered handle opens that timeline's database (once); an unnamed
// file (SQLite's temporary files) is a MemFile; anything else is refused.
int VfsOpen(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  file->pMethods = nullptr;
  if (name == nullptr) {
    if (out_flags != nullptr) *out_flags = flags;
    return vi::OpenMemFile(file);
  }
  if ((flags & SQLITE_OPEN_MAIN_DB) == 0) return SQLITE_CANTOPEN;
  vi::OpenRequest request;
  {
    MutexLock lock(RegistryMu());
    auto it = Registry().find(name);
    if (it == Registry().end()) return SQLITE_CANTOPEN;
    request = it->second;
    Registry().erase(it);
  }
  if (request.read_only && (flags & SQLITE_OPEN_READWRITE) != 0) return SQLITE_CANTOPEN;
  if (out_flags != nullptr) *out_flags = flags;
  return vi::OpenBranchFile(request, file);
}

// xDelete: there is never a host file to delete (journals are in memory).
int VfsDelete(sqlite3_vfs*, const char*, int) { return SQLITE_OK; }

// xAccess: no file "exists" (in particular no hot journal or WAL file).
int VfsAccess(sqlite3_vfs*, const char*, int, int* out) {
  *out = 0;
  return SQLITE_OK;
}

// xFullPathname: handles are already canonical.
int VfsFullPathname(sqlite3_vfs*, const char* name, int n_out, char* out) {
  const size_t len = std::strlen(name);
  if (len + 1 > static_cast<size_t>(n_out)) return SQLITE_CANTOPEN;
  std::memcpy(out, name, len + 1);
  return SQLITE_OK;
}

// xDlOpen & co.: no extension loading through this VFS.
void* VfsDlOpen(sqlite3_vfs*, const char*) { return nullptr; }
void VfsDlError(sqlite3_vfs*, int n, char* out) {
  sqlite3_snprintf(n, out, "branchdb: loading extensions is not supported");
}
void (*VfsDlSym(sqlite3_vfs*, void*, const char*))(void) { return nullptr; }
void VfsDlClose(sqlite3_vfs*, void*) {}

// xRandomness: seeds SQLite's PRNG.
int VfsRandomness(sqlite3_vfs*, int n, char* out) {
  std::random_device rd;
  for (int i = 0; i < n; ++i) out[i] = static_cast<char>(rd());
  return n;
}

// xSleep: through the Clock, like every clock use of branchdb.
int VfsSleep(sqlite3_vfs*, int micros) {
  Clock::Default()->SleepForMicros(micros);
  return micros;
}

// xCurrentTimeInt64: milliseconds since the Julian epoch.
int VfsCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  constexpr sqlite3_int64 kUnixEpochJulianMs = 210866760000000LL;
  *out = kUnixEpochJulianMs + Clock::Default()->NowMicros() / 1000;
  return SQLITE_OK;
}

// xCurrentTime: the same as a fractional Julian day.
int VfsCurrentTime(sqlite3_vfs* vfs, double* out) {
  sqlite3_int64 ms = 0;
  VfsCurrentTimeInt64(vfs, &ms);
  *out = static_cast<double>(ms) / 86400000.0;
  return SQLITE_OK;
}

// xGetLastError: errors are reported per connection by LastVfsError().
int VfsGetLastError(sqlite3_vfs*, int, char*) { return 0; }

sqlite3_vfs g_vfs = {
    2,                                                               // iVersion
    static_cast<int>(std::max(sizeof(vi::BranchFile), sizeof(vi::MemFile))),  // szOsFile
    kMaxPathname,                                                    // mxPathname
    nullptr,                                                         // pNext
    vi::kVfsName,                                                    // zName
    nullptr,                                                         // pAppData
    VfsOpen,
    VfsDelete,
    VfsAccess,
    VfsFullPathname,
    VfsDlOpen,
    VfsDlError,
    VfsDlSym,
    VfsDlClose,
    VfsRandomness,
    VfsSleep,
    VfsCurrentTime,
    VfsGetLastError,
    VfsCurrentTimeInt64,
    nullptr,  // xSetSystemCall
    nullptr,  // xGetSystemCall
    nullptr,  // xNextSystemCall
};

// OK when the store can read the state a connection opens at; else the
// store's error (e.g. it was retired, or the timeline dropped, since the
// checks before the open): what a failed open reports rather than SQLite's
// "disk I/O error", since the file, and its last error, are gone with it.
Status ProbeState(const vi::OpenRequest& request) {
  if (request.read_only) return request.store->DbSizeAt(request.pinned_state).status();
  return request.store->Head(request.timeline).status();
}

vi::BranchConnection* ConnectionOfDb(sqlite3* db) {
  if (db == nullptr) return nullptr;
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK) {
    return nullptr;
  }
  return vi::ConnectionOf(file);
}

}  // namespace

void SqliteCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Status RegisterVfs() {
  static std::once_flag once;
  static int rc = SQLITE_OK;
  std::call_once(once, [] { rc = sqlite3_vfs_register(&g_vfs, /*makeDflt=*/0); });
  if (rc != SQLITE_OK) {
    return Status::Unavailable(std::string("sqlite3_vfs_register failed: ") + sqlite3_errstr(rc));
  }
  return Status::OK();
}

Result<SqliteHandle> OpenConnection(const ConnectionOptions& options) {
  if (options.store == nullptr) return Status::InvalidArgument("OpenConnection: no store");
  BRANCHDB_RETURN_IF_ERROR(RegisterVfs());
  vi::OpenRequest request;
  request.store = options.store;
  request.timeline = options.timeline;
  request.pipelined_commits = options.pipelined_commits;
  if (options.state.has_value()) {
    Result<RecordInfo> record = options.store->GetRecord(*options.state);
    if (!record.ok()) return record.status();
    request.read_only = true;
    request.pinned_state = *options.state;
  } else if (options.timeline == 0) {
    return Status::InvalidArgument("OpenConnection: no timeline");
  } else if (Result<TimelineInfo> info = options.store->GetTimeline(options.timeline); !info.ok()) {
    return info.status();
  } else if (options.as_of.has_value()) {
    Result<Lsn> state = options.store->ResolveLsn(options.timeline, *options.as_of);
    if (!state.ok()) return state.status();
    request.read_only = true;
    request.pinned_state = *state;
  }
  const std::string name = kHandlePrefix + std::to_string(g_next_handle.fetch_add(1));
  {
    MutexLock lock(RegistryMu());
    Registry()[name] = request;
  }
  const int flags = request.read_only ? SQLITE_OPEN_READONLY
                                      : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags, vi::kVfsName);
  SqliteHandle db(raw);
  {
    MutexLock lock(RegistryMu());
    Registry().erase(name);  // normally consumed by xOpen already
  }
  if (rc != SQLITE_OK) {
    if (Status probe = ProbeState(request); !probe.ok()) {
      return probe.WithContext("opening the database");
    }
    return Status::Unavailable(std::string("sqlite3_open_v2 through the branchdb VFS: ") +
                               (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  const std::string setup = "PRAGMA page_size=" + std::to_string(kPageSize) +
                            "; PRAGMA journal_mode=MEMORY; PRAGMA temp_store=MEMORY; "
                            "PRAGMA cache_size=" + std::to_string(options.cache_pages) + ";";
  char* err = nullptr;
  rc = sqlite3_exec(db.get(), setup.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Status vfs_error = LastVfsError(db.get());
    if (!vfs_error.ok()) return vfs_error.WithContext("opening the database");
    return Status::Unavailable("setting up the connection: " + msg);
  }
  return db;
}

Status SetNextCommitAnnotation(sqlite3* db, std::string annotation, std::string payload) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  if (conn == nullptr) return Status::InvalidArgument("not a branchdb connection");
  if (conn->read_only()) {
    return Status::FailedPrecondition("SetNextCommitAnnotation on a read-only connection");
  }
  conn->SetAnnotation(std::move(annotation), std::move(payload));
  return Status::OK();
}

BranchBytes BranchSpace(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  return conn == nullptr ? BranchBytes{} : conn->space();
}

Lsn LastCommitLsn(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  return conn == nullptr ? 0 : conn->last_commit_lsn();
}

Lsn SnapshotLsn(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  return conn == nullptr ? 0 : conn->snapshot_lsn();
}

Lsn ObservedLsn(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  return conn == nullptr ? 0 : conn->observed_lsn();
}

PendingDurability ObservedDurability(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  if (conn == nullptr) return {};
  return PendingDurability{conn->store(), conn->observed_lsn()};
}

Status WaitDurable(sqlite3* db) { return ObservedDurability(db).Wait(); }

Status LastVfsError(sqlite3* db) {
  vi::BranchConnection* conn = ConnectionOfDb(db);
  return conn == nullptr ? Status::OK() : conn->last_error();
}

}  // namespace branchdb::storage
