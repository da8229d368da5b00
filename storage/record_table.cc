#include "storage/record_table.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>

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

void RecordOffsets::Add(uint64_t offset) {
  if (size_ == chunks_.size() * kChunk) {
    chunks_.push_back(std::make_unique<Chunk>());
    memory_.fetch_add(sizeof(Chunk), std::memory_order_relaxed);
  }
  (*chunks_[size_ / kChunk])[size_ % kChunk] = offset;
  ++size_;
}

void RecordOffsets::Clear() {
  chunks_ = std::vector<std::unique_ptr<Chunk>>();
  size_ = 0;
  memory_.store(0, std::memory_order_relaxed);
}

void MetaList::Add(uint64_t offset, std::string_view meta) {
  if (blocks_.empty() || blocks_.back().size - blocks_.back().used < meta.size()) {
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t size = std::max(kBlockBytes, (meta.size() + page - 1) / page * page);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    blocks_.push_back(Block{static_cast<char*>(p), size, 0});
    mapped_.fetch_add(size, std::memory_order_relaxed);
  }
  Block& b = blocks_.back();
  std::memcpy(b.data + b.used, meta.data(), meta.size());
  entries_.emplace_back(offset, std::string_view(b.data + b.used, meta.size()));
  b.used += meta.size();
  bytes_ += meta.size();
}

void MetaList::Clear() {
  entries_.clear();
  for (const Block& b : blocks_) ::munmap(b.data, b.size);
  blocks_.clear();
  bytes_ = 0;
  mapped_.store(0, std::memory_order_relaxed);
}

}  // namespace branchdb::storage::internal
