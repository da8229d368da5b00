// See segment_headers.h.
#include "server/object_storage/segment_headers.h"

#include <algorithm>
#include <string_view>

#include "storage/log_format.h"
#include "storage/segment_reader.h"

namespace branchdb::server {

Result<SegmentHeaders::Facts> SegmentHeaders::Get(Env* env, const std::string& path,
                                                  uint64_t size, bool trailer) {
  {
    MutexLock l(mu_);
    auto it = known_.find(path);
    if (it != known_.end() && it->second.size == size && (!trailer || it->second.facts.sealed)) {
      return it->second.facts;
    }
  }
  auto file = env->NewRandomAccessFile(path);
  if (!file.ok()) return file.status();
  storage::internal::SegmentHeader h;
  size_t len = 0;
  const std::string name = path.substr(path.rfind('/') + 1);
  uint64_t self = 0;  // names it in an error
  (void)storage::internal::ParseSegmentFileName(name, &self);
  Facts f;
  const bool decoded = storage::internal::ReadSegmentHeader(file->get(), self, &h, &len).ok();
  f.output = decoded && (h.flags & storage::internal::kSegmentFlagCompacted) != 0;
  if (f.output) f.supersedes = h.supersedes;
  if (trailer && size >= storage::internal::kFooterMagic.size()) {
    char magic[8];
    auto n = (*file)->Read(size - sizeof(magic), sizeof(magic), magic);
    if (!n.ok()) return n.status();
    f.sealed = *n == sizeof(magic) &&
               std::string_view(magic, sizeof(magic)) == storage::internal::kFooterMagic;
  }
  if (decoded) {
    MutexLock l(mu_);
    known_[path] = Entry{size, f};
  }
  return f;
}

void SegmentHeaders::Forget(const std::string& path) {
  MutexLock l(mu_);
  known_.erase(path);
}

void SegmentHeaders::Prune(const std::string& dir, const std::vector<std::string>& names) {
  const std::string from = dir + "/";
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  MutexLock l(mu_);
  for (auto it = known_.lower_bound(from);
       it != known_.end() && it->first.compare(0, from.size(), from) == 0;) {
    const std::string name = it->first.substr(from.size());
    it = std::binary_search(sorted.begin(), sorted.end(), name) ? std::next(it) : known_.erase(it);
  }
}

size_t SegmentHeaders::size() const {
  MutexLock l(mu_);
  return known_.size();
}

}  // namespace branchdb::server
