#include "core/propensity/estimator.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace debias::propensity {
namespace {

// Linear-interpolated quantile via selection (O(n), no full sort, so the
// summary stays cheap for tens of millions of events). Reorders v.
double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0.0;
  double pos = q * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  double a = v[lo];
  double b = a;
  if (hi != lo) b = *std::min_element(v.begin() + lo + 1, v.end());
  double f = pos - lo;
  return a * (1 - f) + b * f;
}

nlohmann::json Distribution(std::vector<double> v) {
  nlohmann::json j = nlohmann::json::object();
  if (v.empty()) return j;
  double sum = 0, mn = v[0], mx = v[0];
  for (double x : v) {
    sum += x;
    mn = std::min(mn, x);
    mx = std::max(mx, x);
  }
  j["min"] = mn;
  j["p01"] = Quantile(v, 0.01);
  j["p05"] = Quantile(v, 0.05);
  j["p25"] = Quantile(v, 0.25);
  j["p50"] = Quantile(v, 0.50);
  j["p75"] = Quantile(v, 0.75);
  j["p95"] = Quantile(v, 0.95);
  j["p99"] = Quantile(v, 0.99);
  j["max"] = mx;
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
  // Share of the total inverse weight carried by the largest 1% of weights
  // (at least one): near 1% when the weights are even, near 1 when a few
  // pairs dominate every IPS sum.
  double top_share = 0.0;
  if (!inv.empty() && sw > 0) {
    const size_t top = std::max<size_t>(1, inv.size() / 100);
    // Reorders inv, which Distribution() below sorts anyway.
    std::nth_element(inv.begin(), inv.begin() + (top - 1), inv.end(), std::greater<>());
    double s = 0;
    for (size_t i = 0; i < top; ++i) s += inv[i];
    top_share = s / sw;
  }
  j["top1pct_weight_share"] = top_share;
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
