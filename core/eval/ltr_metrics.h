// Learning-to-rank metrics with ULTRA's conventions (ULTRA
// `ultra/utils/metrics.py`), for graded labels 0..max_label:
//  - nDCG@k: DCG = sum_{r<=k} (2^l_r - 1) / log2(1 + r); IDCG from the same
//    list's labels sorted descending; 0 when IDCG = 0 (a list without any
//    relevant document counts as 0 and is still averaged, as in ULTRA).
//  - ERR@k = sum_{r<=k} (1/r) R_r prod_{i<r} (1 - R_i),
//    R = (2^l - 1) / 2^max_label.
// Documents are ranked by descending score, ties broken by list order
// (stable), so results are deterministic. Negative labels count as 0.
// Thread safety: pure functions; LtrAccumulator is not thread-safe.
#ifndef DEBIAS_CORE_EVAL_LTR_METRICS_H_
#define DEBIAS_CORE_EVAL_LTR_METRICS_H_

#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/model/model.h"

namespace debias::eval {

double LtrNdcgAtK(std::span<const float> scores, std::span<const float> labels,
                  int k);
double LtrErrAtK(std::span<const float> scores, std::span<const float> labels,
                 int k, int max_label);

struct LtrMetricOptions {
  std::vector<int> ndcg_ks = {1, 3, 5, 10};  // each in [1, 100000]
  std::vector<int> err_ks = {10};            // each in [1, 100000]
  int max_label = 4;                         // in [1, 30]
};
// INVALID_ARGUMENT naming the field when out of range.
absl::Status ValidateLtrMetricOptions(const LtrMetricOptions& o);

// Averages per-list metrics: {"ndcg@1", ..., "err@10", "lists"}.
class LtrAccumulator {
 public:
  explicit LtrAccumulator(LtrMetricOptions opts) : opts_(std::move(opts)) {}
  void AddList(std::span<const float> scores, std::span<const float> labels);
  std::map<std::string, double> Result() const;

 private:
  LtrMetricOptions opts_;
  std::map<std::string, double> sums_;
  int64_t lists_ = 0;
};

// Scores every test list of `test` with model.ScoreFeatures and averages the
// metrics. Lists are the view's list ids when it has them, else its users
// (queries); labels are the graded relevance. Errors: FAILED_PRECONDITION
// when the model does not score features or its feature_dim differs from
// the view's; INVALID_ARGUMENT for bad options. Thread-safe.
absl::StatusOr<std::map<std::string, double>> EvaluateRankerOnLists(
    const model::Model& model, const data::DatasetView& test,
    const LtrMetricOptions& opts = {});

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_LTR_METRICS_H_
