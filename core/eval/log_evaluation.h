// Evaluation from a biased log, the two modes of EvaluationService.Evaluate
// that need no labelled test set, as plain C++ (no gRPC): callable from the
// server, the CLI, bench and tests alike.
//
//  - EvaluateRankingFromLog: a ranking's (a model's, or uploaded scores')
//    true ranking quality estimated from a click log with unbiased.h, with
//    intervals, weight diagnostics and, when a labelled missing-at-random
//    sample is given, the same metrics estimated on it side by side.
//  - EvaluatePolicyFromLog: a model's (or uploaded scores') value as a
//    policy on logged decisions (single actions and slates) with the
//    estimators of policy.h, several in one call, with a trust report.
//
// The caller resolves names to objects (models by id, datasets to views)
// and checks the request's fields; these functions decide everything else
// (which events, which users, which items, the estimator inputs) and return
// the numbers and a JSON diagnostics object. Errors: FAILED_PRECONDITION
// when the log cannot give what was asked, CANCELLED when options.cancelled
// fires, INVALID_ARGUMENT for an inconsistent request.
// Thread safety: reentrant; the inputs must outlive the call.
#ifndef DEBIAS_CORE_EVAL_LOG_EVALUATION_H_
#define DEBIAS_CORE_EVAL_LOG_EVALUATION_H_

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/eval/policy.h"
#include "core/eval/reward_regression.h"
#include "core/eval/unbiased.h"
#include "core/model/model.h"
#include "core/propensity/estimator.h"
#include "nlohmann/json.hpp"

namespace debias::eval {

using KeyIndex = absl::flat_hash_map<std::string, uint32_t>;

// keys[i] -> i.
KeyIndex IndexKeys(const std::vector<std::string>& keys);
// sigmoid(x): a score as a relevance probability.
inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
// Appends `text` to diag["warnings"] (created as an array when missing).
void AddWarning(nlohmann::json& diag, std::string text);

// A model as the evaluation sees it: the scorer and its key tables
// (model id <-> user / item key). Borrowed; nothing is owned.
struct KeyedModel {
  const model::Model* model = nullptr;
  const std::vector<std::string>* user_keys = nullptr;
  const std::vector<std::string>* item_keys = nullptr;
  const KeyIndex* user_index = nullptr;
  const KeyIndex* item_index = nullptr;
  uint64_t id = 0;  // for messages and diagnostics (0: not a stored model)

  // sigmoid(score) for (user, item) by key: the relevance an imputation /
  // reward model predicts; 0 for keys it does not know.
  double Relevance(const std::string& user, const std::string& item) const;
  bool Knows(const std::string& user, const std::string& item) const {
    return user_index->contains(user) && item_index->contains(item);
  }
};

// Where a model was trained, for choosing the events it is estimated on.
struct ModelTraining {
  std::string dataset;
  std::optional<double> holdout;  // train --holdout F, if given
  uint64_t holdout_seed = 0;
};

// A user's uploaded scores (EvaluateRequest.scores): items and as many
// finite scores; the caller has checked sizes and finiteness.
struct UploadedScores {
  std::string user;
  std::vector<std::string> items;
  std::vector<float> scores;
};

// Uploaded scores served as a model: each user's uploaded items score what
// was uploaded, every other item -inf (so no policy ever picks it).
struct ScoreTable {
  explicit ScoreTable(const std::vector<UploadedScores>& scores);
  std::unique_ptr<model::Model> model;
  std::vector<std::string> user_keys, item_keys;
  KeyIndex user_index, item_index;
  KeyedModel Keyed() const;
};

// Answers P(exposed) for the log's clicks and for arbitrary (user, item)
// keys: the log's recorded column, an estimator fitted on the log, or an
// estimator borrowed from elsewhere (another model's training propensities).
class PropensitySource {
 public:
  // The log's own propensity column (the caller checked it exists).
  static PropensitySource Logged();
  // `name` fitted on `log` (FitEstimator); errors carry "propensity_from=".
  static absl::StatusOr<PropensitySource> Fit(const std::string& name,
                                              const data::DatasetView& log,
                                              const std::map<std::string, std::string>& params,
                                              const propensity::LabelRule& rule, uint64_t seed);
  // `estimator` over the key tables `users`/`items`; `keep_alive` owns them.
  static PropensitySource Borrowed(const propensity::Estimator* estimator,
                                   const KeyIndex* users, const KeyIndex* items,
                                   std::string name, std::shared_ptr<const void> keep_alive);

  const std::string& name() const { return name_; }
  bool logged() const { return logged_; }
  // Propensity of event e of `v` (a click).
  double Click(const data::DatasetView& v, size_t e) const;
  // Propensity of a pair by key; unknown keys get the estimator's fallback
  // (its floor or marginal), never 0.
  double Pair(const std::string& user, const std::string& item) const;

 private:
  bool logged_ = false;
  std::string name_;
  std::shared_ptr<const propensity::Estimator> owned_;
  std::shared_ptr<const void> keep_alive_;
  const propensity::Estimator* estimator_ = nullptr;
  std::shared_ptr<const KeyIndex> own_users_, own_items_;
  const KeyIndex* users_ = nullptr;
  const KeyIndex* items_ = nullptr;
};

// The ranking mode. Exactly one of `model` and `uploaded`.
struct LogRankingRequest {
  const data::DatasetView* log = nullptr;  // the whole click log
  std::string dataset;                     // its name
  propensity::LabelRule rule;              // which labels are clicks
  UnbiasedRankingOptions options;          // estimator, ks, clip, bootstrap, ...
  std::optional<KeyedModel> model;         // a served model, or
  const std::vector<UploadedScores>* uploaded = nullptr;  // uploaded scores
  ModelTraining training;                  // of `model`
  std::optional<KeyedModel> imputer;       // dr: default `model`
  const PropensitySource* propensity = nullptr;
  uint64_t max_users = 0;                  // 0: every user of the ranking
  const data::DatasetView* mar = nullptr;  // labelled MAR sample, optional
  std::string mar_dataset;                 // its name
};

struct LogEvaluation {
  std::map<std::string, double> metrics;
  std::map<std::string, Interval> intervals;         // bootstrap
  std::map<std::string, Interval> normal_intervals;  // delta method
  std::map<std::string, double> mar_metrics;         // with `mar` only
  nlohmann::json diagnostics;
};

absl::StatusOr<LogEvaluation> EvaluateRankingFromLog(const LogRankingRequest& req);

// The policy mode. `policy` is a served model or a ScoreTable's.
struct PolicyLogRequest {
  const data::DatasetView* log = nullptr;  // with logged propensities
  std::string dataset;
  KeyedModel policy;
  uint64_t model_id = 0;   // 0 for uploaded scores
  KeyedModel rewarder;     // the policy itself unless another model imputes
  std::string reward_model = "self";  // "self", "imputation" or "crossfit"
  RewardRegressionOptions crossfit;
  std::vector<std::string> names;  // as spelled by the caller
  std::vector<PolicyEstimator> estimators;
  PolicyOptions options;
  std::string target = "greedy";  // greedy, softmax (single actions) or ranking
  double temperature = 1.0;
  absl::flat_hash_map<std::string, uint64_t> category;  // mips / snmips
  bool slope = false;
};

absl::StatusOr<LogEvaluation> EvaluatePolicyFromLog(const PolicyLogRequest& req);

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_LOG_EVALUATION_H_
