// Process memory: the resident set size, and handing freed heap back to the
// operating system.
//
// glibc's malloc keeps memory a thread freed in that thread's arena for
// reuse; after a burst of large temporaries (a training job's sample
// buffers, a flushed 64 MB memtable) the freed pages stay resident until
// malloc_trim returns them. debiasd calls ReleaseFreeMemory after such
// bursts so that its RSS follows what it holds (docs/OPERATIONS.md, Memory).
#ifndef DEBIAS_CORE_UTIL_MEMORY_H_
#define DEBIAS_CORE_UTIL_MEMORY_H_

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace debias::util {

// Resident set size of this process in bytes (0 where /proc is unavailable).
inline uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;  // NOLINT(runtime/int): fscanf's type
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Returns free heap pages of every malloc arena to the operating system
// (glibc malloc_trim; a no-op with other C libraries). Costs a walk over the
// free lists, milliseconds for a heap of hundreds of MB: call it after
// bursts, not per request. True when memory was released.
inline bool ReleaseFreeMemory() {
#if defined(__GLIBC__)
  return malloc_trim(0) != 0;
#else
  return false;
#endif
}

// ReleaseFreeMemory at most once per `interval` across the process (a call
// inside the interval of the last trim does nothing and returns false), for
// paths a client can drive repeatedly: each trim walks and locks every
// malloc arena, stalling other threads' allocations meanwhile.
inline bool ReleaseFreeMemoryRateLimited(
    std::chrono::steady_clock::duration interval = std::chrono::seconds(10)) {
  static std::atomic<int64_t> last{std::numeric_limits<int64_t>::min() / 2};
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  int64_t prev = last.load(std::memory_order_relaxed);
  if (now - prev < interval.count()) return false;
  if (!last.compare_exchange_strong(prev, now, std::memory_order_relaxed)) return false;
  return ReleaseFreeMemory();
}

}  // namespace debias::util

#endif  // DEBIAS_CORE_UTIL_MEMORY_H_
