// Catalog snapshots fenced by epoch (docs/cluster.md, "Fencing"), against the
// real Ceph RGW: two owners of one project, each a catalog with its page
// store, segment uploader and catalog backup on a data directory of its own,
// as two nodes of a cluster have them. The old owner (epoch 1) uploads after
// the new one (epoch 2) took the project over from the bucket: the restore
// never uses its late snapshot, before and after the new owner's first one.
// And compactions' outputs: numbered above the unsealed tail, they never hide
// that tail from a restore; they go up, are evicted and read back like any
// segment, and a restore (also after a takeover) skips them.
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/ledger.h"
#include "objstore/s3_client.h"
#include "server/object_storage/bucket_log.h"
#include "server/object_storage/catalog_backup.h"
#include "server/object_storage/restore.h"
#include "server/object_storage/segment_uploader.h"
#include "server/object_storage/tiered_env.h"
#include "tests/objstore/ceph_s3.h"
#include "tests/objstore/owner_node.h"
#include "tests/util/temp_dir.h"

namespace branchdb::testing {
namespace {

TEST_CASE("an old owner's catalog snapshot landing after a takeover is never restored") {
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  // The old owner, epoch 1: the project and a branch, in the bucket.
  Node a(1);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  a.Branch("a1");
  a.Upload();

  // The new owner, epoch 2, restores it from the bucket (its listing)...
  Node b(2);
  const server::RestoredPoint taken = b.Restore();
  CHECK(taken.catalog_epoch == 1);
  CHECK(taken.catalog_version == 1);
  CHECK(b.Branches() == "a1,production");

  // ...while the old owner, whose checks passed before its lease ran out,
  // creates a branch and lands its log and its catalog version 2 (and its
  // descriptor) after that listing, before the fence.
  a.Branch("a-late");
  a.Upload();
  auto listed = Client()->ListAll(kPrefix + "/" + taken.id + "/e/0000000000000001/catalog/");
  REQUIRE(listed.ok());
  CHECK(listed->size() == 2);
  b.Fence(taken);

  // A restore now (the new owner has uploaded no snapshot yet) takes what the
  // new owner took, never the late version.
  Node c(3);
  server::RestoredPoint p = c.Restore();
  CHECK(p.catalog_epoch == 1);
  CHECK(p.catalog_version == 1);
  CHECK(c.Branches() == "a1,production");

  // The new owner's own history goes on and its snapshot goes up under its
  // epoch; the old owner lands one more late version: still not used.
  b.Branch("b1");
  b.Upload();
  a.Branch("a-later");
  a.Upload();
  Node d(4);
  p = d.Restore();
  CHECK(p.catalog_epoch == 2);
  CHECK(p.catalog_version == 1);
  CHECK(d.Branches() == "a1,b1,production");
}

// Segment numbers of the project's store directory, ascending.
std::vector<uint64_t> SegmentNumbers(const std::string& dir) {
  std::vector<uint64_t> out;
  for (const auto& project : std::filesystem::directory_iterator(dir + "/projects")) {
    for (const auto& f : std::filesystem::directory_iterator(project.path())) {
      const std::string name = f.path().filename().string();
      if (name.rfind("seg-", 0) == 0) out.push_back(std::stoull(name.substr(4, 6)));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The compactions' outputs that node's upload record names verified in the
// bucket (their headers read through its stores' Env: from the bucket once
// evicted).
std::vector<std::string> Outputs(Node& node) {
  const std::string id = node.catalog->ListProjects()[0].id;
  auto text = Env::Default()->ReadFileToString(server::UploadRecordPath(node.dir.path(), id));
  REQUIRE(text.ok());
  std::vector<std::string> outputs;
  for (const auto& [name, u] : server::UploadRecord::Parse(*text).sealed) {
    if (server::CompactionOutputFate(node.co.env, node.dir.path() + "/projects/" + id, name,
                                     [](const std::string&) { return true; }) !=
        server::OutputFate::kNotOutput) {
      outputs.push_back(name);
    }
  }
  return outputs;
}

TEST_CASE("compactions' outputs, numbered above the unsealed tail, never hide it from a restore") {
  // Compaction numbers its output above the active segment. A sealed segment
  // above the tail in the bucket would make a restore take the tail's
  // chunks for an older segment's and drop them: the uploader leaves such
  // outputs until the tail below them is sealed. One no pass has uploaded
  // yet is not compacted again (a GC rewrites only segments the upload
  // record names).
  bool pass_between = false;
  std::string prefix = "compaction";
  SECTION("a pass between the compactions") { pass_between = true; }
  SECTION("no pass between them") { prefix = "compaction-nopass"; }
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  Node a(1, 64 << 10, prefix);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  REQUIRE(a.catalog->SetRestoreWindow("shop", 0).ok());
  a.Branch("g1");
  a.Branch("g2");
  auto store = a.catalog->Store("shop");
  REQUIRE(store.ok());
  auto branch = [&](const std::string& name) {
    auto b = a.catalog->GetBranch("shop", name, false);
    REQUIRE(b.ok());
    return *b;
  };
  const catalog::BranchInfo prod = branch("production"), g1 = branch("g1"), g2 = branch("g2");
  // Segments of mostly garbage-to-be (g1's, then g2's pages) with some live
  // pages of production's: compaction rewrites them (not only deletes).
  storage::PageNo next = 1;
  for (const catalog::BranchInfo* g : {&g1, &g2}) {
    for (int i = 0; i < 48; ++i) {
      CommitPage(**store, *g, static_cast<storage::PageNo>(100 + i), 'g');
      if (i % 4 == 0) CommitPage(**store, prod, next++, 'p');
    }
  }
  // The active segment: production's pages only (never mostly garbage, so
  // that GC does not seal it).
  const uint64_t mixed = (*store)->DurableEnd().segment;
  while ((*store)->DurableEnd().segment == mixed) CommitPage(**store, prod, next++, 'q');
  a.Upload();
  const uint64_t active = (*store)->DurableEnd().segment;

  REQUIRE(a.catalog->DeleteBranch("shop", "g1").ok());
  auto gc = a.catalog->Gc("shop");
  REQUIRE(gc.ok());
  for (int i = 0; i < 3; ++i) CommitPage(**store, prod, next++, 'r');  // acknowledged, in the tail
  if (pass_between) a.Upload();  // the first one's outputs: above the tail, they wait
  REQUIRE(a.catalog->DeleteBranch("shop", "g2").ok());
  gc = a.catalog->Gc("shop");
  REQUIRE(gc.ok());
  REQUIRE((*store)->DurableEnd().segment == active);  // the tail is still the same segment
  const std::vector<uint64_t> numbers = SegmentNumbers(a.dir.path());
  INFO("active " << active << ", highest " << numbers.back());
  REQUIRE(numbers.back() > active + 1);  // two compactions' outputs above it
  a.Upload();
  const storage::Lsn head = *(*store)->Head(prod.timeline);

  Node c(2, 0, prefix);
  const server::RestoredPoint from_c = c.Restore();
  CHECK(c.Branches() == "production");
  // Outputs waiting for the tail below them to seal hold no catalog snapshot
  // back (the bucket holds their records).
  if (pass_between) CHECK(from_c.catalog_version > 1);
  auto restored = c.catalog->Store("shop");
  REQUIRE(restored.ok());
  auto restored_head = (*restored)->Head(prod.timeline);
  REQUIRE(restored_head.ok());
  CHECK(*restored_head == head);
  std::string page;
  REQUIRE((*restored)->ReadPageAt(head, next - 1, &page).ok());
  CHECK(page == std::string(storage::kPageSize, 'r'));

  // Once the tail is sealed, the outputs go up: the segments they supersede
  // are all in the bucket. A restore skips them and gets the log as written
  // (the dropped branches' records included) and every page version.
  while ((*store)->DurableEnd().segment == active) CommitPage(**store, prod, next++, 's');
  a.Upload();
  CHECK(Outputs(a).size() >= 2);
  const storage::Lsn head2 = *(*store)->Head(prod.timeline);
  Node d(3, 0, prefix);
  const server::RestoredPoint from_d = d.Restore();
  CHECK(from_d.stats.outputs_skipped >= 2);
  CHECK(d.Branches() == "production");
  CHECK(from_d.catalog_version > 1);
  auto again = d.catalog->Store("shop");
  REQUIRE(again.ok());
  auto again_head = (*again)->Head(prod.timeline);
  REQUIRE(again_head.ok());
  CHECK(*again_head == head2);
  for (storage::PageNo pgno = 1; pgno < next; ++pgno) {
    std::string want, got;
    REQUIRE((*store)->ReadPageAt(head2, pgno, &want).ok());
    REQUIRE((*again)->ReadPageAt(head2, pgno, &got).ok());
    INFO("page " << pgno);
    CHECK(got == want);
  }
}

// The pages (1...) of store at state lsn that differ from want ("" when none).
std::string DifferingPages(storage::PageStore& store, storage::Lsn lsn,
                           const std::vector<std::string>& want) {
  const std::vector<std::string> got = PagesAt(store, lsn, want.size());
  std::string differ;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      differ += "state " + std::to_string(lsn) + " page " + std::to_string(i + 1) + " '" +
                got[i].substr(0, 1) + "' not '" + want[i].substr(0, 1) + "'; ";
    }
  }
  return differ;
}

// The LSNs of timeline t's history, newest first.
std::vector<storage::Lsn> HistoryOf(storage::PageStore& store, storage::TimelineId t) {
  auto h = store.History(t, 0, 1000000);
  REQUIRE(h.ok());
  std::vector<storage::Lsn> lsns;
  for (const storage::RecordInfo& r : *h) lsns.push_back(r.lsn);
  return lsns;
}

TEST_CASE("segments not yet in the bucket are never compacted: a restore gets the log as written") {
  // A GC rewrites (or deletes outright) only segments the upload record names
  // verified in the bucket (RewritableSegments). Three ways a sealed segment
  // used to be compacted before its upload: the bucket down during the GC, a
  // GC right after the seal with no pass between, and the active segment,
  // mostly garbage, sealed by the GC itself. Each time the output would have
  // gone up beside the originals, and a restore would not open, or would read
  // other pages.
  enum class Route { kBucketDown, kNoPass, kActive } route = Route::kBucketDown;
  std::string prefix = "gc-bucket-down";
  SECTION("the bucket down during the GC") {}
  SECTION("a GC right after the seal, no pass between") {
    route = Route::kNoPass;
    prefix = "gc-no-pass";
  }
  SECTION("the active segment mostly garbage") {
    route = Route::kActive;
    prefix = "gc-active";
  }
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  Node a(1, 64 << 10, prefix);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  REQUIRE(a.catalog->SetRestoreWindow("shop", 0).ok());
  a.Branch("g1");
  auto store = a.catalog->Store("shop");
  REQUIRE(store.ok());
  auto b1 = a.catalog->GetBranch("shop", "g1", false);
  auto bp = a.catalog->GetBranch("shop", "production", false);
  REQUIRE(b1.ok());
  REQUIRE(bp.ok());
  const catalog::BranchInfo g1 = *b1, prod = *bp;
  // Segments of mostly garbage-to-be (g1's pages) with some of production's.
  storage::PageNo next = 1;
  std::vector<storage::Lsn> states;  // production's, compared after the restore
  auto mixed = [&](char g, char p) {
    for (int i = 0; i < 24; ++i) {
      CommitPage(**store, g1, static_cast<storage::PageNo>(100 + i), g);
      if (i % 4 == 0) states.push_back(CommitPage(**store, prod, next++, p));
    }
  };
  mixed('g', 'p');
  a.Upload();
  if (route == Route::kActive) {
    // A fresh active segment, then mostly g1's pages in it.
    const uint64_t full = (*store)->DurableEnd().segment;
    while ((*store)->DurableEnd().segment == full) CommitPage(**store, prod, next++, 'q');
    a.Upload();
    for (int i = 0; i < 10; ++i) CommitPage(**store, g1, static_cast<storage::PageNo>(100 + i), 'a');
  } else {
    mixed('h', 'o');  // sealed segments not yet in the bucket
  }
  states.push_back(*(*store)->Head(prod.timeline));
  std::map<storage::Lsn, std::vector<std::string>> expected;
  for (storage::Lsn lsn : states) expected[lsn] = PagesAt(**store, lsn, next - 1);
  const std::vector<storage::Lsn> written = HistoryOf(**store, prod.timeline);
  const uint64_t active = (*store)->DurableEnd().segment;
  const std::vector<uint64_t> before = SegmentNumbers(a.dir.path());
  const std::string id = a.catalog->ListProjects()[0].id;
  auto text = Env::Default()->ReadFileToString(server::UploadRecordPath(a.dir.path(), id));
  REQUIRE(text.ok());
  const server::UploadRecord rec = server::UploadRecord::Parse(*text);

  if (route == Route::kBucketDown) {
    SharedCephS3().StopGateway();
    CHECK_FALSE(a.uploader->RunOnce().ok());
  }
  REQUIRE(a.catalog->DeleteBranch("shop", "g1").ok());
  auto gc = a.catalog->Gc("shop");
  REQUIRE(gc.ok());
  // Every segment the bucket lacked is on disk as it was, the active one not sealed.
  const std::vector<uint64_t> after = SegmentNumbers(a.dir.path());
  size_t kept = 0;
  for (uint64_t n : before) {
    if (n >= active || rec.sealed.count(server::SegmentName(n))) continue;
    CHECK(std::count(after.begin(), after.end(), n) == 1);
    ++kept;
  }
  if (route == Route::kActive) {
    CHECK((*store)->DurableEnd().segment == active);
  } else {
    CHECK(kept > 0);
  }
  if (route == Route::kBucketDown) SharedCephS3().StartGateway();

  // The bucket back: the originals go up; a later GC compacts them, its
  // outputs go up too once the tail above them is. The tail sealed, a
  // restore gets everything (and skips the outputs).
  a.Upload();
  a.Upload();
  REQUIRE(a.catalog->Gc("shop").ok());
  a.Upload();
  while ((*store)->DurableEnd().segment <= active) {
    states.push_back(CommitPage(**store, prod, next++, 's'));
  }
  a.Upload();
  a.Upload();
  const storage::Lsn head = *(*store)->Head(prod.timeline);
  expected[head] = PagesAt(**store, head, next - 1);
  auto now = Env::Default()->ReadFileToString(server::UploadRecordPath(a.dir.path(), id));
  REQUIRE(now.ok());
  const server::UploadRecord final_rec = server::UploadRecord::Parse(*now);
  CHECK(final_rec.left_out.empty());
  const std::string project_dir = a.dir.path() + "/projects/" + id;
  uint64_t outputs = 0;  // recorded verified in the bucket, as any segment
  for (const auto& [name, u] : final_rec.sealed) {
    outputs += server::CompactionOutputFate(Env::Default(), project_dir, name,
                                            [](const std::string&) { return true; }) !=
               server::OutputFate::kNotOutput;
  }
  CHECK(outputs > 0);

  Node b(2, 0, prefix);
  CHECK(b.Restore().stats.outputs_skipped >= outputs);
  auto restored = b.catalog->Store("shop");
  REQUIRE(restored.ok());
  CHECK(*(*restored)->Head(prod.timeline) == head);
  for (const auto& [lsn, pages] : expected) CHECK(DifferingPages(**restored, lsn, pages) == "");
  // The log as written: production's history as it was before any GC (the
  // records GC collected come back), and the commits since.
  std::vector<storage::Lsn> whole = HistoryOf(**restored, prod.timeline);
  REQUIRE(whole.size() >= written.size());
  CHECK(std::vector<storage::Lsn>(whole.end() - static_cast<ptrdiff_t>(written.size()),
                                  whole.end()) == written);
  // Its first GC collects them again: the original's history.
  REQUIRE(a.catalog->Gc("shop").ok());
  REQUIRE(b.catalog->Gc("shop").ok());
  CHECK(HistoryOf(**restored, prod.timeline) == HistoryOf(**store, prod.timeline));
  CHECK(DifferingPages(**restored, head, expected[head]) == "");
}

// Labels production's state lsn (a GC pin: with a restore window of 0, the
// states compared after GCs) and returns it.
storage::Lsn Pin(Node& node, storage::Lsn lsn) {
  REQUIRE(node.catalog->LabelCheckpoint("shop", "production", lsn, "s" + std::to_string(lsn)).ok());
  return lsn;
}

// Production's pages (from *next) until its store's active segment is a new
// one; returns its head.
storage::Lsn SealActive(Node& node, storage::PageNo* next) {
  auto store = node.catalog->Store("shop");
  REQUIRE(store.ok());
  auto pb = node.catalog->GetBranch("shop", "production", false);
  REQUIRE(pb.ok());
  const uint64_t active = (*store)->DurableEnd().segment;
  storage::Lsn head = 0;
  while ((*store)->DurableEnd().segment == active) head = CommitPage(**store, *pb, (*next)++, 'y');
  return head;
}

// Segments of mostly garbage-to-be (branch g's pages) with some of
// production's, then production's pages until the active segment is a new
// one (those sealed). Returns production's states it pinned.
std::vector<storage::Lsn> MixedHistory(Node& node, const std::string& g, storage::PageNo* next) {
  auto store = node.catalog->Store("shop");
  REQUIRE(store.ok());
  auto gb = node.catalog->GetBranch("shop", g, false);
  auto pb = node.catalog->GetBranch("shop", "production", false);
  REQUIRE(gb.ok());
  REQUIRE(pb.ok());
  std::vector<storage::Lsn> states;
  for (int i = 0; i < 64; ++i) {
    CommitPage(**store, *gb, static_cast<storage::PageNo>(100 + i % 32), 'g');
    if (i % 4 != 0) continue;
    const storage::Lsn lsn = CommitPage(**store, *pb, (*next)++, static_cast<char>('a' + i / 4));
    if (i % 16 == 0) states.push_back(Pin(node, lsn));
  }
  states.push_back(Pin(node, SealActive(node, next)));
  return states;
}

// Project "shop" on node (restore window 0: GC keeps only the pinned states
// and the heads), branch g1 and a MixedHistory of it, in the bucket; returns
// the pinned states.
std::vector<storage::Lsn> StartShop(Node& node, storage::PageNo* next) {
  REQUIRE(node.catalog->CreateProject("shop", {}).ok());
  REQUIRE(node.catalog->SetRestoreWindow("shop", 0).ok());
  node.Branch("g1");
  std::vector<storage::Lsn> states = MixedHistory(node, "g1", next);
  node.Upload();
  node.Upload();
  return states;
}

// Branch g deleted and collected by a GC, whose outputs (numbered above the
// active segment) go up once the active segment is sealed; returns
// production's state it pinned meanwhile.
std::vector<storage::Lsn> CollectAndSeal(Node& node, const std::string& g, storage::PageNo* next) {
  REQUIRE(node.catalog->DeleteBranch("shop", g).ok());
  REQUIRE(node.catalog->Gc("shop").ok());
  const std::vector<storage::Lsn> states = {Pin(node, SealActive(node, next))};
  node.Upload();
  node.Upload();
  return states;
}

// Production's pages 1..n at each state, read from node's store now.
std::map<storage::Lsn, std::vector<std::string>> Expected(Node& node,
                                                          const std::vector<storage::Lsn>& states,
                                                          storage::PageNo n) {
  auto store = node.catalog->Store("shop");
  REQUIRE(store.ok());
  std::map<storage::Lsn, std::vector<std::string>> pages;
  for (storage::Lsn lsn : states) pages[lsn] = PagesAt(**store, lsn, n);
  return pages;
}

// What differs between node's store and the expected pages ("" when nothing),
// and its production head against head.
std::string Differs(Node& node, const std::map<storage::Lsn, std::vector<std::string>>& expected,
                    storage::Lsn head) {
  auto store = node.catalog->Store("shop");
  REQUIRE(store.ok());
  auto pb = node.catalog->GetBranch("shop", "production", false);
  REQUIRE(pb.ok());
  std::string differ;
  if (*(*store)->Head(pb->timeline) != head) differ += "head; ";
  for (const auto& [lsn, pages] : expected) differ += DifferingPages(**store, lsn, pages);
  return differ;
}

TEST_CASE("compactions' outputs go up, are evicted like any segment, and a restore skips them") {
  // A project under GC on a small cache: its outputs are uploaded, verified
  // and evicted (the local sealed bytes stay within the budget), reads of
  // their pages come back from the bucket; a restore on a fresh node, and
  // one after a takeover whose old owner lands late outputs, reads only
  // their headers and gets every state of the original.
  const std::string prefix = "outputs-evicted";
  constexpr uint64_t kBudget = 48 << 10;  // less than one segment: all must go
  Node a(1, 64 << 10, prefix, kBudget);
  storage::PageNo next = 1;
  std::vector<storage::Lsn> states = StartShop(a, &next);
  for (storage::Lsn lsn : CollectAndSeal(a, "g1", &next)) states.push_back(lsn);
  const std::vector<std::string> outputs = Outputs(a);
  REQUIRE_FALSE(outputs.empty());
  const auto expected = Expected(a, states, next - 1);
  auto pb = a.catalog->GetBranch("shop", "production", false);
  REQUIRE(pb.ok());
  const storage::Lsn head = *(*a.catalog->Store("shop"))->Head(pb->timeline);

  // Evicted: each output is a stub, the sealed bytes left are within budget.
  REQUIRE(a.tiered->EvictOnce().ok());
  const std::string id = a.catalog->ListProjects()[0].id;
  const std::string project_dir = a.dir.path() + "/projects/" + id;
  for (const std::string& name : outputs) {
    INFO(name);
    CHECK_FALSE(Env::Default()->FileExists(project_dir + "/" + name));
    CHECK(Env::Default()->FileExists(server::EvictedStubPath(project_dir + "/" + name)));
  }
  std::map<std::string, uint64_t> local;  // segment files on disk (no stubs), by name
  for (const auto& f : std::filesystem::directory_iterator(project_dir)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) == 0 && name.size() == 14) local[name] = f.file_size();
  }
  REQUIRE_FALSE(local.empty());
  uint64_t local_sealed = 0;
  for (const auto& [name, size] : local) local_sealed += name == local.rbegin()->first ? 0 : size;
  CHECK(local_sealed <= kBudget);  // the active segment aside
  CHECK(a.tiered->stats().local_bytes <= kBudget);

  // Read back from the bucket (fresh stores, empty caches): every state as before.
  a.Reopen();
  const uint64_t fetches = a.tiered->stats().fetches;
  CHECK(Differs(a, expected, head) == "");
  CHECK(a.tiered->stats().fetches > fetches);

  // A fresh node: the outputs' headers only, the log as written.
  {
    Node c(2, 0, prefix);
    const server::RestoredPoint p = c.Restore();
    CHECK(p.stats.outputs_skipped >= outputs.size());
    CHECK(Differs(c, expected, head) == "");
  }

  // A takeover (epoch 2, fenced); the old owner lands a late GC's outputs and
  // segments beyond the fence; the new one collects and uploads its own.
  Node b(2, 64 << 10, prefix);
  b.Fence(b.Restore());
  storage::PageNo b_next = next;
  a.Branch("late");
  MixedHistory(a, "late", &next);
  a.Upload();
  CollectAndSeal(a, "late", &next);
  REQUIRE(Outputs(a).size() > outputs.size());
  b.Branch("g2");
  for (storage::Lsn lsn : MixedHistory(b, "g2", &b_next)) states.push_back(lsn);
  b.Upload();
  for (storage::Lsn lsn : CollectAndSeal(b, "g2", &b_next)) states.push_back(lsn);
  CHECK_FALSE(Outputs(b).empty());
  const auto b_expected = Expected(b, states, b_next - 1);
  auto bp = b.catalog->GetBranch("shop", "production", false);
  REQUIRE(bp.ok());
  const storage::Lsn b_head = *(*b.catalog->Store("shop"))->Head(bp->timeline);
  Node d(3, 0, prefix);
  const server::RestoredPoint p = d.Restore();
  CHECK(p.stats.outputs_skipped >= outputs.size() + Outputs(b).size());
  CHECK(Differs(d, b_expected, b_head) == "");
}

TEST_CASE("a restore whose newest sealed segment is a skipped output starts its log above it") {
  // A bucket with an output as its newest sealed segment, no tail above it
  // (deleted here). The restored store must not number a new segment as the
  // output: its tail chunks would lie below the output's sealed copy, hidden
  // from the next restore (BucketLog::TailSegment).
  const std::string prefix = "outputs-newest";
  Node a(1, 64 << 10, prefix);
  storage::PageNo next = 1;
  StartShop(a, &next);
  CollectAndSeal(a, "g1", &next);
  const std::vector<std::string> outputs = Outputs(a);
  REQUIRE_FALSE(outputs.empty());
  const std::string id = a.catalog->ListProjects()[0].id;
  auto client = Client();
  auto listed = client->ListAll(prefix + "/" + id + "/");
  REQUIRE(listed.ok());
  std::string newest_sealed;
  for (const objstore::ObjectInfo& o : *listed) {
    if (o.key.find("/tail/") != std::string::npos) {
      REQUIRE(client->Delete(o.key).ok());
    } else if (o.key.find("/seg-") != std::string::npos) {
      newest_sealed = std::max(newest_sealed, o.key.substr(o.key.rfind('/') + 1));
    }
  }
  REQUIRE(newest_sealed == outputs.back());

  Node c(2, 0, prefix);
  CHECK(c.Restore().stats.outputs_skipped >= 1);
  auto store = c.catalog->Store("shop");
  REQUIRE(store.ok());
  CHECK(server::SegmentName((*store)->DurableEnd().segment) > newest_sealed);
  auto pb = c.catalog->GetBranch("shop", "production", false);
  REQUIRE(pb.ok());
  for (int i = 0; i < 3; ++i) CommitPage(**store, *pb, next++, 'c');  // in its tail
  c.Upload();
  const storage::Lsn head = *(*store)->Head(pb->timeline);
  Node d(3, 0, prefix);
  d.Restore();
  CHECK(Differs(d, Expected(c, {head}, next - 1), head) == "");
}

TEST_CASE("an output an older build left out of the bucket goes up now, and is rewritable only then") {
  // The build before this one wrote "skip:NAME 0 -" for such outputs and let
  // GC rewrite them; now they go up at the next pass, and their lines go.
  const std::string prefix = "outputs-skip";
  Node a(1, 64 << 10, prefix);
  storage::PageNo next = 1;
  StartShop(a, &next);
  REQUIRE(a.catalog->DeleteBranch("shop", "g1").ok());
  REQUIRE(a.catalog->Gc("shop").ok());
  const std::string id = a.catalog->ListProjects()[0].id;
  const std::string dir = a.dir.path() + "/projects/" + id;
  const std::string record_path = server::UploadRecordPath(a.dir.path(), id);
  auto record = [&] {
    auto text = Env::Default()->ReadFileToString(record_path);
    REQUIRE(text.ok());
    return server::UploadRecord::Parse(*text);
  };
  auto rewritable = [&](const std::string& name) {
    return server::RewritableSegments(Env::Default(), a.dir.path(), id)(std::stoull(name.substr(4, 6)));
  };
  server::UploadRecord rec = record();
  std::vector<std::string> outputs;  // the outputs on disk, as the older build left them out
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    const std::string name = f.path().filename().string();
    if (name.size() == 14 && !rec.sealed.count(name) &&
        server::CompactionOutputFate(Env::Default(), dir, name, [](const std::string&) {
          return true;
        }) != server::OutputFate::kNotOutput) {
      outputs.push_back(name);
      rec.left_out.insert(name);
    }
  }
  REQUIRE_FALSE(outputs.empty());
  REQUIRE(Env::Default()->WriteFileAtomic(record_path, rec.Format()).ok());
  a.RestartUploader();
  for (const std::string& name : outputs) CHECK_FALSE(rewritable(name));  // not before they are up

  SealActive(a, &next);  // the outputs go up, their lines go
  a.Upload();
  rec = record();
  CHECK(rec.left_out.empty());
  for (const std::string& name : outputs) {
    INFO(name);
    CHECK(rec.sealed.count(name) == 1);
    CHECK(rewritable(name));
  }
}

}  // namespace
}  // namespace branchdb::testing
