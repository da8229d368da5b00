#include "storage/page_index.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace branchdb::storage::internal {

Lsn PathMap::Cutoff(uint32_t run) const {
  auto it = std::lower_bound(runs_.begin(), runs_.end(), run,
                             [](const std::pair<uint32_t, Lsn>& p, uint32_t r) { return p.first < r; });
  return (it != runs_.end() && it->first == run) ? it->second : 0;
}

Lsn PathMap::CutoffByStart(Lsn start) const {
  auto it = std::lower_bound(by_start_.begin(), by_start_.end(), start,
                             [](const std::pair<Lsn, Lsn>& p, Lsn s) { return p.first < s; });
  return (it != by_start_.end() && it->first == start) ? it->second : 0;
}

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
  return std::make_shared<const PathMap>(std::move(path), std::move(by_start));
}

namespace {

// (key, value) pairs sorted by key: sets key's value, or inserts the pair.
template <typename K>
void SetSorted(std::vector<std::pair<K, Lsn>>* v, K key, Lsn value) {
  auto it = std::lower_bound(v->begin(), v->end(), key,
                             [](const std::pair<K, Lsn>& p, K k) { return p.first < k; });
  if (it != v->end() && it->first == key) {
    it->second = value;
  } else {
    v->insert(it, std::make_pair(key, value));
  }
}

}  // namespace

std::shared_ptr<const PathMap> ExtendPathMap(const PathMap& base, const std::vector<Run>& runs,
                                             uint32_t r) {
  // r's path is its base run's, with the base run read only up to r's base,
  // and r itself on top. Both are copies of sorted arrays: r is newer than
  // every run on its path, so its entries go at (or near) their ends.
  // Capacities in powers of two, as a walk's growth leaves them: copies
  // sized one run apart at every rollback otherwise fragment the heap (a
  // soak's RSS grew by hundreds of MB, none of it in the cache's maps).
  const Run& run = runs[r];
  const size_t capacity = std::bit_ceil(base.runs().size() + 1);
  std::vector<std::pair<uint32_t, Lsn>> path;
  path.reserve(capacity);
  path.assign(base.runs().begin(), base.runs().end());
  std::vector<std::pair<Lsn, Lsn>> by_start;
  by_start.reserve(capacity);
  by_start.assign(base.by_start().begin(), base.by_start().end());
  SetSorted(&path, run.base_run, run.base);
  SetSorted(&by_start, runs[run.base_run].start, run.base);
  SetSorted(&path, r, kMaxLsn);
  SetSorted(&by_start, run.start, kMaxLsn);
  return std::make_shared<const PathMap>(std::move(path), std::move(by_start));
}

std::shared_ptr<const PathMap> PathCache::Get(const std::vector<Run>& runs, uint32_t r) {
  std::shared_ptr<const PathMap> base;
  {
    MutexLock lock(mu_);
    auto it = map_.find(r);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
    // A run a rollback (or a branch) just made is read first, and its base
    // run, the branch's head before, was read just before: copying that map
    // costs a fraction of walking a path thousands of rollbacks deep.
    auto b = runs[r].base_run == kNoRun ? map_.end() : map_.find(runs[r].base_run);
    if (b != map_.end()) base = b->second.first;
  }
  // Cached however short: rebuilding one is three allocations, on every
  // read of a branch whose page is not in memory.
  auto path = base ? ExtendPathMap(*base, runs, r) : BuildPathMap(runs, r);
  MutexLock lock(mu_);
  if (map_.count(r) == 0) {
    lru_.push_front(r);
    map_.emplace(r, std::make_pair(path, lru_.begin()));
    runs_held_ += path->runs().size();
    while (map_.size() > 1 && (map_.size() > max_maps_ || runs_held_ > max_runs_)) {
      auto last = map_.find(lru_.back());
      runs_held_ -= last->second.first->runs().size();
      map_.erase(last);
      lru_.pop_back();
    }
  }
  return path;
}

uint64_t PathCache::MemoryBytes() const {
  MutexLock lock(mu_);
  return runs_held_ * 2 * sizeof(std::pair<Lsn, Lsn>) + map_.size() * 128;
}

void PathCache::Clear() {
  MutexLock lock(mu_);
  runs_held_ = 0;
  map_.clear();
  lru_.clear();
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
// What one cached image counts for: the image, the control block, the LRU
// list node and the hash map's node and bucket.
constexpr uint64_t kPageCharge = kPageSize + 160;

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
                 std::make_shared<const Entry>(e), sizeof(Entry) + 96);
}

}  // namespace branchdb::storage::internal
