#include "storage/record_table.h"

namespace branchdb::storage::internal {

size_t RecordTable::LowerBound(Lsn l) const {
  size_t lo = 0, hi = size_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (at(mid).lsn < l) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

bool RecordTable::Append(const RecordEntry& e) {
  if (size_ > 0 && at(size_ - 1).lsn >= e.lsn) return false;
  if (size_ == chunks_.size() * kChunk) chunks_.push_back(std::make_unique<Chunk>());
  Mutable(size_++) = e;
  return true;
}

const RecordEntry* RecordTable::Find(Lsn lsn) const {
  const size_t i = LowerBound(lsn);
  return (i < size_ && at(i).lsn == lsn) ? &at(i) : nullptr;
}

RecordEntry* RecordTable::FindMutable(Lsn lsn) {
  const size_t i = LowerBound(lsn);
  return (i < size_ && at(i).lsn == lsn) ? &Mutable(i) : nullptr;
}

uint64_t MetaCache::Charge(const RecordMeta& meta) {
  return sizeof(RecordMeta) + meta.annotation.capacity() +
         meta.entries.capacity() * sizeof(PageEntry) + kCacheValueOverhead;
}

std::shared_ptr<const RecordMeta> MetaCache::Lookup(Lsn lsn) const {
  return std::static_pointer_cast<const RecordMeta>(
      cache_->Lookup(CacheKey{owner_, CacheKind::kMeta, lsn, 0}));
}

void MetaCache::Insert(Lsn lsn, std::shared_ptr<const RecordMeta> meta) const {
  const uint64_t charge = Charge(*meta);
  cache_->Insert(CacheKey{owner_, CacheKind::kMeta, lsn, 0}, std::move(meta), charge);
}

}  // namespace branchdb::storage::internal
