// SegmentTable and SegmentSet: a map and a set keyed by segment number, each
// in one sorted array (internal to storage/; not thread-safe).
#ifndef BRANCHDB_STORAGE_SEGMENT_TABLE_H_
#define BRANCHDB_STORAGE_SEGMENT_TABLE_H_

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace branchdb::storage::internal {

// A map keyed by segment number in one array, sorted by number: a store's
// tables of its segments (Open installs hundreds of them, in ascending
// order, with no allocation per segment; lookups are binary searches). The
// part of std::map's interface the store uses. Unlike std::map's, an insert
// or an erase invalidates iterators and references into the table.
template <typename V>
class SegmentTable {
 public:
  using value_type = std::pair<uint64_t, V>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;
  void reserve(size_t n) { v_.reserve(n); }
  // REQUIRES: n above every number in the table.
  void push_back(uint64_t n, V value) { v_.emplace_back(n, std::move(value)); }
  iterator lower_bound(uint64_t n) {
    return std::lower_bound(v_.begin(), v_.end(), n,
                            [](const value_type& e, uint64_t k) { return e.first < k; });
  }
  iterator find(uint64_t n) {
    auto it = lower_bound(n);
    return it != v_.end() && it->first == n ? it : v_.end();
  }
  const_iterator find(uint64_t n) const { return const_cast<SegmentTable*>(this)->find(n); }
  size_t count(uint64_t n) const { return find(n) != end() ? 1 : 0; }
  // The value of n, inserted (value-initialized) when absent: at the end
  // without a search when n is above every number (the usual case).
  V& operator[](uint64_t n) {
    if (v_.empty() || v_.back().first < n) return v_.emplace_back(n, V()).second;
    auto it = lower_bound(n);
    if (it == v_.end() || it->first != n) it = v_.emplace(it, n, V());
    return it->second;
  }
  const V& at(uint64_t n) const {
    auto it = find(n);
    if (it == end()) throw std::out_of_range("SegmentTable::at");
    return it->second;
  }
  V& at(uint64_t n) { return const_cast<V&>(static_cast<const SegmentTable*>(this)->at(n)); }
  void erase(iterator it) { v_.erase(it); }
  size_t erase(uint64_t n) {
    auto it = find(n);
    if (it == v_.end()) return 0;
    v_.erase(it);
    return 1;
  }
  void clear() { v_.clear(); }
  bool empty() const { return v_.empty(); }
  size_t size() const { return v_.size(); }
  iterator begin() { return v_.begin(); }
  iterator end() { return v_.end(); }
  const_iterator begin() const { return v_.begin(); }
  const_iterator end() const { return v_.end(); }
  auto rbegin() const { return v_.rbegin(); }
  auto rend() const { return v_.rend(); }

 private:
  std::vector<value_type> v_;
};

// A set of segment numbers in one sorted array (the part of std::set's
// interface the store uses).
class SegmentSet {
 public:
  using const_iterator = std::vector<uint64_t>::const_iterator;
  void reserve(size_t n) { v_.reserve(n); }
  // Appends without a search when n is above every number (the usual case).
  void insert(uint64_t n) {
    if (v_.empty() || v_.back() < n) {
      v_.push_back(n);
      return;
    }
    auto it = std::lower_bound(v_.begin(), v_.end(), n);
    if (it == v_.end() || *it != n) v_.insert(it, n);
  }
  size_t count(uint64_t n) const { return std::binary_search(v_.begin(), v_.end(), n) ? 1 : 0; }
  void clear() { v_.clear(); }
  bool empty() const { return v_.empty(); }
  size_t size() const { return v_.size(); }
  const_iterator begin() const { return v_.begin(); }
  const_iterator end() const { return v_.end(); }

 private:
  std::vector<uint64_t> v_;
};

}  // namespace branchdb::storage::internal

#endif  // BRANCHDB_STORAGE_SEGMENT_TABLE_H_
