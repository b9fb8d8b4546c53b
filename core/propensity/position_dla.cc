#include "core/propensity/position_dla.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace debias::propensity {
namespace {

constexpr double kMaxExponent = 50.0;

// log sum exp of v[i] over shown slots of one list (K slots at `mask`).
template <typename Get>
double MaskedLogSumExp(int K, const uint8_t* mask, Get v) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int i = 0; i < K; ++i) {
    if (mask[i]) mx = std::max(mx, v(i));
  }
  if (!std::isfinite(mx)) return mx;
  double sum = 0.0;
  for (int i = 0; i < K; ++i) {
    if (mask[i]) sum += std::exp(v(i) - mx);
  }
  return mx + std::log(sum);
}

int FirstShown(int K, const uint8_t* mask) {
  for (int i = 0; i < K; ++i) {
    if (mask[i]) return i;
  }
  return -1;
}

}  // namespace

std::vector<double> DlaWeights(std::span<const double> g) {
  std::vector<double> w(g.size());
  for (size_t i = 0; i < g.size(); ++i) w[i] = std::exp(g[0] - g[i]);
  return w;
}

std::vector<double> DlaPropensities(std::span<const double> g) {
  std::vector<double> p(g.size());
  for (size_t i = 0; i < g.size(); ++i) p[i] = std::exp(g[i] - g[0]);
  return p;
}

std::vector<double> LogitsFromPropensities(std::span<const double> propensities) {
  std::vector<double> g(propensities.size());
  for (size_t i = 0; i < g.size(); ++i) g[i] = std::log(propensities[i]);
  return g;
}

double DlaRankerLoss(const SlotBatch& b, std::span<const double> w,
                     double delta, std::span<float> grad) {
  const int K = b.num_positions;
  if (!grad.empty()) std::fill(grad.begin(), grad.end(), 0.0f);
  double total = 0.0, weight = 0.0;
  for (int q = 0; q < b.num_lists; ++q) {
    const size_t o = static_cast<size_t>(q) * K;
    for (int i = 0; i < K; ++i) {
      if (b.mask[o + i]) weight += (b.clicks[o + i] + delta) * w[i];
    }
  }
  if (!(weight > 0.0)) return 0.0;
  for (int q = 0; q < b.num_lists; ++q) {
    const size_t o = static_cast<size_t>(q) * K;
    const uint8_t* m = b.mask.data() + o;
    const float* s = b.scores.data() + o;
    const double lse = MaskedLogSumExp(K, m, [&](int i) { return double{s[i]}; });
    double list_weight = 0.0;
    for (int i = 0; i < K; ++i) {
      if (!m[i]) continue;
      const double c = (b.clicks[o + i] + delta) * w[i];
      list_weight += c;
      total += c * (lse - s[i]);
    }
    if (grad.empty()) continue;
    for (int i = 0; i < K; ++i) {
      if (!m[i]) continue;
      const double c = (b.clicks[o + i] + delta) * w[i];
      const double p = std::exp(s[i] - lse);
      grad[o + i] = static_cast<float>((list_weight * p - c) / weight);
    }
  }
  return total / weight;
}

double DlaPropensityLoss(const SlotBatch& b, std::span<const double> g,
                         double delta, double max_ratio,
                         std::span<double> grad_g) {
  const int K = b.num_positions;
  if (!grad_g.empty()) std::fill(grad_g.begin(), grad_g.end(), 0.0);
  double total = 0.0, weight = 0.0;
  std::vector<double> a(K), grad_acc(K, 0.0);
  for (int q = 0; q < b.num_lists; ++q) {
    const size_t o = static_cast<size_t>(q) * K;
    const uint8_t* m = b.mask.data() + o;
    const float* s = b.scores.data() + o;
    const int ref = FirstShown(K, m);
    if (ref < 0) continue;
    const double lse = MaskedLogSumExp(K, m, [&](int i) { return g[i]; });
    double list_weight = 0.0;
    for (int i = 0; i < K; ++i) {
      a[i] = 0.0;
      if (!m[i]) continue;
      const double e = std::clamp(double{s[ref]} - s[i], -kMaxExponent, kMaxExponent);
      double r = std::exp(e);
      if (max_ratio > 0.0) r = std::min(r, max_ratio);
      a[i] = (b.clicks[o + i] + delta) * r;
      list_weight += a[i];
      total += a[i] * (lse - g[i]);
    }
    weight += list_weight;
    if (grad_g.empty()) continue;
    for (int i = 0; i < K; ++i) {
      if (!m[i]) continue;
      grad_acc[i] += list_weight * std::exp(g[i] - lse) - a[i];
    }
  }
  if (!(weight > 0.0)) return 0.0;
  if (!grad_g.empty()) {
    for (int i = 0; i < K; ++i) grad_g[i] = grad_acc[i] / weight;
  }
  return total / weight;
}

double DlaClickLogLikelihood(const SlotBatch& b, std::span<const double> g,
                             double* num_clicks) {
  const int K = b.num_positions;
  double ll = 0.0, clicks = 0.0;
  for (int q = 0; q < b.num_lists; ++q) {
    const size_t o = static_cast<size_t>(q) * K;
    const uint8_t* m = b.mask.data() + o;
    const float* s = b.scores.data() + o;
    bool any = false;
    for (int i = 0; i < K; ++i) any |= m[i] && b.clicks[o + i] > 0.0f;
    if (!any) continue;
    const double lse =
        MaskedLogSumExp(K, m, [&](int i) { return g[i] + double{s[i]}; });
    for (int i = 0; i < K; ++i) {
      if (!m[i] || b.clicks[o + i] <= 0.0f) continue;
      ll += g[i] + s[i] - lse;
      clicks += 1.0;
    }
  }
  if (num_clicks != nullptr) *num_clicks = clicks;
  return ll;
}

}  // namespace debias::propensity
