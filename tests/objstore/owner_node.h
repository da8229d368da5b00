// One node's side of a project in a cluster, for the objstore tests that
// need two owners of one project on one bucket (the real Ceph RGW,
// tests/objstore/ceph_s3.h): its catalog with its page stores, and its
// segment uploader and catalog backup, which upload under the node's epoch
// (what etcd would confirm), on a data directory of its own.
#ifndef BRANCHDB_TESTS_OBJSTORE_OWNER_NODE_H_
#define BRANCHDB_TESTS_OBJSTORE_OWNER_NODE_H_

#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
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
#include "tests/util/temp_dir.h"

namespace branchdb::testing {

inline const std::string kBucket = "catalog-fence";
inline const std::string kPrefix = "pre";

inline std::unique_ptr<objstore::S3Client> Client() {
  auto c = objstore::S3Client::Open(SharedCephS3().Options(kBucket));
  REQUIRE(c.ok());
  return std::move(*c);
}

// One node's side of the project: its catalog, and its uploader and catalog
// backup, which upload under `epoch` (what etcd would confirm). With
// cache_bytes, its stores run on a tiering Env with that budget (evicting on
// Evict() only), as a server's with local_cache_mb.
struct Node {
  explicit Node(int64_t owner_epoch, uint64_t segment_bytes = 0, std::string bucket_prefix = kPrefix,
                uint64_t cache_bytes = 0)
      : epoch(owner_epoch), prefix(std::move(bucket_prefix)) {
    co.env = Env::Default();
    co.reaper_interval_micros = 0;
    co.gc_interval_micros = 0;
    if (segment_bytes > 0) co.store_options.segment_bytes = segment_bytes;
    // As the server sets it: compaction rewrites only what the bucket holds.
    co.may_rewrite = [d = dir.path()](const std::string& id) {
      return server::RewritableSegments(Env::Default(), d, id);
    };
    if (cache_bytes > 0) {
      server::TieredEnvOptions to;
      to.data_dir = dir.path();
      to.prefix = prefix;
      to.local_cache_bytes = cache_bytes;
      to.block_bytes = 16 << 10;
      to.fetch_cache_bytes = 16 << 10;
      to.interval_ms = 0;
      to.logger = spdlog::default_logger();
      auto t = server::TieredEnv::Create(Env::Default(), to, Client());
      REQUIRE(t.ok());
      tiered = std::move(*t);
      co.env = tiered.get();
    }
    Reopen();
    catalog::LedgerOptions lo;
    lo.env = Env::Default();
    auto led = catalog::Ledger::Open(lo, dir.path());
    REQUIRE(led.ok());
    ledger = std::move(*led);
    auto may_upload = [this](const std::string&) -> Result<int64_t> { return epoch.load(); };
    uo.data_dir = dir.path();
    uo.prefix = prefix;
    uo.interval_ms = 0;
    uo.env = Env::Default();
    uo.logger = spdlog::default_logger();
    uo.client_options = SharedCephS3().Options(kBucket);
    uo.may_upload = may_upload;
    uo.durable_ends = [this] {
      std::map<std::string, server::SegmentUploaderOptions::ProjectEnd> ends;
      for (const catalog::ProjectInfo& info : catalog->ListProjects()) {
        auto store = catalog->Store(info.name);
        if (store.ok()) ends[info.id] = {info.name, (*store)->DurableEnd()};
      }
      return ends;
    };
    auto u = server::SegmentUploader::Start(uo, Client());
    REQUIRE(u.ok());
    uploader = std::move(*u);
    server::CatalogBackupOptions bo;
    bo.data_dir = dir.path();
    bo.prefix = prefix;
    bo.interval_ms = 0;
    bo.env = Env::Default();
    bo.logger = spdlog::default_logger();
    bo.may_upload = may_upload;
    auto b = server::CatalogBackup::Start(bo, Client());
    REQUIRE(b.ok());
    backup = std::move(*b);
  }

  // The catalog closed (its stores and their caches with it) and opened again.
  void Reopen() {
    catalog.reset();
    auto cat = catalog::Catalog::Open(co, dir.path());
    REQUIRE(cat.ok());
    catalog = std::move(*cat);
  }

  // A new uploader (as after a restart: it reads the upload record again).
  void RestartUploader() {
    uploader.reset();
    auto u = server::SegmentUploader::Start(uo, Client());
    REQUIRE(u.ok());
    uploader = std::move(*u);
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
    ro.prefix = prefix;
    ro.env = Env::Default();
    ro.logger = spdlog::default_logger();
    ro.client_options = SharedCephS3().Options(kBucket);
    auto client = Client();
    auto point = server::RestoreProject(ro, *client, "shop");
    INFO(point.status().ToString());
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
    const std::string key = prefix + "/" + p.id + "/epochs/" +
                            server::EpochDir(epoch).substr(2, 16);
    REQUIRE(Client()->Put(key, server::FormatFence(epoch, "b", f, 1), once).ok());
  }

  TempDir dir;
  std::atomic<int64_t> epoch;
  std::string prefix;  // of its keys in the bucket
  catalog::CatalogOptions co;
  server::SegmentUploaderOptions uo;
  std::unique_ptr<server::TieredEnv> tiered;  // with cache_bytes
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<catalog::Ledger> ledger;
  std::unique_ptr<server::SegmentUploader> uploader;
  std::unique_ptr<server::CatalogBackup> backup;
};

// Commits page pgno (a 4 KiB image of seed) on top of branch's head.
inline storage::Lsn CommitPage(storage::PageStore& store, const catalog::BranchInfo& branch,
                               storage::PageNo pgno, char seed) {
  auto head = store.Head(branch.timeline);
  REQUIRE(head.ok());
  auto lsn = store.Commit(branch.timeline, *head,
                          {storage::PageWrite{pgno, std::string(storage::kPageSize, seed)}}, 256,
                          "");
  REQUIRE(lsn.ok());
  return *lsn;
}

// Pages 1..n of store at state lsn.
inline std::vector<std::string> PagesAt(storage::PageStore& store, storage::Lsn lsn,
                                        storage::PageNo n) {
  std::vector<std::string> pages;
  for (storage::PageNo pgno = 1; pgno <= n; ++pgno) {
    std::string page;
    Status s = store.ReadPageAt(lsn, pgno, &page);
    INFO("page " << pgno << " at " << lsn << ": " << s.ToString());
    REQUIRE(s.ok());
    pages.push_back(std::move(page));
  }
  return pages;
}

}  // namespace branchdb::testing

#endif  // BRANCHDB_TESTS_OBJSTORE_OWNER_NODE_H_
