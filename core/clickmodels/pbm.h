// Position-based model (PBM): rank r is examined with probability
// exam(r) = e_r^eta, independently of everything else, and an examined
// document is clicked with its attractiveness. e = kPbmBaseExamination
// (ranks > 10 use e_10). Reference: Ai et al., SIGIR 2018, and ULTRA
// `click_models.py` (PositionBiasedModel).
#ifndef DEBIAS_CORE_CLICKMODELS_PBM_H_
#define DEBIAS_CORE_CLICKMODELS_PBM_H_

#include <vector>

#include "core/clickmodels/click_model.h"

namespace debias::clickmodels {

class PositionBasedModel final : public ClickModel {
 public:
  // Options are validated by ClickModel::Create, the only caller.
  PositionBasedModel(const ClickModelOptions& options,
                     std::vector<double> click_prob);

  std::vector<double> ExaminationCurve(int num_ranks) const override;
  // exam(r) for a 1-based rank (ranks < 1 are treated as 1).
  double Examination(int rank) const;

 private:
  void DoSimulate(const double* attract, size_t n, Rng& rng,
                  uint8_t* clicks) const override;
  double DoLogLikelihood(const double* attract, const uint8_t* clicks,
                         size_t n) const override;
  void DoMarginals(const double* attract, size_t n, double* exam,
                   double* click) const override;

  std::array<double, 10> exam_;  // e_r^eta, ranks 1..10
};

}  // namespace debias::clickmodels

#endif  // DEBIAS_CORE_CLICKMODELS_PBM_H_
