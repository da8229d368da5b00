// The log as the bucket holds it, read through the fences (bucket_log.h):
// keys named by the writer's epoch, an old epoch's objects beyond the next
// fence's restore point ignored. On listings alone (no S3): the rule; the
// real bucket and processes are in tests/cluster/test_takeover.py (test_3).
#include <catch2/catch.hpp>

#include <string>

#include "server/object_storage/bucket_log.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/segment_uploader.h"

namespace branchdb::server {
namespace {

// The rest of a key (after "PREFIX/PROJECT_ID/") as the uploader names it.
std::string Rest(const std::string& key) { return key.substr(std::string("p/id/").size()); }

void AddSealed(Listing& l, const std::string& name, int64_t epoch, uint64_t size) {
  const std::string key = SegmentObjectKey("p", "id", name, epoch);
  l[Rest(key)] = objstore::ObjectInfo{key, size, "etag"};
}

void AddChunk(Listing& l, const std::string& name, uint64_t offset, int64_t epoch,
              uint64_t size) {
  const std::string key = TailChunkKey("p", "id", name, offset, epoch);
  l[Rest(key)] = objstore::ObjectInfo{key, size, "etag"};
}

// "offset+bytes@epoch" per piece.
std::string Pieces(const BucketLog& log, const std::string& name) {
  std::string out;
  auto it = log.chunks.find(name);
  if (it == log.chunks.end()) return out;
  for (const LogPiece& p : it->second) {
    out += (out.empty() ? "" : " ") + std::to_string(p.offset) + "+" + std::to_string(p.bytes) +
           "@" + std::to_string(p.epoch);
  }
  return out;
}

TEST_CASE("epoch 0 keys are the keys of a bucket written before epochs; others carry e/E/") {
  CHECK(SegmentObjectKey("p", "id", "seg-000003.log") == "p/id/seg-000003.log");
  CHECK(TailChunkKey("p", "id", "seg-000003.log", 42) ==
        "p/id/tail/seg-000003.log/0000000000000042");
  CHECK(SegmentObjectKey("p", "id", "seg-000003.log", 7) ==
        "p/id/e/0000000000000007/seg-000003.log");
  CHECK(TailChunkKey("", "id", "seg-000003.log", 42, 7) ==
        "id/e/0000000000000007/tail/seg-000003.log/0000000000000042");
  int64_t epoch = -1;
  std::string name;
  REQUIRE(SplitEpoch("e/0000000000000007/seg-000003.log", &epoch, &name));
  CHECK(epoch == 7);
  CHECK(name == "seg-000003.log");
  REQUIRE(SplitEpoch("seg-000003.log", &epoch, &name));
  CHECK(epoch == 0);
  CHECK(!SplitEpoch("e/7/seg-000003.log", &epoch, &name));
  CHECK(ParseFenceEpoch("epochs/0000000000000002") == 2);
  CHECK(ParseFenceEpoch("epochs/2") == -1);
}

TEST_CASE("the upload record reads what it writes, and a record from before epochs") {
  UploadRecord r;
  r.sealed["seg-000001.log"] = {1000, "abc", 0};
  r.sealed["seg-000002.log"] = {2000, "def-2", 7};
  r.tail = {"seg-000004.log", 512, 99};
  const std::string text = r.Format();
  CHECK(text ==
        "seg-000001.log 1000 abc\nseg-000002.log 2000 def-2 7\ntail:seg-000004.log 512 99\n");
  UploadRecord back = UploadRecord::Parse(text);
  CHECK(back.Format() == text);
  CHECK(back.sealed.at("seg-000002.log").epoch == 7);
  CHECK(back.sealed.at("seg-000001.log").epoch == 0);
  CHECK((back.tail.name == "seg-000004.log" && back.tail.offset == 512 && back.tail.lsn == 99));
  // Written before epochs or tails: "NAME SIZE ETAG" lines; junk lines skipped.
  UploadRecord old = UploadRecord::Parse("seg-000003.log 30 e1\nnonsense\n\n");
  CHECK(old.sealed.size() == 1);
  CHECK(old.sealed.at("seg-000003.log").size == 30);
  CHECK(old.tail.name.empty());
  CHECK(UploadRecordPath("/d", "p1") == "/d/object_storage/p1.uploaded");
  // Compactions' outputs left out of the bucket: never taken for sealed.
  r.left_out = {"seg-000005.log", "seg-000006.log"};
  const std::string with_skips = r.Format();
  CHECK(with_skips ==
        "seg-000001.log 1000 abc\nseg-000002.log 2000 def-2 7\nskip:seg-000005.log 0 -\n"
        "skip:seg-000006.log 0 -\ntail:seg-000004.log 512 99\n");
  UploadRecord skips = UploadRecord::Parse(with_skips);
  CHECK(skips.Format() == with_skips);
  CHECK(skips.sealed.size() == 2);
  CHECK(skips.left_out == r.left_out);
}

TEST_CASE("without fences every epoch counts whole, and the newest copy of a segment wins") {
  Listing l;
  AddSealed(l, "seg-000001.log", 0, 100);
  AddSealed(l, "seg-000002.log", 0, 100);
  AddSealed(l, "seg-000002.log", 1, 100);
  AddChunk(l, "seg-000003.log", 0, 0, 50);
  AddChunk(l, "seg-000003.log", 50, 1, 30);
  const BucketLog log = ResolveBucketLog(l, {});
  CHECK(log.sealed.size() == 2);
  CHECK(log.sealed.at("seg-000002.log").epoch == 1);
  CHECK(log.TailSegment() == "seg-000003.log");
  CHECK(Pieces(log, "seg-000003.log") == "0+50@0 50+30@1");
  CHECK(log.fenced_off == 0);
}

TEST_CASE("an old epoch's late uploads beyond the next fence's point are never read") {
  Listing l;
  // Epoch 1 (the old owner): seg 1 sealed, seg 2 as chunks [0, 100).
  AddSealed(l, "seg-000001.log", 1, 1000);
  AddChunk(l, "seg-000002.log", 0, 1, 60);
  AddChunk(l, "seg-000002.log", 60, 1, 40);
  // Epoch 2 took it over from there (its fence) and went on at 100.
  std::map<int64_t, FencePoint> fences;
  fences[2] = FencePoint{1, "seg-000002.log", 100};
  AddChunk(l, "seg-000002.log", 100, 2, 25);
  // Epoch 1's uploads that landed after the take: a chunk at 100 (where
  // epoch 2 went on), a retried chunk at 60 holding more than the fence saw,
  // its sealed copy of seg 2, and a seg 3.
  AddChunk(l, "seg-000002.log", 60, 1, 90);  // replaces its 40-byte chunk (same key)
  AddChunk(l, "seg-000002.log", 150, 1, 10);
  AddSealed(l, "seg-000002.log", 1, 2000);
  AddSealed(l, "seg-000003.log", 1, 2000);
  const BucketLog log = ResolveBucketLog(l, fences);
  CHECK(log.sealed.size() == 1);
  CHECK(log.sealed.count("seg-000001.log") == 1);
  CHECK(log.TailSegment() == "seg-000002.log");
  // The retried chunk counts up to the fence only, then epoch 2's.
  CHECK(Pieces(log, "seg-000002.log") == "0+60@1 60+40@1 100+25@2");
  CHECK(log.ChunkBytes("seg-000002.log") == 125);
  CHECK(log.fenced_off == 4);
}

TEST_CASE("a fence bounds the epochs before it, also those of no fence, and epoch 0") {
  Listing l;
  AddChunk(l, "seg-000004.log", 0, 0, 10);  // a single node's, before the cluster
  AddChunk(l, "seg-000004.log", 10, 1, 10);
  AddChunk(l, "seg-000004.log", 20, 2, 10);  // epoch 2: a take that never fenced
  AddChunk(l, "seg-000004.log", 30, 2, 10);  // beyond epoch 3's point
  std::map<int64_t, FencePoint> fences;
  fences[3] = FencePoint{-1, "seg-000004.log", 30};
  AddChunk(l, "seg-000004.log", 30, 3, 5);
  const BucketLog log = ResolveBucketLog(l, fences);
  CHECK(Pieces(log, "seg-000004.log") == "0+10@0 10+10@1 20+10@2 30+5@3");
  CHECK(log.fenced_off == 1);
}

TEST_CASE("a segment's chunks never go back to an older writer") {
  Listing l;
  // Epoch 2 started the segment's chunks again at 0 (its store held less):
  // epoch 1's chunk after its end is another history.
  AddChunk(l, "seg-000005.log", 0, 1, 100);
  AddChunk(l, "seg-000005.log", 0, 2, 40);
  AddChunk(l, "seg-000005.log", 40, 1, 60);
  const BucketLog log = ResolveBucketLog(l, {});
  CHECK(Pieces(log, "seg-000005.log") == "0+40@2");
}

TEST_CASE("a fence object without its restore point is refused") {
  CHECK(!ParseFence("{\"epoch\": 2}").ok());
  auto f = ParseFence(
      "{\"epoch\":2,\"node\":\"n1\",\"catalog_version\":3,\"newest_sealed\":4,"
      "\"tail_segment\":\"seg-000006.log\",\"tail_offset\":77,\"time_micros\":1}");
  REQUIRE(f.ok());
  CHECK(f->newest_sealed == 4);
  CHECK(f->tail_segment == "seg-000006.log");
  CHECK(f->tail_offset == 77);
  CHECK(f->catalog_epoch == 0);  // a fence from before snapshots had epochs
  CHECK(f->catalog_version == 3);
  FencePoint point{4, "seg-000006.log", 77, 2, 5};
  auto back = ParseFence(FormatFence(3, "n2", point, 1));
  REQUIRE(back.ok());
  CHECK(back->catalog_epoch == 2);
  CHECK(back->catalog_version == 5);
  CHECK(back->tail_offset == 77);
}

void AddCatalog(Listing& l, int64_t epoch, uint64_t version) {
  const std::string key = CatalogObjectKey("p", "id", version, epoch);
  l[Rest(key)] = objstore::ObjectInfo{key, 10, "etag"};
}

std::string Chosen(const Listing& l, const std::map<int64_t, FencePoint>& fences) {
  auto c = ResolveCatalog(l, fences);
  return c ? std::to_string(c->epoch) + "/" + std::to_string(c->version) : "none";
}

TEST_CASE("catalog snapshots and descriptors are named by the writer's epoch") {
  CHECK(CatalogObjectKey("p", "id", 3) == "p/id/catalog/0000000000000003.db");
  CHECK(CatalogObjectKey("p", "id", 3, 7) == "p/id/e/0000000000000007/catalog/0000000000000003.db");
  CHECK(DescriptorKey("", "id") == "id/project.json");
  CHECK(DescriptorKey("p", "id", 7) == "p/id/e/0000000000000007/project.json");
  int64_t epoch = -1;
  uint64_t version = 0;
  REQUIRE(ParseCatalogKey("e/0000000000000007/catalog/0000000000000003.db", &epoch, &version));
  CHECK((epoch == 7 && version == 3));
  REQUIRE(ParseCatalogKey("catalog/0000000000000002.db", &epoch, &version));
  CHECK((epoch == 0 && version == 2));
  CHECK(!ParseCatalogKey("e/0000000000000007/seg-000001.log", &epoch, &version));
}

TEST_CASE("an old owner's catalog snapshot that lands after the takeover is never used") {
  Listing l;
  AddCatalog(l, 1, 1);
  AddCatalog(l, 1, 2);
  CHECK(Chosen(l, {}) == "1/2");
  // Epoch 2 took the project over from epoch 1's version 2.
  std::map<int64_t, FencePoint> fences;
  fences[2] = FencePoint{-1, "", 0, 1, 2};
  // Epoch 1, paused after its ownership check, lands version 3 before epoch
  // 2 uploads anything: not used; epoch 1's version 2 is.
  AddCatalog(l, 1, 3);
  CHECK(Chosen(l, fences) == "1/2");
  // Epoch 2's first snapshot: the project's catalog from then on.
  AddCatalog(l, 2, 1);
  CHECK(Chosen(l, fences) == "2/1");
  // An epoch without a fence (its node took its own project back) counts
  // whole; a fence that restored from epoch 0's keys bounds epoch 0 only.
  AddCatalog(l, 3, 1);
  CHECK(Chosen(l, fences) == "3/1");
  Listing old;
  AddCatalog(old, 0, 4);
  AddCatalog(old, 0, 5);  // after the fence
  CHECK(Chosen(old, {{1, FencePoint{-1, "", 0, 0, 4}}}) == "0/4");
  CHECK(Chosen(Listing{}, {}) == "none");
}

TEST_CASE("the descriptor is the highest epoch's") {
  Listing l;
  auto add = [&](int64_t epoch) {
    const std::string key = DescriptorKey("p", "id", epoch);
    l[Rest(key)] = objstore::ObjectInfo{key, 10, "etag"};
  };
  CHECK(NewestDescriptor(l) == nullptr);
  add(0);
  CHECK(NewestDescriptor(l)->key == "p/id/project.json");
  add(2);
  add(1);  // an old owner's late rewrite
  CHECK(NewestDescriptor(l)->key == "p/id/e/0000000000000002/project.json");
}

}  // namespace
}  // namespace branchdb::server
