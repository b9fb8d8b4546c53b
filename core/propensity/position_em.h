// Regression EM for the position-based model (Wang et al., "Position Bias
// Estimation for Unbiased Learning to Rank in Personal Search", WSDM 2018):
// the E-step posteriors and the M-step for the examination probabilities.
// The relevance model (the "regression" of the M-step) is fitted by the
// caller (core/models/dla_trainer.h trains a ranker on the posteriors).
//
// PBM: P(C = 1) = theta_k * gamma, theta_k = P(E = 1 | position k), gamma =
// P(R = 1 | document). For one event with click c:
//   c = 1: P(E = 1 | C) = P(R = 1 | C) = 1;
//   c = 0: P(E = 1 | C = 0) = theta (1 - gamma) / (1 - theta gamma),
//          P(R = 1 | C = 0) = (1 - theta) gamma / (1 - theta gamma)
// (the exact posterior; ULTRA_pytorch issue #10 reports a missing factor in
// one port). M-step: theta_k = mean over events at k of P(E = 1 | C).
// Thread safety: pure functions; the accumulator is a plain value.
#ifndef DEBIAS_CORE_PROPENSITY_POSITION_EM_H_
#define DEBIAS_CORE_PROPENSITY_POSITION_EM_H_

#include <vector>

namespace debias::propensity {

struct PbmPosterior {
  double examined = 0.0;  // P(E = 1 | C)
  double relevant = 0.0;  // P(R = 1 | C)
};

// theta and gamma are clamped to [1e-6, 1 - 1e-6] so the posterior is
// always defined.
PbmPosterior PbmEStep(bool click, double theta, double gamma);

// Sums P(E = 1 | C) per position for the M-step.
class PbmThetaAccumulator {
 public:
  explicit PbmThetaAccumulator(int num_positions)
      : num_(num_positions, 0.0), den_(num_positions, 0.0) {}
  // position is 1-based; out-of-range positions are ignored.
  void Add(int position, double examined) {
    if (position < 1 || position > static_cast<int>(num_.size())) return;
    num_[position - 1] += examined;
    den_[position - 1] += 1.0;
  }
  // New theta per position; positions without events keep `previous`.
  std::vector<double> Theta(const std::vector<double>& previous) const;

 private:
  std::vector<double> num_, den_;
};

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_POSITION_EM_H_
