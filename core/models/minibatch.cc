#include "core/models/minibatch.h"

#include <algorithm>
#include <numeric>

namespace debias::models {

std::pair<data::DatasetView, data::DatasetView> SplitView(
    const data::DatasetView& view, double fraction, uint64_t seed) {
  const size_t n = view.num_events();
  size_t n_val = static_cast<size_t>(std::llround(std::clamp(fraction, 0.0, 1.0) * n));
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  std::vector<uint8_t> is_val(n, 0);
  for (size_t k = 0; k < n_val; ++k) is_val[idx[k]] = 1;
  return {SubsetView(view, [&](size_t e) { return !is_val[e]; }),
          SubsetView(view, [&](size_t e) { return is_val[e] != 0; })};
}

}  // namespace debias::models
