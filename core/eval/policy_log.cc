// EvaluatePolicyFromLog (log_evaluation.h): logged events grouped into
// decisions (single actions and slates), the target policy's probabilities
// and reward-model predictions filled in, the estimators run.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/eval/log_evaluation.h"
#include "core/eval/policy_select.h"

namespace debias::eval {
namespace {

using nlohmann::json;

// The target's item (model index) at every position of a slate of the
// model's items `ids`: "greedy" re-ranks the slate's own items, `ranking` is
// the model's top-L over all its items (a policy of its own, so the slate
// weights are exact); UINT32_MAX past the end of the catalogue.
std::vector<uint32_t> SlateTargetItems(const model::Model& model, uint32_t user,
                                       const std::vector<uint32_t>& ids, bool ranking) {
  std::vector<uint32_t> target_item(ids.size(), UINT32_MAX);
  if (ranking) {
    std::vector<float> all(model.num_items());
    model.ScoreAll(user, all);
    std::vector<uint32_t> top(all.size());
    std::iota(top.begin(), top.end(), 0);
    const size_t L = std::min(ids.size(), top.size());
    std::partial_sort(top.begin(), top.begin() + L, top.end(), [&](uint32_t a, uint32_t b) {
      return all[a] > all[b] || (all[a] == all[b] && a < b);
    });
    for (size_t k = 0; k < L; ++k) target_item[k] = top[k];
    return target_item;
  }
  std::vector<float> s(ids.size());
  model.ScoreItems(user, ids, s);
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  for (size_t k = 0; k < ids.size(); ++k) target_item[k] = ids[order[k]];
  return target_item;
}

// One policy-mode evaluation, as named stages.
class PolicyLogRun {
 public:
  explicit PolicyLogRun(const PolicyLogRequest& req)
      : req_(req),
        log_(*req.log),
        model_based_(std::any_of(req.estimators.begin(), req.estimators.end(),
                                 PolicyEstimatorUsesRewardModel)),
        crossfit_(model_based_ && req.reward_model == "crossfit"),
        served_rewards_(model_based_ && !crossfit_),
        embeddings_(std::any_of(req.estimators.begin(), req.estimators.end(),
                                PolicyEstimatorUsesEmbeddings)),
        self_rewards_(req.rewarder.model == req.policy.model) {}

  absl::StatusOr<LogEvaluation> Run() {
    GroupDecisions();
    if (req_.target == "softmax" && !slates_.empty()) {
      return absl::InvalidArgumentError(
          "target=softmax: only for single-action logs; slates use greedy re-ranking");
    }
    if (crossfit_) log_items_ = IndexKeys(log_.item_keys);
    if (absl::Status st = SingleActions(); !st.ok()) return st;
    Slates();
    if (decisions_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no logged decision of dataset '", req_.dataset, "' can be evaluated (", skipped_,
          " have users or items unknown to model ", req_.model_id, ", ", missing_prop_,
          " events lack a propensity)"));
    }
    if (!missing_category_.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "item_category: no category for logged item '", missing_category_.substr(0, 64),
          "' (mips and snmips need the category of every logged item)"));
    }
    json crossfit_diag;
    if (crossfit_) {
      auto filled = FillCrossFitRewards(decisions_, targets_, req_.crossfit);
      if (!filled.ok()) return filled.status();
      crossfit_diag = *filled;
    }
    auto evaluation =
        EvaluatePolicies(decisions_, req_.names, req_.estimators, req_.options, req_.slope);
    if (!evaluation.ok()) return evaluation.status();
    LogEvaluation out;
    out.diagnostics = Results(evaluation->results, &out);
    out.diagnostics["trust"] = evaluation->trust;
    if (req_.slope) out.diagnostics["slope"] = evaluation->slope_report;
    Diagnostics(crossfit_diag, out.diagnostics);
    return out;
  }

 private:
  // A list is a slate, an event without a list is one action; events
  // without a propensity are counted and left out.
  void GroupDecisions() {
    for (size_t e = 0; e < log_.num_events(); ++e) {
      if (!(log_.propensity[e] > 0)) {
        ++missing_prop_;
        continue;
      }
      if (!log_.list.empty() && log_.list[e] != data::kNoList) {
        slates_[log_.list[e]].push_back(e);
      } else {
        singles_.push_back(e);
      }
    }
  }

  // Reward model: sigmoid of the rewarder's score for (user key, item key);
  // 0 for keys it does not know, counted.
  double RewardHat(const std::string& user, const std::string& item) {
    ++reward_lookups_;
    if (!req_.rewarder.Knows(user, item)) {
      ++reward_unknown_;
      return 0.0;
    }
    return req_.rewarder.Relevance(user, item);
  }

  // A model item as an action of the log (items the log never shows get ids
  // of their own, which the cross-fitted model predicts at the global mean).
  uint64_t LogAction(uint32_t j) const {
    auto it = log_items_.find((*req_.policy.item_keys)[j]);
    return it != log_items_.end() ? it->second : (uint64_t{1} << 63) | j;
  }

  // The embedding of logged event e (mips / snmips); the first missing
  // category is reported.
  uint64_t Embed(size_t e) {
    const std::string& key = log_.item_keys[log_.item[e]];
    auto it = req_.category.find(key);
    if (it != req_.category.end()) return it->second;
    if (missing_category_.empty()) missing_category_ = key;
    return 0;
  }

  // The target policy for one user: pi over the model's items (greedy and
  // ranking: the top item; softmax at the temperature), and the DM value.
  void TargetPolicy(uint32_t user) {
    const model::Model& model = *req_.policy.model;
    scores_.resize(model.num_items());
    model.ScoreAll(user, scores_);
    const uint32_t top =
        static_cast<uint32_t>(std::max_element(scores_.begin(), scores_.end()) - scores_.begin());
    pi_.assign(scores_.size(), 0.0);
    if (req_.target != "softmax") {
      pi_[top] = 1.0;
    } else {
      const float mx = scores_[top];
      double z = 0;
      for (size_t j = 0; j < scores_.size(); ++j) {
        pi_[j] = std::exp((scores_[j] - mx) / req_.temperature);
        z += pi_[j];
      }
      for (double& p : pi_) p /= z;
    }
    dm_ = 0;
    if (crossfit_) {
      targets_.table.emplace_back();
      for (size_t j = 0; j < pi_.size(); ++j) {
        if (pi_[j] > 1e-12) targets_.table.back().push_back({LogAction(j), pi_[j]});
      }
    }
    if (served_rewards_) {
      // The policy's own scores are the reward model's unless another
      // model imputes: then look each item up by key.
      const std::string& ukey = (*req_.policy.user_keys)[user];
      for (size_t j = 0; j < pi_.size(); ++j) {
        if (pi_[j] <= 1e-12) continue;
        const double r = self_rewards_
                             ? (std::isfinite(scores_[j]) ? Sigmoid(scores_[j]) : 0.0)
                             : RewardHat(ukey, (*req_.policy.item_keys)[j]);
        dm_ += pi_[j] * r;
      }
    }
  }

  absl::Status SingleActions() {
    const KeyedModel& policy = req_.policy;
    uint32_t scored_user = UINT32_MAX;
    size_t polled = 0;
    for (size_t e : singles_) {
      if (req_.options.cancelled && ++polled % 1024 == 0 && req_.options.cancelled()) {
        return absl::CancelledError("evaluation cancelled (deadline or client)");
      }
      auto u = policy.user_index->find(log_.user_keys[log_.user[e]]);
      auto i = policy.item_index->find(log_.item_keys[log_.item[e]]);
      if (u == policy.user_index->end() || i == policy.item_index->end()) {
        ++skipped_;
        continue;
      }
      if (u->second != scored_user) {  // events are user-major: score each user once
        scored_user = u->second;
        TargetPolicy(scored_user);
      }
      LoggedDecision d;
      d.reward = {static_cast<double>(log_.label[e])};
      d.logging_prob = {std::min(1.0, static_cast<double>(log_.propensity[e]))};
      d.target_prob = {pi_[i->second]};
      d.context = log_.user[e];
      d.action = {log_.item[e]};
      if (embeddings_) d.embedding = {Embed(e)};
      if (crossfit_) targets_.of.push_back({static_cast<uint32_t>(targets_.table.size() - 1)});
      if (served_rewards_) {
        d.reward_hat = {RewardHat(log_.user_keys[log_.user[e]], log_.item_keys[log_.item[e]])};
        d.target_dm = dm_;
      }
      decisions_.push_back(std::move(d));
    }
    return absl::OkStatus();
  }

  // One slate (events sorted by position) as a decision; false when its
  // user or one of its items is unknown to the policy.
  bool Slate(std::vector<size_t>& ev) {
    std::sort(ev.begin(), ev.end(), [&](size_t a, size_t b) {
      return log_.position[a] < log_.position[b] || (log_.position[a] == log_.position[b] && a < b);
    });
    const KeyedModel& policy = req_.policy;
    const std::string& ukey = log_.user_keys[log_.user[ev.front()]];
    auto u = policy.user_index->find(ukey);
    if (u == policy.user_index->end()) return false;
    std::vector<uint32_t> ids;
    for (size_t e : ev) {
      auto i = policy.item_index->find(log_.item_keys[log_.item[e]]);
      if (i == policy.item_index->end()) return false;
      ids.push_back(i->second);
    }
    const std::vector<uint32_t> target_item =
        SlateTargetItems(*policy.model, u->second, ids, req_.target == "ranking");
    LoggedDecision d;
    d.context = log_.user[ev.front()];
    if (crossfit_) targets_.of.emplace_back();
    for (size_t k = 0; k < ev.size(); ++k) {
      const size_t e = ev[k];
      d.action.push_back(log_.item[e]);
      if (embeddings_) d.embedding.push_back(Embed(e));
      const bool has_target = target_item[k] != UINT32_MAX;  // slate longer than the catalogue
      if (crossfit_) {
        targets_.of.back().push_back(static_cast<uint32_t>(targets_.table.size()));
        targets_.table.emplace_back();
        if (has_target) targets_.table.back().push_back({LogAction(target_item[k]), 1.0});
      }
      d.reward.push_back(log_.label[e]);
      d.logging_prob.push_back(std::min(1.0, static_cast<double>(log_.propensity[e])));
      d.target_prob.push_back(target_item[k] == ids[k] ? 1.0 : 0.0);
      if (served_rewards_) {
        d.reward_hat.push_back(RewardHat(ukey, log_.item_keys[log_.item[e]]));
        d.target_reward_hat.push_back(
            has_target ? RewardHat(ukey, (*policy.item_keys)[target_item[k]]) : 0.0);
        d.target_dm += d.target_reward_hat.back();
      }
    }
    decisions_.push_back(std::move(d));
    return true;
  }

  // Slates, in list order for determinism.
  void Slates() {
    list_ids_.reserve(slates_.size());
    for (const auto& [l, _] : slates_) list_ids_.push_back(l);
    std::sort(list_ids_.begin(), list_ids_.end());
    for (uint32_t l : list_ids_) {
      if (!Slate(slates_[l])) ++skipped_;
    }
  }

  // metrics, intervals and the diagnostics of the estimators: one estimator
  // in the format since the first release, several as policy_value/NAME.
  json Results(const std::vector<PolicyResult>& results, LogEvaluation* out) const {
    const std::vector<std::string>& names = req_.names;
    json diag;
    if (names.size() == 1) {
      const PolicyResult& r = results.front();
      out->metrics["policy_value"] = r.value;
      if (r.interval) out->intervals["policy_value"] = *r.interval;
      out->normal_intervals["policy_value"] = r.normal_interval;
      return r.diagnostics;
    }
    diag["estimators"] = json::object();
    diag["warnings"] = json::array();
    for (size_t j = 0; j < names.size(); ++j) {
      const PolicyResult& r = results[j];
      const std::string key = absl::StrCat("policy_value/", names[j]);
      out->metrics[key] = r.value;
      if (r.interval) out->intervals[key] = *r.interval;
      out->normal_intervals[key] = r.normal_interval;
      for (const auto& w : r.diagnostics["warnings"]) {
        diag["warnings"].push_back(absl::StrCat(names[j], ": ", w.get<std::string>()));
      }
      diag["estimators"][names[j]] = r.diagnostics;
    }
    diag["decisions"] = results.front().diagnostics["decisions"];
    diag["positions"] = results.front().diagnostics["positions"];
    return diag;
  }

  void Diagnostics(const json& crossfit_diag, json& diag) const {
    if (crossfit_) {
      diag["reward_model"] = crossfit_diag;
      diag["reward_model"]["kind"] = "crossfit";
    } else if (model_based_) {
      diag["reward_model"] = {
          {"kind", req_.reward_model},
          {"model_id", req_.rewarder.id},
          {"source", self_rewards_ ? "sigmoid(score) of the evaluated model"
                                   : "sigmoid(score) of imputation_model_id"},
          {"lookups", reward_lookups_},
          {"unknown_keys", reward_unknown_}};
      if (reward_unknown_ > 0) {
        AddWarning(diag, absl::StrCat("the reward model (model ", req_.rewarder.id,
                                      ") does not know ", reward_unknown_, " of ",
                                      reward_lookups_,
                                      " (user, item) keys it was asked for; they were predicted 0"));
      }
    }
    diag["mode"] = "policy";
    diag["dataset"] = req_.dataset;
    diag["model_id"] = req_.model_id;
    diag["target"] = req_.target;
    if (req_.target == "softmax") diag["temperature"] = req_.temperature;
    diag["single_actions"] = singles_.size();
    diag["slates"] = list_ids_.size();
    diag["skipped_decisions"] = skipped_;
    diag["events_without_propensity"] = missing_prop_;
    if (skipped_ > 0 || missing_prop_ > 0) {
      AddWarning(diag, absl::StrCat(skipped_, " decisions with users or items unknown to "
                                    "the model and ", missing_prop_,
                                    " events without a propensity were left out"));
    }
  }

  const PolicyLogRequest& req_;
  const data::DatasetView& log_;
  const bool model_based_, crossfit_, served_rewards_, embeddings_, self_rewards_;
  absl::flat_hash_map<uint32_t, std::vector<size_t>> slates_;
  std::vector<size_t> singles_;
  std::vector<uint32_t> list_ids_;
  int64_t missing_prop_ = 0, skipped_ = 0;
  int64_t reward_lookups_ = 0, reward_unknown_ = 0;
  std::string missing_category_;
  KeyIndex log_items_;                  // crossfit only
  std::vector<LoggedDecision> decisions_;
  TargetDistributions targets_;         // crossfit only
  std::vector<float> scores_;           // of the user last scored
  std::vector<double> pi_;
  double dm_ = 0;
};

}  // namespace

absl::StatusOr<LogEvaluation> EvaluatePolicyFromLog(const PolicyLogRequest& req) {
  if (req.log == nullptr || req.policy.model == nullptr || req.rewarder.model == nullptr ||
      req.names.size() != req.estimators.size() || req.estimators.empty()) {
    return absl::InvalidArgumentError(
        "EvaluatePolicyFromLog: needs a log, a policy, a reward model and one name per "
        "estimator");
  }
  if (!req.log->has_propensities()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset '", req.dataset, "' has no logged propensities: policy estimates need the "
        "logging policy's probability of every logged decision"));
  }
  return PolicyLogRun(req).Run();
}

}  // namespace debias::eval
