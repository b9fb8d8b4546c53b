#include "wire/convert.h"

namespace debias {

void ToCore(const v1::Interaction& in, data::Interaction* out) {
  out->user = in.user();
  out->item = in.item();
  out->label = in.label();
  out->timestamp = in.has_timestamp() ? std::optional<int64_t>(in.timestamp()) : std::nullopt;
  out->list_id = in.has_list_id() ? std::optional<std::string>(in.list_id()) : std::nullopt;
  out->position = in.has_position() ? std::optional<int32_t>(in.position()) : std::nullopt;
  out->propensity =
      in.has_propensity() ? std::optional<float>(in.propensity()) : std::nullopt;
  out->features.assign(in.features().begin(), in.features().end());
  out->event_id = in.event_id();
}

void ToProto(const data::Interaction& in, v1::Interaction* out) {
  out->set_user(in.user);
  out->set_item(in.item);
  out->set_label(in.label);
  if (in.timestamp) out->set_timestamp(*in.timestamp);
  if (in.list_id) out->set_list_id(*in.list_id);
  if (in.position) out->set_position(*in.position);
  if (in.propensity) out->set_propensity(*in.propensity);
  out->mutable_features()->Assign(in.features.begin(), in.features.end());
  if (!in.event_id.empty()) out->set_event_id(in.event_id);
}

void ViewEventToProto(const data::DatasetView& v, size_t e, v1::Interaction* out) {
  out->set_user(v.user_keys[v.user[e]]);
  out->set_item(v.item_keys[v.item[e]]);
  out->set_label(v.label[e]);
  if (!v.timestamp.empty() && v.timestamp[e] != INT64_MIN) out->set_timestamp(v.timestamp[e]);
  if (!v.list.empty() && v.list[e] != data::kNoList) out->set_list_id(v.list_keys[v.list[e]]);
  if (!v.position.empty() && v.position[e] > 0) out->set_position(v.position[e]);
  if (!v.propensity.empty() && v.propensity[e] > 0) out->set_propensity(v.propensity[e]);
  if (!v.event_id.empty() && !v.event_id[e].empty()) out->set_event_id(v.event_id[e]);
  if (v.feature_dim > 0) {
    auto f = v.FeaturesOf(e);
    out->mutable_features()->Assign(f.begin(), f.end());
  }
}

}  // namespace debias
