#include "core/data/interaction.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace debias::data {

absl::Status ValidateInteraction(const Interaction& e,
                                 const InteractionLimits& limits) {
  if (e.user.empty()) {
    return absl::InvalidArgumentError("user: must be a non-empty key");
  }
  if (e.item.empty()) {
    return absl::InvalidArgumentError("item: must be a non-empty key");
  }
  if (e.user.size() > limits.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("user: key of ", e.user.size(), " bytes; at most ",
                     limits.max_key_bytes, " allowed"));
  }
  if (e.item.size() > limits.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("item: key of ", e.item.size(), " bytes; at most ",
                     limits.max_key_bytes, " allowed"));
  }
  if (!std::isfinite(e.label)) {
    return absl::InvalidArgumentError(
        absl::StrCat("label=", e.label, ": must be a finite number"));
  }
  if (e.list_id.has_value() &&
      (e.list_id->empty() || e.list_id->size() > limits.max_key_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "list_id: must be 1 to ", limits.max_key_bytes, " bytes when set"));
  }
  if (e.position.has_value() &&
      (*e.position < 1 || *e.position > limits.max_position)) {
    return absl::InvalidArgumentError(
        absl::StrCat("position=", *e.position, ": must be in [1, ",
                     limits.max_position, "]"));
  }
  if (e.propensity.has_value() &&
      !(*e.propensity > 0.0f && *e.propensity <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "propensity=", *e.propensity, ": must be in (0, 1] when set"));
  }
  if (e.features.size() > limits.max_features) {
    return absl::InvalidArgumentError(
        absl::StrCat("features: ", e.features.size(), " values; at most ",
                     limits.max_features, " allowed"));
  }
  for (size_t i = 0; i < e.features.size(); ++i) {
    if (!std::isfinite(e.features[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("features[", i, "]=", e.features[i], ": must be finite"));
    }
  }
  if (e.event_id.size() > limits.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("event_id: ", e.event_id.size(), " bytes; at most ",
                     limits.max_key_bytes, " allowed"));
  }
  return absl::OkStatus();
}

}  // namespace debias::data
