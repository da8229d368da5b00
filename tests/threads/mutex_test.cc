// base/mutex.h at run time: the scoped locks hold and let go of their mutex
// when they say, and CondVar releases the mutex while it waits. (What the
// annotations mean to the compiler is check_thread_safety.py's part.)
#include <thread>

#include <catch2/catch.hpp>

#include "base/mutex.h"

using branchdb::CondVar;
using branchdb::kAdoptLock;
using branchdb::Mutex;
using branchdb::MutexLock;
using branchdb::ReaderLock;
using branchdb::SharedMutex;
using branchdb::WriterLock;

namespace {

// Whether another thread can take mu exclusively now (it lets go at once).
template <class M>
bool FreeForAnotherThread(M& mu) {
  bool took = false;
  std::thread([&] {
    took = mu.TryLock();
    if (took) mu.Unlock();
  }).join();
  return took;
}

// Another thread takes mu shared and lets go: blocks (and the test times
// out) while mu is held exclusive.
void ReadByAnotherThread(SharedMutex& mu) {
  std::thread([&] {
    mu.LockShared();
    mu.UnlockShared();
  }).join();
}

}  // namespace

TEST_CASE("MutexLock holds its mutex for its scope, except between Unlock and Lock") {
  Mutex mu;
  {
    MutexLock l(mu);
    CHECK_FALSE(FreeForAnotherThread(mu));
    l.Unlock();
    CHECK(FreeForAnotherThread(mu));
    l.Lock();
    CHECK_FALSE(FreeForAnotherThread(mu));
  }
  CHECK(FreeForAnotherThread(mu));
}

TEST_CASE("ReaderLock shares its mutex with readers, not with a writer, until Unlock") {
  SharedMutex mu;
  {
    ReaderLock r(mu);
    ReadByAnotherThread(mu);  // not blocked by r
    CHECK_FALSE(FreeForAnotherThread(mu));
    r.Unlock();
    CHECK(FreeForAnotherThread(mu));
  }
  CHECK(FreeForAnotherThread(mu));
}

TEST_CASE("WriterLock excludes everyone; adopting a TryLock it lets go at the end of its scope") {
  SharedMutex mu;
  {
    WriterLock w(mu);
    CHECK_FALSE(FreeForAnotherThread(mu));
  }
  REQUIRE(mu.TryLock());
  {
    WriterLock w(mu, kAdoptLock);
    CHECK_FALSE(FreeForAnotherThread(mu));
  }
  CHECK(FreeForAnotherThread(mu));
}

TEST_CASE("CondVar releases the mutex while waiting and holds it again when woken") {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu
  bool held_after_wake = false;
  std::thread waiter([&] {
    MutexLock l(mu);
    while (!ready) cv.Wait(mu);
    held_after_wake = !FreeForAnotherThread(mu);
  });
  {
    MutexLock l(mu);  // taken only while the waiter waits (or before it starts)
    ready = true;
  }
  cv.SignalAll();
  waiter.join();
  CHECK(ready);
  CHECK(held_after_wake);
}

TEST_CASE("CondVar::WaitFor returns without a signal, with the mutex held again") {
  Mutex mu;
  CondVar cv;
  MutexLock l(mu);
  cv.WaitFor(mu, std::chrono::milliseconds(1));
  CHECK_FALSE(FreeForAnotherThread(mu));
}
