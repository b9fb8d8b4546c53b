#include "core/clickmodels/pbm.h"

#include <algorithm>
#include <cmath>

namespace debias::clickmodels {

PositionBasedModel::PositionBasedModel(const ClickModelOptions& options,
                                       std::vector<double> click_prob)
    : ClickModel(options, std::move(click_prob)) {
  for (int r = 0; r < 10; ++r) {
    exam_[r] = std::pow(kPbmBaseExamination[r], options.eta);
  }
}

double PositionBasedModel::Examination(int rank) const {
  return exam_[std::clamp(rank, 1, 10) - 1];
}

std::vector<double> PositionBasedModel::ExaminationCurve(int num_ranks) const {
  num_ranks = std::clamp(num_ranks, 0, kMaxRanks);
  std::vector<double> e(num_ranks);
  for (int r = 0; r < num_ranks; ++r) e[r] = Examination(r + 1);
  return e;
}

void PositionBasedModel::DoSimulate(const double* attract, size_t n, Rng& rng,
                                    uint8_t* clicks) const {
  for (size_t r = 0; r < n; ++r) {
    const double p = exam_[std::min<size_t>(r, 9)] * attract[r];
    clicks[r] = Uniform01(rng) < p ? 1 : 0;
  }
}

double PositionBasedModel::DoLogLikelihood(const double* attract,
                                           const uint8_t* clicks,
                                           size_t n) const {
  double ll = 0.0;
  for (size_t r = 0; r < n; ++r) {
    const double p = exam_[std::min<size_t>(r, 9)] * attract[r];
    ll += clicks[r] ? std::log(p) : std::log1p(-p);
  }
  return ll;
}

void PositionBasedModel::DoMarginals(const double* attract, size_t n,
                                     double* exam, double* click) const {
  for (size_t r = 0; r < n; ++r) {
    exam[r] = exam_[std::min<size_t>(r, 9)];
    click[r] = exam[r] * attract[r];
  }
}

}  // namespace debias::clickmodels
