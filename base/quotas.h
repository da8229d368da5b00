// Quotas: the four limits a project (catalog/ledger.h) or an OAuth client
// (auth/auth.h) may carry, issue #18. A limit that is unset does not apply.
// What each counts and where it is enforced: docs/api.md, "Quotas".
//
// Thread-safety: a plain value.
#ifndef BRANCHDB_BASE_QUOTAS_H_
#define BRANCHDB_BASE_QUOTAS_H_

#include <cstdint>
#include <optional>

namespace branchdb {

// The largest value a quota may take: 2^53, the largest integer every JSON
// client reads exactly.
inline constexpr int64_t kMaxQuotaValue = int64_t{1} << 53;

struct Quotas {
  std::optional<int64_t> max_branches;
  std::optional<int64_t> max_active_computes;
  std::optional<int64_t> max_bytes;
  std::optional<int64_t> max_commits_per_minute;

  bool empty() const {
    return !max_branches && !max_active_computes && !max_bytes && !max_commits_per_minute;
  }
  bool operator==(const Quotas&) const = default;
};

// The quotas' names as the API writes them, in this order, with a pointer to
// their member (for parsing and printing them in one loop).
struct QuotaField {
  const char* name;
  std::optional<int64_t> Quotas::*member;
};
inline constexpr QuotaField kQuotaFields[] = {
    {"max_branches", &Quotas::max_branches},
    {"max_active_computes", &Quotas::max_active_computes},
    {"max_bytes", &Quotas::max_bytes},
    {"max_commits_per_minute", &Quotas::max_commits_per_minute},
};

}  // namespace branchdb

#endif  // BRANCHDB_BASE_QUOTAS_H_
