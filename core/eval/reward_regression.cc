#include "core/eval/reward_regression.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"

namespace debias::eval {

absl::StatusOr<CrossFitRewardModel> CrossFitRewardModel::Fit(
    std::span<const RewardObservation> observations, uint64_t num_decisions,
    const RewardRegressionOptions& options) {
  if (options.folds < 1 || options.folds > 20) {
    return absl::InvalidArgumentError(absl::StrCat(
        "crossfit_folds=", options.folds, ": folds must be in [1, 20]"));
  }
  if (!(std::isfinite(options.prior_strength) && options.prior_strength > 0 &&
        options.prior_strength <= 1e6)) {
    return absl::InvalidArgumentError(
        absl::StrCat("prior_strength=", options.prior_strength,
                     ": must be in (0, 1e6]"));
  }
  if (num_decisions < static_cast<uint64_t>(options.folds)) {
    return absl::FailedPreconditionError(absl::StrCat(
        num_decisions, " decisions cannot be cross-fitted in ", options.folds,
        " folds: every fold needs at least one decision"));
  }
  CrossFitRewardModel m;
  m.folds_ = options.folds;
  m.m_ = options.prior_strength;
  // Seeded permutation, then round-robin: folds differ in size by at most 1.
  std::vector<uint64_t> perm(num_decisions);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(options.seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  m.fold_.assign(num_decisions, 0);
  for (uint64_t i = 0; i < num_decisions; ++i) {
    m.fold_[perm[i]] = static_cast<int>(i % options.folds);
  }
  auto add = [&](Sums& s, int f, double r) {
    if (s.sum.empty()) {
      s.sum.assign(m.folds_, 0.0);
      s.n.assign(m.folds_, 0.0);
    }
    s.sum[f] += r;
    s.n[f] += 1;
  };
  for (size_t i = 0; i < observations.size(); ++i) {
    const RewardObservation& o = observations[i];
    if (o.decision >= num_decisions) {
      return absl::InvalidArgumentError(
          absl::StrCat("observations[", i, "].decision=", o.decision,
                       ": must be < ", num_decisions));
    }
    if (!std::isfinite(o.reward)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "observations[", i, "].reward: must be finite"));
    }
    const int f = m.fold_[o.decision];
    add(m.global_, f, o.reward);
    add(m.item_[o.action], f, o.reward);
    add(m.cell_[{o.context, o.action}], f, o.reward);
  }
  if (m.global_.sum.empty()) {
    return absl::FailedPreconditionError(
        "no logged reward to fit the reward model on");
  }
  return m;
}

std::pair<double, double> CrossFitRewardModel::Out(const Sums& s,
                                                   int fold) const {
  double sum = 0, n = 0;
  for (int f = 0; f < folds_; ++f) {
    if (f == fold && folds_ > 1) continue;
    sum += s.sum[f];
    n += s.n[f];
  }
  return {sum, n};
}

double CrossFitRewardModel::Predict(int fold, uint64_t context,
                                    uint64_t action) const {
  auto [gs, gn] = Out(global_, fold);
  const double g = gn > 0 ? gs / gn : 0.0;
  double item = g;
  if (auto it = item_.find(action); it != item_.end()) {
    auto [s, n] = Out(it->second, fold);
    item = (s + m_ * g) / (n + m_);
  }
  auto c = cell_.find({context, action});
  if (c == cell_.end()) return item;
  auto [s, n] = Out(c->second, fold);
  return (s + m_ * item) / (n + m_);
}

}  // namespace debias::eval
