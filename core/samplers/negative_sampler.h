// Negative samplers for implicit feedback: draw, for a user, items that are
// not among the user's positives.
//
// Every sampler defines a base weight w(u, i) >= 0 over all items and draws
// i.i.d. (with replacement) from w(u, .) restricted to the user's
// non-positive items:  P(i | u) = w(u, i) / sum_{j not in pos(u)} w(u, j).
// Positives are the items of the user's events with label > 0 in the
// DatasetView the sampler was built from (events with label 0 are observed
// negatives and may be drawn).
//
// Cost: set-up O(events + items); a draw is O(1) expected (alias table or
// uniform proposal, then rejection of positives). Rejection is bounded: a
// user whose positives hold most of the weight (acceptance below
// kMinAcceptance), or a draw that needs more than kMaxTriesPerDraw proposals,
// switches to enumerating the user's complement (O(items) once per call),
// so no call loops forever. A user with no drawable negative gets
// FAILED_PRECONDITION.
//
// Thread safety: samplers are immutable after construction; Sample is const
// and may be called concurrently with one engine per thread.
#ifndef DEBIAS_CORE_SAMPLERS_NEGATIVE_SAMPLER_H_
#define DEBIAS_CORE_SAMPLERS_NEGATIVE_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/samplers/alias_table.h"
#include "core/samplers/random.h"

namespace debias::samplers {

// Largest n one Sample call accepts (a request limit, not an algorithmic one).
inline constexpr size_t kMaxSamplesPerCall = 1'000'000;
// Rejection is used while a user's non-positive share of the proposal mass is
// at least this; below it the complement is enumerated.
inline constexpr double kMinAcceptance = 0.05;
// Proposals per draw before falling back to the complement.
inline constexpr int kMaxTriesPerDraw = 512;

// The users' positive items, for O(1) membership tests: a dense bitset when
// users x items is small (<= 2^28 bits), else per-user sorted lists with
// binary search (O(log degree)).
class PositiveIndex {
 public:
  static constexpr uint64_t kDefaultMaxBitsetBits = uint64_t{1} << 28;
  // max_bitset_bits: above this users x items the sorted lists are used
  // (tests pass 0 to exercise them).
  explicit PositiveIndex(const data::DatasetView& view,
                         uint64_t max_bitset_bits = kDefaultMaxBitsetBits);
  uint32_t num_users() const { return num_users_; }
  uint32_t num_items() const { return num_items_; }
  bool Contains(uint32_t user, uint32_t item) const {
    if (!bits_.empty()) {
      const uint64_t b = uint64_t{user} * num_items_ + item;
      return (bits_[b >> 6] >> (b & 63)) & 1;
    }
    const uint32_t* lo = items_.data() + offsets_[user];
    const uint32_t* hi = items_.data() + offsets_[user + 1];
    while (lo < hi) {  // lower_bound
      const uint32_t* mid = lo + (hi - lo) / 2;
      if (*mid < item) lo = mid + 1; else hi = mid;
    }
    return lo != items_.data() + offsets_[user + 1] && *lo == item;
  }
  // Distinct positive items of `user`, ascending.
  std::span<const uint32_t> Of(uint32_t user) const {
    return {items_.data() + offsets_[user], items_.data() + offsets_[user + 1]};
  }

 private:
  uint32_t num_users_ = 0, num_items_ = 0;
  std::vector<uint64_t> offsets_;
  std::vector<uint32_t> items_;
  std::vector<uint64_t> bits_;
};

class NegativeSampler {
 public:
  virtual ~NegativeSampler() = default;
  // Registry name: "uniform", "popularity" or "nbpo".
  virtual std::string_view name() const = 0;
  uint32_t num_users() const { return positives_->num_users(); }
  uint32_t num_items() const { return positives_->num_items(); }
  const PositiveIndex& positives() const { return *positives_; }

  // Fills `out` with out.size() i.i.d. negatives of `user`.
  // NOT_FOUND when user >= num_users(); INVALID_ARGUMENT when out.size() >
  // kMaxSamplesPerCall; FAILED_PRECONDITION when the user has no non-positive
  // item of positive weight (e.g. interacted with every item). No heap
  // allocation unless the complement fallback runs.
  absl::Status Sample(uint32_t user, std::span<uint32_t> out, Rng& rng) const;
  // Convenience form returning a new vector of n ids.
  absl::StatusOr<std::vector<uint32_t>> Sample(uint32_t user, size_t n,
                                               Rng& rng) const;

  // The sampler's unnormalised weight w(user, item), ignoring positives
  // (tests and diagnostics compare drawn frequencies against it).
  virtual double Weight(uint32_t user, uint32_t item) const = 0;

 protected:
  explicit NegativeSampler(std::shared_ptr<const PositiveIndex> positives)
      : positives_(std::move(positives)) {}

  // Proposes one item from the base distribution (before excluding
  // positives) and returns whether to keep it (the nbpo sampler thins).
  virtual uint32_t Propose(uint32_t user, Rng& rng) const = 0;
  virtual bool Accept(uint32_t user, uint32_t item, Rng& rng) const {
    return true;
  }
  // Lower bound on the user's acceptance rate (share of proposals that are
  // kept), used to skip hopeless rejection. 1 when unknown.
  virtual double AcceptanceHint(uint32_t user) const { return 1.0; }

  // Fills `out` (non-empty; user in range; AcceptanceHint(user) >=
  // kMinAcceptance) with draws. The default runs RejectionLoop over the
  // virtual Propose/Accept; the samplers in this folder override it with
  // the same loop over inlined proposals, which is what keeps a draw at a
  // few nanoseconds (a virtual call per proposal costs as much as the draw).
  virtual absl::Status Draw(uint32_t user, std::span<uint32_t> out,
                            Rng& rng) const;

  // Rejection sampling: propose(rng) -> item; the item is kept unless it is
  // a positive (checked only when kCheckPositives; a sampler whose proposal
  // already gives positives acceptance 0 skips the lookup) or
  // accept(item, rng) says no. After kMaxTriesPerDraw proposals for one draw
  // the remainder comes from the exact complement (see the class comment).
  template <bool kCheckPositives, class ProposeFn, class AcceptFn>
  absl::Status RejectionLoop(uint32_t user, std::span<uint32_t> out, Rng& rng,
                             ProposeFn&& propose, AcceptFn&& accept) const {
    const PositiveIndex& pos = *positives_;
    for (size_t k = 0; k < out.size(); ++k) {
      int tries = 0;
      for (;;) {
        if (++tries > kMaxTriesPerDraw) {
          // Accepted draws so far are exact, and the switch depends only on
          // the number of proposals, so the remainder may come from the exact
          // complement without biasing the sample.
          return SampleFromComplement(user, out.subspan(k), rng);
        }
        const uint32_t i = propose(rng);
        if constexpr (kCheckPositives) {
          if (pos.Contains(user, i)) continue;
        }
        if (!accept(i, rng)) continue;
        out[k] = i;
        break;
      }
    }
    return absl::OkStatus();
  }

  // Exact draws over the user's non-positive items by enumeration, O(items)
  // and one allocation per call. FAILED_PRECONDITION when nothing has weight.
  absl::Status SampleFromComplement(uint32_t user, std::span<uint32_t> out,
                                    Rng& rng) const;

 private:
  std::shared_ptr<const PositiveIndex> positives_;
};

// Uniform over the user's non-positive items: w(u, i) = 1.
std::unique_ptr<NegativeSampler> MakeUniformSampler(
    const data::DatasetView& view);

// Popularity-proportional: w(u, i) = n_i^power, n_i = number of positive
// events of item i in `view`. power in [0, 10]; power = 0 is uniform; items
// without positives are never drawn when power > 0.
// INVALID_ARGUMENT for a power out of range; FAILED_PRECONDITION when no
// item has weight.
absl::StatusOr<std::unique_ptr<NegativeSampler>> MakePopularitySampler(
    const data::DatasetView& view, double power);

// Shared plumbing for samplers defined elsewhere in this folder.
std::shared_ptr<const PositiveIndex> BuildPositiveIndex(
    const data::DatasetView& view);

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_NEGATIVE_SAMPLER_H_
