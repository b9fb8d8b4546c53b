// ClickLogWorld: a synthetic learning-to-rank click log with position bias
// and known ground truth, in the style of the simulation of Ai et al.,
// "Unbiased Learning to Rank with Unbiased Propensity Estimation" (SIGIR
// 2018): a logging ranker shows the top list_size of each query's
// candidates, and a click model (PBM by default) clicks on them.
//
// The world (all deterministic for the options; every query is drawn from
// its own random stream, so query q is the same whatever num_queries is):
//  - Documents: query q has a centre mu_q ~ N(0, I_dim); its candidate d has
//    features x_qd = 0.5 mu_q + z_qd, z_qd ~ N(0, I_dim).
//  - Graded relevance 0..ymax is a NONLINEAR function of the features:
//      f(x) = sum_h v_h tanh(1.5 w_h.x / sqrt(dim) + b_h) / sqrt(H)
//             + 0.5 x_0 x_1,
//    H = 8 hidden units, w_h ~ N(0, I_dim), b_h ~ N(0, 0.25), v_h ~ N(0, 1),
//    cut into labels at quantiles of f over 20,000 calibration documents so
//    that P(label = k) is proportional to 0.6^k (ymax = 4: about 43%, 26%,
//    16%, 9%, 6%). The product term and the tanh units make every linear
//    scorer misspecified.
//  - Logging ranker: ridge regression (lambda = 1, with intercept) of the
//    graded label on the features over logging_fit_queries extra queries
//    drawn from the same distribution (like SVMrank on a 1% sample of
//    training queries; ridge keeps it defined when there are fewer fitted
//    documents than features), standardised to unit variance on those queries,
//    plus a fixed per-document Gaussian noise of std logging_noise. It is the
//    same for every impression of a query, so the shown list is fixed.
//  - Impressions: each query is shown impressions_per_query times. Each
//    impression is, with probability randomized_fraction, shown with result
//    randomisation (the same top list_size documents uniformly shuffled,
//    for the randomisation baseline); otherwise in logging order. Clicks
//    come from the click model on the shown labels. Lists without clicks
//    are kept.
//
// Events (ClickEvents, clicks.csv): one per shown document, user = "q<q>",
// item = "q<q>-d<d>" (d = 0-based candidate index), label = click 0/1,
// list_id = "q<q>-l<k>" (k = 0-based impression index) or "q<q>-r<k>" for a
// randomised impression, position 1..list_size, features = x_qd. Ordered by
// query, impression, position.
//
// Labelled candidates (CandidateEvents, test.csv, train_truth.csv): one per
// candidate, user = "q<q>", item = "q<q>-d<d>", label = graded relevance,
// list_id = "q<q>", features. Test queries are ids num_queries ..
// num_queries + num_test_queries - 1, drawn like training queries but never
// logged.
//
// Thread safety: immutable after Generate(); const methods are thread-safe.
#ifndef DEBIAS_CORE_SYNTH_CLICK_LOG_WORLD_H_
#define DEBIAS_CORE_SYNTH_CLICK_LOG_WORLD_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clickmodels/click_model.h"
#include "core/data/dataset_view.h"
#include "core/data/interaction.h"
#include "nlohmann/json.hpp"

namespace debias::synth {

struct ClickLogWorldOptions {
  int num_queries = 1000;            // [1, 1,000,000]
  int docs_per_query = 30;           // candidates, [list_size, 1000]
  int list_size = 10;                // shown documents, [1, 100]
  int feature_dim = 16;              // [2, 700]
  int impressions_per_query = 10;    // logged lists per query, [1, 100,000]
  double randomized_fraction = 0.0;  // [0, 1]
  int num_test_queries = 200;        // [0, 1,000,000]
  // Queries the logging ranker is fitted on, [0, 10,000]; 0 = auto:
  // max(20, ceil(3 * (feature_dim + 1) / docs_per_query)).
  int logging_fit_queries = 0;
  double logging_noise = 0.5;  // [0, 100]
  // Click model; eta, eps, pos, ymax and continuation as in
  // clickmodels::ClickModelOptions (ymax is also the highest graded label).
  clickmodels::ClickModelKind click_model = clickmodels::ClickModelKind::kPbm;
  double eta = 1.0;
  double eps = 0.1;
  double pos = 1.0;
  int ymax = 4;
  double cascade_continuation = 0.0;
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the first field out of range, or OK. Also bounds
// the size: at most 256M stored feature floats ((num_queries +
// num_test_queries) * docs_per_query * feature_dim) and 100M shown events.
absl::Status ValidateClickLogWorldOptions(const ClickLogWorldOptions& options);

struct ClickLogWorldSummary {
  uint64_t lists = 0;
  uint64_t randomized_lists = 0;
  uint64_t events = 0;  // shown documents
  uint64_t clicks = 0;
  uint64_t lists_without_clicks = 0;
  std::vector<double> label_fractions;  // over training candidates, 0..ymax
  // Mean NDCG@list_size (gains 2^l - 1, log2 discount, 0 when no relevant
  // candidate counts as skipped) over training queries.
  double logging_ndcg = 0.0;
  double random_ndcg = 0.0;  // expected, of a random order (estimated)
};

class ClickLogWorld {
 public:
  // Draws the world. INVALID_ARGUMENT for options out of range.
  static absl::StatusOr<ClickLogWorld> Generate(
      const ClickLogWorldOptions& options);

  const ClickLogWorldOptions& options() const { return options_; }
  const ClickLogWorldSummary& summary() const { return summary_; }
  const clickmodels::ClickModel& click_model() const { return *click_model_; }

  // Truth per query, for training (q < num_queries) and test queries
  // (num_queries <= q < num_queries + num_test_queries); empty out of range.
  std::span<const int8_t> Labels(int q) const;          // per candidate
  std::span<const float> Features(int q, int d) const;  // feature_dim floats
  // Candidate indices in logging order, the first list_size are shown.
  std::span<const uint16_t> LoggingOrder(int q) const;

  // The click model's examination curve for positions 1..list_size
  // (ClickModel::ExaminationCurve) and its oracle inverse propensities
  // relative to position 1.
  std::vector<double> ExaminationCurve() const;
  std::vector<double> OracleInversePropensities() const;
  // P(E = 1) per position averaged over the logged impressions (exact
  // marginals given the shown labels). Equals ExaminationCurve() for PBM.
  const std::vector<double>& MeanExaminationByPosition() const {
    return mean_exam_;
  }

  // The logged lists.
  uint64_t num_lists() const { return list_query_.size(); }
  int ListQuery(uint64_t list) const { return list_query_[list]; }
  bool ListRandomized(uint64_t list) const { return list_randomized_[list]; }
  // Shown candidate indices and clicks of a list (list_size each).
  std::span<const uint16_t> ListDocs(uint64_t list) const;
  std::span<const uint8_t> ListClicks(uint64_t list) const;

  // Click events, see the file comment. events * (~170 + 4 feature_dim)
  // bytes; prefer ClickView() for big logs.
  std::vector<data::Interaction> ClickEvents() const;
  // The click log as a DatasetView: user id = query id, item id = q *
  // docs_per_query + d, list id = list index (ListQuery etc. apply), with
  // positions and features; keys as in ClickEvents.
  absl::StatusOr<data::DatasetView> ClickView() const;

  // Labelled candidates of queries [first, first + count), which must lie
  // within the training and test queries (INVALID_ARGUMENT otherwise).
  absl::StatusOr<std::vector<data::Interaction>> CandidateEvents(
      int first, int count) const;
  std::vector<data::Interaction> TestEvents() const;  // all test queries

  nlohmann::json TruthJson() const;

  // Writes dir/clicks.csv (ClickEvents), dir/test.csv (test queries'
  // candidates), dir/train_truth.csv (training queries' candidates with
  // graded labels) and dir/truth.json (TruthJson). Creates dir. DATA_LOSS on
  // I/O failure.
  absl::Status WriteWorld(const std::string& dir) const;

 private:
  ClickLogWorld() = default;

  // Draws query `index` of random stream `stream`: features (docs x dim),
  // relevance score f per doc and a standard normal per doc for the logging
  // noise.
  void DrawQuery(uint64_t stream, uint64_t index, float* features, double* f,
                 double* noise) const;
  double RelevanceScore(const float* x) const;
  int8_t GradeOf(double f) const;

  // The stages of Generate, in order; each fills the members it names.
  absl::Status CreateClickModel();  // click_model_
  void DrawRelevanceModel();        // w1_, b1_, v_
  void CalibrateThresholds();       // thresholds_
  void FitLoggingRanker();          // log_w_, log_b_, log_sd_
  void DrawQueries();               // features_, labels_, order_
  absl::Status DrawClicks();        // list_*, mean_exam_, click counts
  void MeasureRankers();            // summary_.logging_ndcg, random_ndcg

  ClickLogWorldOptions options_;
  ClickLogWorldSummary summary_;
  std::unique_ptr<clickmodels::ClickModel> click_model_;
  // Relevance MLP.
  std::vector<double> w1_;  // H x dim
  std::vector<double> b1_, v_;
  std::vector<double> thresholds_;  // ymax ascending cut points of f
  // Logging ranker: score = (w.x + b) / sd + noise.
  std::vector<double> log_w_;
  double log_b_ = 0.0, log_sd_ = 1.0;
  // Per query (training then test).
  std::vector<float> features_;  // Q x docs x dim
  std::vector<int8_t> labels_;   // Q x docs
  std::vector<uint16_t> order_;  // Q x docs, logging order
  // Logged lists.
  std::vector<int32_t> list_query_;
  std::vector<int32_t> list_impression_;
  std::vector<uint8_t> list_randomized_;
  std::vector<uint16_t> list_docs_;   // lists x list_size
  std::vector<uint8_t> list_clicks_;  // lists x list_size
  std::vector<double> mean_exam_;
};

}  // namespace debias::synth

#endif  // DEBIAS_CORE_SYNTH_CLICK_LOG_WORLD_H_
