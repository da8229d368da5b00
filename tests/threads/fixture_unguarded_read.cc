// Must NOT compile under tests/threads' clang pass: reads a GUARDED_BY member
// without its lock. The check fails if clang accepts it.
#include "base/mutex.h"

namespace {

class Counter {
 public:
  int Read() const { return n_; }  // the violation: mu_ not held

 private:
  mutable branchdb::Mutex mu_;
  int n_ GUARDED_BY(mu_) = 0;
};

}  // namespace

int main() { return Counter().Read(); }
