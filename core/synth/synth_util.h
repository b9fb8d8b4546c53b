// Small helpers shared by the synthetic worlds: seed derivation, file
// output. Internal to core/synth.
#ifndef DEBIAS_CORE_SYNTH_SYNTH_UTIL_H_
#define DEBIAS_CORE_SYNTH_SYNTH_UTIL_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/data/interaction.h"

namespace debias::synth::internal {

// SplitMix64 finaliser: decorrelates nearby seeds.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A generator for one independent stream of a world: (seed, stream, index)
// -> mt19937_64. Streams let one part of a world (e.g. a query) be drawn
// without depending on how many other parts were drawn before it.
inline std::mt19937_64 StreamRng(uint64_t seed, uint64_t stream,
                                 uint64_t index = 0) {
  return std::mt19937_64(
      Mix64(Mix64(Mix64(seed) ^ (stream * 0xd6e8feb86659fd93ULL)) ^ index));
}

// Uniform integer in [0, n) (n >= 1) from one 64-bit draw (Lemire's
// multiply-shift; the bias is below 2^-32 for n < 2^32).
inline uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * n) >>
                               64);
}

// Standard normal by Box-Muller on Uniform01 draws, so worlds are the same
// with any standard library.
double StandardNormal(std::mt19937_64& rng);

// Fills out[0..n) with standard normals, both values of each Box-Muller
// pair used (about twice as fast as n calls of StandardNormal).
void FillStandardNormal(std::mt19937_64& rng, float* out, size_t n);

// Writes events to `path` as CSV (data::WriteCsv) in chunks: `fill(begin,
// chunk)` must replace `chunk` with the events of rows [begin, begin +
// chunk_rows) (fewer at the end) for begin < total. Every chunk must use the
// same optional columns (the header of the first chunk is kept). Keeps
// memory bounded for worlds with tens of millions of events.
// Errors: those of WriteCsv; DATA_LOSS if the file cannot be written.
absl::Status WriteEventsCsv(
    const std::string& path, uint64_t total, uint64_t chunk_rows,
    const std::function<void(uint64_t, std::vector<data::Interaction>*)>& fill);

// Writes `text` to `path`; DATA_LOSS naming the path on failure.
absl::Status WriteTextFile(const std::string& path, const std::string& text);

// Creates `dir` and its parents if missing; DATA_LOSS naming it on failure.
absl::Status EnsureDirectory(const std::string& dir);

}  // namespace debias::synth::internal

#endif  // DEBIAS_CORE_SYNTH_SYNTH_UTIL_H_
