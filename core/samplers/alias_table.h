// AliasTable: O(1) draws from a fixed discrete distribution (Vose's method).
//
// Built once from non-negative finite weights in O(n); each draw costs one
// bounded integer and one uniform float. Immutable after Build, so concurrent
// draws with per-thread engines are safe.
#ifndef DEBIAS_CORE_SAMPLERS_ALIAS_TABLE_H_
#define DEBIAS_CORE_SAMPLERS_ALIAS_TABLE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/samplers/random.h"

namespace debias::samplers {

class AliasTable {
 public:
  AliasTable() = default;
  // INVALID_ARGUMENT when weights is empty, longer than 2^32 - 1, or holds a
  // negative or non-finite value; FAILED_PRECONDITION when all weights are 0.
  static absl::StatusOr<AliasTable> Build(std::span<const double> weights);

  size_t size() const { return prob_.size(); }
  // Index i with probability weights[i] / sum(weights); never an index whose
  // weight is 0.
  uint32_t Draw(Rng& rng) const {
    const uint32_t i = static_cast<uint32_t>(UniformBelow(rng, prob_.size()));
    return UniformUnit(rng) < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;    // acceptance of column i
  std::vector<uint32_t> alias_;  // the other index in column i
};

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_ALIAS_TABLE_H_
