// Process-wide matters that are not one file operation: SQLite files made
// private before SQLite opens them, the process's open-file limit and its
// allocator's policy for large blocks. Implemented on Env
// (PrepareSqliteFile) and in env_posix.cc (the rest).
//
// Thread-safety: safe for concurrent use.
#ifndef BRANCHDB_BASE_PROCESS_H_
#define BRANCHDB_BASE_PROCESS_H_

#include <cstdint>
#include <string>

#include "base/env.h"

namespace branchdb {

// Makes the SQLite database file path private before SQLite opens it: creates
// it empty (0600, as Env creates files) when missing, and sets it and its
// companions that exist ("-wal", "-shm", "-journal", which SQLite creates with
// the database file's mode) to 0600.
Status PrepareSqliteFile(Env* env, const std::string& path);

// The process's file descriptors (RLIMIT_NOFILE).
struct FileDescriptorUsage {
  uint64_t open = 0;   // descriptors open now
  uint64_t limit = 0;  // the soft limit; 0 when unlimited
};

// How many descriptors are open (Linux: /proc/self/fd) and the soft limit.
Result<FileDescriptorUsage> GetFileDescriptorUsage();

// Raises the soft limit of open file descriptors to the hard limit; returns
// the new soft limit (0: unlimited).
Result<uint64_t> RaiseFileDescriptorLimit();

// The allocator's threshold above which a block is its own mapping, pinned
// at kMallocMmapThreshold. glibc otherwise raises the threshold to the size
// of every mapped block freed (up to 32 MiB), and from then on serves blocks
// that large from the heap: a store's seal frees buffers of megabytes every
// segment, their successors land in the heap between long-lived
// allocations, and the heap's free bytes grow in steps that never return
// (history_bench: 27 bytes of RSS per commit instead of 9;
// docs/benchmarks.md, "RSS per commit"). Pinned, a large buffer is mapped
// and unmapped whole. Returns false when the allocator refused (not glibc).
inline constexpr int kMallocMmapThreshold = 1 << 20;
bool PinMallocMmapThreshold();

}  // namespace branchdb

#endif  // BRANCHDB_BASE_PROCESS_H_
