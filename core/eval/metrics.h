// Ranking and pointwise metrics with their conventions as named options.
//
// A "list" is one user's candidate items: scores (higher = better) and
// relevance labels (graded >= 0; an item is "relevant" when its label is
// >= MetricOptions::relevance_threshold). Items are ranked by descending
// score; ties are broken by the original order (stable), so results are
// deterministic. Ranks are 1-based.
//
// Conventions (named after the code bases that use them):
//  - NDCG gain: kExponential (2^rel - 1, standard) or kBinary (1 for relevant).
//    Discount 1 / log2(rank + 1). IDCG from the ideal ordering of the same
//    list, cut at K.
//  - Users without relevant items: kExclude (dropped from every average,
//    standard), kInclude (averaged with 0 for NDCG/recall/MAP/precision), or
//    kNdcgOne (kernel-balancing code: NDCG 1, recall 0, precision 0 and still
//    averaged).
//  - Recall@K = hits / number of relevant items of the list (kernel-balancing
//    code: hits / max(1, #relevant)); Precision@K = hits / K even when the
//    list is shorter than K.
//  - MAP@K: AP@K = sum over relevant ranks r <= K of precision@r, divided by
//    min(#relevant, K).
//  - F1@K: kPerUser (mean over users of 2PR/(P+R), 0 when P+R=0) or
//    kFromAverages (2 P̄ R̄ / (P̄ + R̄), kernel-balancing code).
// Thread safety: pure functions; RankingAccumulator is not thread-safe.
#ifndef DEBIAS_CORE_EVAL_METRICS_H_
#define DEBIAS_CORE_EVAL_METRICS_H_

#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace debias::eval {

enum class Gain { kExponential, kBinary };
enum class EmptyUsers { kExclude, kInclude, kNdcgOne };
enum class F1Mode { kPerUser, kFromAverages };

struct MetricOptions {
  std::vector<int> ks = {5, 10};   // each in [1, 100000]
  Gain gain = Gain::kBinary;
  EmptyUsers empty_users = EmptyUsers::kExclude;
  F1Mode f1 = F1Mode::kPerUser;
  double relevance_threshold = 0.5;  // label >= this is relevant
};

// INVALID_ARGUMENT naming the field for bad options (no k, k out of range).
absl::Status ValidateMetricOptions(const MetricOptions& o);
// Parses convention names: gain "exp"|"binary", empty "exclude"|"include"|
// "ndcg-one", f1 "per-user"|"from-averages". INVALID_ARGUMENT otherwise.
absl::StatusOr<Gain> ParseGain(std::string_view s);
absl::StatusOr<EmptyUsers> ParseEmptyUsers(std::string_view s);
absl::StatusOr<F1Mode> ParseF1Mode(std::string_view s);

// Order of list positions by descending score (stable).
std::vector<int> RankOrder(std::span<const float> scores);

// Single-list metrics. `labels` is aligned with `scores`.
// Binary gain counts label >= threshold as 1; exponential gain is
// 2^label - 1 (labels are graded relevance).
double DcgAtK(std::span<const float> scores, std::span<const float> labels,
              int k, Gain gain, double threshold = 0.5);
// 0 when the list has no gain at all (callers apply EmptyUsers).
double NdcgAtK(std::span<const float> scores, std::span<const float> labels,
               int k, Gain gain, double threshold = 0.5);
int HitsAtK(std::span<const float> scores, std::span<const float> labels, int k,
            double threshold);
double AveragePrecisionAtK(std::span<const float> scores,
                           std::span<const float> labels, int k,
                           double threshold);

// Pooled metrics over pairs. labels are 0/1 (label >= threshold for AUC).
// AUC: Mann-Whitney with average ranks for ties; 0.5 when one class is empty.
double Auc(std::span<const float> scores, std::span<const float> labels,
           double threshold = 0.5);
// Mean binary cross-entropy of probabilities p (clamped to [1e-7, 1-1e-7])
// against labels in [0, 1] (soft labels allowed).
double LogLoss(std::span<const float> probs, std::span<const float> labels);
double Mse(std::span<const float> preds, std::span<const float> labels);

// Accumulates per-user lists and produces the averaged metrics as
// {"ndcg@5", "recall@5", "precision@5", "f1@5", "map@5", ..., "users"}.
class RankingAccumulator {
 public:
  explicit RankingAccumulator(MetricOptions opts);
  // `total_relevant` (>= hits possible) overrides the recall / AP
  // denominator when the list holds only some of the user's relevant items
  // (-1: count them in the list).
  void AddList(std::span<const float> scores, std::span<const float> labels,
               int total_relevant = -1);
  // Folds another accumulator with the same options into this one.
  void Merge(const RankingAccumulator& other);
  std::map<std::string, double> Result() const;

 private:
  MetricOptions opts_;
  int64_t users_ = 0, empty_ = 0;
  // Per k: sums over counted users.
  std::vector<double> ndcg_, recall_, precision_, map_, f1_;
};

}  // namespace debias::eval

#endif  // DEBIAS_CORE_EVAL_METRICS_H_
