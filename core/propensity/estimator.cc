#include "core/propensity/estimator.h"

#include <algorithm>
#include <cmath>

namespace debias::propensity {
namespace {

// Linear-interpolated quantile of sorted values.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  double pos = q * (sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double f = pos - lo;
  return sorted[lo] * (1 - f) + sorted[hi] * f;
}

nlohmann::json Distribution(std::vector<double> v) {
  nlohmann::json j = nlohmann::json::object();
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  j["min"] = v.front();
  j["p01"] = Quantile(v, 0.01);
  j["p05"] = Quantile(v, 0.05);
  j["p25"] = Quantile(v, 0.25);
  j["p50"] = Quantile(v, 0.50);
  j["p75"] = Quantile(v, 0.75);
  j["p95"] = Quantile(v, 0.95);
  j["p99"] = Quantile(v, 0.99);
  j["max"] = v.back();
  j["mean"] = sum / v.size();
  return j;
}

}  // namespace

nlohmann::json SummarizePropensities(std::span<const float> p) {
  std::vector<double> prop(p.begin(), p.end());
  std::vector<double> inv;
  inv.reserve(p.size());
  double sw = 0, sw2 = 0;
  for (float x : p) {
    double w = x > 0 ? 1.0 / x : 0.0;
    inv.push_back(w);
    sw += w;
    sw2 += w * w;
  }
  nlohmann::json j;
  j["pairs"] = p.size();
  j["propensity"] = Distribution(std::move(prop));
  j["inverse_weight"] = Distribution(std::move(inv));
  double ess = sw2 > 0 ? sw * sw / sw2 : 0.0;
  j["ess"] = ess;
  j["ess_fraction"] = p.empty() ? 0.0 : ess / p.size();
  return j;
}

std::vector<float> EventPropensities(const Estimator& est,
                                     const data::DatasetView& view,
                                     const LabelRule& rule) {
  std::vector<float> p(view.num_events());
  for (size_t e = 0; e < p.size(); ++e) {
    p[e] = est.Event(view, e, rule.Binary(view.label[e]));
  }
  return p;
}

nlohmann::json Diagnostics(const Estimator& est, const data::DatasetView& view,
                           const LabelRule& rule) {
  std::vector<float> p = EventPropensities(est, view, rule);
  nlohmann::json j = SummarizePropensities(p);
  uint64_t clipped = 0;
  if (auto m = est.clip()) {
    const Estimator& raw = est.unclipped();
    for (size_t e = 0; e < view.num_events(); ++e) {
      if (raw.Event(view, e, rule.Binary(view.label[e])) < *m) ++clipped;
    }
    j["clip"] = *m;
  }
  j["clipped"] = clipped;
  j["clipped_fraction"] =
      view.num_events() ? static_cast<double>(clipped) / view.num_events() : 0.0;
  j["estimator"] = est.Describe();
  j["estimator"]["name"] = std::string(est.name());
  return j;
}

}  // namespace debias::propensity
