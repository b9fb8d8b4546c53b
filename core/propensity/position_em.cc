#include "core/propensity/position_em.h"

#include <algorithm>

namespace debias::propensity {

PbmPosterior PbmEStep(bool click, double theta, double gamma) {
  if (click) return {1.0, 1.0};
  constexpr double kLo = 1e-6, kHi = 1.0 - 1e-6;
  const double t = std::clamp(theta, kLo, kHi);
  const double g = std::clamp(gamma, kLo, kHi);
  const double z = 1.0 - t * g;
  return {t * (1.0 - g) / z, (1.0 - t) * g / z};
}

std::vector<double> PbmThetaAccumulator::Theta(
    const std::vector<double>& previous) const {
  std::vector<double> theta(num_.size());
  for (size_t k = 0; k < num_.size(); ++k) {
    theta[k] = den_[k] > 0.0 ? num_[k] / den_[k]
                             : (k < previous.size() ? previous[k] : 0.5);
  }
  return theta;
}

}  // namespace debias::propensity
