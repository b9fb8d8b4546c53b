// RankerModel: a served scorer over document feature vectors, the model
// kinds "linear-ranker" (no hidden layer: w . x' + b) and "mlp-ranker"
// (ELU hidden layers, e.g. 64-32), x' the standardised features (see
// ranker_net.h). Trained by the click-log trainers in dla_trainer.h.
//
// ScoreFeatures takes n feature vectors row-major (n * feature_dim floats)
// and writes n scores (higher = more relevant; the scale is a softmax logit
// for DLA / IPW / naive-clicks and a logistic logit for regression-EM).
// Immutable after construction; thread-safe for concurrent scoring.
#ifndef DEBIAS_CORE_MODELS_RANKER_MODEL_H_
#define DEBIAS_CORE_MODELS_RANKER_MODEL_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/models/model.h"
#include "core/models/ranker_net.h"

namespace debias::models {

class RankerModel final : public Model {
 public:
  static constexpr std::string_view kLinearKind = "linear-ranker";
  static constexpr std::string_view kMlpKind = "mlp-ranker";

  // Takes the trained network; the kind follows from its hidden layers.
  static std::unique_ptr<RankerModel> Create(RankerNet net);
  // Inverts Serialize() for either kind. DATA_LOSS for truncated, corrupt or
  // non-finite snapshots; INVALID_ARGUMENT when the kind is not a ranker.
  static absl::StatusOr<std::unique_ptr<Model>> Deserialize(std::string_view bytes);

  std::string_view kind() const override {
    return net_.hidden().empty() ? kLinearKind : kMlpKind;
  }
  int feature_dim() const override { return net_.input_dim(); }
  const RankerNet& net() const { return net_; }

  // INVALID_ARGUMENT unless features.size() == out.size() * feature_dim()
  // and every feature is finite.
  absl::Status ScoreFeatures(std::span<const float> features,
                             std::span<float> out) const override;
  std::string Serialize() const override;

 private:
  explicit RankerModel(RankerNet net) : net_(std::move(net)) {}
  RankerNet net_;
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_RANKER_MODEL_H_
