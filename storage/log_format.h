// The page store's on-disk format: segment headers, records, sealed-segment
// footers and the GC manifest. Byte-level description: docs/storage-format.md.
// Internal to storage/; pure encode/decode functions, thread-safe.
#ifndef BRANCHDB_STORAGE_LOG_FORMAT_H_
#define BRANCHDB_STORAGE_LOG_FORMAT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "storage/page_store.h"

namespace branchdb::storage::internal {

// Format 2 added record payloads, format 3 the sealed segment's page index,
// format 4 its record index, format 5 image blocks without their page's
// hole; files of formats 1 to 4 stay readable.
inline constexpr uint32_t kFormatVersion = 5;
inline constexpr uint32_t kFirstPayloadFormatVersion = 2;      // records with a payload
inline constexpr uint32_t kFirstIndexedFormatVersion = 3;      // footers with a page index
inline constexpr uint32_t kFirstRecordIndexFormatVersion = 4;  // footers with a record index
inline constexpr uint32_t kFirstHoleFormatVersion = 5;         // image blocks without a hole
inline constexpr uint32_t kOldestFormatVersion = 1;
inline constexpr uint32_t kManifestVersion = 1;  // GCSTATE's format did not change in 2 to 4
// 1: without the payloads by timeline; 2: without the segment descriptors;
// 3: without the superseded leftovers and the damaged segments' numbers (Open
// lists the directory to find every segment).
inline constexpr uint32_t kStoreManifestVersion = 4;
inline constexpr uint32_t kFirstUnlistedManifestVersion = 4;  // Open lists no directory
inline constexpr std::string_view kSegmentMagic{"BRDBSEG\0", 8};
inline constexpr std::string_view kFooterMagic{"BRDBFTR1", 8};
inline constexpr std::string_view kManifestMagic{"BRDBGCM1", 8};
inline constexpr std::string_view kStoreManifestMagic{"BRDBMAN1", 8};
inline constexpr std::string_view kManifestName = "GCSTATE";  // the file, in the store's directory
// The store manifest (written at every seal): the structure as of the last
// sealed LSN and the table of sealed segments, so that Open need not read
// their footers' record lists.
inline constexpr std::string_view kStoreManifestName = "MANIFEST";
// u64 footer_offset, u64 footer_len, u32 footer_crc, u32 version, footer magic.
inline constexpr size_t kTrailerSize = 32;
inline constexpr size_t kRecordHeaderSize = 8;             // u32 meta_len, u32 meta_crc
inline constexpr size_t kImageBlockSize = 4 + kPageSize;   // formats 1-4: u32 crc, image
// Format 5: u32 crc, u16 hole_offset, u16 hole_length, then the image
// without the hole (its longest run of zero bytes); the crc covers all but itself.
inline constexpr size_t kHoleBlockHeader = 8;
inline constexpr size_t kMaxMetaBytes = 64u << 20;
// A meta's bytes besides its annotation, its entries and (format 2) its
// payload length: kind, flags, reserved, lsn, timeline, run_start,
// time_micros, db_size_pages, base, base_run_start, annotation length, entry count.
inline constexpr size_t kMetaFixedBytes = 64;
inline constexpr size_t kMetaEntryBytes = 5;               // u32 pgno, u8 type
inline constexpr uint32_t kMaxDbPages = 1u << 30;          // 4 TiB at 4 KiB pages
inline constexpr uint32_t kSegmentFlagCompacted = 1;
inline constexpr uint8_t kRecordFlagCollected = 1;          // skeleton written by compaction
inline constexpr uint8_t kRecordFlagPayload = 2;            // format 2: a payload block follows
// Format 5: the image blocks have holes, and each image entry of the meta
// carries its hole's length (u16), so that the meta gives every block's size.
inline constexpr uint8_t kRecordFlagHoles = 4;
inline constexpr size_t kPayloadBlockHeader = 4;            // u32 crc, then the payload bytes

enum class EntryType : uint8_t { kImage = 1, kZero = 2 };

struct PageEntry {
  PageNo pgno = 0;
  EntryType type = EntryType::kImage;
  uint16_t hole = 0;  // kImage in a record with kRecordFlagHoles: the image block's hole length
};

// Everything of a record except its page images.
struct RecordMeta {
  RecordKind kind = RecordKind::kCommit;
  uint8_t flags = 0;
  Lsn lsn = 0;
  TimelineId timeline = 0;
  Lsn run_start = 0;       // LSN of the create/reset record of the run it belongs to
  int64_t time_micros = 0;
  uint32_t db_size_pages = 0;
  Lsn base = 0;            // kCreate/kReset
  Lsn base_run_start = 0;  // kCreate/kReset with base != 0: run_start of the base record
  std::string annotation;
  std::vector<PageEntry> entries;  // ascending pgno
  // Bytes of the record's payload (stored after its images, never in the
  // meta, the footer or memory); 0: none. Encoded with kRecordFlagPayload.
  uint32_t payload_len = 0;

  size_t ImageCount() const;
};

std::string EncodeMeta(const RecordMeta& meta);
// What a decode keeps: everything, or all but the annotation (left empty;
// recovery needs no annotation, and a store's memory does not hold them).
enum class MetaParts { kAll, kNoAnnotation };
Status DecodeMeta(std::string_view in, RecordMeta* meta, MetaParts parts = MetaParts::kAll);

// Whether a record's image blocks have holes (format 5).
inline bool HasHoles(const RecordMeta& m) { return (m.flags & kRecordFlagHoles) != 0; }
// Bytes before an image block's page bytes: u32 crc (and, with holes, the hole).
inline size_t ImageBlockHeader(bool holes) { return holes ? kHoleBlockHeader : 4; }
// Bytes of the image block of entry e (a kImage entry) of a record with meta m.
inline size_t ImageBlockBytes(const RecordMeta& m, const PageEntry& e) {
  return HasHoles(m) ? kHoleBlockHeader + kPageSize - e.hole : kImageBlockSize;
}
// Bytes of all of a record's image blocks.
uint64_t ImagesBytes(const RecordMeta& m);
// The offset of each image block of a record at record_offset (in entry
// order, kImage entries only).
std::vector<uint64_t> ImageOffsets(uint64_t record_offset, uint32_t meta_len, const RecordMeta& m);
// Offset of the payload block (u32 crc + payload): after the images.
inline uint64_t PayloadOffset(uint64_t record_offset, uint32_t meta_len, const RecordMeta& m) {
  return record_offset + kRecordHeaderSize + meta_len + ImagesBytes(m);
}
// Total bytes of a record.
inline uint64_t RecordSize(uint32_t meta_len, const RecordMeta& m) {
  return kRecordHeaderSize + meta_len + ImagesBytes(m) +
         (m.payload_len > 0 ? kPayloadBlockHeader + m.payload_len : 0);
}
// Record header + meta (the images follow, each as an image block).
std::string EncodeRecordPrefix(const std::string& meta_bytes);
// The hole of a page: its longest run of zero bytes that holds a zero
// 8-byte word, as (offset, length); (0, 0) when it has no zero word.
std::pair<uint16_t, uint16_t> FindHole(std::string_view page);
// Appends one image block of page to dst: with its hole left out (format 5)
// or whole (formats 1-4, for tests of older stores). Returns the hole's
// length (0 without holes), which the record's meta must carry.
uint16_t AppendImageBlock(std::string* dst, std::string_view page, bool holes = true);
// Checks an image block's size (a hole's block: against its header) and crc.
bool ImageBlockValid(std::string_view block, bool holes);
// A block read into two buffers: head (ImageBlockHeader(holes) bytes) and
// page (up to kPageSize bytes after it); `got` bytes were read in all. Checks
// its crc and, with holes, puts the hole back: page then holds the image.
// False when the block fails a check or was not read whole.
bool RestoreImage(const char* head, bool holes, char* page, size_t got);
// The page of a valid block (ImageBlockValid) into out (kPageSize bytes).
void BlockImage(std::string_view block, bool holes, char* out);
// Appends one payload block (crc + bytes) to dst.
void AppendPayloadBlock(std::string* dst, std::string_view payload);
// Checks a payload block's crc; *payload receives the bytes after it.
bool PayloadBlockValid(std::string_view block, std::string_view* payload);

struct SegmentHeader {
  uint32_t version = kFormatVersion;  // new segments: kFormatVersion; decoded: the file's
  uint64_t number = 0;
  uint32_t flags = 0;
  std::vector<uint64_t> supersedes;  // compacted segments: the segments they replace
};
inline constexpr size_t kSegmentHeaderFixed = 28;  // before the supersedes list
// A header with no supersedes list: the fixed part and its u32 crc.
inline constexpr size_t kSegmentHeaderMinSize = kSegmentHeaderFixed + 4;
std::string EncodeSegmentHeader(const SegmentHeader& h);
// in must hold at least the full header; *len receives its length.
Status DecodeSegmentHeader(std::string_view in, SegmentHeader* h, size_t* len);
// Length of the header given its first kSegmentHeaderFixed bytes (0 if not a header).
size_t SegmentHeaderLength(std::string_view fixed);

// One footer entry per record of a sealed segment.
struct FooterEntry {
  uint64_t offset = 0;
  uint32_t meta_len = 0;
  RecordMeta meta;
};
// One page version in a sealed segment's page index (format 3): sorted by
// (pgno, lsn). run_start names the version's run as it is stored on disk
// (in-memory run numbers are not stable); offset is the image block's offset
// in the segment, 0 for a zero version (no image is ever at offset 0).
struct IndexEntry {
  PageNo pgno = 0;
  Lsn lsn = 0;
  Lsn run_start = 0;
  uint64_t offset = 0;
  bool IsZero() const { return offset == 0; }
};
inline constexpr size_t kIndexEntryBytes = 28;        // u32 pgno, u64 lsn, run_start, offset
inline constexpr size_t kIndexBlockTarget = 4096;     // bytes of a block, about
inline constexpr size_t kIndexTailSize = 24;          // u64 index_offset, dir_offset, u32 dir_len, crc
inline constexpr size_t kIndexHandleBytes = 36;       // a directory entry
inline constexpr int kFilterBitsPerPage = 10;

// A block of the page index as the directory describes it: its first and
// last keys and where it is.
struct IndexBlockHandle {
  PageNo first_pgno = 0;
  Lsn first_lsn = 0;
  PageNo last_pgno = 0;
  Lsn last_lsn = 0;
  uint64_t offset = 0;  // in the segment file
  uint32_t len = 0;     // with its crc
};
// The directory of a sealed segment's page index, and its filter.
struct IndexDirectory {
  std::vector<IndexBlockHandle> blocks;
  uint64_t filter_offset = 0;
  uint32_t filter_len = 0;  // with its crc
  Lsn min_lsn = 0;          // of its versions (0, 0: none)
  Lsn max_lsn = 0;
  uint64_t versions = 0;
};
// Where the index section is: the fixed tail just before the trailer.
struct IndexTail {
  uint64_t index_offset = 0;  // = footer_offset + footer_len
  uint64_t dir_offset = 0;
  uint32_t dir_len = 0;       // with its crc
};

// The index section of a format-3 footer (blocks, filter, directory, tail),
// written at index_offset. REQUIRES: entries sorted by (pgno, lsn).
std::string EncodeIndexSection(const std::vector<IndexEntry>& entries, uint64_t index_offset);
// False when the bytes (kIndexTailSize) fail their crc.
bool DecodeIndexTail(std::string_view in, IndexTail* t);
// Decodes a directory (with its crc); Corruption when it fails a check.
Status DecodeIndexDirectory(std::string_view in, IndexDirectory* d);
// Decodes one block (with its crc): Corruption on a crc mismatch or a bad length.
Status DecodeIndexBlock(std::string_view in, std::vector<IndexEntry>* out);
// Checks a filter (with its crc) and returns its bits and probe count (last byte).
Status DecodeFilter(std::string_view in, std::string* filter);
// The bloom filter over page numbers (LevelDB's construction: double hashing,
// k = bits per key * ln 2).
std::string BuildPageFilter(const std::vector<PageNo>& distinct_pages);
bool FilterMayContain(std::string_view filter, PageNo pgno);

// One live record in a sealed segment's record index (format 4): what the
// store's RecordTable holds of it, with its run named by its start LSN.
// Sorted by LSN; skeletons (kRecordFlagCollected) are not listed.
struct RecordIndexEntry {
  Lsn lsn = 0;
  int64_t time_micros = 0;
  Lsn run_start = 0;
  uint64_t offset = 0;  // of the record in the segment
  uint32_t meta_len = 0;
  uint32_t db_size_pages = 0;
  uint32_t payload_len = 0;
  uint32_t images = 0;  // its image entries (recorded; the meta gives the images' sizes)
};
inline constexpr size_t kRecordIndexEntryBytes = 48;
inline constexpr size_t kRecordIndexHandleBytes = 28;  // u64 first_lsn, last_lsn, offset, u32 len
struct RecordIndexHandle {
  Lsn first_lsn = 0;
  Lsn last_lsn = 0;
  uint64_t offset = 0;  // in the segment file
  uint32_t len = 0;     // with its crc
};
struct RecordIndexDirectory {
  std::vector<RecordIndexHandle> blocks;
  uint64_t records = 0;
};
// The record index entries of a footer's records (offset, meta bytes),
// sorted by LSN, skeletons left out. Corruption when a meta does not decode.
// pages, if given, gets the page number of every entry of every record
// (skeletons' included), appended in the footer's order.
// A footer's entries: each record's offset and its meta's bytes.
using FooterMetas = std::vector<std::pair<uint64_t, std::string_view>>;
Status RecordIndexOf(const FooterMetas& footer, std::vector<RecordIndexEntry>* out,
                     std::vector<PageNo>* pages = nullptr);
// The record index section (blocks, directory, tail with the IndexTail
// layout), written at `offset`. REQUIRES: entries sorted by LSN.
std::string EncodeRecordIndexSection(const std::vector<RecordIndexEntry>& entries,
                                     uint64_t offset);
Status DecodeRecordIndexDirectory(std::string_view in, RecordIndexDirectory* d);
Status DecodeRecordIndexBlock(std::string_view in, std::vector<RecordIndexEntry>* out);

// Footer body followed by the trailer (kTrailerSize); appended at footer_offset.
// version: the segment header's (a format-1 segment keeps a format-1 trailer,
// so that older builds still see it sealed). Format 3: the index section
// (EncodeIndexSection of `index`) follows the body, before the trailer.
// Format 4: the record index section (of `records`) comes between the body
// and the page index section.
std::string EncodeFooter(const FooterMetas& entries, uint64_t footer_offset,
                         uint32_t version = kFormatVersion,
                         const std::vector<IndexEntry>& index = {},
                         const std::vector<RecordIndexEntry>& records = {});
// The same bytes as EncodeFooter, handed to sink in order, in pieces: the
// body in pieces of about kFooterPieceBytes (one meta may take a piece past
// it), then the record index section, then the page index section with the
// trailer. A segment's footer holds every record's meta (megabytes): built
// whole, its fresh buffer's page faults and copies were paid by the commit
// that seals the segment. Stops at the first error of sink and returns it.
inline constexpr size_t kFooterPieceBytes = 256 * 1024;
using FooterSink = std::function<Status(std::string_view piece)>;
Status WriteFooter(const FooterMetas& entries, uint64_t footer_offset, uint32_t version,
                   const std::vector<IndexEntry>& index,
                   const std::vector<RecordIndexEntry>& records, const FooterSink& sink);
struct Trailer {
  uint64_t footer_offset = 0;
  uint64_t footer_len = 0;
  uint32_t footer_crc = 0;
  uint32_t version = 0;
};
// False when the bytes are not a valid trailer (unsealed segment).
bool DecodeTrailer(std::string_view in, Trailer* t);
Status DecodeFooter(std::string_view body, uint32_t crc, std::vector<FooterEntry>* out,
                    MetaParts parts = MetaParts::kAll);

// The GC manifest: the store's structure as of the last GC (file "GCSTATE").
struct ManifestRun {
  Lsn start = 0;
  TimelineId timeline = 0;
  Lsn base = 0;
  Lsn base_run_start = 0;
  uint64_t live_records = 0;
  std::vector<std::pair<Lsn, int64_t>> markers;  // collected stretches: first lsn, its time
};
struct ManifestTimeline {
  TimelineId id = 0;
  Lsn head = 0;
  Lsn run_start = 0;
  Lsn created_lsn = 0;
  Lsn base = 0;
  int64_t created_micros = 0;
};
// A sealed segment as the store manifest lists it. Version 3: with a
// descriptor (format-4 segments whose indexes were intact when it was
// written), what Open needs of it, so that Open opens no sealed segment: the
// file is opened, and its header and footer checked against this, on first
// use (PageStoreImpl::LoadLazySegment).
struct SegmentDescriptor {
  uint32_t version = 0;        // the header's format version (4)
  uint32_t flags = 0;          // the header's flags (kSegmentFlagCompacted)
  uint64_t footer_offset = 0;  // the trailer's fields
  uint64_t footer_len = 0;
  uint32_t footer_crc = 0;
  uint64_t index_offset = 0;   // the page index section
  Lsn min_lsn = 0;             // of its page index's versions (0, 0: none)
  Lsn max_lsn = 0;
  uint64_t versions = 0;
  Lsn rec_min_lsn = 0;         // of its record index's records (0, 0: none)
  Lsn rec_max_lsn = 0;
  uint64_t records = 0;
  friend bool operator==(const SegmentDescriptor&, const SegmentDescriptor&) = default;
};
struct ManifestSegment {
  uint64_t number = 0;
  uint64_t size = 0;
  bool described = false;  // version 3 with a descriptor
  SegmentDescriptor desc;
  // Version 4, a compacted segment: the segments it supersedes whose files
  // may still exist (a delete failed after the compaction); empty once they
  // are gone. Open deletes them without reading the segment's header.
  std::vector<uint64_t> supersedes;
  friend bool operator==(const ManifestSegment&, const ManifestSegment&) = default;
};
struct Manifest {
  Lsn last_lsn = 0;
  TimelineId last_timeline = 0;
  int64_t last_time = 0;
  uint64_t next_segment = 0;
  std::vector<std::pair<Lsn, Lsn>> collected;  // inclusive ranges within [1, last_lsn]
  std::vector<ManifestRun> runs;               // ascending start
  std::vector<ManifestTimeline> timelines;
  // The store manifest only (not in GCSTATE):
  Lsn gc_lsn = 0;  // last_lsn of the GCSTATE it builds on (0: none); GCSTATE: its own last_lsn
  std::vector<ManifestSegment> segments;                // sealed segments, ascending number
  // Version 4: the sealed segments left out of `segments` because Open found
  // them damaged (read from their footers at every Open), ascending.
  std::vector<uint64_t> damaged;
  // Version 4: the unsealed segment appended to when it was written (0:
  // none); compaction's outputs can be numbered above it.
  uint64_t tail_segment = 0;
  std::vector<std::pair<PageNo, PageNo>> known_pages;  // inclusive ranges of pages with versions
  // Version 2: the live records' payload bytes by timeline (records up to
  // last_lsn), so that Open reads no record of the segments it lists.
  bool has_payloads = false;
  std::vector<std::pair<TimelineId, uint64_t>> payloads;
  uint32_t version = 0;  // decoded: the store manifest's version
};
// GCSTATE (magic kManifestMagic): the fields above but the store manifest's.
std::string EncodeManifest(const Manifest& m);
Status DecodeManifest(std::string_view in, Manifest* m);
// MANIFEST (magic kStoreManifestMagic): every field. An older `version`
// (3: no supersedes lists or damaged numbers; 2: no segment descriptors) is
// for tests of the upgrade.
std::string EncodeStoreManifest(const Manifest& m, uint32_t version = kStoreManifestVersion);
Status DecodeStoreManifest(std::string_view in, Manifest* m);

std::string SegmentFileName(uint64_t number);
// Parses "seg-<number>.log"; false otherwise.
bool ParseSegmentFileName(std::string_view name, uint64_t* number);

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_LOG_FORMAT_H_
