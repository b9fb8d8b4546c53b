#include "core/clickmodels/cascade.h"

#include <algorithm>
#include <cmath>

namespace debias::clickmodels {

CascadeModel::CascadeModel(const ClickModelOptions& options,
                           std::vector<double> click_prob)
    : ClickModel(options, std::move(click_prob)) {}

std::vector<double> CascadeModel::ExaminationCurve(int num_ranks) const {
  return std::vector<double>(std::clamp(num_ranks, 0, kMaxRanks), 1.0);
}

void CascadeModel::DoSimulate(const double* attract, size_t n, Rng& rng,
                              uint8_t* clicks) const {
  const double lambda = options().continuation;
  bool browsing = true;
  for (size_t r = 0; r < n; ++r) {
    clicks[r] = 0;
    if (!browsing) continue;
    if (Uniform01(rng) < attract[r]) {
      clicks[r] = 1;
      // No draw when the outcome is certain keeps lambda = 0 draws minimal.
      if (lambda <= 0.0) {
        browsing = false;
      } else if (lambda < 1.0) {
        browsing = Uniform01(rng) < lambda;
      }
    }
  }
}

double CascadeModel::DoLogLikelihood(const double* attract,
                                     const uint8_t* clicks, size_t n) const {
  const double lambda = options().continuation;
  size_t last = n;  // index of the last click, n if none
  int num_clicks = 0;
  for (size_t r = 0; r < n; ++r) {
    if (clicks[r]) {
      last = r;
      ++num_clicks;
    }
  }
  double ll = 0.0;
  if (num_clicks == 0) {
    for (size_t r = 0; r < n; ++r) ll += std::log1p(-attract[r]);
    return ll;
  }
  // Every rank up to the last click was examined.
  for (size_t r = 0; r <= last; ++r) {
    ll += clicks[r] ? std::log(attract[r]) : std::log1p(-attract[r]);
  }
  // The user went on after each click but the last...
  if (num_clicks > 1) ll += (num_clicks - 1) * std::log(lambda);
  // ...and after the last either stopped or scanned the rest unclicked.
  double rest_unclicked = 1.0;
  for (size_t r = last + 1; r < n; ++r) rest_unclicked *= 1.0 - attract[r];
  ll += std::log((1.0 - lambda) + lambda * rest_unclicked);
  return ll;
}

void CascadeModel::DoMarginals(const double* attract, size_t n, double* exam,
                               double* click) const {
  const double lambda = options().continuation;
  double e = 1.0;
  for (size_t r = 0; r < n; ++r) {
    exam[r] = e;
    click[r] = e * attract[r];
    e *= (1.0 - attract[r]) + attract[r] * lambda;
  }
}

}  // namespace debias::clickmodels
