// BranchFile: the main database file of a timeline, as SQLite sees it.
// The design (commit point, overlay, snapshots, cache invalidation) is
// described in docs/vfs.md; the comments here say what each slot does.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/vfs/vfs_internal.h"

namespace branchdb::storage::vfs_internal {

namespace {

// Page-1 header fields (https://www.sqlite.org/fileformat.html#the_database_header).
constexpr size_t kPageSizeOffset = 16;   // 2 bytes, big-endian
constexpr size_t kWriteVersionOffset = 18;
constexpr size_t kReadVersionOffset = 19;
constexpr size_t kCookieOffset = 40;     // schema cookie, 4 bytes big-endian
constexpr size_t kDbSizeOffset = 28;     // in-header database size in pages
constexpr size_t kHeaderBytes = 100;     // page 1's b-tree page header follows
// How many records IsLinearMove walks back before it gives up (and treats
// the move as non-linear, which only costs one cache reload).
constexpr size_t kLinearWalkLimit = 32;

std::atomic<bool> g_cache_invalidation{true};

uint32_t Get32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

void Put32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

// Whether two page-1 images differ in nothing but what SQLite rewrites at
// every commit (pager_write_changecounter(); the file format, section 1.3,
// https://www.sqlite.org/fileformat2.html): the change counter (24..27), the
// version-valid-for number (92..95) and the writer's SQLITE_VERSION_NUMBER
// (96..99).
bool SamePage1(const char* a, const char* b) {
  auto same = [&](size_t from, size_t to) {
    return std::memcmp(a + from, b + from, to - from) == 0;
  };
  return same(0, 24) && same(28, 92) && same(kHeaderBytes, kPageSize);
}

// Page 1 as SQLite writes it into an empty file (btree.c, newDatabase(), with
// default settings: no auto_vacuum, no reserved bytes): the header, and an
// empty sqlite_schema (a leaf table b-tree page without cells). SQLite writes
// it at the first write transaction, also one that then writes nothing else
// (BEGIN IMMEDIATE, or a TEMP-only script).
const char* EmptyDatabasePage1() {
  static const std::string page = [] {
    std::string p(kPageSize, '\0');
    std::memcpy(p.data(), "SQLite format 3", 16);  // with its NUL
    const unsigned char fields[] = {0x10, 0x00, 1, 1, 0, 64, 32, 32};  // offsets 16..23
    std::memcpy(p.data() + kPageSizeOffset, fields, sizeof(fields));
    Put32(p.data() + kDbSizeOffset, 1);
    p[kHeaderBytes] = 0x0d;      // leaf table b-tree page, no freeblock, no cells
    p[kHeaderBytes + 5] = 0x10;  // cell content area at 4096 (0x1000)
    return p;
  }();
  return page.data();
}

std::string Lower(const char* s) {
  std::string out(s == nullptr ? "" : s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

// The in-process writer table: which connection holds RESERVED (or more) on
// each timeline of each store.
using WriterKey = std::pair<const PageStore*, TimelineId>;
Mutex& WritersMu() {
  static auto* mu = new Mutex;  // never destroyed: used until exit; a leaf
  return *mu;
}
std::map<WriterKey, const BranchConnection*>& Writers() REQUIRES(WritersMu()) {
  static auto* writers = new std::map<WriterKey, const BranchConnection*>;
  return *writers;
}

// The SQLite result code for a failed PageStore::Commit.
int CommitErrorCode(const Status& status) {
  switch (status.code()) {
    case StatusCode::kConflict:
      return SQLITE_BUSY_SNAPSHOT;  // the head moved: the transaction is lost
    case StatusCode::kResourceExhausted:
      return SQLITE_FULL;
    default:
      return SQLITE_IOERR_WRITE;
  }
}

BranchConnection* Conn(sqlite3_file* file) {
  return reinterpret_cast<BranchFile*>(file)->conn.get();
}

// ---- sqlite3_io_methods of BranchFile ---------------------------------------

// xClose: destroys the connection state (releasing its writer slot, dropping
// any uncommitted overlay). SQLite clears pMethods afterwards.
int BranchClose(sqlite3_file* file) {
  reinterpret_cast<BranchFile*>(file)->~BranchFile();
  return SQLITE_OK;
}

// xRead: the overlay's page if the transaction wrote it, else the page of the
// snapshot state from the PageStore; zeros and SQLITE_IOERR_SHORT_READ past
// the end of the database.
int BranchRead(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset) {
  return Conn(file)->Read(buf, amt, offset);
}

// xWrite: whole 4096-byte pages only; they go to the transaction's overlay,
// never straight to the store.
int BranchWrite(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 offset) {
  return Conn(file)->Write(buf, amt, offset);
}

// xTruncate: sets the database size of the transaction (drops overlay pages
// past it); published with the commit.
int BranchTruncate(sqlite3_file* file, sqlite3_int64 size) {
  return Conn(file)->Truncate(size);
}

// xSync: nothing to do. Durability comes from PageStore::Commit at
// SQLITE_FCNTL_COMMIT_PHASETWO; xSync is not a commit point (it is skipped
// with synchronous=OFF and also runs after a rollback replayed the journal).
int BranchSync(sqlite3_file*, int) { return SQLITE_OK; }

// xFileSize: the size of the transaction's view (snapshot + overlay).
int BranchFileSize(sqlite3_file* file, sqlite3_int64* size) {
  return Conn(file)->FileSize(size);
}

// xLock: SHARED takes the snapshot (the timeline's head, or the pinned
// state); RESERVED claims the timeline's single writer slot in this process
// (SQLITE_BUSY when another connection holds it, SQLITE_BUSY_SNAPSHOT when
// the snapshot is no longer the head); PENDING/EXCLUSIVE add nothing, since
// readers read their own snapshots and never see the overlay.
int BranchLock(sqlite3_file* file, int level) { return Conn(file)->Lock(level); }

// xUnlock: dropping below RESERVED discards whatever the overlay still holds
// (a transaction that ended without COMMIT_PHASETWO leaves no trace) and
// frees the writer slot.
int BranchUnlock(sqlite3_file* file, int level) { return Conn(file)->Unlock(level); }

// xCheckReservedLock: whether any connection of this process holds the
// timeline's writer slot.
int BranchCheckReservedLock(sqlite3_file* file, int* out) {
  return Conn(file)->CheckReservedLock(out);
}

// xFileControl: COMMIT_PHASETWO is the commit point; PRAGMA refuses WAL/OFF
// journals, page-size changes and exclusive locking; VFSNAME names the VFS;
// everything else is SQLITE_NOTFOUND (SQLite's defaults).
int BranchFileControl(sqlite3_file* file, int op, void* arg) {
  return Conn(file)->FileControl(op, arg);
}

// xSectorSize: one page, so that SQLite never journals neighbours.
int BranchSectorSize(sqlite3_file*) { return static_cast<int>(kPageSize); }

// xDeviceCharacteristics: a write never damages other bytes of the "file".
// No SQLITE_IOCAP_BATCH_ATOMIC: Debian's SQLite 3.40 does not use it.
int BranchDeviceCharacteristics(sqlite3_file*) { return SQLITE_IOCAP_POWERSAFE_OVERWRITE; }

// iVersion 1: no xShm* (so no WAL) and no xFetch (no mmap).
const sqlite3_io_methods kBranchIoMethods = {
    1,
    BranchClose,
    BranchRead,
    BranchWrite,
    BranchTruncate,
    BranchSync,
    BranchFileSize,
    BranchLock,
    BranchUnlock,
    BranchCheckReservedLock,
    BranchFileControl,
    BranchSectorSize,
    BranchDeviceCharacteristics,
    nullptr,  // xShmMap
    nullptr,  // xShmLock
    nullptr,  // xShmBarrier
    nullptr,  // xShmUnmap
    nullptr,  // xFetch
    nullptr,  // xUnfetch
};

}  // namespace

void SetCacheInvalidationForTesting(bool enabled) { g_cache_invalidation = enabled; }

int OpenBranchFile(const OpenRequest& request, sqlite3_file* file) {
  auto* bf = new (file) BranchFile{};
  bf->conn = std::make_unique<BranchConnection>(request);
  file->pMethods = &kBranchIoMethods;
  return SQLITE_OK;
}

BranchConnection* ConnectionOf(sqlite3_file* file) {
  if (file == nullptr || file->pMethods != &kBranchIoMethods) return nullptr;
  return Conn(file);
}

// ---- BranchConnection --------------------------------------------------------

BranchConnection::BranchConnection(const OpenRequest& request)
    : store_(request.store),
      timeline_(request.timeline),
      read_only_(request.read_only),
      pinned_state_(request.pinned_state),
      pipelined_commits_(request.pipelined_commits) {
  snapshot_pub_ = read_only_ ? pinned_state_ : 0;
  if (!read_only_) {
    Result<Lsn> head = store_->Head(timeline_);
    if (head.ok()) snapshot_pub_ = *head;
  }
}

BranchConnection::~BranchConnection() { ReleaseWriterSlot(); }

Status BranchConnection::last_error() const {
  MutexLock lock(error_mu_);
  return last_error_;
}

int BranchConnection::Fail(int rc, Status status) {
  MutexLock lock(error_mu_);
  last_error_ = std::move(status);
  return rc;
}

bool BranchConnection::AcquireWriterSlot() {
  MutexLock lock(WritersMu());
  auto [it, inserted] = Writers().emplace(WriterKey{store_.get(), timeline_}, this);
  if (!inserted && it->second != this) return false;
  holds_writer_slot_ = true;
  return true;
}

void BranchConnection::ReleaseWriterSlot() {
  if (!holds_writer_slot_) return;
  MutexLock lock(WritersMu());
  auto it = Writers().find(WriterKey{store_.get(), timeline_});
  if (it != Writers().end() && it->second == this) Writers().erase(it);
  holds_writer_slot_ = false;
}

Status BranchConnection::UnlockedState(Lsn* state, uint32_t* size) {
  if (read_only_) {
    *state = pinned_state_;
  } else {
    Result<Lsn> head = store_->Head(timeline_);
    if (!head.ok()) return head.status();
    *state = *head;
  }
  Observe(*state);  // SQLite reads the header (schema cookie, size) at it
  if (*state == snapshot_) {
    *size = snapshot_size_;
    return Status::OK();
  }
  Result<uint32_t> pages = store_->DbSizeAt(*state);
  if (!pages.ok()) return pages.status();
  *size = *pages;
  return Status::OK();
}

bool BranchConnection::IsLinearMove(Lsn from, Lsn to) const {
  if (to < from) return false;
  Result<std::vector<RecordInfo>> history = store_->History(timeline_, to, kLinearWalkLimit);
  if (!history.ok()) return false;
  for (const RecordInfo& record : *history) {
    if (record.lsn == from) return true;
    if (record.lsn < from || record.kind != RecordKind::kCommit ||
        record.timeline != timeline_) {
      return false;
    }
  }
  return false;
}

int BranchConnection::BeginSnapshot() {
  Lsn head = pinned_state_;
  if (!read_only_) {
    Result<Lsn> current = store_->Head(timeline_);
    if (!current.ok()) {
      return Fail(SQLITE_IOERR_LOCK, current.status().WithContext("read transaction"));
    }
    head = *current;
  }
  if (head != snapshot_) {
    Result<uint32_t> pages = store_->DbSizeAt(head);
    if (!pages.ok()) {
      return Fail(SQLITE_IOERR_LOCK, pages.status().WithContext("read transaction"));
    }
    snapshot_size_ = *pages;
  }
  snapshot_ = head;
  db_size_ = snapshot_size_;
  snapshot_pub_ = head;
  Observe(head);
  // SQLite keeps its page cache (and parsed schema) across transactions as
  // long as page-1 bytes 24..39 (and the schema cookie) look unchanged. Its
  // page cache is sound only when the head is its own last commit: other
  // commits need not have stored page 1 (a commit leaves out a page 1 that
  // differs in the change counter only), so any move drops it. Its parsed
  // schema is sound when the head moved by commits made through SQLite (a
  // schema change always stores page 1 with a new cookie). Any other move
  // (ResetTimeline, a failed commit, a move we cannot see in full) forces a
  // reload of both.
  if (head != cache_lsn_ && g_cache_invalidation.load()) {
    if (cache_lsn_ == kNoLsn || !IsLinearMove(cache_lsn_, head)) {
      force_reload_ = true;
    } else {
      stale_pages_ = true;
    }
  }
  cache_lsn_ = head;
  return SQLITE_OK;
}

void BranchConnection::Observe(Lsn lsn) {
  if (lsn != kNoLsn && lsn > observed_.load()) observed_.store(lsn);
}

void BranchConnection::NoteCookie(uint32_t cookie) {
  if (!cookie_seen_ || cookie > max_cookie_seen_) max_cookie_seen_ = cookie;
  cookie_seen_ = true;
}

int BranchConnection::ReadStoredPage(PageNo pgno, Lsn state, char* out) {
  Status st = store_->ReadPageInto(state, pgno, out);
  if (!st.ok()) {
    return Fail(SQLITE_IOERR_READ, st.WithContext("read page " + std::to_string(pgno) +
                                                  " at lsn " + std::to_string(state)));
  }
  return SQLITE_OK;
}

const char* BranchConnection::StoredPage(PageNo pgno, Lsn state) {
  if (pgno == 1 && page1_lsn_ == state) return page1_.data();
  page_buf_.resize(kPageSize);
  if (ReadStoredPage(pgno, state, page_buf_.data()) != SQLITE_OK) return nullptr;
  if (pgno == 1) {
    page1_ = page_buf_;
    page1_lsn_ = state;
    return page1_.data();
  }
  return page_buf_.data();
}

// Copies bytes [in_page, in_page + n) of page 1 to dst, with the schema
// cookie shifted by cookie_delta_. SQLite reads the whole page right after a
// cache reset: decide here whether its parsed schema must be invalidated too.
void BranchConnection::ServePage1(const char* page, size_t in_page, size_t n, char* dst) {
  uint32_t stored_cookie = Get32(page + kCookieOffset);
  if (force_reload_ && in_page == 0 && n == kPageSize) {
    // Serve a cookie SQLite has never seen, so that its parsed schema
    // (whatever cookie it was loaded with) counts as out of date.
    if (cookie_seen_ && stored_cookie + cookie_delta_ <= max_cookie_seen_) {
      cookie_delta_ = max_cookie_seen_ + 1 - stored_cookie;
    }
    force_reload_ = false;
  }
  char served[kPageSize];
  std::memcpy(served, page, kPageSize);
  Put32(served + kCookieOffset, stored_cookie + cookie_delta_);
  std::memcpy(dst, served + in_page, n);
  if (in_page <= kCookieOffset && in_page + n >= kCookieOffset + 4) {
    NoteCookie(stored_cookie + cookie_delta_);
  }
}

int BranchConnection::Read(void* buf, int amt, sqlite3_int64 offset) {
  if (amt <= 0) return SQLITE_OK;
  if (offset < 0) return Fail(SQLITE_IOERR_READ, Status::InvalidArgument("negative offset"));
  Lsn state = snapshot_;
  uint32_t size = db_size_;
  if (lock_level_ == SQLITE_LOCK_NONE) {
    Status st = UnlockedState(&state, &size);
    if (!st.ok()) return Fail(SQLITE_IOERR_READ, st.WithContext("unlocked read"));
  }
  char* out = static_cast<char*>(buf);
  const uint64_t begin = static_cast<uint64_t>(offset);
  const uint64_t end = begin + static_cast<uint64_t>(amt);
  bool short_read = false;
  for (uint64_t pos = begin; pos < end;) {
    const uint64_t page_index = pos / kPageSize;
    const size_t in_page = pos % kPageSize;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(end - pos, kPageSize - in_page));
    if (page_index >= size) {
      std::memset(out + (pos - begin), 0, end - pos);
      short_read = true;
      break;
    }
    const PageNo pgno = static_cast<PageNo>(page_index + 1);
    const char* page = nullptr;
    auto it = overlay_.find(pgno);
    if (it != overlay_.end()) {
      page = it->second.data();
    } else if (pgno != 1 && n == kPageSize) {
      // The common case, a whole page SQLite does not hold: read it straight
      // into SQLite's buffer.
      if (ReadStoredPage(pgno, state, out + (pos - begin)) != SQLITE_OK) return SQLITE_IOERR_READ;
      pos += n;
      continue;
    } else {
      page = StoredPage(pgno, state);
      if (page == nullptr) return SQLITE_IOERR_READ;
    }
    if (pgno == 1) {
      ServePage1(page, in_page, n, out + (pos - begin));
    } else {
      std::memcpy(out + (pos - begin), page + in_page, n);
    }
    pos += n;
  }
  if (begin == 0 && amt == static_cast<int>(kPageSize)) {
    // SQLite's readDbPage() of page 1: it now holds these version bytes.
    std::memcpy(seen_base_.vers, out + kVersOffset, kVersBytes);
    seen_base_.cookie = Get32(out + kCookieOffset);
    seen_base_.valid = true;
    seen_written_.valid = false;
    stale_pages_ = false;  // its cache was dropped: it reads page 1 afresh
  } else if (begin == kVersOffset && amt == static_cast<int>(kVersBytes) && !short_read &&
             (force_reload_ || stale_pages_)) {
    // sqlite3PagerSharedLock()'s change check: make sure it sees a change,
    // i.e. bytes different from any SQLite may hold.
    auto taken = [&](const char* vers) {
      return (seen_base_.valid && std::memcmp(vers, seen_base_.vers, kVersBytes) == 0) ||
             (seen_written_.valid && std::memcmp(vers, seen_written_.vers, kVersBytes) == 0);
    };
    if (taken(out) || (!seen_base_.valid && !seen_written_.valid)) {
      for (unsigned char mask : {0xff, 0x80, 0x01}) {
        out[0] = static_cast<char>(out[0] ^ mask);
        if (!taken(out)) break;
        out[0] = static_cast<char>(out[0] ^ mask);
      }
    }
  }
  return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

int BranchConnection::Write(const void* buf, int amt, sqlite3_int64 offset) {
  if (read_only_) return SQLITE_READONLY;
  if (lock_level_ < SQLITE_LOCK_RESERVED) {
    return Fail(SQLITE_IOERR_WRITE, Status::FailedPrecondition("write without a write lock"));
  }
  if (offset < 0 || amt != static_cast<int>(kPageSize) || offset % kPageSize != 0) {
    return Fail(SQLITE_IOERR_WRITE,
                Status::InvalidArgument("partial page write (" + std::to_string(amt) +
                                        " bytes at " + std::to_string(offset) +
                                        "): the page size is fixed at " +
                                        std::to_string(kPageSize)));
  }
  const uint64_t page_index = static_cast<uint64_t>(offset) / kPageSize;
  if (page_index >= 0xffffffffull) {
    return Fail(SQLITE_FULL, Status::ResourceExhausted("page number out of range"));
  }
  const PageNo pgno = static_cast<PageNo>(page_index + 1);
  std::string page(static_cast<const char*>(buf), kPageSize);
  if (pgno == 1) {
    auto u = [&](size_t i) { return static_cast<unsigned char>(page[i]); };
    if (static_cast<size_t>(u(kPageSizeOffset) << 8 | u(kPageSizeOffset + 1)) != kPageSize) {
      return Fail(SQLITE_IOERR_WRITE,
                  Status::InvalidArgument("page 1 declares a page size other than " +
                                          std::to_string(kPageSize) + "; branchdb databases have " +
                                          std::to_string(kPageSize) + "-byte pages"));
    }
    // Never store a WAL-mode header (it can arrive through sqlite3_backup
    // from a WAL database): this VFS has no WAL.
    if (u(kWriteVersionOffset) == 2) page[kWriteVersionOffset] = 1;
    if (u(kReadVersionOffset) == 2) page[kReadVersionOffset] = 1;
    std::memcpy(seen_written_.vers, page.data() + kVersOffset, kVersBytes);
    seen_written_.cookie = Get32(page.data() + kCookieOffset);
    seen_written_.valid = true;
    NoteCookie(seen_written_.cookie);
    force_reload_ = false;  // SQLite's page 1 is now one it read or wrote in this state
    stale_pages_ = false;
    Put32(page.data() + kCookieOffset, seen_written_.cookie - cookie_delta_);
  }
  overlay_.insert_or_assign(pgno, std::move(page));
  db_size_ = std::max(db_size_, pgno);
  return SQLITE_OK;
}

int BranchConnection::Truncate(sqlite3_int64 size) {
  if (read_only_) return SQLITE_READONLY;
  if (lock_level_ < SQLITE_LOCK_RESERVED || size < 0) {
    return Fail(SQLITE_IOERR_TRUNCATE, Status::FailedPrecondition("truncate without a write lock"));
  }
  const uint64_t pages = (static_cast<uint64_t>(size) + kPageSize - 1) / kPageSize;
  if (pages > 0xffffffffull) return Fail(SQLITE_FULL, Status::ResourceExhausted("too large"));
  overlay_.erase(overlay_.upper_bound(static_cast<PageNo>(pages)), overlay_.end());
  db_size_ = static_cast<uint32_t>(pages);
  return SQLITE_OK;
}

int BranchConnection::FileSize(sqlite3_int64* size) {
  uint32_t pages = db_size_;
  if (lock_level_ == SQLITE_LOCK_NONE) {
    Lsn state;
    Status st = UnlockedState(&state, &pages);
    if (!st.ok()) return Fail(SQLITE_IOERR_FSTAT, st.WithContext("file size"));
  }
  *size = static_cast<sqlite3_int64>(pages) * static_cast<sqlite3_int64>(kPageSize);
  return SQLITE_OK;
}

int BranchConnection::Lock(int level) {
  if (level <= lock_level_) return SQLITE_OK;
  if (lock_level_ == SQLITE_LOCK_NONE) {
    int rc = BeginSnapshot();
    if (rc != SQLITE_OK) return rc;
    lock_level_ = SQLITE_LOCK_SHARED;
  }
  if (level >= SQLITE_LOCK_RESERVED && lock_level_ < SQLITE_LOCK_RESERVED) {
    if (read_only_) return SQLITE_READONLY;
    if (!AcquireWriterSlot()) return SQLITE_BUSY;
    Result<Lsn> head = store_->Head(timeline_);
    if (!head.ok()) {
      ReleaseWriterSlot();
      return Fail(SQLITE_IOERR_LOCK, head.status().WithContext("write lock"));
    }
    if (*head != snapshot_) {
      // Another commit (or a reset) since this read transaction began: its
      // snapshot can no longer be written on. SQLite turns this into a retry
      // (busy handler) when no transaction was open yet.
      ReleaseWriterSlot();
      return SQLITE_BUSY_SNAPSHOT;
    }
  }
  lock_level_ = level;
  return SQLITE_OK;
}

int BranchConnection::Unlock(int level) {
  if (level >= lock_level_) return SQLITE_OK;
  if (lock_level_ >= SQLITE_LOCK_RESERVED && level < SQLITE_LOCK_RESERVED) {
    overlay_.clear();
    db_size_ = snapshot_size_;
    ReleaseWriterSlot();
  }
  lock_level_ = level;
  return SQLITE_OK;
}

int BranchConnection::CheckReservedLock(int* out) {
  MutexLock lock(WritersMu());
  *out = Writers().count(WriterKey{store_.get(), timeline_}) > 0 ? 1 : 0;
  return SQLITE_OK;
}

int BranchConnection::FileControl(int op, void* arg) {
  switch (op) {
    case SQLITE_FCNTL_COMMIT_PHASETWO:
      return CommitTransaction();
    case SQLITE_FCNTL_PRAGMA:
      return Pragma(static_cast<char**>(arg));
    case SQLITE_FCNTL_VFSNAME:
      *static_cast<char**>(arg) = sqlite3_mprintf("%s", kVfsName);
      return SQLITE_OK;
    case SQLITE_FCNTL_HAS_MOVED:
      *static_cast<int*>(arg) = 0;
      return SQLITE_OK;
    case SQLITE_FCNTL_SIZE_HINT:
    case SQLITE_FCNTL_SYNC:
      return SQLITE_OK;
    default:
      return SQLITE_NOTFOUND;
  }
}

int BranchConnection::Pragma(char** args) {
  // args[1] is the pragma's name, args[2] its argument (nullptr for a query);
  // an error message goes to args[0] (sqlite3_mprintf), which SQLite reports.
  const std::string name = Lower(args[1]);
  if (args[2] == nullptr) return SQLITE_NOTFOUND;
  const std::string value = Lower(args[2]);
  if (name == "journal_mode" && value != "memory") {
    args[0] = sqlite3_mprintf(
        "branchdb: journal_mode=%s is not supported; a branchdb database always uses "
        "journal_mode=MEMORY (its page store makes each commit atomic and durable)",
        args[2]);
    return SQLITE_ERROR;
  }
  if (name == "page_size" && std::strtol(args[2], nullptr, 10) != static_cast<long>(kPageSize)) {
    args[0] = sqlite3_mprintf(
        "branchdb: page_size=%s is not supported; the page size of a branchdb database is "
        "fixed at %d bytes",  // sqlite3_mprintf: no %zu (its %z frees a string)
        args[2], static_cast<int>(kPageSize));
    return SQLITE_ERROR;
  }
  if (name == "locking_mode" && value == "exclusive") {
    args[0] = sqlite3_mprintf(
        "branchdb: locking_mode=EXCLUSIVE is not supported; a connection must see its "
        "branch move between transactions");
    return SQLITE_ERROR;
  }
  return SQLITE_NOTFOUND;
}

bool BranchConnection::DropUnchangedPages(std::string* counter_only_page1) {
  for (auto it = overlay_.begin(); it != overlay_.end();) {
    const PageNo pgno = it->first;
    const char* stored = nullptr;
    if (pgno != 1 && pgno <= snapshot_size_) {
      auto kept = committed_lsn_ == snapshot_ ? committed_.find(pgno) : committed_.end();
      stored = kept != committed_.end() ? kept->second.data() : StoredPage(pgno, snapshot_);
    }
    // A failed read keeps the page: comparing only ever makes a commit smaller.
    if (stored != nullptr && std::memcmp(stored, it->second.data(), kPageSize) == 0) {
      it = overlay_.erase(it);
    } else {
      ++it;
    }
  }
  auto page1 = overlay_.find(1);
  if (snapshot_size_ == 0) {
    // A never-written database: SQLite wrote the page 1 of an empty one.
    return db_size_ == 1 && overlay_.size() == 1 && page1 != overlay_.end() &&
           SamePage1(page1->second.data(), EmptyDatabasePage1());
  }
  if (db_size_ != snapshot_size_) return false;  // page 1 stays: its size field
  if (overlay_.empty()) return true;
  if (page1 == overlay_.end()) return false;
  const char* stored = StoredPage(1, snapshot_);
  if (stored == nullptr || !SamePage1(page1->second.data(), stored)) return false;
  if (overlay_.size() == 1) return true;
  // Other pages changed, page 1 only by its counter: leave it out of the
  // commit (its stored version stays; the caller serves SQLite's own).
  *counter_only_page1 = std::move(page1->second);
  overlay_.erase(page1);
  return false;
}

int BranchConnection::CommitTransaction() {
  if (read_only_ || lock_level_ < SQLITE_LOCK_RESERVED) return SQLITE_OK;
  if (overlay_.empty() && db_size_ == snapshot_size_) return SQLITE_OK;  // empty transaction
  std::string counter_only_page1;
  if (DropUnchangedPages(&counter_only_page1)) {
    // Nothing changed: no commit, as for an empty transaction. SQLite now
    // holds a page 1 whose change counter the store never got; the store
    // still has the old one, which a later commit of another connection can
    // bump to exactly SQLite's value. Make the next read transaction reload.
    overlay_.clear();
    db_size_ = snapshot_size_;
    cache_lsn_ = kNoLsn;
    if (g_cache_invalidation.load()) force_reload_ = true;
    return SQLITE_OK;
  }
  std::vector<PageWrite> pages;
  pages.reserve(overlay_.size());
  for (const auto& [pgno, data] : overlay_) {
    if (pgno <= db_size_) pages.push_back(PageWrite{pgno, data});
  }
  std::string annotation = annotation_.value_or("");
  std::string payload = std::move(payload_);
  annotation_.reset();
  payload_.clear();
  // Pipelined: the commit is in the log (and the head) but not yet durable;
  // the caller acknowledges it with WaitDurable once SQLite has unlocked.
  Result<Lsn> lsn =
      pipelined_commits_
          ? store_->CommitNoWait(timeline_, snapshot_, pages, db_size_, annotation, payload)
          : store_->Commit(timeline_, snapshot_, pages, db_size_, annotation, payload);
  if (!lsn.ok()) {
    overlay_.clear();
    db_size_ = snapshot_size_;
    // SQLite may keep the failed transaction's pages in its cache: make the
    // next read transaction drop them whatever the store's head looks like.
    cache_lsn_ = kNoLsn;
    if (g_cache_invalidation.load()) force_reload_ = true;
    return Fail(CommitErrorCode(lsn.status()), lsn.status().WithContext("commit"));
  }
  auto page1 = overlay_.find(1);
  if (page1 != overlay_.end()) {
    page1_ = std::move(page1->second);
    page1_lsn_ = *lsn;
  } else if (!counter_only_page1.empty()) {
    // SQLite holds its page 1 with the counter it wrote; served at this
    // state (until another state's page 1 is read), it keeps SQLite's cache.
    page1_ = std::move(counter_only_page1);
    page1_lsn_ = *lsn;
  }
  committed_.clear();
  committed_lsn_ = kNoLsn;
  if (overlay_.size() <= kKeptCommitPages) {
    for (auto& [pgno, data] : overlay_) {
      if (pgno != 1 && pgno <= db_size_) committed_.emplace(pgno, std::move(data));
    }
    committed_lsn_ = *lsn;
  }
  overlay_.clear();
  if (seen_written_.valid) {  // SQLite's page 1 is the one it just committed
    seen_base_ = seen_written_;
    seen_written_.valid = false;
  }
  snapshot_ = *lsn;
  snapshot_size_ = db_size_;
  cache_lsn_ = *lsn;
  last_commit_lsn_ = *lsn;
  snapshot_pub_ = *lsn;
  Observe(*lsn);
  MutexLock lock(error_mu_);
  last_error_ = Status::OK();
  return SQLITE_OK;
}

}  // namespace branchdb::storage::vfs_internal
