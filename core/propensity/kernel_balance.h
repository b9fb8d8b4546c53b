// Kernel balancing primitives for learned inverse-propensity weights
// (Li et al., "Debiased Collaborative Filtering with Kernel-Based Causal
// Balancing", ICLR 2024).
//
// A weight vector w over the observed pairs O balances a kernel function
// k(., c) when its weighted mean over O equals its plain mean over all pairs
// D:  h_obs(c) = (1/|O|) sum_o w_o k(phi_o, c)  ==  h_all(c) = mean_d k(phi_d, c).
// This file holds the kernels, the feature normalisation, the balancing
// objective (entropy + hinge) with its gradient, and weight diagnostics.
// Everything here is a pure function of its arguments: thread-compatible,
// no hidden state, no randomness.
//
// Shapes: point sets are row-major float matrices, one point per row
// (n x d). Every function validates shapes and finiteness before touching
// Eigen and returns INVALID_ARGUMENT naming the argument otherwise.
#ifndef DEBIAS_CORE_PROPENSITY_KERNEL_BALANCE_H_
#define DEBIAS_CORE_PROPENSITY_KERNEL_BALANCE_H_

#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace debias::propensity {

using KernelMatrixF =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Gaussian: exp(-bandwidth * ||x - y||^2); exponential:
// exp(-bandwidth * ||x - y||). Both lie in (0, 1] for finite input.
enum class KernelType { kGaussian, kExponential };
// Accepts "gaussian" / "gau" and "exponential" / "exp".
absl::StatusOr<KernelType> ParseKernelType(std::string_view name);
std::string_view KernelTypeName(KernelType k);

// How pair features are normalised before the kernels see them.
//  kGlobal: one min-max per feature column over the whole dataset (every
//    user row, every item row), mapping each column to [0, 1], then a common
//    scale 1/d (d = pair feature dimension, as the reference's "/8" for
//    8-d features). The same map applies to every point set, so kernels
//    between sets compare like with like. The default.
//  kReferenceBug: the public reference code's per-call transform of a point
//    set X: X <- (X - min(X)/(max(X) - min(X))) / d, min/max over all
//    entries of X. Operator precedence makes it a shift, not a scaling, and it
//    is recomputed for every set (centres, observed batch, sampled batch), so
//    kernels between sets use inconsistent shifts. Kept for comparison only.
//  kNone: raw features.
enum class KernelNorm { kGlobal, kReferenceBug, kNone };
// Accepts "global", "reference" (alias "reference-bug"), "none".
absl::StatusOr<KernelNorm> ParseKernelNorm(std::string_view name);
std::string_view KernelNormName(KernelNorm n);

// Largest |feature| accepted: keeps squared distances finite in float.
inline constexpr float kMaxAbsKernelFeature = 1e15f;

// INVALID_ARGUMENT naming `what` if x holds a non-finite value or one
// beyond kMaxAbsKernelFeature.
absl::Status ValidateKernelPoints(const KernelMatrixF& x, std::string_view what);

// out(i, j) = k(x_i, y_j); out is resized to x.rows() x y.cols() only when its
// shape differs (no allocation in steady state). Errors: column counts
// differ, bandwidth not finite and > 0, non-finite points. Distances are
// computed as ||x||^2 + ||y||^2 - 2 x.y (one GEMM) and clamped at 0.
absl::Status KernelMatrix(const KernelMatrixF& x, const KernelMatrixF& y,
                          KernelType type, float bandwidth, KernelMatrixF* out);
// Same without validation, for hot loops whose inputs were validated once.
void KernelMatrixUnchecked(const KernelMatrixF& x, const KernelMatrixF& y,
                           KernelType type, float bandwidth, KernelMatrixF* out);

// kGlobal normalisation of one feature table in place: each column mapped
// to [0, 1] by its min and max over the rows (constant columns -> 0), then
// multiplied by `scale`. Errors: non-finite entries, scale not in (0, 1e6].
absl::Status NormalizeColumnsMinMax(KernelMatrixF* table, float scale);
// The kReferenceBug transform of one point set in place (see KernelNorm);
// when max == min the shift is 0 (the reference would divide by zero).
void ReferenceBugNormalize(KernelMatrixF* set, float divisor);

// Balance of weights w (length B) over the observed points against all
// points for J centres: k_obs is B x J (k(phi_o, c_j)), k_all is |D| x J.
struct BalanceTerms {
  Eigen::VectorXd h_all;  // J: mean_d k(phi_d, c_j)
  Eigen::VectorXd h_obs;  // J: (1/B) sum_o w_o k(phi_o, c_j)
  double gap_sum = 0.0;   // sum_j (h_all_j - h_obs_j)
  // max(0, gap_sum - margin) + max(0, -gap_sum - margin): the reference's
  // hinge on the sum over centres (gaps of opposite sign cancel).
  double hinge = 0.0;
};
absl::StatusOr<BalanceTerms> ComputeBalance(const KernelMatrixF& k_obs,
                                            const KernelMatrixF& k_all,
                                            std::span<const float> w,
                                            double margin);

// The weight model's objective, as a function of log-weights l = log w:
//   L = (1/B) sum_o w_o log w_o + penalty * hinge(w)
// Writes dL/dl (length B) into grad_log_w (resized). Working on log w keeps
// the entropy finite at extreme weights: l is clamped to [-kMaxLogWeight,
// kMaxLogWeight] (weights beyond e^80 count as e^80) and w log w -> 0 as
// l -> -inf. Errors: shapes disagree, NaN in log_w, penalty or margin
// negative or non-finite.
inline constexpr double kMaxLogWeight = 80.0;
struct BalanceObjective {
  double entropy = 0.0;  // (1/B) sum w log w
  double hinge = 0.0;
  double loss = 0.0;     // entropy + penalty * hinge
  double gap_sum = 0.0;
};
absl::StatusOr<BalanceObjective> BalanceLossAndGrad(
    const KernelMatrixF& k_obs, const KernelMatrixF& k_all,
    std::span<const float> log_w, double penalty, double margin,
    Eigen::VectorXf* grad_log_w);

// Weight diagnostics: mean, min, max, quantiles (1, 5, 25, 50, 75, 95, 99 %)
// and the effective sample size (sum w)^2 / sum w^2 with its fraction of n.
// Non-finite weights are counted and excluded. Empty input -> {"n": 0}.
nlohmann::json SummarizeWeights(std::span<const float> w);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_KERNEL_BALANCE_H_
