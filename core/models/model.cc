#include "core/models/model.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "core/models/model_registry.h"
#include "core/util/coding.h"

namespace debias::models {

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

absl::StatusOr<std::unique_ptr<Model>> DeserializeModel(std::string_view bytes) {
  util::Reader r(bytes);
  std::string_view kind;
  if (!r.GetBytes(&kind)) {
    return absl::DataLossError("model snapshot: truncated header");
  }
  for (const ModelKind& k : ModelKinds()) {
    if (k.name == kind) return k.deserialize(bytes);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("model snapshot: unknown model kind '", std::string(kind), "'"));
}

}  // namespace debias::models
