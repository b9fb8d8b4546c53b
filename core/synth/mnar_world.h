// MnarWorld: a synthetic implicit-feedback world with missing-not-at-random
// clicks and known ground truth, in the style of the semi-synthetic setup of
// Saito et al., "Unbiased Recommender Learning from Missing-Not-At-Random
// Implicit Feedback" (WSDM 2020): a click needs exposure AND relevance,
//   Y_ui = O_ui * R_ui,  O_ui ~ Bernoulli(theta_ui),
//   R_ui ~ Bernoulli(gamma_ui),
// and only Y is observed.
//
// Ground truth (all of it is a deterministic function of the options):
//  - Relevance gamma_ui = sigmoid(s * (0.8 x_u.y_i / sqrt(dim) + 0.6 b_i) + c)
//    with x_u, y_i ~ N(0, I_dim), item bias b_i ~ N(0, 1), s =
//    relevance_spread, and the offset c chosen so that the mean of gamma over
//    a fixed sample of 200,000 pairs (all pairs if fewer) equals
//    relevance_mean. gamma is independent of popularity and activity.
//  - Popularity: items get a random popularity rank k_i (a permutation) and
//    pop_i = k_i^(-popularity_exponent) (Zipf), so pop_i / max pop = pop_i.
//  - Exposure theta_ui = min(1, scale * (pop_i / max pop)^p * a_u), p =
//    exposure_power, a_u = exp(sigma z_u - sigma^2 / 2), z_u ~ N(0, 1), a
//    mean-one log-normal user activity factor (sigma = user_activity_sigma;
//    0 turns it off). scale = exposure_scale, or, when expected_clicks > 0,
//    the scale for which sum_i gbar_i sum_u theta_ui = expected_clicks, where
//    gbar_i is item i's mean gamma over a fixed sample of up to 512 users
//    (all users when fewer), i.e. E[#clicks] up to that sampling error
//    (with exposures = K > 1: E[sum of the labels C/K]).
//
// Generation never touches all U x I pairs: users are grouped into activity
// buckets and, per item and bucket, the exposed users are found by geometric
// skipping over the bucket (independent Bernoulli(theta_ui) per user, cost
// proportional to the number of exposures), then relevance is drawn only for
// exposed pairs. Memory: 4 * (U + I) * dim bytes of factors, 4 bytes per
// click (8 more while generating) and 5 bytes per MAR test pair.
//
// The MAR test sample draws, per user, mar_test_items_per_user distinct
// items uniformly at random (independently of the clicks, so a test item may
// also be clicked in training, as in Yahoo! R3) with label R ~
// Bernoulli(gamma) as 0/1.
//
// Keys: user "u<id>", item "i<id>", ids 0-based, the world's dense ids.
// Thread safety: immutable after Generate(); const methods are thread-safe.
#ifndef DEBIAS_CORE_SYNTH_MNAR_WORLD_H_
#define DEBIAS_CORE_SYNTH_MNAR_WORLD_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/data/interaction.h"
#include "nlohmann/json.hpp"

namespace debias::synth {

struct MnarWorldOptions {
  int64_t num_users = 1000;          // [1, 10,000,000]
  int64_t num_items = 500;           // [1, 10,000,000]
  int dim = 16;                      // latent dimension, [1, 256]
  double exposure_power = 1.0;       // p, [0, 10]
  double popularity_exponent = 1.0;  // Zipf exponent, [0, 5]
  double relevance_mean = 0.2;       // target mean of gamma, [0.01, 0.9]
  double relevance_spread = 2.0;     // score std before the offset, [0, 10]
  double user_activity_sigma = 0.0;  // [0, 3]; 0 = every a_u is 1
  // Target expected number of clicks; 0 = use exposure_scale as given.
  // Must be in [0, 500,000,000] and reachable (below sum_ui gamma_ui).
  double expected_clicks = 0.0;
  double exposure_scale = 1.0;       // (0, 1e12], used when expected_clicks = 0
  int mar_test_items_per_user = 10;  // [0, min(num_items, 1000)]
  // K: exposure opportunities per pair (sessions of the same world). Each
  // draws O ~ Bernoulli(theta) and R ~ Bernoulli(gamma) afresh; the pair's
  // label is its click rate C / K over the K opportunities (C = clicks), so
  // E[label] = theta * gamma for every K and its noise falls as K grows.
  // Only pairs with C >= 1 are written. [1, 1000]; 1 = the classic world.
  int exposures = 1;
  // Write each click's true theta_ui as its logged propensity (the
  // `propensity` column of train.csv): what a log whose exposure policy is
  // known would carry. Off: clicks only.
  bool log_propensity = false;
  // Random (user, item) pairs written to truth.csv besides the MAR pairs;
  // when U * I <= this, truth.csv holds every pair instead. [0, 10,000,000]
  int64_t truth_sample_pairs = 100000;
  uint64_t seed = 0;
};

// INVALID_ARGUMENT naming the first field out of range, or OK.
absl::Status ValidateMnarWorldOptions(const MnarWorldOptions& options);

struct MnarWorldSummary {
  uint64_t clicks = 0;
  uint64_t exposures = 0;           // realised O_ui = 1 pairs
  double expected_exposures = 0.0;  // sum_ui theta_ui, exact
  // sum of gamma over the realised exposures: an unbiased estimate of
  // E[#clicks] = sum_ui theta_ui gamma_ui.
  double expected_clicks_estimate = 0.0;
  double exposure_scale = 0.0;    // the scale actually used
  double relevance_offset = 0.0;  // c in gamma
  double mean_relevance = 0.0;    // mean gamma over the calibration sample
  uint64_t users_with_clicks = 0;
  uint64_t items_with_clicks = 0;
  uint64_t test_events = 0;
  uint64_t test_positives = 0;
};

class MnarWorld {
 public:
  // Draws the world. INVALID_ARGUMENT for options out of range, an
  // unreachable expected_clicks, or a world whose expected exposures exceed
  // 2e9 or whose factors exceed 256M floats. Deterministic for the options.
  static absl::StatusOr<MnarWorld> Generate(const MnarWorldOptions& options);

  const MnarWorldOptions& options() const { return options_; }
  const MnarWorldSummary& summary() const { return summary_; }
  uint32_t num_users() const {
    return static_cast<uint32_t>(options_.num_users);
  }
  uint32_t num_items() const {
    return static_cast<uint32_t>(options_.num_items);
  }

  // Truth for any pair; NaN when u or i is out of range.
  double Relevance(uint32_t u, uint32_t i) const;  // gamma_ui
  double Exposure(uint32_t u, uint32_t i) const;   // theta_ui
  // pop_i / max pop, in (0, 1]; NaN out of range.
  double Popularity(uint32_t i) const;
  // a_u; NaN out of range.
  double UserActivity(uint32_t u) const;

  // Clicked items of user u, ascending (empty out of range).
  std::span<const uint32_t> ClickedItems(uint32_t u) const;
  uint64_t num_clicks() const { return click_items_.size(); }
  // Label of user u's k-th clicked item: C / K (1 when exposures = 1).
  float ClickLabel(uint32_t u, size_t k) const;
  // The observed clicks as events (label C / K), user-major, items ascending.
  // About 150 bytes per click: prefer ClickView() for big worlds.
  std::vector<data::Interaction> ClickEvents() const;
  // The clicks as a DatasetView whose dense ids are the world's ids: every
  // user u<id> and item i<id> has a key, with or without clicks.
  absl::StatusOr<data::DatasetView> ClickView() const;

  // MAR test sample of user u: items ascending and their 0/1 labels.
  std::span<const uint32_t> TestItems(uint32_t u) const;
  std::span<const uint8_t> TestLabels(uint32_t u) const;
  std::vector<data::Interaction> TestEvents() const;
  // As ClickView, for the MAR test sample (labels 0/1).
  absl::StatusOr<data::DatasetView> TestView() const;

  // Options and summary as JSON (the content of world.json).
  nlohmann::json ToJson() const;

  // Writes dir/train.csv (clicks: user,item,label), dir/test.csv (MAR
  // sample), dir/truth.csv (user,item,relevance,exposure: the MAR pairs then
  // truth_sample_pairs random pairs, or every pair when U * I <=
  // truth_sample_pairs) and dir/world.json. Creates dir. DATA_LOSS on I/O
  // failure.
  absl::Status WriteWorld(const std::string& dir) const;

 private:
  MnarWorld() = default;
  // The logit of gamma_ui; ids must be in range.
  double Score(uint32_t u, uint32_t i) const;

  // Generate's stages, in the order they draw (each from its own stream).
  struct ActivityOrder {
    std::vector<uint32_t> order;  // users by ascending activity
    std::vector<double> sorted;   // their activities
    std::vector<double> prefix;   // prefix sums of `sorted`
  };
  void DrawPopularity();
  ActivityOrder DrawActivity();
  double ExpectedExposures(const ActivityOrder& a, double scale) const;
  void DrawFactors();
  void CalibrateRelevance();
  absl::StatusOr<double> ExposureScale(const ActivityOrder& a) const;
  void DrawClicks(const ActivityOrder& a, std::vector<uint32_t>* click_user,
                  std::vector<uint32_t>* click_item);
  void BuildClickIndex(const std::vector<uint32_t>& click_user,
                       const std::vector<uint32_t>& click_item);
  void DrawMarTest();

  MnarWorldOptions options_;
  MnarWorldSummary summary_;
  std::vector<float> user_factors_;      // U x dim, row-major
  std::vector<float> item_factors_;      // I x dim, row-major, pre-scaled
  std::vector<float> item_const_;        // I: scaled bias + offset
  std::vector<double> exposure_weight_;  // I: (pop_i / max pop)^p
  std::vector<double> popularity_;       // I: pop_i / max pop
  std::vector<double> activity_;         // U: a_u (empty when sigma = 0)
  double scale_ = 1.0;
  std::vector<uint64_t> click_offsets_;  // U + 1
  std::vector<uint32_t> click_items_;
  std::vector<uint16_t> click_counts_;  // C per clicked pair (exposures > 1)
  std::vector<uint32_t> test_items_;  // U x K
  std::vector<uint8_t> test_labels_;  // U x K
};

}  // namespace debias::synth

#endif  // DEBIAS_CORE_SYNTH_MNAR_WORLD_H_
