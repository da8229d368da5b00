// See bucket_log.h.
#include "server/object_storage/bucket_log.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "server/object_storage/catalog_backup.h"

namespace branchdb::server {
namespace {

constexpr std::string_view kEpochDir = "e/";
constexpr std::string_view kFenceDir = "epochs/";
constexpr size_t kDigits = 16;

// The 16-digit number at text's start; -1 otherwise.
int64_t Parse16(std::string_view text) {
  if (text.size() < kDigits) return -1;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + kDigits, n);
  return ec == std::errc() && ptr == text.data() + kDigits && n >= 0 ? n : -1;
}

// How many of an object's bytes epoch's fence (the next one after it) lets
// count: all of them (size) when no later fence exists; 0 for none.
uint64_t Allowed(const std::map<int64_t, FencePoint>& fences, int64_t epoch,
                 const std::string& segment, bool chunk, uint64_t offset, uint64_t size) {
  auto next = fences.upper_bound(epoch);
  if (next == fences.end()) return size;
  const FencePoint& f = next->second;
  if (ParseSegmentNumber(segment) <= f.newest_sealed) return size;
  if (!chunk || segment != f.tail_segment || offset >= f.tail_offset) return 0;
  return std::min(size, f.tail_offset - offset);
}

}  // namespace

std::string EpochDir(int64_t epoch) {
  if (epoch <= 0) return "";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "e/%016lld/", static_cast<long long>(epoch));
  return buf;
}

bool SplitEpoch(const std::string& rest, int64_t* epoch, std::string* name) {
  if (rest.rfind(kEpochDir, 0) != 0) {
    *epoch = 0;
    *name = rest;
    return true;
  }
  const std::string_view digits = std::string_view(rest).substr(kEpochDir.size());
  const int64_t e = Parse16(digits);
  if (e <= 0 || digits.size() <= kDigits || digits[kDigits] != '/') return false;
  *epoch = e;
  *name = std::string(digits.substr(kDigits + 1));
  return true;
}

int64_t ParseFenceEpoch(const std::string& rest) {
  if (rest.rfind(kFenceDir, 0) != 0 || rest.size() != kFenceDir.size() + kDigits) return -1;
  return Parse16(std::string_view(rest).substr(kFenceDir.size()));
}

Result<FencePoint> ParseFence(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_object() || !j.contains("newest_sealed") || !j.contains("tail_offset")) {
    return Status::Corruption("a fence object without its restore point");
  }
  FencePoint f;
  f.newest_sealed = j.value("newest_sealed", int64_t{-1});
  f.tail_segment = j.value("tail_segment", std::string());
  f.tail_offset = j.value("tail_offset", uint64_t{0});
  f.catalog_epoch = j.value("catalog_epoch", int64_t{0});
  f.catalog_version = j.value("catalog_version", uint64_t{0});
  return f;
}

std::string FormatFence(int64_t epoch, const std::string& node, const FencePoint& point,
                        int64_t time_micros) {
  const nlohmann::json fence = {{"epoch", epoch},
                                {"node", node},
                                {"catalog_epoch", point.catalog_epoch},
                                {"catalog_version", point.catalog_version},
                                {"newest_sealed", point.newest_sealed},
                                {"tail_segment", point.tail_segment},
                                {"tail_offset", point.tail_offset},
                                {"time_micros", time_micros}};
  return fence.dump() + "\n";
}

Result<std::map<int64_t, FencePoint>> ReadFences(objstore::S3Client& client,
                                                 const Listing& listing, FenceCache* cache) {
  std::map<int64_t, FencePoint> fences;
  for (auto it = listing.lower_bound(std::string(kFenceDir)); it != listing.end(); ++it) {
    if (it->first.rfind(kFenceDir, 0) != 0) break;
    const int64_t epoch = ParseFenceEpoch(it->first);
    if (epoch < 0) continue;
    if (cache != nullptr) {
      if (auto known = cache->find(it->second.key); known != cache->end()) {
        fences[epoch] = known->second;  // written once: never changes
        continue;
      }
    }
    auto text = client.Get(it->second.key);
    if (!text.ok()) return text.status().WithContext("reading the fence " + it->second.key);
    auto f = ParseFence(*text);
    if (!f.ok()) return f.status().WithContext(it->second.key);
    if (cache != nullptr) (*cache)[it->second.key] = *f;
    fences[epoch] = std::move(*f);
  }
  return fences;
}

std::string BucketLog::TailSegment() const {
  int64_t newest_sealed = -1;
  for (const auto& [name, piece] : sealed) {
    newest_sealed = std::max(newest_sealed, ParseSegmentNumber(name));
  }
  std::string tail;
  int64_t tail_number = newest_sealed;
  for (const auto& [name, pieces] : chunks) {
    if (!pieces.empty() && ParseSegmentNumber(name) > tail_number) {
      tail = name;
      tail_number = ParseSegmentNumber(name);
    }
  }
  return tail;
}

uint64_t BucketLog::ChunkBytes(const std::string& name) const {
  auto it = chunks.find(name);
  if (it == chunks.end() || it->second.empty()) return 0;
  return it->second.back().offset + it->second.back().bytes;
}

BucketLog ResolveBucketLog(const Listing& listing, const std::map<int64_t, FencePoint>& fences) {
  BucketLog log;
  // Per segment, the chunks by offset, then by epoch.
  std::map<std::string, std::map<uint64_t, std::map<int64_t, LogPiece>>> candidates;
  for (const auto& [rest, info] : listing) {
    int64_t epoch = 0;
    std::string name, segment;
    uint64_t offset = 0;
    if (!SplitEpoch(rest, &epoch, &name)) continue;
    const bool chunk = ParseTailChunk(name, &segment, &offset);
    if (!chunk) {
      if (ParseSegmentNumber(name) < 0) continue;
      segment = name;
    }
    const uint64_t bytes = Allowed(fences, epoch, segment, chunk, offset, info.size);
    if (bytes < info.size) ++log.fenced_off;
    if (!chunk) {
      if (bytes < info.size) continue;  // a sealed copy counts whole or not at all
      auto& best = log.sealed[segment];
      if (best.info.key.empty() || epoch > best.epoch) best = LogPiece{info, epoch, 0, info.size};
      continue;
    }
    if (bytes == 0) continue;
    candidates[segment][offset][epoch] = LogPiece{info, epoch, offset, bytes};
  }
  for (auto& [segment, by_offset] : candidates) {
    std::vector<LogPiece>& run = log.chunks[segment];
    uint64_t pos = 0;
    int64_t epoch = 0;
    for (auto it = by_offset.find(pos); it != by_offset.end(); it = by_offset.find(pos)) {
      const LogPiece& newest = it->second.rbegin()->second;  // the highest epoch there
      if (newest.epoch < epoch) break;  // never back to an older writer
      run.push_back(newest);
      epoch = newest.epoch;
      pos += newest.bytes;
    }
  }
  return log;
}

bool ParseCatalogKey(const std::string& rest, int64_t* epoch, uint64_t* version) {
  std::string name;
  if (!SplitEpoch(rest, epoch, &name)) return false;
  const int64_t v = ParseCatalogVersion(name);
  if (v <= 0) return false;
  *version = static_cast<uint64_t>(v);
  return true;
}

std::optional<CatalogPiece> ResolveCatalog(const Listing& listing,
                                           const std::map<int64_t, FencePoint>& fences) {
  std::optional<CatalogPiece> best;
  for (const auto& [rest, info] : listing) {
    int64_t epoch = 0;
    uint64_t version = 0;
    if (!ParseCatalogKey(rest, &epoch, &version)) continue;
    auto next = fences.upper_bound(epoch);
    if (next != fences.end() &&
        std::make_pair(epoch, version) >
            std::make_pair(next->second.catalog_epoch, next->second.catalog_version)) {
      continue;  // landed after the next epoch's taker listed the bucket
    }
    if (!best || std::make_pair(epoch, version) > std::make_pair(best->epoch, best->version)) {
      best = CatalogPiece{info, epoch, version};
    }
  }
  return best;
}

bool HasCatalog(const Listing& listing) {
  for (const auto& [rest, info] : listing) {
    int64_t epoch = 0;
    uint64_t version = 0;
    if (ParseCatalogKey(rest, &epoch, &version)) return true;
  }
  return false;
}

const objstore::ObjectInfo* NewestDescriptor(const Listing& listing) {
  const objstore::ObjectInfo* newest = nullptr;
  int64_t newest_epoch = -1;
  for (const auto& [rest, info] : listing) {
    int64_t epoch = 0;
    std::string name;
    if (!SplitEpoch(rest, &epoch, &name) || name != "project.json") continue;
    if (epoch > newest_epoch) {
      newest = &info;
      newest_epoch = epoch;
    }
  }
  return newest;
}

}  // namespace branchdb::server
