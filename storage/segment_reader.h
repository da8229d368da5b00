// Reading a segment file's header and a sealed segment's record list, for
// recovery and compaction, and the active segment's metas back for its seal
// (docs/storage-format.md, "Footer and trailer", "Damaged sealed segments"
// and "Memory"). Internal to storage/; stateless functions, safe
// for concurrent use on different files (and on one file: reads only).
#ifndef BRANCHDB_STORAGE_SEGMENT_READER_H_
#define BRANCHDB_STORAGE_SEGMENT_READER_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "storage/log_format.h"
#include "storage/record_table.h"

namespace branchdb::storage::internal {

// Reads `n` bytes at `offset`; Corruption on a short read.
Status ReadExactly(RandomAccessFile* file, uint64_t offset, size_t n, std::string* out);

// A sealed segment's file at Open (or at a lazy segment's first use): its
// last kBytes (at most 1/32 of it, so that small segments are not read
// whole) read at once, and every read that lies within them served from
// there.
class TailBufferedFile final : public RandomAccessFile {
 public:
  TailBufferedFile(RandomAccessFile* file, uint64_t size) : file_(file), size_(size) {}
  Status Load() {
    start_ = size_ - std::min(kBytes, size_ / 32);
    return ReadExactly(file_, start_, size_ - start_, &tail_);
  }
  Result<size_t> Read(uint64_t offset, size_t n, char* scratch) const override {
    if (offset < start_ || offset > size_) return file_->Read(offset, n, scratch);
    const size_t k = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
    std::memcpy(scratch, tail_.data() + (offset - start_), k);
    return k;
  }

 private:
  static constexpr uint64_t kBytes = 16 << 10;
  RandomAccessFile* const file_;
  const uint64_t size_;
  uint64_t start_ = 0;
  std::string tail_;
};

// Reads and decodes the header of segment `number` from its file; *len
// receives the header's length. Corruption (naming the segment) when the file
// does not begin with a whole, valid segment header; the read's error when
// the read fails.
Status ReadSegmentHeader(RandomAccessFile* file, uint64_t number, SegmentHeader* h, size_t* len);

// The record list of a segment (`size` bytes, header `header_len` bytes)
// from its footer, when its trailer and footer pass every check (magic,
// version, offsets consistent with the file size, footer CRC, every entry
// before the footer). Otherwise OK with *damage saying what failed (empty
// when they passed; *entries is then to be ignored). Errors: the reads'.
// `parts`: what of each meta to decode (DecodeMeta).
Status ReadFooterEntries(RandomAccessFile* file, size_t header_len, uint64_t size,
                         std::vector<FooterEntry>* entries, std::string* damage,
                         MetaParts parts = MetaParts::kAll);

// The record list of a sealed segment.
struct SealedRecords {
  std::vector<FooterEntry> entries;  // in file order
  // Empty when the footer served. Otherwise what was wrong with the trailer
  // or the footer; the entries then come from a scan of the records.
  std::string damage;
};

// Reads the record list of segment `number` (`size` bytes, its header
// `header_len` bytes long), which recovery treats as sealed: every segment
// but the newest log segment, and that one too when its footer is intact.
// From its footer when ReadFooterEntries finds it intact. Otherwise by
// scanning the records from the header,
// checking each one's meta_len, meta CRC and meta (images and payloads are
// checked when they are read), up to where the footer begins; the file is
// never changed. Corruption naming the segment and the offset when a record
// before the footer fails its checks, or when where the footer begins cannot
// be told (neither the trailer's offsets nor a footer body found there
// agree with the scan): the records after that point cannot be found.
Status ReadSealedRecords(RandomAccessFile* file, uint64_t number, size_t header_len, uint64_t size,
                         SealedRecords* out, MetaParts parts = MetaParts::kAll);

// Reads back the metas of the records at `offsets` of segment `number` (the
// active segment, being sealed; its records end at `end`) from the one at
// index `first` on, appending them to *out in order, each one's meta_len and
// meta CRC checked. Reads up to 1 MiB at a time (a longer meta alone).
// Corruption naming the segment and the offset when a record does not read
// back as written; the reads' errors.
Status ReadRecordMetas(RandomAccessFile* file, uint64_t number, const RecordOffsets& offsets,
                       size_t first, uint64_t end, MetaList* out);

// Reads the meta of the record at `offset` of segment `number` and checks it:
// its meta_len (must be `meta_len`), its meta CRC, its decoding, its LSN
// (must be `lsn`). When that copy fails and the segment is sealed
// (`sealed_size`: its size; 0 for the unsealed segment), the footer's copy
// is taken if the footer passes every check (ReadFooterEntries), and
// *damage says what was wrong ("seg-000003.log: record meta of LSN 42 at
// offset 4242: meta checksum mismatch; read from the segment footer's
// copy"); *damage is left empty otherwise. Corruption, with the same words
// and why the footer could not stand in, when no intact copy exists; the
// reads' errors as they are.
Status ReadRecordMeta(RandomAccessFile* file, uint64_t number, uint64_t offset, uint32_t meta_len,
                      Lsn lsn, uint64_t sealed_size, RecordMeta* meta, std::string* damage);

// Reads the image block at `offset` of `file`: its header (head_len bytes:
// ImageBlockHeader) into head, the kPageSize bytes after it (its image, or
// its image without the hole, and what follows) straight into out; *got: the
// bytes read, header included (fewer only at the end of the file). RestoreImage
// then checks the block and restores its image. A thread reading
// blocks that follow one another in one file (a scan: each at most a few
// blocks after the last) gets the next ones from a read-ahead buffer of its
// own (64 KiB, one read) instead of a read each; other reads read the block
// alone. *buffered: it came from bytes read before this call; when its crc
// fails, read it again with read_ahead false, since the buffer may have
// caught a record that was still being appended. Errors: the reads'.
Status ReadImageBlock(const std::shared_ptr<RandomAccessFile>& file, uint64_t offset,
                      size_t head_len, bool read_ahead, char* head, char* out, size_t* got,
                      bool* buffered);

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_SEGMENT_READER_H_
