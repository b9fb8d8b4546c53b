// A seeded synthetic explicit-feedback world with self-selected (MNAR)
// ratings and an MCAR test sample, for kernel-balancing tests and benches.
//
// Truth: y(u, i) = 1 with probability sigmoid(scale * (p_u . q_i + b_i) + shift),
// p_u, q_i ~ N(0, I_3 / sqrt(3)), b_i ~ N(0, item_sd). Observation (the
// training events): P(o | u, i, y = 1) = c * pos_boost * pop_i^pos_popularity,
// P(o | u, i, y = 0) = c * pop_i^neg_popularity, pop_i ~ U(0, 1)^2, with c
// chosen so that about `events` pairs are observed. Unequal exponents make
// the selection depend on label and item jointly (negatives seen mostly on
// popular items), which biases a naive fit's ranking.
// Ratings: 5 for y = 1, 1 for y = 0 (threshold 3 separates them). Test: the
// true labels of `test_per_user` uniformly drawn items per user.
// Memory: O(users * dim + items + events); the users x items grid is walked
// once but never stored. Deterministic in `seed`.
#ifndef DEBIAS_CORE_SYNTH_KB_WORLD_H_
#define DEBIAS_CORE_SYNTH_KB_WORLD_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"

namespace debias::synth {

struct KbWorldOptions {
  uint32_t users = 200;
  uint32_t items = 150;
  uint64_t events = 5000;  // expected number of observed pairs
  uint32_t test_per_user = 16;
  double scale = 2.0;
  double shift = -0.3;
  double item_sd = 0.5;
  double pos_popularity = 0.0;
  double neg_popularity = 1.0;
  double pos_boost = 5.0;
  uint64_t seed = 1;
};

struct KbWorld {
  data::DatasetView train;
  std::vector<uint32_t> test_user, test_item;
  std::vector<float> test_label;  // 0/1
  double mcar_pos_rate = 0.0;     // positive rate of the test sample
};

// INVALID_ARGUMENT for sizes of 0, more than 2^24 users or items, events
// beyond users * items / 2, or test_per_user > items.
absl::StatusOr<KbWorld> MakeKbWorld(const KbWorldOptions& o);

}  // namespace debias::synth

#endif  // DEBIAS_CORE_SYNTH_KB_WORLD_H_
