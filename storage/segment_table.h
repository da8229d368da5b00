// SegmentTable: a map keyed by segment number in one sorted array (internal
// to storage/; not thread-safe).
#ifndef BRANCHDB_STORAGE_SEGMENT_TABLE_H_
#define BRANCHDB_STORAGE_SEGMENT_TABLE_H_

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace branchdb::storage::internal {

// A map keyed by segment number, filled in ascending order, in one array
// (Open's tables of MANIFEST's segments: no allocation per segment). The
// part of std::map's interface Open uses.
template <typename V>
class SegmentTable {
 public:
  using value_type = std::pair<uint64_t, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;
  void reserve(size_t n) { v_.reserve(n); }
  // REQUIRES: n above every number in the table.
  void push_back(uint64_t n, V value) { v_.emplace_back(n, std::move(value)); }
  iterator find(uint64_t n) {
    auto it = std::lower_bound(v_.begin(), v_.end(), n,
                               [](const value_type& e, uint64_t k) { return e.first < k; });
    return it != v_.end() && it->first == n ? it : v_.end();
  }
  const_iterator find(uint64_t n) const { return const_cast<SegmentTable*>(this)->find(n); }
  size_t count(uint64_t n) const { return find(n) != end() ? 1 : 0; }
  void erase(iterator it) { v_.erase(it); }
  iterator end() { return v_.end(); }
  const_iterator end() const { return v_.end(); }

 private:
  std::vector<value_type> v_;
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_SEGMENT_TABLE_H_
