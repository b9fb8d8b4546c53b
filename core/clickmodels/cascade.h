// Cascade model (Craswell et al., WSDM 2008): the user scans top-down,
// examining every rank until a click; each examined document is clicked
// with its attractiveness. After a click the user goes on scanning with
// probability `continuation` (0 = the classic model, at most one click;
// > 0 is a dependent-click model with one rank-independent continuation
// probability). There is no abandonment without a click, and eta is
// ignored. P(E_1) = 1, P(E_{r+1}) = P(E_r) (1 - a_r + a_r continuation).
#ifndef DEBIAS_CORE_CLICKMODELS_CASCADE_H_
#define DEBIAS_CORE_CLICKMODELS_CASCADE_H_

#include <vector>

#include "core/clickmodels/click_model.h"

namespace debias::clickmodels {

class CascadeModel final : public ClickModel {
 public:
  // Options are validated by ClickModel::Create, the only caller.
  CascadeModel(const ClickModelOptions& options,
               std::vector<double> click_prob);

  std::vector<double> ExaminationCurve(int num_ranks) const override;

 private:
  void DoSimulate(const double* attract, size_t n, Rng& rng,
                  uint8_t* clicks) const override;
  double DoLogLikelihood(const double* attract, const uint8_t* clicks,
                         size_t n) const override;
  void DoMarginals(const double* attract, size_t n, double* exam,
                   double* click) const override;
};

}  // namespace debias::clickmodels

#endif  // DEBIAS_CORE_CLICKMODELS_CASCADE_H_
