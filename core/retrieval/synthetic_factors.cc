#include "core/retrieval/synthetic_factors.h"

#include <cmath>
#include <random>

namespace debias::retrieval {

RowMatrix ClusteredFactors(int64_t rows, int dim, int clusters, float noise, uint64_t seed,
                           uint64_t centre_seed) {
  std::mt19937_64 crng(centre_seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  RowMatrix centres(clusters, dim);
  for (int c = 0; c < clusters; ++c) {
    for (int j = 0; j < dim; ++j) centres(c, j) = gauss(crng) * scale;
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  std::uniform_real_distribution<float> norm(0.5f, 1.5f);
  RowMatrix out(rows, dim);
  for (int64_t r = 0; r < rows; ++r) {
    const int c = pick(rng);
    const float s = norm(rng);
    for (int j = 0; j < dim; ++j) out(r, j) = s * (centres(c, j) + noise * scale * gauss(rng));
  }
  return out;
}

}  // namespace debias::retrieval
