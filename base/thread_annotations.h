// Clang's thread-safety attributes (-Wthread-safety), as macros that expand to
// nothing under other compilers (the build's g++). They let the compiler check
// that a member "guarded by mu_" is only touched with mu_ held, that a function
// that REQUIRES a lock is only called with it held, and the documented lock
// order (ACQUIRED_BEFORE / ACQUIRED_AFTER, checked with -Wthread-safety-beta).
// The capabilities themselves are base/mutex.h's Mutex and SharedMutex; the
// check is tests/threads (a clang -fsyntax-only pass over every file that
// includes base/mutex.h). Semantics: clang.llvm.org/docs/ThreadSafetyAnalysis.html.
//
// Thread-safety: macros only.
#ifndef BRANCHDB_BASE_THREAD_ANNOTATIONS_H_
#define BRANCHDB_BASE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define BRANCHDB_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define BRANCHDB_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are capabilities (locks); x names the kind ("mutex").
#define CAPABILITY(x) BRANCHDB_THREAD_ANNOTATION(capability(x))
// On a class: an RAII object that holds a capability for its lifetime.
#define SCOPED_CAPABILITY BRANCHDB_THREAD_ANNOTATION(scoped_lockable)

// On a member: read and written only with the capability held (reads: shared
// is enough). PT_GUARDED_BY: the same for what a pointer member points to.
#define GUARDED_BY(x) BRANCHDB_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) BRANCHDB_THREAD_ANNOTATION(pt_guarded_by(x))

// On a capability member: the lock order, within one class or across classes
// whose objects clang can name from here.
#define ACQUIRED_BEFORE(...) BRANCHDB_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) BRANCHDB_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))

// On a function: the caller must hold the capabilities (exclusive / shared).
#define REQUIRES(...) BRANCHDB_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) BRANCHDB_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))

// On a function: it acquires / releases the capabilities (no argument: this).
#define ACQUIRE(...) BRANCHDB_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) BRANCHDB_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) BRANCHDB_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) BRANCHDB_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) BRANCHDB_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
// It tries to acquire them; the first argument is the return value on success.
#define TRY_ACQUIRE(...) BRANCHDB_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) \
  BRANCHDB_THREAD_ANNOTATION(try_acquire_shared_capability(__VA_ARGS__))

// On a function: the caller must not hold the capabilities (it takes them).
#define EXCLUDES(...) BRANCHDB_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

// On a function: it checks at run time (or promises) that the capability is held.
#define ASSERT_CAPABILITY(x) BRANCHDB_THREAD_ANNOTATION(assert_capability(x))
#define ASSERT_SHARED_CAPABILITY(x) BRANCHDB_THREAD_ANNOTATION(assert_shared_capability(x))

// On a function: it returns a reference to the capability.
#define RETURN_CAPABILITY(x) BRANCHDB_THREAD_ANNOTATION(lock_returned(x))

// On a function: not analysed. Each use says beside it why the analysis cannot
// follow the locking there.
#define NO_THREAD_SAFETY_ANALYSIS BRANCHDB_THREAD_ANNOTATION(no_thread_safety_analysis)

#endif  // BRANCHDB_BASE_THREAD_ANNOTATIONS_H_
