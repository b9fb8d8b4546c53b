// MfModel: matrix factorisation scorer, the model kind "mf".
//
// score(u, i) = U_u . V_i + b_u + b_i + b  (a logit; sigmoid gives the
// probability for pointwise losses). Factors are stored row-major
// (num_users x dim and num_items x dim, contiguous float) so that one user's
// or item's factor is a contiguous span. Biases are optional (empty vectors
// = no bias). Immutable once built; thread-safe for concurrent scoring.
#ifndef DEBIAS_CORE_MODELS_MF_MODEL_H_
#define DEBIAS_CORE_MODELS_MF_MODEL_H_

#include <vector>

#include "Eigen/Core"
#include "core/models/model.h"

namespace debias::models {

using RowMatrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct MfParams {
  RowMatrix user_factors;  // num_users x dim
  RowMatrix item_factors;  // num_items x dim
  Eigen::VectorXf user_bias;  // num_users or empty
  Eigen::VectorXf item_bias;  // num_items or empty
  float global_bias = 0.0f;
};

class MfModel final : public Model {
 public:
  static constexpr std::string_view kKind = "mf";
  // INVALID_ARGUMENT when shapes disagree (factor dims, bias lengths).
  static absl::StatusOr<std::unique_ptr<MfModel>> Create(MfParams params);
  static absl::StatusOr<std::unique_ptr<Model>> Deserialize(std::string_view bytes);

  std::string_view kind() const override { return kKind; }
  uint32_t num_users() const override { return params_.user_factors.rows(); }
  uint32_t num_items() const override { return params_.item_factors.rows(); }
  int dim() const { return params_.user_factors.cols(); }
  const MfParams& params() const { return params_; }

  void ScoreItems(uint32_t user, std::span<const uint32_t> items,
                  std::span<float> out) const override;
  void ScoreAll(uint32_t user, std::span<float> out) const override;
  std::string Serialize() const override;

 protected:
  float ScorePair(uint32_t user, uint32_t item) const override;

 private:
  explicit MfModel(MfParams p) : params_(std::move(p)) {}
  MfParams params_;
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_MF_MODEL_H_
