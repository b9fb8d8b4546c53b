// PairIndex: O(log deg) membership test "is (user, item) an event of this
// view?", built once from a DatasetView (per-user sorted item lists, CSR).
// Used to sample unobserved / unlabeled pairs by rejection without
// materialising users x items. Immutable after Build(); thread-safe.
#ifndef DEBIAS_CORE_PROPENSITY_PAIR_INDEX_H_
#define DEBIAS_CORE_PROPENSITY_PAIR_INDEX_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "core/data/dataset_view.h"

namespace debias::propensity {

class PairIndex {
 public:
  PairIndex() = default;
  // Indexes the events of `view` for which keep(event) is true (all events
  // when keep is empty). Duplicate pairs are stored once.
  static PairIndex Build(const data::DatasetView& view,
                         const std::function<bool(size_t)>& keep = {});

  bool Contains(uint32_t user, uint32_t item) const;
  // Distinct indexed pairs.
  uint64_t size() const { return items_.size(); }
  uint32_t num_users() const {
    return offsets_.empty() ? 0 : static_cast<uint32_t>(offsets_.size() - 1);
  }
  // Sorted distinct items of `user` (empty span for an unknown user).
  std::span<const uint32_t> ItemsOf(uint32_t user) const;

 private:
  std::vector<uint64_t> offsets_;  // num_users + 1
  std::vector<uint32_t> items_;
};

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_PAIR_INDEX_H_
