#include "core/models/mf_losses.h"

#include <algorithm>
#include <cmath>

namespace debias::models {

double LogSigmoid(double x) {
  return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}

namespace {

// The DR losses' BCE in the two-log form: their gradients use its value
// (e - ehat), so it stays as it was to keep results reproducible.
inline double Bce(double s, double y) {
  return -(y * LogSigmoid(s) + (1 - y) * LogSigmoid(-s));
}

}  // namespace

double SeparableScale(const LossConfig& cfg, std::span<const LossSample> samples) {
  if (cfg.objective == Objective::kSelfNormalized) {
    double sum_c = 0;
    for (const LossSample& x : samples) sum_c += x.weight;
    return sum_c > 0 ? 1.0 / sum_c : 0.0;
  }
  return samples.empty() ? 0.0 : 1.0 / samples.size();
}

double PredictionLoss(const LossConfig& cfg, std::span<const LossSample> samples,
                      std::span<const float> s, std::span<const float> t,
                      std::span<float> grad_s) {
  const size_t n = samples.size();
  double loss = 0;
  if (IsSeparable(cfg)) {
    const double scale = SeparableScale(cfg, samples);
    for (size_t k = 0; k < n; ++k) {
      loss += SeparableTerm(cfg, samples[k], s[k], scale, &grad_s[k]);
    }
    return loss * scale;
  }
  switch (cfg.objective) {
    case Objective::kWeighted:
    case Objective::kSelfNormalized:
    case Objective::kRelabeled:
      break;  // separable, handled above
    case Objective::kDoublyRobust: {
      size_t no = 0, nd = 0;
      for (const LossSample& x : samples) (x.role == Role::kAllPairs ? nd : no)++;
      const double io = no ? 1.0 / no : 0.0, id = nd ? 1.0 / nd : 0.0;
      for (size_t k = 0; k < n; ++k) {
        const LossSample& x = samples[k];
        const double m = Sigmoid(t[k]), p = Sigmoid(s[k]);
        const double ehat = Bce(s[k], m);
        if (x.role == Role::kAllPairs) {
          loss += id * ehat;
          grad_s[k] = static_cast<float>(id * (p - m));
        } else {
          const double e = Bce(s[k], x.label);
          loss += io * x.weight * (e - ehat);
          // d(e - ehat)/ds = (p - y) - (p - m) = m - y.
          grad_s[k] = static_cast<float>(io * x.weight * (m - x.label));
        }
      }
      return loss;
    }
  }
  return loss;
}

double ImputationLoss(std::span<const LossSample> samples,
                      std::span<const float> s, std::span<const float> t,
                      std::span<float> grad_t, ImputationFit fit) {
  size_t no = 0;
  for (const LossSample& x : samples) no += x.role != Role::kAllPairs;
  const double io = no ? 1.0 / no : 0.0;
  double loss = 0;
  for (size_t k = 0; k < samples.size(); ++k) {
    const LossSample& x = samples[k];
    if (x.role == Role::kAllPairs) {
      grad_t[k] = 0;
      continue;
    }
    const double m = Sigmoid(t[k]);
    const double w = io * x.weight2;
    if (fit == ImputationFit::kResidual) {
      // (m - y)^2: d/dt = 2 (m - y) m (1 - m).
      const double r = m - x.label;
      loss += w * r * r;
      grad_t[k] = static_cast<float>(w * 2 * r * m * (1 - m));
      continue;
    }
    const double diff = Bce(s[k], x.label) - Bce(s[k], m);
    loss += w * diff * diff;
    // d ehat / dt = -s m (1 - m), so d diff^2/dt = 2 diff s m (1 - m).
    grad_t[k] = static_cast<float>(w * 2 * diff * s[k] * m * (1 - m));
  }
  return loss;
}

}  // namespace debias::models
