// User browsing model (UBM; Dupret & Piwowarski, SIGIR 2008): the
// examination probability of rank r depends on r and on the distance d to
// the rank of the last click above it (d = r when nothing above was
// clicked): P(E_r = 1 | last click at r - d) = gamma(r, d)^eta.
//
// gamma is the 10 x 10 lower-triangular table of ULTRA `click_models.py`
// (UserBrowsingModel, ULTR-Community/ULTRA, the simulator used by the DLA
// authors), row = rank r, column = distance d (1..r); kUbmTable[r-1][d-1].
// Its diagonal (no earlier click) is [1, 1, .95, .82, .69, .54, .47, .43,
// .41, .43]. Ranks > 10 use row 10: with no earlier click gamma(10, 10),
// else gamma(10, min(d, 9)), as ULTRA does.
#ifndef DEBIAS_CORE_CLICKMODELS_UBM_H_
#define DEBIAS_CORE_CLICKMODELS_UBM_H_

#include <array>
#include <vector>

#include "core/clickmodels/click_model.h"

namespace debias::clickmodels {

// kUbmTable[r - 1][d - 1] = gamma(r, d) at eta = 1; entries with d > r are
// unused (0).
inline constexpr std::array<std::array<double, 10>, 10> kUbmTable = {{
    {1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {0.98, 1.0, 0, 0, 0, 0, 0, 0, 0, 0},
    {1.0, 0.62, 0.95, 0, 0, 0, 0, 0, 0, 0},
    {1.0, 0.77, 0.42, 0.82, 0, 0, 0, 0, 0, 0},
    {1.0, 0.92, 0.55, 0.31, 0.69, 0, 0, 0, 0, 0},
    {1.0, 0.96, 0.63, 0.4, 0.22, 0.54, 0, 0, 0, 0},
    {1.0, 0.99, 0.73, 0.46, 0.29, 0.17, 0.47, 0, 0, 0},
    {1.0, 1.0, 0.89, 0.52, 0.35, 0.24, 0.14, 0.43, 0, 0},
    {1.0, 1.0, 0.95, 0.68, 0.4, 0.29, 0.19, 0.12, 0.41, 0},
    {1.0, 1.0, 1.0, 0.96, 0.52, 0.36, 0.27, 0.18, 0.12, 0.43},
}};

class UserBrowsingModel final : public ClickModel {
 public:
  // Options are validated by ClickModel::Create, the only caller.
  UserBrowsingModel(const ClickModelOptions& options,
                    std::vector<double> click_prob);

  std::vector<double> ExaminationCurve(int num_ranks) const override;
  // gamma(rank, rank - last_click)^eta for 1-based ranks; last_click = 0
  // means no click above `rank`. Requires 0 <= last_click < rank.
  double Examination(int rank, int last_click) const;

 private:
  void DoSimulate(const double* attract, size_t n, Rng& rng,
                  uint8_t* clicks) const override;
  double DoLogLikelihood(const double* attract, const uint8_t* clicks,
                         size_t n) const override;
  void DoMarginals(const double* attract, size_t n, double* exam,
                   double* click) const override;

  std::array<std::array<double, 10>, 10> table_;  // kUbmTable^eta
};

}  // namespace debias::clickmodels

#endif  // DEBIAS_CORE_CLICKMODELS_UBM_H_
