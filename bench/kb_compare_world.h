// The synthetic MNAR rating world of the larger-data comparison of adaptive
// and random kernel-balancing centres: fidelity_kb writes it into
// docs/results/kb.md and `kb_bench --compare` runs it for quick checks, so
// both must build the same world.
#ifndef DEBIAS_BENCH_KB_COMPARE_WORLD_H_
#define DEBIAS_BENCH_KB_COMPARE_WORLD_H_

#include "core/synth/kb_world.h"

namespace debias::bench {

// 3,000 users x 500 items, about 60,000 self-selected ratings (world seed 5).
inline synth::KbWorldOptions KbCompareWorld() {
  return {.users = 3000, .items = 500, .events = 60000, .neg_popularity = 2.0,
          .pos_boost = 3.0, .seed = 5};
}

}  // namespace debias::bench

#endif  // DEBIAS_BENCH_KB_COMPARE_WORLD_H_
