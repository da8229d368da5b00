// Catalog snapshots fenced by epoch (docs/cluster.md, "Fencing"), against the
// real Ceph RGW: two owners of one project, each a catalog with its page
// store, segment uploader and catalog backup on a data directory of its own,
// as two nodes of a cluster have them. The old owner (epoch 1) uploads after
// the new one (epoch 2) took the project over from the bucket: the restore
// never uses its late snapshot, before and after the new owner's first one.
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
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
#include "tests/objstore/ceph_s3.h"
#include "tests/util/temp_dir.h"

namespace branchdb::testing {
namespace {

const std::string kBucket = "catalog-fence";
const std::string kPrefix = "pre";

std::unique_ptr<objstore::S3Client> Client() {
  auto c = objstore::S3Client::Open(SharedCephS3().Options(kBucket));
  REQUIRE(c.ok());
  return std::move(*c);
}

// One node's side of the project: its catalog, and its uploader and catalog
// backup, which upload under `epoch` (what etcd would confirm).
struct Node {
  explicit Node(int64_t owner_epoch) : epoch(owner_epoch) {
    catalog::CatalogOptions co;
    co.env = Env::Default();
    co.reaper_interval_micros = 0;
    co.gc_interval_micros = 0;
    auto cat = catalog::Catalog::Open(co, dir.path());
    REQUIRE(cat.ok());
    catalog = std::move(*cat);
    catalog::LedgerOptions lo;
    lo.env = Env::Default();
    auto led = catalog::Ledger::Open(lo, dir.path());
    REQUIRE(led.ok());
    ledger = std::move(*led);
    auto may_upload = [this](const std::string&) -> Result<int64_t> { return epoch.load(); };
    server::SegmentUploaderOptions uo;
    uo.data_dir = dir.path();
    uo.prefix = kPrefix;
    uo.interval_ms = 0;
    uo.env = Env::Default();
    uo.logger = spdlog::default_logger();
    uo.client_options = SharedCephS3().Options(kBucket);
    uo.may_upload = may_upload;
    uo.durable_ends = [c = catalog.get()] {
      std::map<std::string, server::SegmentUploaderOptions::ProjectEnd> ends;
      for (const catalog::ProjectInfo& info : c->ListProjects()) {
        auto store = c->Store(info.name);
        if (store.ok()) ends[info.id] = {info.name, (*store)->DurableEnd()};
      }
      return ends;
    };
    auto u = server::SegmentUploader::Start(uo, Client());
    REQUIRE(u.ok());
    uploader = std::move(*u);
    server::CatalogBackupOptions bo;
    bo.data_dir = dir.path();
    bo.prefix = kPrefix;
    bo.interval_ms = 0;
    bo.env = Env::Default();
    bo.logger = spdlog::default_logger();
    bo.may_upload = may_upload;
    auto b = server::CatalogBackup::Start(bo, Client());
    REQUIRE(b.ok());
    backup = std::move(*b);
  }

  // Its log, then its catalog, into the bucket (one pass each).
  void Upload() {
    REQUIRE(uploader->RunOnce().ok());
    REQUIRE(backup->RunOnce().ok());
  }

  void Branch(const std::string& name) {
    catalog::CreateBranchOptions o;
    REQUIRE(catalog->CreateBranch("shop", name, o).ok());
  }

  std::string Branches() {
    auto list = catalog->ListBranches("shop");
    REQUIRE(list.ok());
    std::vector<std::string> names;
    for (const catalog::BranchInfo& b : *list) names.push_back(b.name);
    std::sort(names.begin(), names.end());
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
    return out;
  }

  // Restores "shop" from the bucket into this node and opens it, as a
  // takeover does (without the fence: TakeOver writes it).
  server::RestoredPoint Restore() {
    server::RestoreOptions ro;
    ro.data_dir = dir.path();
    ro.prefix = kPrefix;
    ro.env = Env::Default();
    ro.logger = spdlog::default_logger();
    ro.client_options = SharedCephS3().Options(kBucket);
    auto client = Client();
    auto point = server::RestoreProject(ro, *client, "shop");
    REQUIRE(point.ok());
    REQUIRE(catalog->AdoptProject(point->id).ok());
    return *point;
  }

  // The fence of this node's epoch, for the point it restored from.
  void Fence(const server::RestoredPoint& p) {
    server::FencePoint f{p.newest_sealed, p.tail_segment, p.tail_offset, p.catalog_epoch,
                         p.catalog_version};
    objstore::PutOptions once;
    once.if_none_match = true;
    const std::string key = kPrefix + "/" + p.id + "/epochs/" +
                            server::EpochDir(epoch).substr(2, 16);
    REQUIRE(Client()->Put(key, server::FormatFence(epoch, "b", f, 1), once).ok());
  }

  TempDir dir;
  std::atomic<int64_t> epoch;
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<catalog::Ledger> ledger;
  std::unique_ptr<server::SegmentUploader> uploader;
  std::unique_ptr<server::CatalogBackup> backup;
};

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

}  // namespace
}  // namespace branchdb::testing
