// Portable parts of Env: conveniences built from its virtual calls.
#include "base/env.h"

#include <algorithm>
#include <cstring>

#include "base/process.h"

namespace branchdb {

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string out(dir);
  while (!out.empty() && out.back() == '/') out.pop_back();
  size_t start = 0;
  while (start < name.size() && name[start] == '/') ++start;
  out += '/';
  out += name.substr(start);
  return out;
}

Result<size_t> RandomAccessFile::ReadSplit(uint64_t offset, char* head, size_t head_n, size_t n,
                                           char* scratch) const {
  std::string buf(head_n + n, '\0');
  auto r = Read(offset, buf.size(), buf.data());
  if (!r.ok()) return r.status();
  std::memcpy(head, buf.data(), std::min(*r, head_n));
  if (*r > head_n) std::memcpy(scratch, buf.data() + head_n, *r - head_n);
  return *r;
}

Status PrepareSqliteFile(Env* env, const std::string& path) {
  if (!env->FileExists(path)) {
    auto file = env->NewWritableFile(path, Env::OpenMode::kAppend);
    if (!file.ok()) return file.status();
    BRANCHDB_RETURN_IF_ERROR((*file)->Close());
  }
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string p = path + suffix;
    if (env->FileExists(p)) BRANCHDB_RETURN_IF_ERROR(env->SetPermissions(p, 0600));
  }
  return Status::OK();
}

Result<std::string> Env::ReadFileToString(const std::string& path) {
  auto file = NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  uint64_t offset = 0;
  char buf[64 * 1024];
  for (;;) {
    auto n = (*file)->Read(offset, sizeof(buf), buf);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    out.append(buf, *n);
    offset += *n;
  }
  return out;
}

Status Env::WriteFileAtomic(const std::string& path, std::string_view contents,
                            uint32_t mode) {
  const std::string tmp = path + ".tmp";
  {
    auto file = NewWritableFile(tmp, OpenMode::kTruncate);
    if (!file.ok()) return file.status();
    if (mode != 0) BRANCHDB_RETURN_IF_ERROR(SetPermissions(tmp, mode));
    BRANCHDB_RETURN_IF_ERROR((*file)->Append(contents));
    BRANCHDB_RETURN_IF_ERROR((*file)->Sync());
    BRANCHDB_RETURN_IF_ERROR((*file)->Close());
  }
  BRANCHDB_RETURN_IF_ERROR(RenameFile(tmp, path));
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  if (dir.empty()) dir = "/";
  return SyncDir(dir);
}

}  // namespace branchdb
