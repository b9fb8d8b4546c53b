#include "core/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace debias::eval {
namespace {

double GainOf(float label, Gain gain, double threshold) {
  if (gain == Gain::kBinary) return label >= threshold ? 1.0 : 0.0;
  return std::max(0.0, std::exp2(static_cast<double>(label)) - 1.0);
}

}  // namespace

absl::Status ValidateMetricOptions(const MetricOptions& o) {
  if (o.ks.empty()) return absl::InvalidArgumentError("ks: at least one k is needed");
  for (int k : o.ks) {
    if (k < 1 || k > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("k=", k, ": k must be in [1, 100000]"));
    }
  }
  if (!std::isfinite(o.relevance_threshold)) {
    return absl::InvalidArgumentError("relevance_threshold must be finite");
  }
  return absl::OkStatus();
}

absl::StatusOr<Gain> ParseGain(std::string_view s) {
  if (s == "exp") return Gain::kExponential;
  if (s == "binary") return Gain::kBinary;
  return absl::InvalidArgumentError(
      absl::StrCat("gain=", std::string(s), ": gain must be one of exp, binary"));
}
absl::StatusOr<EmptyUsers> ParseEmptyUsers(std::string_view s) {
  if (s == "exclude") return EmptyUsers::kExclude;
  if (s == "include") return EmptyUsers::kInclude;
  if (s == "ndcg-one") return EmptyUsers::kNdcgOne;
  return absl::InvalidArgumentError(absl::StrCat(
      "empty_users=", std::string(s),
      ": empty_users must be one of exclude, include, ndcg-one"));
}
absl::StatusOr<F1Mode> ParseF1Mode(std::string_view s) {
  if (s == "per-user") return F1Mode::kPerUser;
  if (s == "from-averages") return F1Mode::kFromAverages;
  return absl::InvalidArgumentError(absl::StrCat(
      "f1=", std::string(s), ": f1 must be one of per-user, from-averages"));
}

std::vector<int> RankOrder(std::span<const float> scores) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  return order;
}

double DcgAtK(std::span<const float> scores, std::span<const float> labels,
              int k, Gain gain, double threshold) {
  std::vector<int> order = RankOrder(scores);
  double dcg = 0;
  for (int r = 0; r < std::min<int>(k, order.size()); ++r) {
    dcg += GainOf(labels[order[r]], gain, threshold) / std::log2(r + 2.0);
  }
  return dcg;
}

double NdcgAtK(std::span<const float> scores, std::span<const float> labels,
               int k, Gain gain, double threshold) {
  std::vector<double> g(labels.size());
  for (size_t j = 0; j < labels.size(); ++j) g[j] = GainOf(labels[j], gain, threshold);
  std::sort(g.begin(), g.end(), std::greater<>());
  double idcg = 0;
  for (int r = 0; r < std::min<int>(k, g.size()); ++r) idcg += g[r] / std::log2(r + 2.0);
  if (idcg <= 0) return 0.0;
  return DcgAtK(scores, labels, k, gain, threshold) / idcg;
}

int HitsAtK(std::span<const float> scores, std::span<const float> labels, int k,
            double threshold) {
  std::vector<int> order = RankOrder(scores);
  int hits = 0;
  for (int r = 0; r < std::min<int>(k, order.size()); ++r) {
    hits += labels[order[r]] >= threshold;
  }
  return hits;
}

double AveragePrecisionAtK(std::span<const float> scores,
                           std::span<const float> labels, int k,
                           double threshold) {
  int rel = 0;
  for (float l : labels) rel += l >= threshold;
  if (rel == 0) return 0.0;
  std::vector<int> order = RankOrder(scores);
  double ap = 0;
  int hits = 0;
  for (int r = 0; r < std::min<int>(k, order.size()); ++r) {
    if (labels[order[r]] >= threshold) {
      ++hits;
      ap += static_cast<double>(hits) / (r + 1);
    }
  }
  return ap / std::min(rel, k);
}

double Auc(std::span<const float> scores, std::span<const float> labels,
           double threshold) {
  const size_t n = scores.size();
  std::vector<int> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return scores[a] < scores[b]; });
  double rank_sum = 0;
  uint64_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[idx[j]] == scores[idx[i]]) ++j;
    double avg_rank = (i + 1 + j) / 2.0;  // ranks i+1..j
    for (size_t t = i; t < j; ++t) {
      if (labels[idx[t]] >= threshold) {
        rank_sum += avg_rank;
        ++pos;
      }
    }
    i = j;
  }
  const uint64_t neg = n - pos;
  if (pos == 0 || neg == 0) return 0.5;
  return (rank_sum - pos * (pos + 1) / 2.0) / (static_cast<double>(pos) * neg);
}

double LogLoss(std::span<const float> probs, std::span<const float> labels) {
  if (probs.empty()) return 0.0;
  double s = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    double p = std::clamp<double>(probs[i], 1e-7, 1 - 1e-7);
    s -= labels[i] * std::log(p) + (1 - labels[i]) * std::log(1 - p);
  }
  return s / probs.size();
}

double Mse(std::span<const float> preds, std::span<const float> labels) {
  if (preds.empty()) return 0.0;
  double s = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    double d = preds[i] - labels[i];
    s += d * d;
  }
  return s / preds.size();
}

RankingAccumulator::RankingAccumulator(MetricOptions opts)
    : opts_(std::move(opts)) {
  const size_t nk = opts_.ks.size();
  ndcg_.assign(nk, 0);
  recall_.assign(nk, 0);
  precision_.assign(nk, 0);
  map_.assign(nk, 0);
  f1_.assign(nk, 0);
}

void RankingAccumulator::AddList(std::span<const float> scores,
                                 std::span<const float> labels,
                                 int total_relevant) {
  int rel = 0;
  for (float l : labels) rel += l >= opts_.relevance_threshold;
  if (total_relevant >= 0) rel = std::max(rel, total_relevant);
  if (rel == 0) {
    ++empty_;
    if (opts_.empty_users == EmptyUsers::kExclude) return;
    ++users_;
    if (opts_.empty_users == EmptyUsers::kNdcgOne) {
      for (size_t j = 0; j < opts_.ks.size(); ++j) ndcg_[j] += 1.0;
    }
    return;  // everything else adds 0
  }
  ++users_;
  std::vector<int> order = RankOrder(scores);
  std::vector<double> ideal(labels.size());
  for (size_t j = 0; j < labels.size(); ++j) {
    ideal[j] = GainOf(labels[j], opts_.gain, opts_.relevance_threshold);
  }
  std::sort(ideal.begin(), ideal.end(), std::greater<>());
  for (size_t j = 0; j < opts_.ks.size(); ++j) {
    const int k = opts_.ks[j];
    const int n = std::min<int>(k, order.size());
    double dcg = 0, idcg = 0, ap = 0;
    int hits = 0;
    for (int r = 0; r < n; ++r) {
      const float l = labels[order[r]];
      dcg += GainOf(l, opts_.gain, opts_.relevance_threshold) / std::log2(r + 2.0);
      idcg += ideal[r] / std::log2(r + 2.0);
      if (l >= opts_.relevance_threshold) {
        ++hits;
        ap += static_cast<double>(hits) / (r + 1);
      }
    }
    const double p = static_cast<double>(hits) / k;
    const double rc = static_cast<double>(hits) / rel;
    ndcg_[j] += idcg > 0 ? dcg / idcg : 0.0;
    recall_[j] += rc;
    precision_[j] += p;
    map_[j] += ap / std::min(rel, k);
    f1_[j] += (p + rc) > 0 ? 2 * p * rc / (p + rc) : 0.0;
  }
}

void RankingAccumulator::Merge(const RankingAccumulator& o) {
  users_ += o.users_;
  empty_ += o.empty_;
  for (size_t j = 0; j < ndcg_.size() && j < o.ndcg_.size(); ++j) {
    ndcg_[j] += o.ndcg_[j];
    recall_[j] += o.recall_[j];
    precision_[j] += o.precision_[j];
    map_[j] += o.map_[j];
    f1_[j] += o.f1_[j];
  }
}

std::map<std::string, double> RankingAccumulator::Result() const {
  std::map<std::string, double> out;
  const double n = users_ > 0 ? static_cast<double>(users_) : 1.0;
  for (size_t j = 0; j < opts_.ks.size(); ++j) {
    const std::string k = absl::StrCat("@", opts_.ks[j]);
    out["ndcg" + k] = ndcg_[j] / n;
    out["recall" + k] = recall_[j] / n;
    out["precision" + k] = precision_[j] / n;
    out["map" + k] = map_[j] / n;
    if (opts_.f1 == F1Mode::kPerUser) {
      out["f1" + k] = f1_[j] / n;
    } else {
      const double p = precision_[j] / n, r = recall_[j] / n;
      out["f1" + k] = (p + r) > 0 ? 2 * p * r / (p + r) : 0.0;
    }
  }
  out["users"] = static_cast<double>(users_);
  out["users_without_relevant"] = static_cast<double>(empty_);
  return out;
}

}  // namespace debias::eval
