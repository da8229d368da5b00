// PageStoreImpl: garbage collection, compaction, space usage.
#include "storage/page_store_impl.h"

namespace branchdb::storage::internal {

Result<GcStats> PageStoreImpl::Gc(const GcOptions& options) {
  return Status::FailedPrecondition("GC not implemented yet");
}

Result<SpaceUsage> PageStoreImpl::Usage(TimelineId t) const {
  return Status::FailedPrecondition("Usage not implemented yet");
}

Manifest PageStoreImpl::BuildManifest() const { return Manifest(); }
Status PageStoreImpl::Compact(GcStats*) { return Status::OK(); }
Status PageStoreImpl::CompactGroup(const std::vector<uint64_t>&, GcStats*) { return Status::OK(); }

}  // namespace branchdb::storage::internal
