// The uploader's leftovers, against the real Ceph RGW (tests/objstore/
// ceph_s3.h), with two owners of one project as in catalog_fence_test
// (tests/objstore/owner_node.h):
//   - tail chunks an older epoch wrote go once the new owner's sealed copy
//     of their segment is up and recorded (never before: they may be the
//     only copy of acknowledged commits), and a restore still gives every
//     commit (docs/object-storage.md, "How the tail is uploaded");
//   - chunks of this epoch that a crash between a sealed upload's record and
//     their deletion left go after a restart, at its first seal;
//   - a pass over an unchanged project directory reads no segment file (what
//     the headers of the segments still waiting said is remembered).
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "tests/objstore/owner_node.h"

namespace branchdb::testing {
namespace {

// The keys of the bucket's tail chunks of segment `name` of project id
// under prefix, whichever epoch wrote them, by epoch.
std::map<int64_t, std::vector<std::string>> ChunkKeys(const std::string& prefix,
                                                      const std::string& id,
                                                      const std::string& name) {
  const std::string root = prefix + "/" + id + "/";
  auto listed = Client()->ListAll(root);
  REQUIRE(listed.ok());
  std::map<int64_t, std::vector<std::string>> keys;
  for (const objstore::ObjectInfo& o : *listed) {
    int64_t epoch = 0;
    std::string rest;
    if (!server::SplitEpoch(o.key.substr(root.size()), &epoch, &rest)) continue;
    if (rest.rfind("tail/" + name + "/", 0) == 0) keys[epoch].push_back(o.key);
  }
  return keys;
}

struct Shop {
  storage::PageStore* store = nullptr;
  catalog::BranchInfo production;
};

Shop Open(Node& node) {
  auto store = node.catalog->Store("shop");
  REQUIRE(store.ok());
  auto pb = node.catalog->GetBranch("shop", "production", false);
  REQUIRE(pb.ok());
  return Shop{store->get(), *pb};
}

TEST_CASE("an older epoch's tail chunks go once the segment's sealed copy is up, never before") {
  const std::string prefix = "older-chunks";
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  // The old owner, epoch 1: sealed segments and a tail with records, all
  // up (the tail as chunks).
  Node a(1, 64 << 10, prefix);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  Shop sa = Open(a);
  storage::PageNo next = 1;
  std::map<storage::Lsn, storage::PageNo> states;  // LSN -> pages it has
  for (int i = 0; i < 40; ++i) {
    const storage::Lsn lsn =
        CommitPage(*sa.store, sa.production, next, static_cast<char>('a' + i % 26));
    states[lsn] = next++;
  }
  a.Upload();
  const std::string id = a.catalog->ListProjects()[0].id;
  const std::string tail = server::SegmentName(sa.store->DurableEnd().segment);
  REQUIRE(ChunkKeys(prefix, id, tail).count(1) == 1);

  // The new owner, epoch 2, takes it over from the bucket (its fence), and
  // writes into that tail: epoch 1's chunks hold bytes no sealed copy has.
  Node b(2, 64 << 10, prefix);
  const server::RestoredPoint taken = b.Restore();
  REQUIRE(taken.tail_segment == tail);
  b.Fence(taken);
  Shop sb = Open(b);
  REQUIRE(server::SegmentName(sb.store->DurableEnd().segment) == tail);
  states[CommitPage(*sb.store, sb.production, next, 'x')] = next;
  ++next;
  b.Upload();
  CHECK(ChunkKeys(prefix, id, tail).count(1) == 1);  // kept: its sealed copy is not up

  // Sealed (the new owner's copy, epoch 2), up and recorded: every chunk of
  // that segment goes, epoch 1's too.
  while (server::SegmentName(sb.store->DurableEnd().segment) == tail) {
    states[CommitPage(*sb.store, sb.production, next, 'y')] = next;
    ++next;
  }
  b.Upload();
  b.Upload();
  CHECK(ChunkKeys(prefix, id, tail).empty());
  std::map<storage::Lsn, std::vector<std::string>> expected;
  for (const auto& [lsn, pages] : states) expected[lsn] = PagesAt(*sb.store, lsn, pages);

  // A restore now gives every commit, the old owner's and the new one's.
  Node c(3, 0, prefix);
  c.Restore();
  Shop sc = Open(c);
  CHECK(*sc.store->Head(sc.production.timeline) == expected.rbegin()->first);
  for (const auto& [lsn, pages] : expected) {
    INFO("state " << lsn);
    CHECK(PagesAt(*sc.store, lsn, static_cast<storage::PageNo>(pages.size())) == pages);
  }
}

TEST_CASE("chunks a crash left after their segment's sealed copy was recorded go after a restart") {
  const std::string prefix = "leftover-chunks";
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  Node a(1, 64 << 10, prefix);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  Shop sa = Open(a);
  storage::PageNo next = 1;
  const uint64_t first = sa.store->DurableEnd().segment;
  while (sa.store->DurableEnd().segment == first) {
    CommitPage(*sa.store, sa.production, next++, 'a');
  }
  a.Upload();
  const std::string id = a.catalog->ListProjects()[0].id;
  const std::string sealed = server::SegmentName(first);
  REQUIRE(ChunkKeys(prefix, id, sealed).empty());
  // What a crash after the sealed copy's record, before its chunks' deletion,
  // leaves: a chunk of this epoch of a segment recorded sealed.
  const std::string leftover = server::TailChunkKey(prefix, id, sealed, 0, 1);
  REQUIRE(Client()->Put(leftover, std::string(4096, 'z')).ok());
  REQUIRE(ChunkKeys(prefix, id, sealed).count(1) == 1);

  // The restarted uploader lists the project once, at its first seal.
  a.RestartUploader();
  const uint64_t active = sa.store->DurableEnd().segment;
  while (sa.store->DurableEnd().segment == active) {
    CommitPage(*sa.store, sa.production, next++, 'b');
  }
  CommitPage(*sa.store, sa.production, next++, 'c');  // a record in the new tail
  a.Upload();
  CHECK(ChunkKeys(prefix, id, sealed).empty());
  // The tail's own chunks stay: no sealed copy of it yet.
  CHECK(ChunkKeys(prefix, id, server::SegmentName(sa.store->DurableEnd().segment)).count(1) == 1);
}

// Counts the opens of segment files for reading.
class SegmentOpens : public EnvWrapper {
 public:
  SegmentOpens() : EnvWrapper(Env::Default()) {}
  Result<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(const std::string& path) override {
    if (path.find("/seg-") != std::string::npos) ++opens;
    return EnvWrapper::NewRandomAccessFile(path);
  }
  std::atomic<int> opens{0};
};

TEST_CASE("a pass over an unchanged directory reads no segment file") {
  const std::string prefix = "headers-remembered";
  REQUIRE(Client()->CreateBucketIfMissing().ok());
  Node a(1, 64 << 10, prefix);
  REQUIRE(a.catalog->CreateProject("shop", {}).ok());
  REQUIRE(a.catalog->SetRestoreWindow("shop", 0).ok());
  a.Branch("g");
  auto g = a.catalog->GetBranch("shop", "g", false);
  REQUIRE(g.ok());
  Shop sa = Open(a);
  storage::PageNo next = 1;
  for (int i = 0; i < 48; ++i) {
    CommitPage(*sa.store, *g, static_cast<storage::PageNo>(100 + i % 16), 'g');
    if (i % 4 == 0) CommitPage(*sa.store, sa.production, next++, 'p');
  }
  a.Upload();  // recorded: compaction may rewrite them
  REQUIRE(a.catalog->DeleteBranch("shop", "g").ok());
  auto gc = a.catalog->Gc("shop");
  REQUIRE(gc.ok());
  REQUIRE(gc->segments_rewritten > 0);
  // Outputs numbered above the active segment, which is then sealed: below
  // the newest segment, they wait while no durable end names the active one.
  const uint64_t active = sa.store->DurableEnd().segment;
  while (sa.store->DurableEnd().segment == active) {
    CommitPage(*sa.store, sa.production, next++, 'q');
  }

  SegmentOpens counting;
  server::SegmentUploaderOptions o = a.uo;
  o.env = &counting;
  o.durable_ends = nullptr;  // no store's durable end: outputs wait
  auto u = server::SegmentUploader::Start(o, Client());
  REQUIRE(u.ok());
  REQUIRE((*u)->RunOnce().ok());  // what it had not uploaded goes up; outputs wait
  counting.opens = 0;
  REQUIRE((*u)->RunOnce().ok());
  CHECK(counting.opens == 0);

  // They did wait (each pass looked at them): sealed segments below the
  // newest that the upload record lacks.
  const std::string id = a.catalog->ListProjects()[0].id;
  auto text = Env::Default()->ReadFileToString(server::UploadRecordPath(a.dir.path(), id));
  REQUIRE(text.ok());
  const server::UploadRecord rec = server::UploadRecord::Parse(*text);
  int waiting = 0;
  for (uint64_t n = 1; n < sa.store->DurableEnd().segment; ++n) {
    const std::string name = server::SegmentName(n);
    if (Env::Default()->FileExists(a.dir.path() + "/projects/" + id + "/" + name) &&
        rec.sealed.count(name) == 0) {
      ++waiting;
    }
  }
  CHECK(waiting > 0);
}

}  // namespace
}  // namespace branchdb::testing
