// Synthetic factor matrices for retrieval tests and benchmarks: Gaussian
// clusters, as trained embeddings tend to be (items of a genre near one
// another), with per-row norms spread so inner-product order is not cosine
// order.
#ifndef DEBIAS_CORE_RETRIEVAL_SYNTHETIC_FACTORS_H_
#define DEBIAS_CORE_RETRIEVAL_SYNTHETIC_FACTORS_H_

#include <cstdint>

#include "core/retrieval/exact.h"

namespace debias::retrieval {

// rows x dim (row-major): row r = centre[c] + noise * N(0, I), scaled by a
// factor in [0.5, 1.5], for a centre c drawn from `clusters` N(0, I / dim)
// centres. Deterministic for the seed; centres depend on (clusters, dim,
// centre_seed) only, so users and items drawn with the same centre_seed
// share them.
RowMatrix ClusteredFactors(int64_t rows, int dim, int clusters, float noise, uint64_t seed,
                           uint64_t centre_seed);

}  // namespace debias::retrieval

#endif  // DEBIAS_CORE_RETRIEVAL_SYNTHETIC_FACTORS_H_
