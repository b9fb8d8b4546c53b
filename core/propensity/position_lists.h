// Click logs as ranked lists, and the count-based position-propensity
// estimates (result randomisation, naive click-rate ratio).
//
// A click log is a DatasetView whose events carry a list id (view.list), a
// 1-based position (view.position) and optionally features; label > 0 is a
// click. ClickLists lays it out as num_lists x K slots (K = the number of
// positions kept), row-major, so that list q, position i (1-based) is slot
// q * K + (i - 1). Slots without an event have mask 0 and click 0.
//
// Position propensities are reported as examination probabilities relative
// to position 1: [1, p2/p1, ..., pK/p1] (the inverse of the IPW weights).
// Thread safety: pure functions; ClickLists is a plain value.
#ifndef DEBIAS_CORE_PROPENSITY_POSITION_LISTS_H_
#define DEBIAS_CORE_PROPENSITY_POSITION_LISTS_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"

namespace debias::propensity {

inline constexpr uint32_t kNoEvent = std::numeric_limits<uint32_t>::max();
// Largest K BuildClickLists accepts.
inline constexpr int kMaxListPositions = 1000;

struct ClickLists {
  int num_positions = 0;          // K
  std::vector<uint32_t> list_id;  // view list id of each kept list
  std::vector<uint32_t> event;    // slot -> view event index, or kNoEvent
  std::vector<float> click;       // slot -> 0/1
  std::vector<uint8_t> mask;      // slot -> 1 if an event fills it
  // Events not placed: position 0 (none) or > K, or list kNoList.
  uint64_t skipped_events = 0;

  size_t num_lists() const { return list_id.size(); }
  size_t slot(size_t q, int position) const {
    return q * num_positions + (position - 1);
  }
};

// Groups the events of `view` into lists of up to `max_positions` slots.
// Lists with no event within the first max_positions positions are dropped.
// Errors: INVALID_ARGUMENT unless max_positions in [1, 1000];
// FAILED_PRECONDITION when the view has no list or no position column;
// INVALID_ARGUMENT naming the list key and position when two events share
// a (list, position) slot.
absl::StatusOr<ClickLists> BuildClickLists(const data::DatasetView& view,
                                           int max_positions);

// Per-position click counts over lists that fill both position 1 and
// position r: F[r-1] = clicks at position 1, C[r-1] = clicks at position r.
struct PositionClickCounts {
  std::vector<double> first;  // F_r
  std::vector<double> at;     // C_r
  std::vector<double> lists;  // number of lists counted for r
};
PositionClickCounts CountPositionClicks(const ClickLists& lists);

// Result-randomisation estimate (Ai et al., SIGIR 2018,
// `propensity_estimator.py`): on logs whose lists were shuffled uniformly,
// P(E_r)/P(E_1) = C_r / F_r. The reference's IPW_r = min(F_r / (C_r +
// 1e-5), F_r) is returned inverted, so a position without clicks gets
// 1 / F_r. FAILED_PRECONDITION when no list has a click at position 1.
absl::StatusOr<std::vector<double>> RandomizationPropensities(
    const ClickLists& lists);

// Naive click-rate ratio CTR_r / CTR_1 over all lists (biased by the
// logging ranker's ordering; the baseline the fidelity report beats).
// FAILED_PRECONDITION when position 1 has no click.
absl::StatusOr<std::vector<double>> ClickRateRatios(const ClickLists& lists);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_POSITION_LISTS_H_
