#include "core/clickmodels/ubm.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace debias::clickmodels {

UserBrowsingModel::UserBrowsingModel(const ClickModelOptions& options,
                                     std::vector<double> click_prob)
    : ClickModel(options, std::move(click_prob)) {
  for (int r = 0; r < 10; ++r) {
    for (int d = 0; d < 10; ++d) {
      table_[r][d] = d <= r ? std::pow(kUbmTable[r][d], options.eta) : 0.0;
    }
  }
}

double UserBrowsingModel::Examination(int rank, int last_click) const {
  rank = std::max(rank, 1);
  last_click = std::clamp(last_click, 0, rank - 1);
  const int d = rank - last_click;  // 1..rank; d == rank: no earlier click
  if (rank <= 10) return table_[rank - 1][d - 1];
  if (last_click == 0) return table_[9][9];
  return table_[9][std::min(d, 9) - 1];
}

std::vector<double> UserBrowsingModel::ExaminationCurve(int num_ranks) const {
  num_ranks = std::clamp(num_ranks, 0, kMaxRanks);
  std::vector<double> e(num_ranks);
  for (int r = 0; r < num_ranks; ++r) e[r] = Examination(r + 1, 0);
  return e;
}

void UserBrowsingModel::DoSimulate(const double* attract, size_t n, Rng& rng,
                                   uint8_t* clicks) const {
  int last = 0;
  for (size_t r = 0; r < n; ++r) {
    const int rank = static_cast<int>(r) + 1;
    const double p = Examination(rank, last) * attract[r];
    clicks[r] = Uniform01(rng) < p ? 1 : 0;
    if (clicks[r]) last = rank;
  }
}

double UserBrowsingModel::DoLogLikelihood(const double* attract,
                                          const uint8_t* clicks,
                                          size_t n) const {
  double ll = 0.0;
  int last = 0;
  for (size_t r = 0; r < n; ++r) {
    const int rank = static_cast<int>(r) + 1;
    const double p = Examination(rank, last) * attract[r];
    ll += clicks[r] ? std::log(p) : std::log1p(-p);
    if (clicks[r]) last = rank;
  }
  return ll;
}

void UserBrowsingModel::DoMarginals(const double* attract, size_t n,
                                    double* exam, double* click) const {
  // state[l] = P(last click above the current rank is at rank l), l = 0
  // meaning none. O(n^2), fine for ranked lists.
  std::vector<double> state(n + 1, 0.0);
  state[0] = 1.0;
  for (size_t r = 0; r < n; ++r) {
    const int rank = static_cast<int>(r) + 1;
    double e = 0.0, c = 0.0;
    for (int l = 0; l < rank; ++l) {
      if (state[l] == 0.0) continue;
      const double g = Examination(rank, l);
      e += state[l] * g;
      const double pc = state[l] * g * attract[r];
      c += pc;
      state[l] -= pc;
    }
    state[rank] = c;
    exam[r] = e;
    click[r] = c;
  }
}

}  // namespace debias::clickmodels
