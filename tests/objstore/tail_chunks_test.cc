// The uploader's leftovers, against the real Ceph RGW (tests/objstore/
// ceph_s3.h), with the owner nodes of catalog_fence_test
// (tests/objstore/owner_node.h):
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
