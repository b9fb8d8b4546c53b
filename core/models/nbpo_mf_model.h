// NbpoMfModel: matrix factorisation with NBPO's flip model, kind "nbpo-mf".
//
// score(u, i) = U_u . V_i (the preference logit x; exactly what an "mf"
// model with the same U, V scores). The model also keeps the flip factors
// P (num_users x flip_dim) and Q (num_items x flip_dim) learned by the
// "nbpo" and "nbpoo" trainers: g(u, i) = sigma(P_u . Q_i) is the probability
// that a true positive (u, i) went unobserved (Yu & Qin, SIGIR 2020). The
// "nbpo" negative sampler (core/samplers/nbpo_sampler.h) needs them; get them
// with factors(). Immutable once built; thread-safe for concurrent scoring.
#ifndef DEBIAS_CORE_MODELS_NBPO_MF_MODEL_H_
#define DEBIAS_CORE_MODELS_NBPO_MF_MODEL_H_

#include <memory>
#include <string>
#include <string_view>

#include "core/models/mf_model.h"
#include "core/models/model.h"
#include "core/samplers/nbpo_sampler.h"

namespace debias::models {

class NbpoMfModel final : public Model {
 public:
  static constexpr std::string_view kKind = "nbpo-mf";
  // INVALID_ARGUMENT when the shapes disagree (see samplers::NbpoFactors:
  // U, V share dim >= 1; P, Q share flip_dim >= 1; U, P and V, Q share rows).
  static absl::StatusOr<std::unique_ptr<NbpoMfModel>> Create(
      samplers::NbpoFactors factors);
  // DATA_LOSS for truncated or corrupt bytes.
  static absl::StatusOr<std::unique_ptr<Model>> Deserialize(
      std::string_view bytes);

  std::string_view kind() const override { return kKind; }
  uint32_t num_users() const override { return f_.user_factors.rows(); }
  uint32_t num_items() const override { return f_.item_factors.rows(); }
  int dim() const { return f_.user_factors.cols(); }
  int flip_dim() const { return f_.user_flip.cols(); }
  const samplers::NbpoFactors& factors() const { return f_; }
  // g(u, i) in [0, 1]. Precondition: ids in range.
  float FlipProbability(uint32_t user, uint32_t item) const;

  void ScoreItems(uint32_t user, std::span<const uint32_t> items,
                  std::span<float> out) const override;
  void ScoreAll(uint32_t user, std::span<float> out) const override;
  std::string Serialize() const override;

 protected:
  float ScorePair(uint32_t user, uint32_t item) const override;

 private:
  explicit NbpoMfModel(samplers::NbpoFactors f) : f_(std::move(f)) {}
  samplers::NbpoFactors f_;
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_NBPO_MF_MODEL_H_
