#include "core/synth/click_log_world.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "Eigen/Dense"
#include "absl/strings/str_cat.h"
#include "core/synth/synth_util.h"

namespace debias::synth {
namespace {

using clickmodels::Uniform01;
using internal::StandardNormal;
using internal::StreamRng;
using internal::UniformIndex;

constexpr int kHidden = 8;
constexpr int kCalibrationDocs = 20000;
constexpr double kLabelDecay = 0.6;
constexpr double kRidge = 1.0;
constexpr double kMaxFeatureFloats = 256.0 * 1024 * 1024;
constexpr double kMaxEvents = 100e6;

enum Stream : uint64_t {
  kModel = 1,        // relevance MLP
  kQuery = 2,        // training and test queries, index = query id
  kCalibration = 3,  // label thresholds
  kFit = 4,          // logging-ranker fit queries
  kClicks = 5,       // impressions of query q, index = q
  kRandomNdcg = 6,
};

absl::Status IntRange(const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, "=", v, ": ", name, " must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

absl::Status RealRange(const char* name, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, "=", v, ": ", name, " must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

// NDCG@k of `order` (candidate indices) for graded labels; -1 when the query
// has no relevant candidate.
double Ndcg(std::span<const int8_t> labels, const uint16_t* order, int k) {
  std::vector<int> sorted(labels.begin(), labels.end());
  std::sort(sorted.rbegin(), sorted.rend());
  double idcg = 0.0, dcg = 0.0;
  for (int r = 0; r < k && r < static_cast<int>(sorted.size()); ++r) {
    idcg += (std::ldexp(1.0, sorted[r]) - 1.0) / std::log2(r + 2.0);
    dcg += (std::ldexp(1.0, labels[order[r]]) - 1.0) / std::log2(r + 2.0);
  }
  return idcg > 0.0 ? dcg / idcg : -1.0;
}

}  // namespace

absl::Status ValidateClickLogWorldOptions(const ClickLogWorldOptions& o) {
  if (absl::Status s = IntRange("num_queries", o.num_queries, 1, 1'000'000);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IntRange("list_size", o.list_size, 1, 100); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          IntRange("docs_per_query", o.docs_per_query, o.list_size, 1000);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IntRange("feature_dim", o.feature_dim, 2, 700);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IntRange("impressions_per_query",
                                o.impressions_per_query, 1, 100'000);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          RealRange("randomized_fraction", o.randomized_fraction, 0, 1);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          IntRange("num_test_queries", o.num_test_queries, 0, 1'000'000);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          IntRange("logging_fit_queries", o.logging_fit_queries, 0, 10'000);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = RealRange("logging_noise", o.logging_noise, 0, 100);
      !s.ok()) {
    return s;
  }
  clickmodels::ClickModelOptions cm;
  cm.kind = o.click_model;
  cm.eta = o.eta;
  cm.eps = o.eps;
  cm.pos = o.pos;
  cm.ymax = o.ymax;
  cm.continuation = o.cascade_continuation;
  if (absl::Status s = clickmodels::ValidateClickModelOptions(cm); !s.ok()) {
    return s;
  }
  if (o.ymax > 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("ymax=", o.ymax, ": ymax must be in [1, 20]"));
  }
  const double floats =
      (static_cast<double>(o.num_queries) + o.num_test_queries) *
      o.docs_per_query * o.feature_dim;
  if (floats > kMaxFeatureFloats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "(num_queries + num_test_queries) * docs_per_query * feature_dim = ",
        floats, ": must be at most ", kMaxFeatureFloats));
  }
  const double events = static_cast<double>(o.num_queries) *
                        o.impressions_per_query * o.list_size;
  if (events > kMaxEvents) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_queries * impressions_per_query * list_size = ", events,
        ": must be at most ", kMaxEvents));
  }
  return absl::OkStatus();
}

double ClickLogWorld::RelevanceScore(const float* x) const {
  const int dim = options_.feature_dim;
  const double in_scale = 1.5 / std::sqrt(static_cast<double>(dim));
  double f = 0.0;
  for (int h = 0; h < kHidden; ++h) {
    const double* w = &w1_[static_cast<size_t>(h) * dim];
    double a = 0.0;
    for (int k = 0; k < dim; ++k) a += w[k] * x[k];
    f += v_[h] * std::tanh(in_scale * a + b1_[h]);
  }
  return f / std::sqrt(static_cast<double>(kHidden)) +
         0.5 * static_cast<double>(x[0]) * x[1];
}

int8_t ClickLogWorld::GradeOf(double f) const {
  return static_cast<int8_t>(
      std::upper_bound(thresholds_.begin(), thresholds_.end(), f) -
      thresholds_.begin());
}

void ClickLogWorld::DrawQuery(uint64_t stream, uint64_t index, float* features,
                              double* f, double* noise) const {
  const int dim = options_.feature_dim, docs = options_.docs_per_query;
  std::mt19937_64 rng = StreamRng(options_.seed, stream, index);
  std::vector<double> mu(dim);
  for (double& m : mu) m = 0.5 * StandardNormal(rng);
  internal::FillStandardNormal(rng, features, static_cast<size_t>(docs) * dim);
  for (int d = 0; d < docs; ++d) {
    float* x = features + static_cast<size_t>(d) * dim;
    for (int k = 0; k < dim; ++k) {
      x[k] = static_cast<float>(mu[k] + x[k]);
    }
    f[d] = RelevanceScore(x);
  }
  for (int d = 0; d < docs; ++d) noise[d] = StandardNormal(rng);
}

absl::StatusOr<ClickLogWorld> ClickLogWorld::Generate(
    const ClickLogWorldOptions& options) {
  if (absl::Status s = ValidateClickLogWorldOptions(options); !s.ok()) {
    return s;
  }
  ClickLogWorld w;
  w.options_ = options;
  if (w.options_.logging_fit_queries == 0) {
    w.options_.logging_fit_queries = std::max(
        20, (3 * (options.feature_dim + 1) + options.docs_per_query - 1) /
                options.docs_per_query);
  }
  if (absl::Status s = w.CreateClickModel(); !s.ok()) return s;
  w.DrawRelevanceModel();
  w.CalibrateThresholds();
  w.FitLoggingRanker();
  w.DrawQueries();
  if (absl::Status s = w.DrawClicks(); !s.ok()) return s;
  w.MeasureRankers();
  return w;
}

absl::Status ClickLogWorld::CreateClickModel() {
  clickmodels::ClickModelOptions cm;
  cm.kind = options_.click_model;
  cm.eta = options_.eta;
  cm.eps = options_.eps;
  cm.pos = options_.pos;
  cm.ymax = options_.ymax;
  cm.continuation = options_.cascade_continuation;
  absl::StatusOr<std::unique_ptr<clickmodels::ClickModel>> m =
      clickmodels::ClickModel::Create(cm);
  if (!m.ok()) return m.status();
  click_model_ = std::move(*m);
  return absl::OkStatus();
}

void ClickLogWorld::DrawRelevanceModel() {
  const int dim = options_.feature_dim;
  std::mt19937_64 rng = StreamRng(options_.seed, kModel);
  w1_.resize(static_cast<size_t>(kHidden) * dim);
  for (double& x : w1_) x = StandardNormal(rng);
  b1_.resize(kHidden);
  for (double& x : b1_) x = 0.5 * StandardNormal(rng);
  v_.resize(kHidden);
  for (double& x : v_) x = StandardNormal(rng);
}

// Label thresholds: quantiles of f over calibration documents.
void ClickLogWorld::CalibrateThresholds() {
  const int dim = options_.feature_dim, docs = options_.docs_per_query,
            ymax = options_.ymax;
  std::vector<float> qfeat(static_cast<size_t>(docs) * dim);
  std::vector<double> qf(docs), qnoise(docs);
  std::vector<double> fs;
  fs.reserve(kCalibrationDocs + docs);
  for (uint64_t c = 0; fs.size() < static_cast<size_t>(kCalibrationDocs); ++c) {
    DrawQuery(kCalibration, c, qfeat.data(), qf.data(), qnoise.data());
    fs.insert(fs.end(), qf.begin(), qf.end());
  }
  std::sort(fs.begin(), fs.end());
  double total = 0.0;
  for (int k = 0; k <= ymax; ++k) total += std::pow(kLabelDecay, k);
  double cum = 0.0;
  for (int k = 0; k < ymax; ++k) {
    cum += std::pow(kLabelDecay, k) / total;
    const size_t at =
        std::min(fs.size() - 1, static_cast<size_t>(cum * fs.size()));
    thresholds_.push_back(fs[at]);
  }
}

// Logging ranker: ridge regression of the grades on the fit queries.
void ClickLogWorld::FitLoggingRanker() {
  const int dim = options_.feature_dim, docs = options_.docs_per_query;
  std::vector<float> qfeat(static_cast<size_t>(docs) * dim);
  std::vector<double> qf(docs), qnoise(docs);
  const int fit_queries = options_.logging_fit_queries;
  const int n = fit_queries * docs;
  Eigen::MatrixXd X(n, dim + 1);
  Eigen::VectorXd y(n);
  for (int j = 0; j < fit_queries; ++j) {
    DrawQuery(kFit, j, qfeat.data(), qf.data(), qnoise.data());
    for (int d = 0; d < docs; ++d) {
      const int row = j * docs + d;
      for (int k = 0; k < dim; ++k) {
        X(row, k) = qfeat[static_cast<size_t>(d) * dim + k];
      }
      X(row, dim) = 1.0;
      y(row) = GradeOf(qf[d]);
    }
  }
  Eigen::MatrixXd A = X.transpose() * X;
  A.diagonal().array() += kRidge;
  Eigen::VectorXd beta = A.ldlt().solve(X.transpose() * y);
  log_w_.assign(beta.data(), beta.data() + dim);
  log_b_ = beta(dim);
  Eigen::VectorXd s = X * beta;
  const double mean = s.mean();
  const double sd = std::sqrt((s.array() - mean).square().mean());
  log_sd_ = sd > 1e-12 ? sd : 1.0;
}

// Queries (training then test): features, labels, logging order.
void ClickLogWorld::DrawQueries() {
  const int dim = options_.feature_dim, docs = options_.docs_per_query,
            ymax = options_.ymax;
  std::vector<double> qf(docs), qnoise(docs);
  const size_t Q =
      static_cast<size_t>(options_.num_queries) + options_.num_test_queries;
  features_.resize(Q * docs * dim);
  labels_.resize(Q * docs);
  order_.resize(Q * docs);
  summary_.label_fractions.assign(ymax + 1, 0.0);
  std::vector<double> score(docs);
  for (size_t q = 0; q < Q; ++q) {
    float* feat = &features_[q * docs * dim];
    DrawQuery(kQuery, q, feat, qf.data(), qnoise.data());
    int8_t* lab = &labels_[q * docs];
    for (int d = 0; d < docs; ++d) {
      lab[d] = GradeOf(qf[d]);
      if (q < static_cast<size_t>(options_.num_queries)) {
        summary_.label_fractions[lab[d]] += 1.0;
      }
      const float* x = feat + static_cast<size_t>(d) * dim;
      double s = log_b_;
      for (int k = 0; k < dim; ++k) s += log_w_[k] * x[k];
      score[d] = s / log_sd_ + options_.logging_noise * qnoise[d];
    }
    uint16_t* ord = &order_[q * docs];
    std::iota(ord, ord + docs, uint16_t{0});
    std::stable_sort(ord, ord + docs, [&](uint16_t a, uint16_t b) {
      return score[a] > score[b];
    });
  }
  for (double& x : summary_.label_fractions) {
    x /= static_cast<double>(options_.num_queries) * docs;
  }
}

// Logged impressions (the logging order, or a shuffle of its top L for a
// randomized list) and their clicks.
absl::Status ClickLogWorld::DrawClicks() {
  const int docs = options_.docs_per_query, L = options_.list_size;
  const size_t lists =
      static_cast<size_t>(options_.num_queries) * options_.impressions_per_query;
  list_query_.resize(lists);
  list_impression_.resize(lists);
  list_randomized_.resize(lists);
  list_docs_.resize(lists * L);
  list_clicks_.resize(lists * L);
  mean_exam_.assign(L, 0.0);
  std::vector<double> attract(L), exam;
  std::vector<uint8_t> clicks;
  size_t li = 0;
  for (int q = 0; q < options_.num_queries; ++q) {
    std::mt19937_64 rng = StreamRng(options_.seed, kClicks, q);
    const uint16_t* ord = &order_[static_cast<size_t>(q) * docs];
    const int8_t* lab = &labels_[static_cast<size_t>(q) * docs];
    for (int k = 0; k < options_.impressions_per_query; ++k, ++li) {
      uint16_t* shown = &list_docs_[li * L];
      std::copy(ord, ord + L, shown);
      const bool randomized = options_.randomized_fraction > 0.0 &&
                              Uniform01(rng) < options_.randomized_fraction;
      if (randomized) {
        for (int r = L; r > 1; --r) {
          std::swap(shown[r - 1], shown[UniformIndex(rng, r)]);
        }
      }
      for (int r = 0; r < L; ++r) {
        attract[r] = click_model_->Attractiveness(lab[shown[r]]);
      }
      absl::Status s = click_model_->SimulateFromAttractiveness(attract, rng, &clicks);
      if (!s.ok()) return s;
      s = click_model_->Marginals(attract, &exam, nullptr);
      if (!s.ok()) return s;
      int n_clicks = 0;
      for (int r = 0; r < L; ++r) {
        list_clicks_[li * L + r] = clicks[r];
        n_clicks += clicks[r];
        mean_exam_[r] += exam[r];
      }
      list_query_[li] = q;
      list_impression_[li] = k;
      list_randomized_[li] = randomized ? 1 : 0;
      summary_.randomized_lists += randomized ? 1 : 0;
      summary_.clicks += n_clicks;
      summary_.lists_without_clicks += n_clicks == 0 ? 1 : 0;
    }
  }
  for (double& e : mean_exam_) e /= static_cast<double>(lists);
  summary_.lists = lists;
  summary_.events = lists * L;
  return absl::OkStatus();
}

// Ranking quality of the logging ranker and of a random order.
void ClickLogWorld::MeasureRankers() {
  const int docs = options_.docs_per_query, L = options_.list_size;
  double log_sum = 0.0, rnd_sum = 0.0;
  int n = 0;
  std::mt19937_64 rng = StreamRng(options_.seed, kRandomNdcg);
  std::vector<uint16_t> perm(docs);
  for (int q = 0; q < options_.num_queries; ++q) {
    std::span<const int8_t> lab = Labels(q);
    const double nd = Ndcg(lab, &order_[static_cast<size_t>(q) * docs], L);
    if (nd < 0.0) continue;
    std::iota(perm.begin(), perm.end(), uint16_t{0});
    for (int r = docs; r > 1; --r) {
      std::swap(perm[r - 1], perm[UniformIndex(rng, r)]);
    }
    log_sum += nd;
    rnd_sum += Ndcg(lab, perm.data(), L);
    ++n;
  }
  summary_.logging_ndcg = n > 0 ? log_sum / n : 0.0;
  summary_.random_ndcg = n > 0 ? rnd_sum / n : 0.0;
}

std::span<const int8_t> ClickLogWorld::Labels(int q) const {
  const size_t docs = options_.docs_per_query;
  if (q < 0 || static_cast<size_t>(q) * docs >= labels_.size()) return {};
  return {labels_.data() + q * docs, docs};
}

std::span<const float> ClickLogWorld::Features(int q, int d) const {
  const size_t docs = options_.docs_per_query, dim = options_.feature_dim;
  if (q < 0 || d < 0 || d >= options_.docs_per_query ||
      static_cast<size_t>(q) * docs >= labels_.size()) {
    return {};
  }
  return {features_.data() + (q * docs + d) * dim, dim};
}

std::span<const uint16_t> ClickLogWorld::LoggingOrder(int q) const {
  const size_t docs = options_.docs_per_query;
  if (q < 0 || static_cast<size_t>(q) * docs >= order_.size()) return {};
  return {order_.data() + q * docs, docs};
}

std::vector<double> ClickLogWorld::ExaminationCurve() const {
  return click_model_->ExaminationCurve(options_.list_size);
}

std::vector<double> ClickLogWorld::OracleInversePropensities() const {
  return click_model_->OracleInversePropensities(options_.list_size);
}

std::span<const uint16_t> ClickLogWorld::ListDocs(uint64_t list) const {
  if (list >= num_lists()) return {};
  return {list_docs_.data() + list * options_.list_size,
          static_cast<size_t>(options_.list_size)};
}

std::span<const uint8_t> ClickLogWorld::ListClicks(uint64_t list) const {
  if (list >= num_lists()) return {};
  return {list_clicks_.data() + list * options_.list_size,
          static_cast<size_t>(options_.list_size)};
}

namespace {

std::string ListKey(int q, int k, bool randomized) {
  return absl::StrCat("q", q, randomized ? "-r" : "-l", k);
}

}  // namespace

std::vector<data::Interaction> ClickLogWorld::ClickEvents() const {
  std::vector<data::Interaction> events;
  events.reserve(summary_.events);
  const int L = options_.list_size;
  for (uint64_t li = 0; li < num_lists(); ++li) {
    const int q = list_query_[li];
    const std::string user = absl::StrCat("q", q);
    const std::string list =
        ListKey(q, list_impression_[li], list_randomized_[li]);
    for (int r = 0; r < L; ++r) {
      const int d = list_docs_[li * L + r];
      data::Interaction e;
      e.user = user;
      e.item = absl::StrCat(user, "-d", d);
      e.label = list_clicks_[li * L + r];
      e.list_id = list;
      e.position = r + 1;
      std::span<const float> x = Features(q, d);
      e.features.assign(x.begin(), x.end());
      events.push_back(std::move(e));
    }
  }
  return events;
}

absl::StatusOr<data::DatasetView> ClickLogWorld::ClickView() const {
  const int L = options_.list_size, docs = options_.docs_per_query;
  data::DatasetViewBuilder b;
  b.Reserve(summary_.events);
  std::vector<std::string> list_keys(num_lists());
  for (uint64_t li = 0; li < num_lists(); ++li) {
    const int q = list_query_[li];
    list_keys[li] = ListKey(q, list_impression_[li], list_randomized_[li]);
    for (int r = 0; r < L; ++r) {
      const int d = list_docs_[li * L + r];
      b.Add(static_cast<uint32_t>(q), static_cast<uint32_t>(q * docs + d),
            list_clicks_[li * L + r], std::nullopt, static_cast<uint32_t>(li),
            r + 1, std::nullopt, Features(q, d));
    }
  }
  std::vector<std::string> users(options_.num_queries);
  std::vector<std::string> items(static_cast<size_t>(options_.num_queries) *
                                 docs);
  for (int q = 0; q < options_.num_queries; ++q) {
    users[q] = absl::StrCat("q", q);
    for (int d = 0; d < docs; ++d) {
      items[static_cast<size_t>(q) * docs + d] = absl::StrCat("q", q, "-d", d);
    }
  }
  return b.Finish(std::move(users), std::move(items), std::move(list_keys), 0);
}

absl::StatusOr<std::vector<data::Interaction>> ClickLogWorld::CandidateEvents(
    int first, int count) const {
  const int total = options_.num_queries + options_.num_test_queries;
  if (first < 0 || count < 0 || first > total - count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries [", first, ", ", static_cast<int64_t>(first) + count,
        "): must lie within [0, ", total, ")"));
  }
  std::vector<data::Interaction> events;
  events.reserve(static_cast<size_t>(count) * options_.docs_per_query);
  for (int q = first; q < first + count; ++q) {
    const std::string user = absl::StrCat("q", q);
    std::span<const int8_t> lab = Labels(q);
    for (int d = 0; d < options_.docs_per_query; ++d) {
      data::Interaction e;
      e.user = user;
      e.item = absl::StrCat(user, "-d", d);
      e.label = lab[d];
      e.list_id = user;
      std::span<const float> x = Features(q, d);
      e.features.assign(x.begin(), x.end());
      events.push_back(std::move(e));
    }
  }
  return events;
}

std::vector<data::Interaction> ClickLogWorld::TestEvents() const {
  return *CandidateEvents(options_.num_queries, options_.num_test_queries);
}

nlohmann::json ClickLogWorld::TruthJson() const {
  const ClickLogWorldOptions& o = options_;
  const ClickLogWorldSummary& s = summary_;
  nlohmann::json j;
  j["kind"] = "click_log";
  j["click_model"] = click_model_->name();
  j["eta"] = o.eta;
  j["eps"] = o.eps;
  j["pos"] = o.pos;
  j["ymax"] = o.ymax;
  j["list_size"] = o.list_size;
  if (o.click_model == clickmodels::ClickModelKind::kCascade) {
    j["continuation"] = o.cascade_continuation;
  }
  // Already raised to eta, as in ULTRA's click model JSON.
  j["exam_prob"] = ExaminationCurve();
  j["exam_prob_meaning"] = "P(examined at position r | no click above r)";
  j["mean_exam_by_position"] = mean_exam_;
  j["oracle_inverse_propensity"] = OracleInversePropensities();
  j["click_prob"] = click_model_->click_probabilities();
  j["randomized_list_marker"] = "-r";
  j["options"] = {{"num_queries", o.num_queries},
                  {"docs_per_query", o.docs_per_query},
                  {"list_size", o.list_size},
                  {"feature_dim", o.feature_dim},
                  {"impressions_per_query", o.impressions_per_query},
                  {"randomized_fraction", o.randomized_fraction},
                  {"num_test_queries", o.num_test_queries},
                  {"logging_fit_queries", o.logging_fit_queries},
                  {"logging_noise", o.logging_noise},
                  {"click_model", click_model_->name()},
                  {"eta", o.eta},
                  {"eps", o.eps},
                  {"pos", o.pos},
                  {"ymax", o.ymax},
                  {"cascade_continuation", o.cascade_continuation},
                  {"seed", o.seed}};
  j["summary"] = {{"lists", s.lists},
                  {"randomized_lists", s.randomized_lists},
                  {"events", s.events},
                  {"clicks", s.clicks},
                  {"lists_without_clicks", s.lists_without_clicks},
                  {"label_fractions", s.label_fractions},
                  {"logging_ndcg", s.logging_ndcg},
                  {"random_ndcg", s.random_ndcg}};
  j["relevance_model"] =
      "label = quantile cut of f(x) = sum_h v_h tanh(1.5 w_h.x/sqrt(dim) + "
      "b_h)/sqrt(8) + 0.5 x0 x1; P(label=k) ~ 0.6^k";
  j["logging_ranker"] =
      "ridge regression (lambda 1) of labels on features over "
      "logging_fit_queries extra queries, standardised, + N(0, "
      "logging_noise^2) per document";
  return j;
}

absl::Status ClickLogWorld::WriteWorld(const std::string& dir) const {
  if (absl::Status s = internal::EnsureDirectory(dir); !s.ok()) return s;
  const int L = options_.list_size;
  const uint64_t lists_per_chunk = std::max<uint64_t>(1, (1 << 18) / L);
  {
    absl::Status s = internal::WriteEventsCsv(
        dir + "/clicks.csv", num_lists(), lists_per_chunk,
        [&](uint64_t begin, std::vector<data::Interaction>* chunk) {
          const uint64_t end = std::min(begin + lists_per_chunk, num_lists());
          for (uint64_t li = begin; li < end; ++li) {
            const int q = list_query_[li];
            const std::string user = absl::StrCat("q", q);
            const std::string list =
                ListKey(q, list_impression_[li], list_randomized_[li]);
            for (int r = 0; r < L; ++r) {
              const int d = list_docs_[li * L + r];
              data::Interaction e;
              e.user = user;
              e.item = absl::StrCat(user, "-d", d);
              e.label = list_clicks_[li * L + r];
              e.list_id = list;
              e.position = r + 1;
              std::span<const float> x = Features(q, d);
              e.features.assign(x.begin(), x.end());
              chunk->push_back(std::move(e));
            }
          }
        });
    if (!s.ok()) return s;
  }
  const uint64_t queries_per_chunk =
      std::max<uint64_t>(1, (1 << 18) / options_.docs_per_query);
  auto write_candidates = [&](const std::string& path, int first, int count) {
    return internal::WriteEventsCsv(
        path, count, queries_per_chunk,
        [&](uint64_t begin, std::vector<data::Interaction>* chunk) {
          const int n = static_cast<int>(
              std::min<uint64_t>(queries_per_chunk, count - begin));
          *chunk = *CandidateEvents(first + static_cast<int>(begin), n);
        });
  };
  if (absl::Status s = write_candidates(dir + "/test.csv", options_.num_queries,
                                        options_.num_test_queries);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          write_candidates(dir + "/train_truth.csv", 0, options_.num_queries);
      !s.ok()) {
    return s;
  }
  nlohmann::json j = TruthJson();
  j["files"] = {{"clicks", "clicks.csv"},
                {"test", "test.csv"},
                {"train_truth", "train_truth.csv"}};
  return internal::WriteTextFile(dir + "/truth.json", j.dump(2) + "\n");
}

}  // namespace debias::synth
