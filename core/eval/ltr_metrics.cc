#include "core/eval/ltr_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace debias::eval {
namespace {

std::vector<int> Order(std::span<const float> scores) {
  std::vector<int> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  return idx;
}

double Gain(float label) {
  const double l = std::isfinite(label) ? std::max(0.0f, label) : 0.0;
  return std::exp2(l) - 1.0;
}

}  // namespace

double LtrNdcgAtK(std::span<const float> scores, std::span<const float> labels,
                  int k) {
  const std::vector<int> order = Order(scores);
  std::vector<double> gains(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) gains[i] = Gain(labels[i]);
  const int n = std::min<int>(k, static_cast<int>(order.size()));
  double dcg = 0.0;
  for (int r = 0; r < n; ++r) dcg += gains[order[r]] / std::log2(r + 2.0);
  std::sort(gains.begin(), gains.end(), std::greater<double>());
  double idcg = 0.0;
  for (int r = 0; r < n; ++r) idcg += gains[r] / std::log2(r + 2.0);
  return idcg > 0.0 ? dcg / idcg : 0.0;
}

double LtrErrAtK(std::span<const float> scores, std::span<const float> labels,
                 int k, int max_label) {
  const std::vector<int> order = Order(scores);
  const int n = std::min<int>(k, static_cast<int>(order.size()));
  const double denom = std::exp2(max_label);
  double err = 0.0, p_continue = 1.0;
  for (int r = 0; r < n; ++r) {
    const double R = Gain(labels[order[r]]) / denom;
    err += p_continue * R / (r + 1.0);
    p_continue *= 1.0 - R;
  }
  return err;
}

absl::Status ValidateLtrMetricOptions(const LtrMetricOptions& o) {
  for (int k : o.ndcg_ks) {
    if (k < 1 || k > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("ndcg_ks: k=", k, ": k must be in [1, 100000]"));
    }
  }
  for (int k : o.err_ks) {
    if (k < 1 || k > 100000) {
      return absl::InvalidArgumentError(
          absl::StrCat("err_ks: k=", k, ": k must be in [1, 100000]"));
    }
  }
  if (o.max_label < 1 || o.max_label > 30) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_label=", o.max_label, ": max_label must be in [1, 30]"));
  }
  return absl::OkStatus();
}

void LtrAccumulator::AddList(std::span<const float> scores,
                             std::span<const float> labels) {
  for (int k : opts_.ndcg_ks) {
    sums_[absl::StrCat("ndcg@", k)] += LtrNdcgAtK(scores, labels, k);
  }
  for (int k : opts_.err_ks) {
    sums_[absl::StrCat("err@", k)] += LtrErrAtK(scores, labels, k, opts_.max_label);
  }
  ++lists_;
}

std::map<std::string, double> LtrAccumulator::Result() const {
  std::map<std::string, double> out;
  for (int k : opts_.ndcg_ks) out[absl::StrCat("ndcg@", k)] = 0.0;
  for (int k : opts_.err_ks) out[absl::StrCat("err@", k)] = 0.0;
  for (const auto& [key, sum] : sums_) {
    out[key] = lists_ > 0 ? sum / lists_ : 0.0;
  }
  out["lists"] = static_cast<double>(lists_);
  return out;
}

absl::StatusOr<std::map<std::string, double>> EvaluateRankerOnLists(
    const model::Model& model, const data::DatasetView& test,
    const LtrMetricOptions& opts) {
  RETURN_IF_ERROR(ValidateLtrMetricOptions(opts));
  if (model.feature_dim() <= 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model kind '", std::string(model.kind()), "' does not score feature vectors"));
  }
  if (model.feature_dim() != test.feature_dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        "test feature_dim ", test.feature_dim, " != model feature_dim ",
        model.feature_dim()));
  }
  // Group events by list (or user): counting sort keeps event order.
  const bool by_list = !test.list.empty();
  const size_t groups = by_list ? test.list_keys.size() : test.num_users();
  std::vector<uint64_t> offsets(groups + 2, 0);
  auto group_of = [&](size_t e) -> size_t {
    if (!by_list) return test.user[e];
    return test.list[e] == data::kNoList ? groups : test.list[e];
  };
  for (size_t e = 0; e < test.num_events(); ++e) ++offsets[group_of(e) + 1];
  for (size_t g = 0; g + 1 < offsets.size(); ++g) offsets[g + 1] += offsets[g];
  std::vector<uint32_t> events(test.num_events());
  std::vector<uint64_t> fill(offsets.begin(), offsets.end() - 1);
  for (size_t e = 0; e < test.num_events(); ++e) {
    events[fill[group_of(e)]++] = static_cast<uint32_t>(e);
  }
  LtrAccumulator acc(opts);
  const size_t d = static_cast<size_t>(test.feature_dim);
  std::vector<float> feats, scores, labels;
  for (size_t g = 0; g < groups; ++g) {
    const uint64_t b = offsets[g], e = offsets[g + 1];
    if (b == e) continue;
    feats.resize((e - b) * d);
    labels.resize(e - b);
    scores.resize(e - b);
    for (uint64_t k = b; k < e; ++k) {
      const auto f = test.FeaturesOf(events[k]);
      std::copy(f.begin(), f.end(), feats.begin() + (k - b) * d);
      labels[k - b] = test.label[events[k]];
    }
    RETURN_IF_ERROR(model.ScoreFeatures(feats, scores));
    acc.AddList(scores, labels);
  }
  return acc.Result();
}

}  // namespace debias::eval
