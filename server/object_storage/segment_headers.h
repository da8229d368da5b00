// SegmentHeaders: what segment files' headers (and trailers) said,
// remembered, for the passes of the segment uploader and the catalog backup
// over the project directories (docs/object-storage.md, "How a segment is
// uploaded").
#ifndef BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_HEADERS_H_
#define BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_HEADERS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/mutex.h"
#include "base/status.h"

namespace branchdb::server {

// What segment files' headers said, remembered by path and size, so that a
// pass over an unchanged project directory reads no file: a segment file
// gets its header once (it is created with it, and its number is never
// used again: docs/storage-format.md), and a sealed one never changes.
// Thread-safe.
class SegmentHeaders {
 public:
  struct Facts {
    bool output = false;                // a compaction wrote it (its header's flag)
    std::vector<uint64_t> supersedes;   // an output's: the segments it replaces
    bool sealed = false;                // it ends with the trailer's magic
  };
  // The facts of the segment file at path, `size` bytes (the caller's stat):
  // remembered when path had that size before, else read (one open, its
  // header, and with `trailer` its last 8 bytes). With `trailer`, `sealed`
  // is read again while it was false (the active segment keeps its size
  // while records fill its zero region). An error when the file cannot be
  // read; nothing is remembered of a header that does not decode.
  Result<Facts> Get(Env* env, const std::string& path, uint64_t size, bool trailer);
  // Forgets what it knows of path (uploaded: never asked again).
  void Forget(const std::string& path);
  // Forgets the files of directory dir that `names` (its listing) lacks.
  void Prune(const std::string& dir, const std::vector<std::string>& names);
  // How many files it remembers (tests).
  size_t size() const;

 private:
  struct Entry {
    uint64_t size = 0;
    Facts facts;
  };
  mutable Mutex mu_;
  std::map<std::string, Entry> known_ GUARDED_BY(mu_);  // by path
};

}  // namespace branchdb::server

#endif  // BRANCHDB_SERVER_OBJECT_STORAGE_SEGMENT_HEADERS_H_
