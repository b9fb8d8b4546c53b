#include "core/retrieval/thread_pool.h"

#include <algorithm>
#include <atomic>

namespace debias::retrieval {

// One ParallelFor call: shards are claimed through `next`; the caller waits
// until `done` reaches n and no worker still references the batch.
struct ThreadPool::Batch {
  const std::function<void(int)>* fn = nullptr;
  int n = 0;
  std::atomic<int> next{0};
  // Guarded by the pool's mu_ (which outlives every batch, so a worker never
  // touches a batch's memory after the caller may have freed it).
  int done = 0;
  int helpers = 0;  // workers inside RunShards

  // Claims and runs shards until none is left; returns how many it ran.
  int RunShards() {
    int ran = 0;
    for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      (*fn)(i);
      ++ran;
    }
    return ran;
  }
};

ThreadPool::ThreadPool(int num_threads) {
  for (int t = 0; t < num_threads; ++t) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (auto& w : workers_) w.join();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    Batch* b = nullptr;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](ThreadPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stop_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stop_ and nothing left
      b = queue_.back();
      // The batch stays queued for the other workers until its shards are
      // all claimed; the caller removes it.
      ++b->helpers;
    }
    const int ran = b->RunShards();
    absl::MutexLock l(&mu_);
    b->done += ran;
    --b->helpers;
  }
}

void ThreadPool::ParallelFor(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  if (n == 1 || workers_.empty()) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  Batch b;
  b.fn = &fn;
  b.n = n;
  {
    absl::MutexLock l(&mu_);
    queue_.push_back(&b);
  }
  const int ran = b.RunShards();
  absl::MutexLock l(&mu_);
  // Every shard is claimed now: no worker may pick this batch up again.
  queue_.erase(std::find(queue_.begin(), queue_.end(), &b));
  b.done += ran;
  mu_.Await(absl::Condition(
      +[](Batch* x) { return x->done == x->n && x->helpers == 0; }, &b));
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = new ThreadPool(
      std::max(0, static_cast<int>(std::thread::hardware_concurrency()) - 1));
  return *pool;
}

}  // namespace debias::retrieval
