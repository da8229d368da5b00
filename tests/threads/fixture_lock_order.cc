// Must NOT compile under tests/threads' clang pass: takes two locks against
// their declared order. The check fails if clang accepts it.
#include "base/mutex.h"

namespace {

class TwoLocks {
 public:
  void Backwards() {
    branchdb::MutexLock inner(inner_);
    branchdb::MutexLock outer(outer_);  // the violation: outer_ after inner_
  }

 private:
  branchdb::Mutex outer_;
  branchdb::Mutex inner_ ACQUIRED_AFTER(outer_);
};

}  // namespace

int main() {
  TwoLocks().Backwards();
  return 0;
}
