// Model: a trained, immutable scorer, as served by ScoringService.
//
// The interface only: core/eval scores through it and core/models implements
// it, so both depend on this component and not on each other. Rebuilding a
// model from its bytes needs every concrete kind and lives with them
// (DeserializeModel, core/models/model.h).
//
// A model scores (user, item) pairs by the dense ids of the dataset it was
// trained on, and/or feature vectors (rankers over document features).
// Implementations are immutable after construction and therefore safe to
// call from any number of threads at once.
#ifndef DEBIAS_CORE_MODEL_MODEL_H_
#define DEBIAS_CORE_MODEL_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace debias::model {

class Model {
 public:
  virtual ~Model() = default;

  // Stable name of the parameter layout, e.g. "mf" or "mlp-ranker"; it keys
  // deserialisation (DeserializeModel in core/models/model.h).
  virtual std::string_view kind() const = 0;
  virtual uint32_t num_users() const { return 0; }
  virtual uint32_t num_items() const { return 0; }
  // Length of the feature vectors ScoreFeatures takes (0: not a ranker).
  virtual int feature_dim() const { return 0; }

  // Scores `items` for `user` into out (out.size() == items.size()).
  // Precondition (checked by callers, not here): ids in range.
  virtual void ScoreItems(uint32_t user, std::span<const uint32_t> items,
                          std::span<float> out) const;
  // Scores every item for `user`; out.size() == num_items().
  virtual void ScoreAll(uint32_t user, std::span<float> out) const;

  // Scores `n` feature vectors stored row-major in `features`
  // (features.size() == n * feature_dim()). FAILED_PRECONDITION for models
  // that do not score features.
  virtual absl::Status ScoreFeatures(std::span<const float> features,
                                     std::span<float> out) const;

  // Versioned binary snapshot of the parameters; DeserializeModel inverts it.
  virtual std::string Serialize() const = 0;

 protected:
  // Id-based models implement this one; ScoreItems/ScoreAll use it.
  virtual float ScorePair(uint32_t user, uint32_t item) const { return 0.0f; }
};

}  // namespace debias::model

#endif  // DEBIAS_CORE_MODEL_MODEL_H_
