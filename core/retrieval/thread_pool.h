// ThreadPool: a fixed set of worker threads for splitting one call's work
// (a large TopK scan, a batch top-k) into parallel shards.
//
// ParallelFor(n, fn) runs fn(0) ... fn(n - 1) and returns when all have run.
// The calling thread takes shards too, so a call never waits on a busy pool
// to make progress and concurrent callers cannot deadlock each other.
// Thread safety: every method may be called from any number of threads.
#ifndef DEBIAS_CORE_RETRIEVAL_THREAD_POOL_H_
#define DEBIAS_CORE_RETRIEVAL_THREAD_POOL_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace debias::retrieval {

class ThreadPool {
 public:
  // num_threads workers besides the callers (0: callers do all the work).
  explicit ThreadPool(int num_threads);
  // Joins the workers; no ParallelFor may be running.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()); }

  // Runs fn(i) for every i in [0, n), each exactly once, on the workers and
  // the calling thread; returns when all have returned. fn must not throw.
  void ParallelFor(int n, const std::function<void(int)>& fn);

  // A pool with one worker per hardware thread beyond the first, shared by
  // the process (never destroyed).
  static ThreadPool& Default();

 private:
  struct Batch;
  void WorkerLoop();

  absl::Mutex mu_;
  std::vector<Batch*> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace debias::retrieval

#endif  // DEBIAS_CORE_RETRIEVAL_THREAD_POOL_H_
