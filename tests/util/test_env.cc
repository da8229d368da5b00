#include "tests/util/test_env.h"

#include <cstdio>
#include <cstdlib>
#include <random>

namespace branchdb::testing {

uint64_t EnvU64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

uint64_t TestSeed(const char* test_name) {
  std::random_device random;
  const uint64_t fresh = (uint64_t{random()} << 32) ^ random();
  const uint64_t seed = EnvU64("BRANCHDB_SEED", fresh);
  std::printf("%s: seed %llu (reproduce with BRANCHDB_SEED=%llu)\n", test_name,
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  return seed;
}

}  // namespace branchdb::testing
