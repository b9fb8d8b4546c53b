#include "core/model/model.h"

#include "absl/strings/str_cat.h"

namespace debias::model {

void Model::ScoreItems(uint32_t user, std::span<const uint32_t> items,
                       std::span<float> out) const {
  for (size_t k = 0; k < items.size(); ++k) out[k] = ScorePair(user, items[k]);
}

void Model::ScoreAll(uint32_t user, std::span<float> out) const {
  for (uint32_t i = 0; i < out.size(); ++i) out[i] = ScorePair(user, i);
}

absl::Status Model::ScoreFeatures(std::span<const float>,
                                  std::span<float>) const {
  return absl::FailedPreconditionError(absl::StrCat(
      "model kind '", std::string(kind()), "' scores user/item ids, not feature vectors"));
}

}  // namespace debias::model
