#include "core/samplers/alias_table.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace debias::samplers {

absl::StatusOr<AliasTable> AliasTable::Build(std::span<const double> weights) {
  const size_t n = weights.size();
  if (n == 0 || n > 0xFFFFFFFFull) {
    return absl::InvalidArgumentError(absl::StrCat(
        "alias table: weights.size()=", n, ": must be in [1, 4294967295]"));
  }
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(weights[i]) || weights[i] < 0.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "alias table: weights[", i, "]=", weights[i],
          ": must be finite and >= 0"));
    }
    total += weights[i];
  }
  if (!(total > 0.0) || !std::isfinite(total)) {
    return absl::FailedPreconditionError(
        "alias table: weights sum to 0 (or overflow); nothing can be drawn");
  }
  AliasTable t;
  t.prob_.assign(n, 0.0);
  t.alias_.resize(n);
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  small.reserve(n);
  large.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / total;
    t.alias_[i] = static_cast<uint32_t>(i);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back();
    small.pop_back();
    const uint32_t l = large.back();
    t.prob_[s] = scaled[s];
    t.alias_[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding. A zero-weight column must never keep
  // itself, so only columns with weight keep probability 1.
  for (uint32_t l : large) t.prob_[l] = 1.0;
  for (uint32_t s : small) t.prob_[s] = weights[s] > 0.0 ? 1.0 : 0.0;
  // A zero-weight leftover (rounding) points at some index with weight.
  for (uint32_t s : small) {
    if (weights[s] > 0.0) continue;
    for (size_t i = 0; i < n; ++i) {
      if (weights[i] > 0.0) {
        t.alias_[s] = static_cast<uint32_t>(i);
        break;
      }
    }
  }
  return t;
}

}  // namespace debias::samplers
