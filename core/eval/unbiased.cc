#include "core/eval/unbiased.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace debias::eval {
namespace {

constexpr int kMaxK = 1000;
constexpr int kMaxBootstrap = 100000;
constexpr double kMinScore = 1e-7;
// Propensities below this are rejected: their weights (> 1e12) could only
// come from a broken estimator, and their squares would overflow the
// variance and ESS sums.
constexpr double kMinPropensity = 1e-12;

// Small, fast and fully specified generator (splitmix64), so bootstrap
// resamples are reproducible across standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by Lemire's multiply-shift (bias < n / 2^64).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >>
                                 64);
  }

 private:
  uint64_t state_;
};

uint64_t ResampleSeed(uint64_t seed, int b) {
  SplitMix64 g(seed ^ (0xd1b54a32d192ed03ULL * (static_cast<uint64_t>(b) + 1)));
  g.Next();
  return g.Next();
}

// Linear interpolation between order statistics (type 7 quantile).
double SortedQuantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  double pos = q * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

bool ValidProbability(double p) {
  return std::isfinite(p) && p >= kMinPropensity && p <= 1.0;
}

std::string Num(double x) { return absl::StrFormat("%g", x); }

}  // namespace

// ---------------------------------------------------------------------------
// Shared machinery.

double NormalQuantile(double q) {
  if (!(q > 0.0 && q < 1.0)) {
    return q <= 0.0 ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
  }
  // Acklam's rational approximation, refined by one Halley step on erfc.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                             -2.759285104469687e+02, 1.383577518672690e+02,
                             -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                             -1.556989798598866e+02, 6.680131188771972e+01,
                             -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                             -2.400758277161838e+00, -2.549732539343734e+00,
                             4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                             2.445134137142996e+00, 3.754408661907416e+00};
  const double plow = 0.02425;
  double x;
  if (q < plow) {
    double t = std::sqrt(-2 * std::log(q));
    x = (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) /
        ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1);
  } else if (q <= 1 - plow) {
    double t = q - 0.5, r = t * t;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) *
        t / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    double t = std::sqrt(-2 * std::log(1 - q));
    x = -(((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) /
        ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1);
  }
  double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - q;
  double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

nlohmann::json SummarizeWeights(std::span<const double> w) {
  nlohmann::json j;
  const size_t n = w.size();
  j["n"] = n;
  if (n == 0) {
    for (const char* k : {"ess", "ess_fraction", "max", "mean", "p50", "p90",
                          "p99", "top1pct_share"}) {
      j[k] = 0.0;
    }
    return j;
  }
  std::vector<double> s(w.begin(), w.end());
  std::sort(s.begin(), s.end());
  double sum = 0, sum2 = 0;
  for (double x : s) {
    sum += x;
    sum2 += x * x;
  }
  double ess = sum2 > 0 ? sum * sum / sum2 : 0.0;
  size_t top = (n + 99) / 100;
  double top_sum = 0;
  for (size_t i = n - top; i < n; ++i) top_sum += s[i];
  j["ess"] = ess;
  j["ess_fraction"] = ess / static_cast<double>(n);
  j["max"] = s.back();
  j["mean"] = sum / static_cast<double>(n);
  j["p50"] = SortedQuantile(s, 0.50);
  j["p90"] = SortedQuantile(s, 0.90);
  j["p99"] = SortedQuantile(s, 0.99);
  j["top1pct_share"] = sum > 0 ? top_sum / sum : 0.0;
  return j;
}

void AppendWeightWarnings(const nlohmann::json& s, nlohmann::json& warnings) {
  const double n = s.value("n", 0.0);
  const double ess = s.value("ess", 0.0);
  const double top = s.value("top1pct_share", 0.0);
  if (n < 30) {
    warnings.push_back(absl::StrCat(
        "only ", Num(n), " weighted observations: intervals are unreliable"));
    return;
  }
  if (ess < 0.01 * n && ess < 100) {
    warnings.push_back(absl::StrCat(
        "effective sample size ", Num(ess), " is below 1% of the ", Num(n),
        " weighted observations: a few weights dominate; consider clipping"));
  }
  if (top > 0.5) {
    warnings.push_back(absl::StrCat(
        "the top 1% of weights carry ", Num(100 * top),
        "% of the total weight: the estimate rests on a few observations"));
  }
}

EstimatesWithIntervals ComputeIntervals(const UnitStatistics& stats,
                                        int num_metrics,
                                        const MetricsFromMeans& f,
                                        const IntervalOptions& options) {
  EstimatesWithIntervals out;
  const int S = stats.num_stats;
  const int64_t U = stats.rows();
  const int M = num_metrics;
  out.estimate.assign(M, 0.0);
  out.normal.assign(M, Interval{});
  if (U <= 0 || S <= 0 || M <= 0) return out;

  // Column-major view of the row-major U x S table: S x U.
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>> xt(
      stats.values.data(), S, U);
  Eigen::VectorXd mean = xt.rowwise().mean();
  std::vector<double> means(mean.data(), mean.data() + S);
  f(means, out.estimate);

  // Delta method: gradient by central differences (exact for linear f).
  Eigen::MatrixXd centered = xt.colwise() - mean;
  Eigen::MatrixXd cov =
      U > 1 ? Eigen::MatrixXd((centered * centered.transpose()) /
                              static_cast<double>(U - 1))
            : Eigen::MatrixXd::Zero(S, S);
  Eigen::MatrixXd grad(M, S);
  std::vector<double> plus(M), minus(M), shifted = means;
  for (int s = 0; s < S; ++s) {
    double h = 1e-6 * std::max(std::abs(means[s]), 1e-3);
    shifted[s] = means[s] + h;
    f(shifted, plus);
    shifted[s] = means[s] - h;
    f(shifted, minus);
    shifted[s] = means[s];
    for (int m = 0; m < M; ++m) grad(m, s) = (plus[m] - minus[m]) / (2 * h);
  }
  const double z = NormalQuantile(0.5 + options.confidence / 2);
  for (int m = 0; m < M; ++m) {
    Eigen::VectorXd g = grad.row(m).transpose();
    double var = std::max(0.0, g.dot(cov * g)) / static_cast<double>(U);
    double half = z * std::sqrt(var);
    out.normal[m] = {out.estimate[m] - half, out.estimate[m] + half};
  }

  const int B = options.bootstrap;
  if (B <= 0) return out;
  std::vector<double> draws(static_cast<size_t>(B) * M);
  const int threads = std::clamp(options.num_threads, 1, std::max(1, B));
  std::atomic<bool> stop{false};
  auto worker = [&](int t) {
    Eigen::VectorXd counts(U);
    std::vector<double> rmeans(S);
    for (int b = t; b < B; b += threads) {
      if (options.cancelled && (b / threads) % 8 == 0 && options.cancelled()) stop = true;
      if (stop.load(std::memory_order_relaxed)) return;
      counts.setZero();
      SplitMix64 g(ResampleSeed(options.seed, b));
      for (int64_t i = 0; i < U; ++i) {
        counts[static_cast<int64_t>(g.Below(static_cast<uint64_t>(U)))] += 1.0;
      }
      Eigen::VectorXd sums = xt * counts;
      for (int s = 0; s < S; ++s) rmeans[s] = sums[s] / static_cast<double>(U);
      f(rmeans, std::span<double>(draws.data() + static_cast<size_t>(b) * M,
                                  static_cast<size_t>(M)));
    }
  };
  if (threads == 1) {
    worker(0);
  } else {
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
    for (auto& th : pool) th.join();
  }
  if (stop.load()) {
    out.cancelled = true;
    return out;
  }
  const double lo_q = (1 - options.confidence) / 2;
  const double hi_q = 1 - lo_q;
  out.bootstrap.assign(M, Interval{});
  std::vector<double> col(B);
  for (int m = 0; m < M; ++m) {
    for (int b = 0; b < B; ++b) col[b] = draws[static_cast<size_t>(b) * M + m];
    std::sort(col.begin(), col.end());
    out.bootstrap[m] = {SortedQuantile(col, lo_q), SortedQuantile(col, hi_q)};
  }
  return out;
}

// ---------------------------------------------------------------------------
// Ranking metrics.

absl::StatusOr<RelevanceEstimator> ParseRelevanceEstimator(std::string_view s) {
  if (s == "naive") return RelevanceEstimator::kNaive;
  if (s == "ips") return RelevanceEstimator::kIps;
  if (s == "snips") return RelevanceEstimator::kSnips;
  if (s == "dr") return RelevanceEstimator::kDr;
  return absl::InvalidArgumentError(
      absl::StrCat("estimator=\"", std::string(s),
                   "\": estimator must be one of naive, ips, snips, dr"));
}

std::string_view RelevanceEstimatorName(RelevanceEstimator e) {
  switch (e) {
    case RelevanceEstimator::kNaive:
      return "naive";
    case RelevanceEstimator::kIps:
      return "ips";
    case RelevanceEstimator::kSnips:
      return "snips";
    case RelevanceEstimator::kDr:
      return "dr";
  }
  return "unknown";
}

namespace {

absl::Status ValidateIntervalOptions(int bootstrap, double confidence,
                                     int num_threads) {
  if (bootstrap < 0 || bootstrap > kMaxBootstrap) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bootstrap=", bootstrap, ": bootstrap must be in [0, 100000]"));
  }
  if (!(confidence >= 0.5 && confidence <= 0.9999)) {
    return absl::InvalidArgumentError(
        absl::StrCat("confidence=", Num(confidence),
                     ": confidence must be in [0.5, 0.9999]"));
  }
  if (num_threads < 1 || num_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_threads=", num_threads, ": num_threads must be in [1, 64]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRankingOptions(const UnbiasedRankingOptions& o) {
  if (o.ks.empty()) {
    return absl::InvalidArgumentError("ks: at least one k is required");
  }
  std::vector<int> ks = o.ks;
  for (int k : ks) {
    if (k < 1 || k > kMaxK) {
      return absl::InvalidArgumentError(
          absl::StrCat("k=", k, ": k must be in [1, 1000]"));
    }
  }
  std::sort(ks.begin(), ks.end());
  if (std::adjacent_find(ks.begin(), ks.end()) != ks.end()) {
    return absl::InvalidArgumentError("ks: each k must be distinct");
  }
  if (!(o.clip == 0.0 || (o.clip > 0.0 && o.clip <= 1.0))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "clip=", Num(o.clip), ": clip must be 0 (none) or in (0, 1]"));
  }
  return ValidateIntervalOptions(o.bootstrap, o.confidence, o.num_threads);
}

absl::Status UserError(size_t u, std::string_view field, size_t i, double v,
                       std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("users[", u, "].", std::string(field), "[", i, "]=", Num(v),
                   ": ", std::string(expected)));
}

absl::Status ValidateUser(const UserRanking& r, size_t u, size_t max_k,
                          RelevanceEstimator est, bool pointwise,
                          std::vector<int32_t>& scratch) {
  const size_t used = std::min(r.ranked.size(), max_k);
  scratch.assign(r.ranked.begin(), r.ranked.begin() + used);
  for (size_t i = 0; i < used; ++i) {
    if (scratch[i] < 0) {
      return UserError(u, "ranked", i, scratch[i], "item ids must be >= 0");
    }
  }
  std::sort(scratch.begin(), scratch.end());
  if (auto it = std::adjacent_find(scratch.begin(), scratch.end());
      it != scratch.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("users[", u, "].ranked: item ", *it,
                     " appears twice; ranked items must be distinct"));
  }
  if (r.clicked_propensity.size() != r.clicked.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "users[", u, "].clicked_propensity has ", r.clicked_propensity.size(),
        " values for ", r.clicked.size(),
        " clicked items; the lengths must match"));
  }
  for (size_t i = 0; i < r.clicked.size(); ++i) {
    if (r.clicked[i] < 0) {
      return UserError(u, "clicked", i, r.clicked[i], "item ids must be >= 0");
    }
    if (i > 0 && r.clicked[i] <= r.clicked[i - 1]) {
      return UserError(u, "clicked", i, r.clicked[i],
                       "clicked items must be strictly ascending");
    }
    if (!ValidProbability(r.clicked_propensity[i])) {
      return UserError(u, "clicked_propensity", i, r.clicked_propensity[i],
                       "must be finite and in (0, 1] (at least 1e-12)");
    }
  }
  if (est == RelevanceEstimator::kDr) {
    if (r.ranked_propensity.size() != r.ranked.size() ||
        r.ranked_imputed.size() != r.ranked.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("users[", u,
                       "]: estimator dr needs ranked_propensity and "
                       "ranked_imputed of the same length as ranked (",
                       r.ranked.size(), "), got ", r.ranked_propensity.size(),
                       " and ", r.ranked_imputed.size()));
    }
    for (size_t i = 0; i < used; ++i) {
      if (!ValidProbability(r.ranked_propensity[i])) {
        return UserError(u, "ranked_propensity", i, r.ranked_propensity[i],
                         "must be finite and in (0, 1] (at least 1e-12)");
      }
      double x = r.ranked_imputed[i];
      if (!(std::isfinite(x) && x >= 0.0 && x <= 1.0)) {
        return UserError(u, "ranked_imputed", i, x,
                         "must be finite and in [0, 1]");
      }
    }
  }
  if (pointwise) {
    if (r.num_candidates <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "users[", u, "].num_candidates=", r.num_candidates,
          ": pointwise-loss inputs must be given for every user or none"));
    }
    if (r.num_candidates < static_cast<int64_t>(r.clicked.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "users[", u, "].num_candidates=", r.num_candidates,
          ": must be >= the number of clicked items (", r.clicked.size(), ")"));
    }
    if (r.clicked_score.size() != r.clicked.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("users[", u, "].clicked_score has ",
                       r.clicked_score.size(), " values for ", r.clicked.size(),
                       " clicked items; the lengths must match"));
    }
    for (size_t i = 0; i < r.clicked_score.size(); ++i) {
      double s = r.clicked_score[i];
      if (!(std::isfinite(s) && s >= 0.0 && s <= 1.0)) {
        return UserError(u, "clicked_score", i, s,
                         "must be finite and in [0, 1]");
      }
    }
    if (!(std::isfinite(r.negative_log_loss_sum) &&
          r.negative_log_loss_sum >= 0.0 && r.negative_log_loss_sum <= 1e12)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "users[", u, "].negative_log_loss_sum=", Num(r.negative_log_loss_sum),
          ": must be finite and in [0, 1e12]"));
    }
  } else if (r.num_candidates != 0 || !r.clicked_score.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "users[", u,
        "]: pointwise-loss inputs (num_candidates, clicked_score) must be "
        "given for every user or none"));
  }
  return absl::OkStatus();
}

// Pointwise-loss inputs are given for every user or none; users[0] says which.
bool Pointwise(std::span<const UserRanking> users, RelevanceEstimator est) {
  return est != RelevanceEstimator::kDr && users[0].num_candidates > 0;
}

// Stage 1 of EstimateRankingMetrics: the options and every user.
absl::Status ValidateRankingInputs(std::span<const UserRanking> users,
                                   const UnbiasedRankingOptions& options) {
  absl::Status st = ValidateRankingOptions(options);
  if (!st.ok()) return st;
  if (users.empty()) {
    return absl::InvalidArgumentError("users: at least one user is required");
  }
  const RelevanceEstimator est = options.estimator;
  if (est == RelevanceEstimator::kDr) {
    for (size_t u = 0; u < users.size(); ++u) {
      if (users[u].num_candidates != 0 || !users[u].clicked_score.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "users[", u,
            "]: pointwise-loss inputs are not supported by estimator dr"));
      }
    }
  }
  const size_t max_k = static_cast<size_t>(*std::max_element(options.ks.begin(), options.ks.end()));
  const bool pointwise = Pointwise(users, est);
  std::vector<int32_t> scratch;
  for (size_t u = 0; u < users.size(); ++u) {
    st = ValidateUser(users[u], u, max_k, est, pointwise, scratch);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// Stages 2 and 3: one row of statistics per user (per k: dcg, precision and,
// but for dr, recall and map; then the click columns and the pointwise-loss
// columns), the metrics from the columns' means, and the diagnostics. The
// pass tallies the click weights for the diagnostics.
class RankingPass {
 public:
  RankingPass(const UnbiasedRankingOptions& options, std::span<const UserRanking> users)
      : options_(options),
        est_(options.estimator),
        dr_(est_ == RelevanceEstimator::kDr),
        snips_(est_ == RelevanceEstimator::kSnips),
        naive_(est_ == RelevanceEstimator::kNaive),
        pointwise_(Pointwise(users, est_)),
        clip_(options.clip),
        ks_(options.ks) {
    std::sort(ks_.begin(), ks_.end());
    max_k_ = static_cast<size_t>(ks_.back());
    nk_ = static_cast<int>(ks_.size());
    per_k_ = dr_ ? 2 : 4;  // dcg, precision[, recall, map]
    int col = nk_ * per_k_;
    col_has_ = dr_ ? -1 : col++;
    col_n_ = col++;  // clicks
    col_w_ = col++;  // sum of inverse weights over clicks
    col_s0_ = pointwise_ ? col++ : -1;
    col_d_ = pointwise_ ? col++ : -1;
    col_cand_ = pointwise_ ? col++ : -1;
    num_stats_ = col;
    for (int k : ks_) {
      names_.push_back(absl::StrCat("dcg@", k));
      names_.push_back(absl::StrCat("precision@", k));
      if (!dr_) {
        names_.push_back(absl::StrCat("recall@", k));
        names_.push_back(absl::StrCat("map@", k));
      }
    }
    if (pointwise_) names_.push_back("pointwise_loss");
  }

  const std::vector<std::string>& names() const { return names_; }

  UnitStatistics Statistics(std::span<const UserRanking> users) {
    UnitStatistics table;
    table.num_stats = num_stats_;
    table.values.assign(users.size() * static_cast<size_t>(num_stats_), 0.0);
    for (const auto& r : users) total_clicks_ += r.clicked.size();
    click_weights_.reserve(total_clicks_);
    for (size_t u = 0; u < users.size(); ++u) {
      AddUser(users[u], table.values.data() + u * static_cast<size_t>(num_stats_));
    }
    return table;
  }

  MetricsFromMeans MetricsFromColumnMeans() const;
  nlohmann::json Diagnostics(size_t num_users) const;

 private:
  double Weight(double p) const { return naive_ ? 1.0 : 1.0 / std::max(p, clip_); }
  void AddUser(const UserRanking& r, double* row);
  // rel_hat_[pos]: the estimated relevance of each ranked item up to max_k.
  void EstimateRelevance(const UserRanking& r);
  // Prefix sums over ranks, read off at each k.
  void FillMetricColumns(double wsum, double wsq, double* row) const;
  nlohmann::json Warnings(const nlohmann::json& w) const;

  const UnbiasedRankingOptions& options_;
  const RelevanceEstimator est_;
  const bool dr_, snips_, naive_, pointwise_;
  const double clip_;
  std::vector<int> ks_;  // ascending
  size_t max_k_ = 0;
  int nk_ = 0, per_k_ = 0;
  int col_has_ = -1, col_n_ = -1, col_w_ = -1, col_s0_ = -1, col_d_ = -1, col_cand_ = -1;
  int num_stats_ = 0;
  std::vector<std::string> names_;
  std::vector<double> rel_hat_;  // scratch
  // Tally of the click weights.
  std::vector<double> click_weights_;
  uint64_t total_clicks_ = 0, clipped_ = 0, users_with_clicks_ = 0;
};

void RankingPass::AddUser(const UserRanking& r, double* row) {
  double wsum = 0.0, wsq = 0.0;
  for (size_t i = 0; i < r.clicked.size(); ++i) {
    double p = r.clicked_propensity[i];
    if (clip_ > 0 && p < clip_) ++clipped_;
    double w = 1.0 / std::max(p, clip_);
    click_weights_.push_back(w);
    wsum += Weight(p);
    wsq += Weight(p) * Weight(p);
  }
  if (!r.clicked.empty()) ++users_with_clicks_;
  row[col_n_] = static_cast<double>(r.clicked.size());
  row[col_w_] = wsum;
  EstimateRelevance(r);
  FillMetricColumns(wsum, wsq, row);
  if (!dr_) row[col_has_] = wsum > 0 ? 1.0 : 0.0;
  if (pointwise_) {
    row[col_s0_] = r.negative_log_loss_sum;
    double dsum = 0.0;
    for (size_t i = 0; i < r.clicked.size(); ++i) {
      double s = std::clamp(r.clicked_score[i], kMinScore, 1.0 - kMinScore);
      dsum += Weight(r.clicked_propensity[i]) * (-std::log(s) + std::log1p(-s));
    }
    row[col_d_] = dsum;
    row[col_cand_] = static_cast<double>(r.num_candidates);
  }
}

void RankingPass::EstimateRelevance(const UserRanking& r) {
  const size_t used = std::min(r.ranked.size(), max_k_);
  rel_hat_.assign(max_k_, 0.0);
  for (size_t pos = 0; pos < used; ++pos) {
    int32_t item = r.ranked[pos];
    auto it = std::lower_bound(r.clicked.begin(), r.clicked.end(), item);
    bool is_click = it != r.clicked.end() && *it == item;
    if (dr_) {
      double rh = r.ranked_imputed[pos];
      double p = is_click ? r.clicked_propensity[it - r.clicked.begin()]
                          : r.ranked_propensity[pos];
      double c = is_click ? 1.0 : 0.0;
      rel_hat_[pos] = rh + (c - p * rh) / std::max(p, clip_);
    } else if (is_click) {
      rel_hat_[pos] = Weight(r.clicked_propensity[it - r.clicked.begin()]);
    }
  }
}

void RankingPass::FillMetricColumns(double wsum, double wsq, double* row) const {
  double dcg = 0, cum = 0, cum_sq = 0, ap = 0;
  size_t next = 0;
  for (size_t pos = 0; pos < max_k_; ++pos) {
    double x = rel_hat_[pos];
    double rank = static_cast<double>(pos + 1);
    dcg += x / std::log2(rank + 1.0);
    ap += x * (1.0 + cum) / rank;
    cum += x;
    cum_sq += x * x;
    while (next < ks_.size() && static_cast<size_t>(ks_[next]) == pos + 1) {
      double k = ks_[next];
      double* c = row + next * per_k_;
      c[0] = dcg;
      c[1] = cum / k;
      if (!dr_ && wsum > 0) {
        // Second-order (delta-method) correction of the ratio's bias:
        // E[A/T] ~ (A/T)(1 - Var T / T^2 + Cov(A, T) / (A T)), with the
        // variances of the Poisson-sampled clicks estimated by sum w^2.
        // It is exactly 1 for naive (w = 1).
        double corr = 1.0 - wsq / (wsum * wsum) +
                      (cum > 0 ? cum_sq / (cum * wsum) : 0.0);
        c[2] = cum / wsum * corr;
        c[3] = ap / std::min(wsum, k);
      }
      ++next;
    }
  }
}

MetricsFromMeans RankingPass::MetricsFromColumnMeans() const {
  return [this](std::span<const double> m, std::span<double> out) {
    double scale = 1.0;
    if (snips_) scale = m[col_w_] > 0 ? m[col_n_] / m[col_w_] : 0.0;
    int o = 0;
    for (int j = 0; j < nk_; ++j) {
      const double* c = m.data() + j * per_k_;
      out[o++] = c[0] * scale;
      out[o++] = c[1] * scale;
      if (!dr_) {
        double has = m[col_has_];
        out[o++] = has > 0 ? c[2] / has : 0.0;
        out[o++] = has > 0 ? c[3] / has : 0.0;
      }
    }
    if (pointwise_) {
      out[o++] =
          m[col_cand_] > 0 ? (m[col_s0_] + scale * m[col_d_]) / m[col_cand_] : 0.0;
    }
  };
}

nlohmann::json RankingPass::Diagnostics(size_t num_users) const {
  nlohmann::json d;
  d["estimator"] = std::string(RelevanceEstimatorName(est_));
  d["users"] = num_users;
  d["users_with_clicks"] = users_with_clicks_;
  d["clicks"] = total_clicks_;
  d["clip"] = clip_;
  nlohmann::json w = SummarizeWeights(click_weights_);
  w["clipped"] = clipped_;
  w["clipped_fraction"] =
      total_clicks_ ? static_cast<double>(clipped_) / total_clicks_ : 0.0;
  d["weights"] = w;
  d["bootstrap"] = {{"resamples", options_.bootstrap},
                    {"confidence", options_.confidence},
                    {"seed", options_.seed}};
  d["warnings"] = Warnings(w);
  return d;
}

nlohmann::json RankingPass::Warnings(const nlohmann::json& w) const {
  nlohmann::json warnings = nlohmann::json::array();
  if (total_clicks_ == 0) {
    warnings.push_back("no clicks: every estimate is 0");
  } else if (!naive_) {
    AppendWeightWarnings(w, warnings);
  }
  if (users_with_clicks_ > 0 && users_with_clicks_ < 30) {
    warnings.push_back(absl::StrCat("only ", users_with_clicks_,
                                    " users have clicks: intervals are "
                                    "unreliable"));
  }
  if (clip_ > 0 && total_clicks_ > 0 &&
      static_cast<double>(clipped_) > 0.5 * static_cast<double>(total_clicks_) &&
      est_ != RelevanceEstimator::kDr && !naive_) {
    warnings.push_back(absl::StrCat(
        Num(100.0 * clipped_ / total_clicks_),
        "% of the clicks have propensities below the clip level: the "
        "clipping bias may be large"));
  }
  return warnings;
}

}  // namespace

absl::StatusOr<UnbiasedRankingResult> EstimateRankingMetrics(
    std::span<const UserRanking> users, const UnbiasedRankingOptions& options) {
  if (absl::Status st = ValidateRankingInputs(users, options); !st.ok()) return st;
  RankingPass pass(options, users);
  const UnitStatistics table = pass.Statistics(users);
  IntervalOptions io{options.bootstrap, options.seed, options.confidence,
                     options.num_threads, options.cancelled};
  const int M = static_cast<int>(pass.names().size());
  EstimatesWithIntervals ests = ComputeIntervals(table, M, pass.MetricsFromColumnMeans(), io);
  if (ests.cancelled) return absl::CancelledError("evaluation cancelled (deadline or client)");

  UnbiasedRankingResult result;
  for (int m = 0; m < M; ++m) {
    const std::string& name = pass.names()[m];
    result.metrics[name] = ests.estimate[m];
    result.normal_intervals[name] = ests.normal[m];
    if (!ests.bootstrap.empty()) result.intervals[name] = ests.bootstrap[m];
  }
  result.diagnostics = pass.Diagnostics(users.size());
  return result;
}

}  // namespace debias::eval
