#include "storage/page_index.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace branchdb::storage::internal {

template <typename K>
CutoffMap<K>::CutoffMap(const std::vector<Entry>& sorted) : size_(sorted.size()) {
  for (size_t i = 0; i < sorted.size(); i += kChunk) {
    const size_t end = std::min(sorted.size(), i + kChunk);
    firsts_.push_back(sorted[i].first);
    chunks_.push_back(std::make_shared<const Chunk>(sorted.begin() + i, sorted.begin() + end));
  }
}

template <typename K>
size_t CutoffMap<K>::ChunkOf(K key) const {
  auto it = std::upper_bound(firsts_.begin(), firsts_.end(), key);
  return it == firsts_.begin() ? 0 : static_cast<size_t>(it - firsts_.begin()) - 1;
}

template <typename K>
Lsn CutoffMap<K>::Find(K key) const {
  if (chunks_.empty()) return 0;
  const Chunk& c = *chunks_[ChunkOf(key)];
  auto it =
      std::lower_bound(c.begin(), c.end(), key, [](const Entry& e, K k) { return e.first < k; });
  return (it != c.end() && it->first == key) ? it->second : 0;
}

template <typename K>
void CutoffMap<K>::Set(K key, Lsn cutoff) {
  // Chunks are never written once made (another map may share them): the
  // one that changes is copied. Keys above every other (a new run) go to
  // the last chunk while it has room, then to a new one.
  const size_t i = ChunkOf(key);
  if (chunks_.empty() ||
      (i + 1 == chunks_.size() && key > chunks_[i]->back().first && chunks_[i]->size() >= kChunk)) {
    chunks_.push_back(std::make_shared<const Chunk>(1, Entry{key, cutoff}));
    firsts_.push_back(key);
    ++size_;
    return;
  }
  auto copy = std::make_shared<Chunk>();
  copy->reserve(chunks_[i]->size() + 1);
  *copy = *chunks_[i];
  auto it = std::lower_bound(copy->begin(), copy->end(), key,
                             [](const Entry& e, K k) { return e.first < k; });
  if (it != copy->end() && it->first == key) {
    it->second = cutoff;
  } else {
    copy->insert(it, Entry{key, cutoff});
    ++size_;
  }
  if (copy->size() > 2 * kChunk) {
    // Inserts in the middle (a path built out of order) split a full chunk.
    auto upper = std::make_shared<const Chunk>(copy->begin() + kChunk, copy->end());
    copy->resize(kChunk);
    firsts_.insert(firsts_.begin() + static_cast<std::ptrdiff_t>(i) + 1, upper->front().first);
    chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::move(upper));
  }
  firsts_[i] = copy->front().first;
  chunks_[i] = std::move(copy);
}

template class CutoffMap<uint32_t>;
template class CutoffMap<Lsn>;

std::shared_ptr<const PathMap> BuildPathMap(const std::vector<Run>& runs, uint32_t r) {
  std::vector<std::pair<uint32_t, Lsn>> path;
  std::vector<std::pair<Lsn, Lsn>> by_start;
  Lsn cutoff = kMaxLsn;
  while (r != kNoRun) {
    path.emplace_back(r, cutoff);
    by_start.emplace_back(runs[r].start, cutoff);
    cutoff = runs[r].base;
    r = runs[r].base_run;
  }
  std::sort(path.begin(), path.end());
  std::sort(by_start.begin(), by_start.end());
  return std::make_shared<const PathMap>(CutoffMap<uint32_t>(path), CutoffMap<Lsn>(by_start));
}

std::shared_ptr<const PathMap> ExtendPathMap(const PathMap& base, const std::vector<Run>& runs,
                                             uint32_t r) {
  // r's path is its base run's, with the base run read only up to r's base,
  // and r itself on top (r is newer than every run on its path, so it goes
  // at the end). The new map shares every chunk of the base's but the ones
  // these two changes touch.
  const Run& run = runs[r];
  CutoffMap<uint32_t> path = base.runs().Derive();
  CutoffMap<Lsn> by_start = base.by_start().Derive();
  path.Set(run.base_run, run.base);
  by_start.Set(runs[run.base_run].start, run.base);
  path.Set(r, kMaxLsn);
  by_start.Set(run.start, kMaxLsn);
  return std::make_shared<const PathMap>(std::move(path), std::move(by_start));
}

std::shared_ptr<const PathMap> PathCache::Get(const std::vector<Run>& runs, uint32_t r) {
  uint32_t last_run;
  std::shared_ptr<const PathMap> last;
  {
    MutexLock lock(mu_);
    last_run = last_run_;
    last = last_;
  }
  if (last_run == r) return last;
  if (auto hit = std::static_pointer_cast<const PathMap>(cache_->Lookup(Key(r)))) return hit;
  // A run a rollback (or a branch) just made is read first, and its base
  // run, the branch's head before, was read just before: a map made from
  // that one shares its chunks, where a walk of a path thousands of
  // rollbacks deep would visit every run.
  std::shared_ptr<const PathMap> base;
  if (const uint32_t b = runs[r].base_run; b != kNoRun) {
    base = last_run == b ? last : std::static_pointer_cast<const PathMap>(cache_->Lookup(Key(b)));
  }
  // Cached however short: rebuilding one is several allocations, on every
  // read of a branch whose page is not in memory.
  auto path = base ? ExtendPathMap(*base, runs, r) : BuildPathMap(runs, r);
  cache_->Insert(Key(r), path, path->MemoryBytes() + kCacheValueOverhead);
  MutexLock lock(mu_);
  last_run_ = r;
  last_ = path;
  return path;
}

uint64_t PathCache::MemoryBytes() const {
  MutexLock lock(mu_);
  return last_ ? last_->MemoryBytes() : 0;
}

void PathCache::Clear() {
  generation_.fetch_add(1, std::memory_order_relaxed);
  MutexLock lock(mu_);
  last_run_ = kNoRun;
  last_.reset();
}

const PageIndex::Slot* PageIndex::FindSlot(PageNo pgno) const {
  size_t c = pgno / kChunk;
  if (c >= chunks_.size() || !chunks_[c]) return nullptr;
  return &(*chunks_[c])[pgno % kChunk];
}

PageIndex::Slot* PageIndex::GetSlot(PageNo pgno) {
  size_t c = pgno / kChunk;
  if (c >= chunks_.size()) chunks_.resize(c + 1);
  if (!chunks_[c]) chunks_[c] = std::make_unique<Chunk>();
  return &(*chunks_[c])[pgno % kChunk];
}

std::span<const Version> PageIndex::Versions(PageNo pgno) const {
  const Slot* s = FindSlot(pgno);
  if (s == nullptr) return {};
  if (!s->more.empty()) return std::span<const Version>(s->more);
  if (s->one.lsn != 0) return std::span<const Version>(&s->one, 1);
  return {};
}

std::span<Version> PageIndex::MutableVersions(PageNo pgno) {
  size_t c = pgno / kChunk;
  if (c >= chunks_.size() || !chunks_[c]) return {};
  Slot* s = &(*chunks_[c])[pgno % kChunk];
  if (!s->more.empty()) return std::span<Version>(s->more);
  if (s->one.lsn != 0) return std::span<Version>(&s->one, 1);
  return {};
}

const PageIndex::ByRun* PageIndex::VersionsByRun(PageNo pgno) const {
  const Slot* s = FindSlot(pgno);
  return s == nullptr ? nullptr : s->by_run.get();
}

void PageIndex::BuildByRun(Slot* s) {
  s->by_run.reset();
  if (s->more.size() < kByRunThreshold) return;
  s->by_run = std::make_unique<ByRun>();
  for (size_t i = 0; i < s->more.size(); ++i) {
    (*s->by_run)[s->more[i].run].push_back(static_cast<uint32_t>(i));
  }
}

void PageIndex::Add(PageNo pgno, const Version& v) {
  MarkKnown(pgno);
  Slot* s = GetSlot(pgno);
  ++version_count_;
  if (s->more.empty() && s->one.lsn == 0) {
    s->one = v;
    return;
  }
  if (s->more.empty()) {
    s->more.reserve(2);
    s->more.push_back(s->one);
    s->one = Version{};
  }
  if (s->more.back().lsn < v.lsn) {
    s->more.push_back(v);
    if (s->by_run) {
      (*s->by_run)[v.run].push_back(static_cast<uint32_t>(s->more.size() - 1));
    } else if (s->more.size() == kByRunThreshold) {
      BuildByRun(s);
    }
  } else {
    auto it = std::lower_bound(s->more.begin(), s->more.end(), v.lsn,
                               [](const Version& a, Lsn l) { return a.lsn < l; });
    s->more.insert(it, v);
    BuildByRun(s);
  }
}

void PageIndex::Set(PageNo pgno, std::vector<Version> versions) {
  Slot* s = GetSlot(pgno);
  version_count_ -= Versions(pgno).size();
  version_count_ += versions.size();
  s->one = Version{};
  if (versions.size() == 1) {
    s->one = versions[0];
    s->more = std::vector<Version>();
  } else {
    s->more = std::move(versions);
    s->more.shrink_to_fit();
  }
  BuildByRun(s);
}

PageNo PageIndex::MaxPgno() const {
  return chunks_.empty() ? 0 : static_cast<PageNo>(chunks_.size() * kChunk - 1);
}

std::vector<PageNo> PageIndex::PagesInRange(PageNo lo, PageNo hi) const {
  std::vector<PageNo> out;
  if (hi <= lo) return out;
  for (size_t w = (static_cast<size_t>(lo) + 1) / 64; w < known_.size() && w * 64 <= hi; ++w) {
    for (uint64_t bits = known_[w]; bits != 0; bits &= bits - 1) {
      const size_t p = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
      if (p > lo && p <= hi) out.push_back(static_cast<PageNo>(p));
    }
  }
  return out;
}

std::vector<std::pair<PageNo, PageNo>> PageIndex::KnownRanges() const {
  std::vector<std::pair<PageNo, PageNo>> out;
  for (size_t w = 0; w < known_.size(); ++w) {
    for (uint64_t bits = known_[w]; bits != 0; bits &= bits - 1) {
      const auto p = static_cast<PageNo>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
      if (!out.empty() && out.back().second + 1 == p) {
        out.back().second = p;
      } else {
        out.emplace_back(p, p);
      }
    }
  }
  return out;
}

bool PageIndex::NextPage(PageNo from, PageNo* out) const {
  for (size_t c = from / kChunk; c < chunks_.size(); ++c) {
    if (!chunks_[c]) continue;
    for (size_t i = (c == from / kChunk ? from % kChunk : 0); i < kChunk; ++i) {
      const PageNo p = static_cast<PageNo>(c * kChunk + i);
      if (!Versions(p).empty()) {
        *out = p;
        return true;
      }
    }
  }
  return false;
}

void RunList::push_back(const RunEntry& e) {
  if (size_ % kChunk == 0) {
    Chunk c;
    c.first_lsn = e.lsn;
    c.first_time = e.time_micros;
    chunks_.push_back(std::move(c));
  }
  Chunk& c = chunks_.back();
  ++size_;
  if (c.wide.empty()) {
    const bool fits = e.lsn >= c.first_lsn && e.lsn - c.first_lsn < (1ull << 31) &&
                      e.time_micros >= c.first_time &&
                      static_cast<uint64_t>(e.time_micros - c.first_time) < (1ull << 32);
    if (fits) {
      c.packed.push_back((static_cast<uint64_t>(e.lsn - c.first_lsn) << 33) |
                         (static_cast<uint64_t>(e.live) << 32) |
                         static_cast<uint64_t>(e.time_micros - c.first_time));
      return;
    }
    // Unpack the chunk: its entries are held whole from now on.
    const size_t base = (size_ - 1) / kChunk * kChunk;
    std::vector<RunEntry> wide;
    wide.reserve(c.packed.size() + 1);
    for (size_t i = 0; i < c.packed.size(); ++i) wide.push_back((*this)[base + i]);
    c.packed = std::vector<uint64_t>();
    c.wide = std::move(wide);
  }
  c.wide.push_back(e);
}

size_t RunList::UpperBound(Lsn l) const {
  size_t lo = 0, hi = size_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((*this)[mid].lsn <= l) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

size_t RunList::LowerBound(Lsn l) const {
  size_t lo = 0, hi = size_;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((*this)[mid].lsn < l) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

size_t RunList::UpperBoundTime(int64_t t, size_t end) const {
  size_t lo = 0, hi = end;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((*this)[mid].time_micros <= t) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void RunList::SortIfNeeded() {
  bool sorted = true;
  for (size_t i = 1; i < size_ && sorted; ++i) sorted = (*this)[i - 1].lsn < (*this)[i].lsn;
  if (sorted) return;
  std::vector<RunEntry> all;
  all.reserve(size_);
  for (size_t i = 0; i < size_; ++i) all.push_back((*this)[i]);
  std::sort(all.begin(), all.end(),
            [](const RunEntry& a, const RunEntry& b) { return a.lsn < b.lsn; });
  chunks_.clear();
  size_ = 0;
  for (const RunEntry& e : all) push_back(e);
}

uint64_t RunList::MemoryBytes() const {
  uint64_t n = chunks_.capacity() * sizeof(Chunk);
  for (const Chunk& c : chunks_) {
    n += c.packed.capacity() * sizeof(uint64_t) + c.wide.capacity() * sizeof(RunEntry);
  }
  return n;
}

uint64_t PageIndex::MemoryBytes() const {
  uint64_t bytes = chunks_.capacity() * sizeof(void*) + known_.capacity() * sizeof(uint64_t);
  for (const auto& c : chunks_) {
    if (!c) continue;
    bytes += sizeof(Chunk);
    for (const Slot& s : *c) {
      bytes += s.more.capacity() * sizeof(Version);
      if (s.by_run) {
        for (const auto& [run, pos] : *s.by_run) bytes += 48 + pos.capacity() * sizeof(uint32_t);
      }
    }
  }
  return bytes;
}

namespace {

// A cached page image: one allocation with its shared_ptr control block.
struct PageImage {
  char data[kPageSize];
};
// What one cached image counts for (besides the cache's own bytes).
constexpr uint64_t kPageCharge = kPageSize + kCacheValueOverhead;

}  // namespace

bool PageCache::Lookup(Lsn lsn, PageNo pgno, char* out) const {
  if (!enabled_) return false;
  Cache::Value v = cache_->Lookup(CacheKey{owner_, CacheKind::kPage, lsn, pgno});
  if (v == nullptr) return false;
  std::memcpy(out, static_cast<const PageImage*>(v.get())->data, kPageSize);
  return true;
}

void PageCache::Insert(Lsn lsn, PageNo pgno, const char* data) const {
  if (!enabled_ || cache_->capacity() == 0) return;
  auto image = std::make_shared<PageImage>();
  std::memcpy(image->data, data, kPageSize);
  cache_->Insert(CacheKey{owner_, CacheKind::kPage, lsn, pgno}, std::move(image), kPageCharge);
}

std::shared_ptr<const LocationCache::Entry> LocationCache::Lookup(Lsn run_start,
                                                                  PageNo pgno) const {
  return std::static_pointer_cast<const Entry>(
      cache_->Lookup(CacheKey{owner_, CacheKind::kLocation, run_start, pgno}));
}

void LocationCache::Insert(Lsn run_start, PageNo pgno, const Entry& e) const {
  cache_->Insert(CacheKey{owner_, CacheKind::kLocation, run_start, pgno},
                 std::make_shared<const Entry>(e), sizeof(Entry) + kCacheValueOverhead);
}

}  // namespace branchdb::storage::internal
