// Mutex and SharedMutex: std::mutex and std::shared_mutex as Clang
// thread-safety capabilities (base/thread_annotations.h), with their scoped
// lockers and a condition variable. libstdc++'s own mutexes carry no
// attributes, so the analysis can check only locks taken through these.
//
//   Mutex mu_;
//   int count_ GUARDED_BY(mu_);
//   void Bump() EXCLUDES(mu_) { MutexLock l(mu_); ++count_; }
//   void BumpLocked() REQUIRES(mu_) { ++count_; }
//
// A lock that must outlive the function that took it (the catalog's
// ProjectRef, a PooledStore call's Use) is a std::unique_lock /
// std::shared_lock over a SharedMutex: its standard names (lock, unlock,
// lock_shared, unlock_shared) are there for that, and the analysis does not
// see such locks. Use them only where a lock moves.
//
// Thread-safety: as std::mutex / std::shared_mutex.
#ifndef BRANCHDB_BASE_MUTEX_H_
#define BRANCHDB_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "base/thread_annotations.h"

namespace branchdb {

class CondVar;

// Tag: a scoped lock that takes over a lock already held (after TryLock).
struct AdoptLock {
  explicit AdoptLock() = default;
};
inline constexpr AdoptLock kAdoptLock{};

// An exclusive lock (std::mutex).
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // True when the lock was taken (without waiting).
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the lock is held where it cannot see it; checks nothing.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

// A reader-writer lock (std::shared_mutex): exclusive to change what it
// guards, shared to read it.
class CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }
  void AssertHeld() const ASSERT_CAPABILITY(this) {}
  void AssertReaderHeld() const ASSERT_SHARED_CAPABILITY(this) {}

  // The standard names, for std::unique_lock and std::shared_lock; see the
  // file comment.
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a Mutex for its scope; Unlock() and Lock() let it go and take it
// again inside the scope (as std::unique_lock's unlock / lock).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    mu_.Unlock();
    held_ = false;
  }
  void Lock() ACQUIRE() {
    mu_.Lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// Holds a SharedMutex exclusive for its scope.
class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  WriterLock(SharedMutex& mu, AdoptLock) REQUIRES(mu) : mu_(mu) {}
  ~WriterLock() RELEASE() { mu_.Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

// Holds a SharedMutex shared for its scope; Unlock() lets it go early.
class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.LockShared(); }
  ~ReaderLock() RELEASE() {
    if (held_) mu_.UnlockShared();
  }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

  void Unlock() RELEASE() {
    mu_.UnlockShared();
    held_ = false;
  }

 private:
  SharedMutex& mu_;
  bool held_ = true;
};

// A condition variable waited on with a Mutex held (std::condition_variable).
// Wait* release mu while waiting and hold it again when they return, so to
// the analysis mu stays held. Spurious wake-ups happen: wait in a loop that
// checks the condition (what it reads is guarded by mu).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> l(mu.mu_, std::adopt_lock);
    cv_.wait(l);
    l.release();  // still held, by the caller
  }
  // Also returns after timeout.
  template <class Rep, class Period>
  void WaitFor(Mutex& mu, std::chrono::duration<Rep, Period> timeout) REQUIRES(mu) {
    std::unique_lock<std::mutex> l(mu.mu_, std::adopt_lock);
    cv_.wait_for(l, timeout);
    l.release();
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace branchdb

#endif  // BRANCHDB_BASE_MUTEX_H_
