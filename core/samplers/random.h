// Small, portable random draws used by the samplers and the NBPO trainers.
//
// std::uniform_int_distribution and std::uniform_real_distribution are
// implementation-defined, so the same seed could give different draws on
// another standard library; these helpers fix the algorithm (Lemire's
// nearly-divisionless bounded integers, 24/53-bit mantissa floats) so that a
// seed reproduces a model everywhere. Header-only; no state besides the
// caller's engine.
#ifndef DEBIAS_CORE_SAMPLERS_RANDOM_H_
#define DEBIAS_CORE_SAMPLERS_RANDOM_H_

#include <cstdint>
#include <random>

namespace debias::samplers {

using Rng = std::mt19937_64;

// Uniform integer in [0, n), unbiased. Precondition: n > 0.
inline uint64_t UniformBelow(Rng& rng, uint64_t n) {
  unsigned __int128 m = static_cast<unsigned __int128>(rng()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(rng()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

// Uniform double in [0, 1) with 53 random bits.
inline double UniformUnit(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Uniform float in [0, 1) with 24 random bits.
inline float UniformUnitFloat(Rng& rng) {
  return static_cast<float>(rng() >> 40) * 0x1.0p-24f;
}

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_RANDOM_H_
