// DatasetView: an immutable, in-memory columnar view of one dataset, the
// input of every estimator, model and evaluator.
//
// Events are stored in user-major order (the store's key order), so the view
// doubles as a CSR matrix: the events of user u are [user_offsets[u],
// user_offsets[u+1]). Ids are dense: users in [0, num_users()), items in
// [0, num_items()). Optional columns are empty when no event carries them.
// Thread safety: const after construction; share it freely.
#ifndef DEBIAS_CORE_DATA_DATASET_VIEW_H_
#define DEBIAS_CORE_DATA_DATASET_VIEW_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/data/interaction.h"

namespace debias::data {

inline constexpr uint32_t kNoList = std::numeric_limits<uint32_t>::max();

struct DatasetView {
  // Dense id -> the client's key.
  std::vector<std::string> user_keys;
  std::vector<std::string> item_keys;
  std::vector<std::string> list_keys;  // dense list id -> list key

  // One entry per event, user-major.
  std::vector<uint32_t> user;
  std::vector<uint32_t> item;
  std::vector<float> label;
  // Optional columns: either empty or one entry per event.
  std::vector<int64_t> timestamp;   // INT64_MIN where an event has none
  std::vector<uint32_t> list;       // kNoList where an event has none
  std::vector<int32_t> position;    // 0 where an event has none
  std::vector<float> propensity;    // 0 where an event has none
  // The client's idempotency key (Interaction::event_id), so that an export
  // can be re-ingested without duplicates; "" where an event has none.
  std::vector<std::string> event_id;
  int feature_dim = 0;
  std::vector<float> features;      // row-major, num_events() x feature_dim

  // CSR over users: size num_users() + 1.
  std::vector<uint64_t> user_offsets;

  // Monotone version of the dataset content this view was read at.
  uint64_t data_version = 0;

  size_t num_events() const { return user.size(); }
  size_t num_users() const { return user_keys.size(); }
  size_t num_items() const { return item_keys.size(); }
  bool has_positions() const { return !position.empty(); }
  bool has_propensities() const { return !propensity.empty(); }

  // Events of user u (indices into the columns).
  std::pair<uint64_t, uint64_t> UserRange(uint32_t u) const {
    return {user_offsets[u], user_offsets[u + 1]};
  }
  std::span<const float> FeaturesOf(size_t event) const {
    return {features.data() + event * feature_dim,
            static_cast<size_t>(feature_dim)};
  }
  // Approximate heap bytes held by the view.
  size_t MemoryBytes() const;
};

// Summary statistics of a view.
struct DatasetStats {
  uint64_t events = 0;
  uint64_t users = 0;   // users with at least one event
  uint64_t items = 0;   // items with at least one event
  uint64_t positives = 0;  // events with label > 0
  uint64_t zero_labels = 0;  // events with label == 0
  float min_label = 0.0f;
  float max_label = 0.0f;
  uint64_t lists = 0;
  int32_t max_position = 0;
  uint64_t with_propensity = 0;
  int feature_dim = 0;
  double density = 0.0;  // events / (users * items)
  // "explicit" when the labels are observed ratings or include observed
  // negatives (some label is 0 or above 1), else "implicit" (clicks only):
  // the default kind used by training.
  bool IsExplicit() const { return zero_labels > 0 || max_label > 1.0f; }
};

DatasetStats ComputeStats(const DatasetView& view);

// The events of `view` for which keep(event) holds, as a view with the same
// key tables (so ids are unchanged) and a rebuilt CSR.
DatasetView SubsetView(const DatasetView& view, const std::function<bool(size_t)>& keep);

// Which events a model trained with `train --holdout fraction` held out:
// 1 for about `fraction` of the events, drawn from a hash of each event's
// identity (user and item keys, timestamp, list, position, event id) and
// `seed`, so the same event is held out in any later view of the dataset
// (events ingested after training simply fall on either side).
std::vector<uint8_t> HoldoutMask(const DatasetView& view, double fraction, uint64_t seed);

// Incremental, single-pass builder used by the store and by tests.
// Events must be appended in user-major order with dense user ids that never
// decrease; ids must be < the sizes of the key tables given at Finish().
class DatasetViewBuilder {
 public:
  DatasetViewBuilder() = default;
  void Reserve(size_t events);
  // Appends one event. `list` is a dense list id or kNoList.
  void Add(uint32_t user, uint32_t item, float label,
           std::optional<int64_t> timestamp, uint32_t list,
           std::optional<int32_t> position, std::optional<float> propensity,
           std::span<const float> features, std::string_view event_id = {});
  // Validates the ids against the key tables and returns the view.
  absl::StatusOr<DatasetView> Finish(std::vector<std::string> user_keys,
                                     std::vector<std::string> item_keys,
                                     std::vector<std::string> list_keys,
                                     uint64_t data_version);

 private:
  DatasetView v_;
  bool any_ts_ = false, any_list_ = false, any_pos_ = false, any_prop_ = false,
       any_event_id_ = false;
  bool bad_order_ = false;
  bool bad_dim_ = false;
};

// Builds a view from client-keyed interactions in any order (ids assigned by
// first appearance, events sorted user-major, stable). Used by in-process
// tools and tests that do not go through the store.
absl::StatusOr<DatasetView> BuildViewFromInteractions(
    const std::vector<Interaction>& events);

}  // namespace debias::data

#endif  // DEBIAS_CORE_DATA_DATASET_VIEW_H_
