// MemFile: the anonymous temporary files SQLite asks the VFS for (temp
// databases, sorter and statement spills, transient indexes) live in memory,
// so that nothing a branchdb connection does reaches the host file system.
#include <algorithm>
#include <cstring>
#include <new>

#include "storage/vfs/vfs_internal.h"

namespace branchdb::storage::vfs_internal {

namespace {

std::string& Data(sqlite3_file* file) { return reinterpret_cast<MemFile*>(file)->data; }

// xClose: frees the contents (temp files are always delete-on-close).
int MemClose(sqlite3_file* file) {
  reinterpret_cast<MemFile*>(file)->~MemFile();
  return SQLITE_OK;
}

// xRead: bytes of the buffer; zeros and SQLITE_IOERR_SHORT_READ past its end.
int MemRead(sqlite3_file* file, void* buf, int amt, sqlite3_int64 offset) {
  const std::string& data = Data(file);
  if (amt <= 0) return SQLITE_OK;
  char* out = static_cast<char*>(buf);
  const uint64_t off = static_cast<uint64_t>(offset);
  size_t have = 0;
  if (off < data.size()) {
    have = static_cast<size_t>(std::min<uint64_t>(data.size() - off, static_cast<uint64_t>(amt)));
    std::memcpy(out, data.data() + off, have);
  }
  if (have < static_cast<size_t>(amt)) {
    std::memset(out + have, 0, static_cast<size_t>(amt) - have);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

// xWrite: grows the buffer as needed (gaps read as zeros).
int MemWrite(sqlite3_file* file, const void* buf, int amt, sqlite3_int64 offset) {
  std::string& data = Data(file);
  if (offset < 0 || amt < 0) return SQLITE_IOERR_WRITE;
  const size_t end = static_cast<size_t>(offset) + static_cast<size_t>(amt);
  if (end > data.size()) data.resize(end, '\0');
  std::memcpy(data.data() + offset, buf, static_cast<size_t>(amt));
  return SQLITE_OK;
}

// xTruncate: shrinks (or zero-extends) the buffer.
int MemTruncate(sqlite3_file* file, sqlite3_int64 size) {
  if (size < 0) return SQLITE_IOERR_TRUNCATE;
  Data(file).resize(static_cast<size_t>(size), '\0');
  return SQLITE_OK;
}

// xSync: memory needs no sync.
int MemSync(sqlite3_file*, int) { return SQLITE_OK; }

// xFileSize: the buffer's length.
int MemFileSize(sqlite3_file* file, sqlite3_int64* size) {
  *size = static_cast<sqlite3_int64>(Data(file).size());
  return SQLITE_OK;
}

// xLock / xUnlock: a temp file belongs to one connection; nothing to lock.
int MemLock(sqlite3_file*, int) { return SQLITE_OK; }
int MemUnlock(sqlite3_file*, int) { return SQLITE_OK; }

// xCheckReservedLock: nobody else can hold a lock on it.
int MemCheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}

// xFileControl: no special operations.
int MemFileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }

// xSectorSize: SQLite's usual default.
int MemSectorSize(sqlite3_file*) { return 512; }

// xDeviceCharacteristics: writes never tear neighbouring bytes.
int MemDeviceCharacteristics(sqlite3_file*) { return SQLITE_IOCAP_POWERSAFE_OVERWRITE; }

const sqlite3_io_methods kMemIoMethods = {
    1,
    MemClose,
    MemRead,
    MemWrite,
    MemTruncate,
    MemSync,
    MemFileSize,
    MemLock,
    MemUnlock,
    MemCheckReservedLock,
    MemFileControl,
    MemSectorSize,
    MemDeviceCharacteristics,
    nullptr,  // xShmMap
    nullptr,  // xShmLock
    nullptr,  // xShmBarrier
    nullptr,  // xShmUnmap
    nullptr,  // xFetch
    nullptr,  // xUnfetch
};

}  // namespace

int OpenMemFile(sqlite3_file* file) {
  new (file) MemFile{};
  file->pMethods = &kMemIoMethods;
  return SQLITE_OK;
}

}  // namespace branchdb::storage::vfs_internal
