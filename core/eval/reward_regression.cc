#include "core/eval/reward_regression.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <tuple>
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

absl::StatusOr<nlohmann::json> FillCrossFitRewards(
    std::span<LoggedDecision> decisions, const TargetDistributions& targets,
    const RewardRegressionOptions& options) {
  if (targets.of.size() != decisions.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("targets: ", targets.of.size(), " rows for ",
                     decisions.size(), " decisions"));
  }
  std::vector<RewardObservation> obs;
  for (size_t i = 0; i < decisions.size(); ++i) {
    const LoggedDecision& d = decisions[i];
    if (d.action.size() != d.reward.size() ||
        targets.of[i].size() != d.reward.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "decisions[", i, "]: action and target rows must have one entry per "
          "position"));
    }
    for (uint32_t row : targets.of[i]) {
      if (row >= targets.table.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "decisions[", i, "]: target row ", row, " out of range"));
      }
    }
    for (size_t k = 0; k < d.reward.size(); ++k) {
      obs.push_back({i, d.context, d.action[k], d.reward[k]});
    }
  }
  auto model = CrossFitRewardModel::Fit(obs, decisions.size(), options);
  if (!model.ok()) return model.status();
  // Expected prediction of a target row for a context and fold, cached
  // (single actions of one user share their row).
  absl::flat_hash_map<std::tuple<uint32_t, uint64_t, int>, double> cache;
  auto expected = [&](uint32_t row, uint64_t x, int f) {
    auto [it, fresh] = cache.try_emplace({row, x, f}, 0.0);
    if (fresh) {
      for (const auto& [a, p] : targets.table[row]) {
        it->second += p * model->Predict(f, x, a);
      }
    }
    return it->second;
  };
  for (size_t i = 0; i < decisions.size(); ++i) {
    LoggedDecision& d = decisions[i];
    const int f = model->FoldOf(i);
    const size_t L = d.reward.size();
    d.reward_hat.assign(L, 0.0);
    d.target_reward_hat.clear();
    d.target_dm = 0;
    for (size_t k = 0; k < L; ++k) {
      d.reward_hat[k] = model->Predict(f, d.context, d.action[k]);
      const double q = expected(targets.of[i][k], d.context, f);
      if (L > 1) d.target_reward_hat.push_back(q);
      d.target_dm += q;
    }
  }
  return nlohmann::json{
      {"source", "crossfit: shrunk means of the logged rewards per (user, item) "
                 "toward the item's toward the global mean, each decision "
                 "predicted from the other folds"},
      {"folds", options.folds},
      {"prior_strength", options.prior_strength},
      {"seed", options.seed},
      {"observations", obs.size()}};
}

}  // namespace debias::eval
