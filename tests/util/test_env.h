// Knobs of randomized and long-running tests, read from the environment.
#pragma once

#include <cstdint>

namespace branchdb::testing {

// The seed of a randomized test: BRANCHDB_SEED when it is set and not
// empty, else a fresh random 64-bit one. Printed as "<test_name>: seed N
// (reproduce with BRANCHDB_SEED=N)" and stdout flushed, so that a child
// forked afterwards does not print it again.
uint64_t TestSeed(const char* test_name);

// The unsigned number in the environment variable `name`; `fallback` when it
// is unset or empty.
uint64_t EnvU64(const char* name, uint64_t fallback);

}  // namespace branchdb::testing
