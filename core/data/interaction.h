// The interaction record: one logged event, as a client sends it.
//
// This is the unit the loaders produce, the store ingests and Export returns.
// Keys are the client's own strings; the store maps them to dense 32-bit ids
// per dataset (see core/store/interaction_store.h).
#ifndef DEBIAS_CORE_DATA_INTERACTION_H_
#define DEBIAS_CORE_DATA_INTERACTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace debias::data {

struct Interaction {
  std::string user;  // user (or query) key, non-empty
  std::string item;  // item (or document) key, non-empty
  float label = 1.0f;  // click 0/1 or a rating; finite
  std::optional<int64_t> timestamp;    // any unit the caller uses
  std::optional<std::string> list_id;  // ranked list (impression) id
  std::optional<int32_t> position;     // 1-based position in the list
  std::optional<float> propensity;     // logging policy's P(shown), (0, 1]
  std::vector<float> features;         // dense features (learning to rank)
  // Optional client event id. When set it is the deduplication key; when
  // empty the natural key (user, item, timestamp, list id, position) is.
  std::string event_id;

  bool operator==(const Interaction&) const = default;
};

// Limits that every interaction is checked against, wherever it comes from.
struct InteractionLimits {
  size_t max_key_bytes = 1024;
  size_t max_features = 4096;
  int32_t max_position = 100000;
};

// Returns INVALID_ARGUMENT naming the offending field and its allowed range,
// or OK. Thread-safe, no allocation on success.
absl::Status ValidateInteraction(const Interaction& e,
                                 const InteractionLimits& limits = {});

}  // namespace debias::data

#endif  // DEBIAS_CORE_DATA_INTERACTION_H_
