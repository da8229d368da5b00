// FUZZ_CHECK(cond): a property of a fuzz target. When it fails, the target
// prints which one and aborts, which libFuzzer (and the corpus replay test)
// reports as a finding. Unlike assert(), it is never compiled out.
#ifndef BRANCHDB_TESTS_FUZZ_FUZZ_CHECK_H_
#define BRANCHDB_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

#endif  // BRANCHDB_TESTS_FUZZ_FUZZ_CHECK_H_
