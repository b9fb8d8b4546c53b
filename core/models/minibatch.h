// Mini-batch sampling for MF-style trainers: a seeded epoch shuffler over
// event indices, uniform (user, item) pair sampling with optional rejection
// of indexed pairs (unlabeled / unobserved pairs on the fly, never
// materialising users x items), and a seeded train/validation split of a
// view that keeps the id space.
// Determinism: everything draws from the caller's std::mt19937_64, so the
// same seed gives the same sequence. Not thread-safe (one per thread).
#ifndef DEBIAS_CORE_MODELS_MINIBATCH_H_
#define DEBIAS_CORE_MODELS_MINIBATCH_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/propensity/pair_index.h"

namespace debias::models {

// Uniform integer in [0, n) from one 64-bit draw (Lemire's multiply-shift;
// bias < n / 2^32, negligible for n < 2^32).
inline uint32_t UniformBelow(std::mt19937_64& rng, uint32_t n) {
  return static_cast<uint32_t>(((rng() >> 32) * uint64_t{n}) >> 32);
}

// Visits a fixed set of indices in a fresh random order every epoch.
class EpochShuffler {
 public:
  explicit EpochShuffler(std::vector<uint32_t> indices)
      : order_(std::move(indices)) {}
  // Reshuffles and rewinds.
  void NewEpoch(std::mt19937_64& rng) {
    std::shuffle(order_.begin(), order_.end(), rng);
    pos_ = 0;
  }
  // The next at most `n` indices of this epoch (empty at the end).
  std::span<const uint32_t> Next(size_t n) {
    size_t b = pos_, e = std::min(order_.size(), pos_ + n);
    pos_ = e;
    return {order_.data() + b, e - b};
  }
  size_t size() const { return order_.size(); }

 private:
  std::vector<uint32_t> order_;
  size_t pos_ = 0;
};

// Uniform pairs over num_users x num_items; with `reject` set, pairs it
// contains are redrawn (up to max_tries, after which the last draw is
// returned, so a nearly full grid cannot spin forever).
class PairSampler {
 public:
  PairSampler(uint32_t num_users, uint32_t num_items,
              const propensity::PairIndex* reject = nullptr, int max_tries = 100)
      : nu_(num_users), ni_(num_items), reject_(reject), max_tries_(max_tries) {}
  std::pair<uint32_t, uint32_t> Sample(std::mt19937_64& rng) const {
    uint32_t u = UniformBelow(rng, nu_), i = UniformBelow(rng, ni_);
    for (int t = 1; reject_ != nullptr && t < max_tries_ && reject_->Contains(u, i); ++t) {
      u = UniformBelow(rng, nu_);
      i = UniformBelow(rng, ni_);
    }
    return {u, i};
  }

  // emit(u, i) for n pairs: exactly the pairs (and engine draws) of n calls
  // of Sample(rng), since both take the stream of candidate pairs in order
  // and keep a candidate unless it is indexed (up to max_tries per pair).
  // Faster for large indexes: candidates are drawn in blocks, and every
  // candidate's index entries are prefetched before any is tested, so the
  // cache misses of a block overlap instead of forming a chain of
  // dependent binary-search loads per candidate.
  template <class Emit>
  void SampleMany(std::mt19937_64& rng, size_t n, Emit&& emit) const {
    if (reject_ == nullptr) {
      for (size_t k = 0; k < n; ++k) {
        const uint32_t u = UniformBelow(rng, nu_), i = UniformBelow(rng, ni_);
        emit(u, i);
      }
      return;
    }
    constexpr size_t kBlock = 32;
    uint32_t cu[kBlock], ci[kBlock];
    std::span<const uint32_t> items[kBlock];
    int t = 1;  // candidates so far for the pair being drawn
    for (size_t done = 0; done < n;) {
      const size_t m = std::min(kBlock, n - done);
      for (size_t b = 0; b < m; ++b) {
        cu[b] = UniformBelow(rng, nu_);
        ci[b] = UniformBelow(rng, ni_);
        items[b] = reject_->ItemsOf(cu[b]);
        PrefetchSearch(items[b]);
      }
      for (size_t b = 0; b < m; ++b) {
        if (t < max_tries_ && Contains(items[b], ci[b])) {
          ++t;
          continue;
        }
        emit(cu[b], ci[b]);
        ++done;
        t = 1;
      }
    }
  }

 private:
  // Binary search without data-dependent branches (a conditional move per
  // level): for a random item the direction of every level is a coin flip,
  // which a branch would mispredict half the time.
  static bool Contains(std::span<const uint32_t> s, uint32_t x) {
    if (s.empty()) return false;
    const uint32_t* first = s.data();
    size_t n = s.size();
    while (n > 1) {
      const size_t half = n / 2;
      first = first[half] < x ? first + half : first;
      n -= half;
    }
    // The lower bound of x is first or first + 1.
    const size_t lb = static_cast<size_t>(first - s.data()) + (*first < x);
    return lb < s.size() && s[lb] == x;
  }

  // Prefetches the lines a binary search over `s` visits first (all of a
  // short list).
  static void PrefetchSearch(std::span<const uint32_t> s) {
    const size_t n = s.size();
    if (n == 0) return;
    if (n <= 64) {
      for (size_t k = 0; k < n; k += 16) __builtin_prefetch(s.data() + k);
      __builtin_prefetch(s.data() + n - 1);
      return;
    }
    for (size_t k = 1; k < 8; ++k) __builtin_prefetch(s.data() + n * k / 8);
  }

  uint32_t nu_, ni_;
  const propensity::PairIndex* reject_;
  int max_tries_;
};

using data::SubsetView;  // core/data/dataset_view.h

// Splits the events of `view` at random into (train, validation) with
// round(fraction * events) validation events; fraction in [0, 1).
std::pair<data::DatasetView, data::DatasetView> SplitView(
    const data::DatasetView& view, double fraction, uint64_t seed);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_MINIBATCH_H_
