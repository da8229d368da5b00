// A project's log as the bucket holds it, read through the fences of its
// epochs (docs/cluster.md, "Fencing"; docs/object-storage.md, "What goes
// where"). Shared by the restore (what to download) and the catalog backup
// (whether the bucket covers a store position).
//
// Keys are named by the writer's epoch: a node of a cluster uploads with the
// epoch etcd names it owner with (checked before each PUT), under
// "e/EEEEEEEEEEEEEEEE/" (16 digits) below the project's prefix:
//   PREFIX/PROJECT_ID/e/EEEEEEEEEEEEEEEE/seg-NNNNNN.log
//   PREFIX/PROJECT_ID/e/EEEEEEEEEEEEEEEE/tail/seg-NNNNNN.log/OOOOOOOOOOOOOOOO
// Epoch 0 (no [cluster], and every bucket written before keys had epochs)
// has no "e/" level: PREFIX/PROJECT_ID/seg-NNNNNN.log, .../tail/...
//
// The rule: an object written by epoch E counts only as far as the restore
// point recorded in the fence of the next epoch that has one (the smallest
// F > E with PREFIX/PROJECT_ID/epochs/F): a sealed segment numbered up to its
// newest_sealed, a tail chunk's bytes below its tail_offset in its
// tail_segment (or any chunk of a segment numbered up to newest_sealed, a
// left-over of a sealed one). Anything an old owner uploads after a takeover
// is beyond that point (the taker's listing did not see it), so it is never
// read. An epoch without a later fence counts whole.
//
// The catalog snapshots and the descriptor are named by epoch the same way
// (catalog_backup.h): PREFIX/PROJECT_ID/[e/EEEEEEEEEEEEEEEE/]catalog/N.db and
// .../[e/EEEEEEEEEEEEEEEE/]project.json. A snapshot (E, N) counts only when no
// fence follows E, or when the next fence's catalog point (the snapshot its
// taker restored from) is (E, N) or later; of those, the newest (E, N) is the
// project's catalog. An old owner's snapshot landing after a takeover is
// beyond that point, never used. The descriptor is the one of the highest
// epoch that has one.
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_BUCKET_LOG_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_BUCKET_LOG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "objstore/s3_client.h"

namespace branchdb::server {

// "e/EEEEEEEEEEEEEEEE/" for epoch > 0; "" for epoch 0.
std::string EpochDir(int64_t epoch);

// Splits the rest of a key (after "PREFIX/PROJECT_ID/") into its writer's
// epoch and the name below it: "e/0000000000000003/seg-000007.log" gives 3
// and "seg-000007.log"; a rest without "e/" gives 0 and itself. False for an
// "e/" rest that is not of that form.
bool SplitEpoch(const std::string& rest, int64_t* epoch, std::string* name);

// What a taker restored from, as its fence records it (epochs/E).
struct FencePoint {
  int64_t newest_sealed = -1;  // -1: none
  std::string tail_segment;    // "": none
  uint64_t tail_offset = 0;
  // The catalog snapshot it restored from (fences written before snapshots
  // had epochs: epoch 0).
  int64_t catalog_epoch = 0;
  uint64_t catalog_version = 0;
};

// "epochs/EEEEEEEEEEEEEEEE" -> E; -1 for any other rest.
int64_t ParseFenceEpoch(const std::string& rest);
Result<FencePoint> ParseFence(std::string_view json);
// The fence object of epoch, written by node (docs/object-storage.md, "What
// goes where"): what ParseFence reads back.
std::string FormatFence(int64_t epoch, const std::string& node, const FencePoint& point,
                        int64_t time_micros);

using Listing = std::map<std::string, objstore::ObjectInfo>;  // rest of key -> object

// Every fence in listing, read from the bucket (fences are written once and
// never replaced). An error when one cannot be read or parsed: a restore
// must not guess. cache (optional; by key): fences read before, not read
// again, and those read now are added.
using FenceCache = std::map<std::string, FencePoint>;
Result<std::map<int64_t, FencePoint>> ReadFences(objstore::S3Client& client,
                                                 const Listing& listing,
                                                 FenceCache* cache = nullptr);

// The first `bytes` bytes of an object written by `epoch`, which are the
// segment's bytes from `offset`.
struct LogPiece {
  objstore::ObjectInfo info;
  int64_t epoch = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct BucketLog {
  // Sealed segments by name: the copy of the highest epoch the fences allow.
  std::map<std::string, LogPiece> sealed;
  // Per segment with chunks: the chunks the fences allow, contiguous from
  // offset 0 up to the first gap, in non-decreasing epoch (a writer goes on
  // after the one before it, never the other way).
  std::map<std::string, std::vector<LogPiece>> chunks;
  uint64_t fenced_off = 0;  // objects (or chunks' ends) beyond a fence: ignored

  // The unsealed tail: the highest-numbered segment with chunks, when above
  // every sealed segment; "" when none.
  std::string TailSegment() const;
  // The bytes of segment name that its chunks hold from offset 0.
  uint64_t ChunkBytes(const std::string& name) const;
};

BucketLog ResolveBucketLog(const Listing& listing, const std::map<int64_t, FencePoint>& fences);

// "[e/EEEEEEEEEEEEEEEE/]catalog/NNNNNNNNNNNNNNNN.db" -> its epoch and version
// (> 0); false for any other rest.
bool ParseCatalogKey(const std::string& rest, int64_t* epoch, uint64_t* version);

// A catalog snapshot in the bucket.
struct CatalogPiece {
  objstore::ObjectInfo info;
  int64_t epoch = 0;
  uint64_t version = 0;
};

// The project's catalog snapshot as the fences allow it (above): the newest
// (epoch, version) that no fence rules out; nullopt when none.
std::optional<CatalogPiece> ResolveCatalog(const Listing& listing,
                                           const std::map<int64_t, FencePoint>& fences);
// Whether listing has a catalog snapshot of any epoch.
bool HasCatalog(const Listing& listing);

// The descriptor of the highest epoch that has one ("[e/E/]project.json");
// nullptr when none.
const objstore::ObjectInfo* NewestDescriptor(const Listing& listing);

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_BUCKET_LOG_H_
