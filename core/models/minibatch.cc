#include "core/models/minibatch.h"

#include <algorithm>
#include <numeric>

namespace debias::models {

data::DatasetView SubsetView(const data::DatasetView& view,
                             const std::function<bool(size_t)>& keep) {
  data::DatasetView out;
  out.user_keys = view.user_keys;
  out.item_keys = view.item_keys;
  out.list_keys = view.list_keys;
  out.feature_dim = view.feature_dim;
  out.data_version = view.data_version;
  out.user_offsets.assign(view.num_users() + 1, 0);
  const bool ts = !view.timestamp.empty(), li = !view.list.empty(),
             po = !view.position.empty(), pr = !view.propensity.empty();
  for (size_t e = 0; e < view.num_events(); ++e) {
    if (!keep(e)) continue;
    out.user.push_back(view.user[e]);
    out.item.push_back(view.item[e]);
    out.label.push_back(view.label[e]);
    if (ts) out.timestamp.push_back(view.timestamp[e]);
    if (li) out.list.push_back(view.list[e]);
    if (po) out.position.push_back(view.position[e]);
    if (pr) out.propensity.push_back(view.propensity[e]);
    if (view.feature_dim > 0) {
      auto f = view.FeaturesOf(e);
      out.features.insert(out.features.end(), f.begin(), f.end());
    }
    if (view.user[e] < view.num_users()) ++out.user_offsets[view.user[e] + 1];
  }
  for (size_t u = 0; u < view.num_users(); ++u) out.user_offsets[u + 1] += out.user_offsets[u];
  return out;
}

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
