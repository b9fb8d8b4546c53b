#include "core/propensity/pair_index.h"

#include <algorithm>

namespace debias::propensity {

PairIndex PairIndex::Build(const data::DatasetView& view,
                           const std::function<bool(size_t)>& keep) {
  PairIndex idx;
  const size_t nu = view.num_users();
  idx.offsets_.assign(nu + 1, 0);
  idx.items_.reserve(view.num_events());
  for (uint32_t u = 0; u < nu; ++u) {
    size_t begin = idx.items_.size();
    auto [b, e] = view.user_offsets.size() == nu + 1
                      ? view.UserRange(u)
                      : std::pair<uint64_t, uint64_t>{0, 0};
    for (uint64_t k = b; k < e; ++k) {
      if (!keep || keep(k)) idx.items_.push_back(view.item[k]);
    }
    std::sort(idx.items_.begin() + begin, idx.items_.end());
    idx.items_.erase(std::unique(idx.items_.begin() + begin, idx.items_.end()),
                     idx.items_.end());
    idx.offsets_[u + 1] = idx.items_.size();
  }
  idx.items_.shrink_to_fit();
  return idx;
}

std::span<const uint32_t> PairIndex::ItemsOf(uint32_t user) const {
  if (user + 1 >= offsets_.size()) return {};
  return {items_.data() + offsets_[user],
          static_cast<size_t>(offsets_[user + 1] - offsets_[user])};
}

bool PairIndex::Contains(uint32_t user, uint32_t item) const {
  auto s = ItemsOf(user);
  return std::binary_search(s.begin(), s.end(), item);
}

}  // namespace debias::propensity
