// The NBPO-weighted negative sampler (Yu & Qin, SIGIR 2020, "Sampler Design
// for Implicit Feedback Data by Noisy-label Robust Learning").
//
// NBPO's flip model: a pair is a true positive with probability r = sigma(x),
// x = U_u . V_i, and a true positive is observed with probability 1 - g,
// g = sigma(P_u . Q_i) (flipped to "unobserved" with probability g). Given
// that (u, i) is unobserved, it is a true negative with probability
//   w(u, i) = (1 - r) / ((1 - r) + r g) = sigma(softplus(-gamma) - x),
// and this sampler draws the user's non-positive items in proportion to w, so
// that likely hidden positives are drawn less often.
//
// Draws: a uniform proposal kept with probability w (exact thinning, since
// w is in [0, 1]), and the complement fallback of NegativeSampler when
// acceptance collapses. When users x items <= max_table_entries the weights
// are precomputed at set-up (O(users x items x (dim + flip_dim)) time) into a
// dense table of one byte per pair, w quantised to 1/254 (the user's
// positives 0): a proposal is decided from the table except when its coin
// falls within the 1/254 band of its weight, where the exact weight is
// computed, so draws follow w exactly and a proposal is O(1) on average
// with no positive lookup. The table also gives each user's exact acceptance
// rate, so users below kMinAcceptance go straight to the complement (which
// computes weights from the factors, O(items x (dim + flip_dim)) per call).
// Otherwise each proposal costs O(dim + flip_dim) and no memory.
#ifndef DEBIAS_CORE_SAMPLERS_NBPO_SAMPLER_H_
#define DEBIAS_CORE_SAMPLERS_NBPO_SAMPLER_H_

#include <memory>
#include <string>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/samplers/negative_sampler.h"

namespace debias::samplers {

using FactorMatrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The parameters of a trained NBPO model that the sampler needs, row-major.
struct NbpoFactors {
  FactorMatrix user_factors;  // U: num_users x dim
  FactorMatrix item_factors;  // V: num_items x dim
  FactorMatrix user_flip;     // P: num_users x flip_dim
  FactorMatrix item_flip;     // Q: num_items x flip_dim
};

// OK when U/V share their dim, P/Q share theirs, U/P and V/Q share their row
// counts and both dims are positive; otherwise INVALID_ARGUMENT
// "<who>: factor shapes disagree: ..." with every shape.
absl::Status ValidateNbpoFactorShapes(const NbpoFactors& f, const std::string& who);

// P(true negative | unobserved) for one pair (see above).
double NbpoTrueNegativeProbability(const NbpoFactors& f, uint32_t user,
                                   uint32_t item);

// Builds the sampler from the view (positives to exclude) and a copy of the
// factors. INVALID_ARGUMENT when the factor shapes disagree with each other
// or hold non-finite values; FAILED_PRECONDITION when their user/item counts
// differ from the view's (model trained on another dataset version).
inline constexpr uint64_t kDefaultNbpoTableEntries = uint64_t{1} << 25;  // 32 MiB
absl::StatusOr<std::unique_ptr<NegativeSampler>> MakeNbpoSampler(
    const data::DatasetView& view, NbpoFactors factors,
    uint64_t max_table_entries = kDefaultNbpoTableEntries);

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_NBPO_SAMPLER_H_
