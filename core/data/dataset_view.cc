#include "core/data/dataset_view.h"

#include <algorithm>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace debias::data {
namespace {

template <typename T>
size_t Bytes(const std::vector<T>& v) {
  return v.capacity() * sizeof(T);
}

size_t KeyBytes(const std::vector<std::string>& keys) {
  size_t n = Bytes(keys);
  for (const auto& k : keys) {
    if (k.capacity() > 15) n += k.capacity();
  }
  return n;
}

// Starts an optional column at event `n` (backfilling earlier events with the
// column's "absent" value) the first time an event carries it.
template <typename T>
void EnsureColumn(std::vector<T>& col, bool& started, size_t n, T absent) {
  if (!started) {
    col.assign(n, absent);
    started = true;
  }
}

}  // namespace

size_t DatasetView::MemoryBytes() const {
  return KeyBytes(user_keys) + KeyBytes(item_keys) + KeyBytes(list_keys) +
         Bytes(user) + Bytes(item) + Bytes(label) + Bytes(timestamp) +
         Bytes(list) + Bytes(position) + Bytes(propensity) + Bytes(features) +
         KeyBytes(event_id) +
         Bytes(user_offsets);
}

DatasetStats ComputeStats(const DatasetView& v) {
  DatasetStats s;
  s.events = v.num_events();
  s.feature_dim = v.feature_dim;
  std::vector<char> seen_user(v.num_users(), 0), seen_item(v.num_items(), 0);
  bool first = true;
  for (size_t e = 0; e < v.num_events(); ++e) {
    seen_user[v.user[e]] = 1;
    seen_item[v.item[e]] = 1;
    const float l = v.label[e];
    if (l > 0.0f) ++s.positives;
    if (l == 0.0f) ++s.zero_labels;
    if (first) {
      s.min_label = s.max_label = l;
      first = false;
    } else {
      s.min_label = std::min(s.min_label, l);
      s.max_label = std::max(s.max_label, l);
    }
    if (!v.position.empty()) s.max_position = std::max(s.max_position, v.position[e]);
    if (!v.propensity.empty() && v.propensity[e] > 0.0f) ++s.with_propensity;
  }
  s.users = std::count(seen_user.begin(), seen_user.end(), 1);
  s.items = std::count(seen_item.begin(), seen_item.end(), 1);
  s.lists = v.list_keys.size();
  if (s.users > 0 && s.items > 0) {
    s.density = static_cast<double>(s.events) /
                (static_cast<double>(s.users) * static_cast<double>(s.items));
  }
  return s;
}

void DatasetViewBuilder::Reserve(size_t events) {
  v_.user.reserve(events);
  v_.item.reserve(events);
  v_.label.reserve(events);
}

void DatasetViewBuilder::Add(uint32_t user, uint32_t item, float label,
                             std::optional<int64_t> timestamp, uint32_t list,
                             std::optional<int32_t> position,
                             std::optional<float> propensity,
                             std::span<const float> features,
                             std::string_view event_id) {
  const size_t n = v_.user.size();
  if (n > 0 && user < v_.user.back()) bad_order_ = true;
  // CSR offsets: open every user up to and including `user`.
  while (v_.user_offsets.size() <= user) v_.user_offsets.push_back(n);

  if (timestamp.has_value()) EnsureColumn<int64_t>(v_.timestamp, any_ts_, n, INT64_MIN);
  if (list != kNoList) EnsureColumn<uint32_t>(v_.list, any_list_, n, kNoList);
  if (position.has_value()) EnsureColumn<int32_t>(v_.position, any_pos_, n, 0);
  if (propensity.has_value()) EnsureColumn<float>(v_.propensity, any_prop_, n, 0.0f);
  if (!event_id.empty()) EnsureColumn<std::string>(v_.event_id, any_event_id_, n, {});
  if (!features.empty()) {
    if (v_.feature_dim == 0 && n > 0 && v_.features.empty()) {
      v_.feature_dim = static_cast<int>(features.size());
      v_.features.assign(n * features.size(), 0.0f);
    } else if (v_.feature_dim == 0) {
      v_.feature_dim = static_cast<int>(features.size());
    }
    if (static_cast<int>(features.size()) != v_.feature_dim) bad_dim_ = true;
  }

  v_.user.push_back(user);
  v_.item.push_back(item);
  v_.label.push_back(label);
  if (any_ts_) v_.timestamp.push_back(timestamp.value_or(INT64_MIN));
  if (any_list_) v_.list.push_back(list);
  if (any_pos_) v_.position.push_back(position.value_or(0));
  if (any_prop_) v_.propensity.push_back(propensity.value_or(0.0f));
  if (any_event_id_) v_.event_id.emplace_back(event_id);
  if (v_.feature_dim > 0) {
    if (static_cast<int>(features.size()) == v_.feature_dim) {
      v_.features.insert(v_.features.end(), features.begin(), features.end());
    } else {
      v_.features.resize(v_.features.size() + v_.feature_dim, 0.0f);
    }
  }
}

absl::StatusOr<DatasetView> DatasetViewBuilder::Finish(
    std::vector<std::string> user_keys, std::vector<std::string> item_keys,
    std::vector<std::string> list_keys, uint64_t data_version) {
  if (bad_order_) {
    return absl::InternalError("dataset view: events not in user-major order");
  }
  if (bad_dim_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset view: events carry feature vectors of different lengths "
        "(first had ", v_.feature_dim, ")"));
  }
  const size_t n = v_.user.size();
  for (size_t e = 0; e < n; ++e) {
    if (v_.user[e] >= user_keys.size() || v_.item[e] >= item_keys.size() ||
        (!v_.list.empty() && v_.list[e] != kNoList &&
         v_.list[e] >= list_keys.size())) {
      return absl::DataLossError(absl::StrCat(
          "dataset view: event ", e, " refers to an id outside the key tables"));
    }
  }
  while (v_.user_offsets.size() <= user_keys.size()) v_.user_offsets.push_back(n);
  v_.user_keys = std::move(user_keys);
  v_.item_keys = std::move(item_keys);
  v_.list_keys = std::move(list_keys);
  v_.data_version = data_version;
  DatasetView out = std::move(v_);
  v_ = DatasetView();
  any_ts_ = any_list_ = any_pos_ = any_prop_ = any_event_id_ = bad_order_ = bad_dim_ = false;
  return out;
}

absl::StatusOr<DatasetView> BuildViewFromInteractions(
    const std::vector<Interaction>& events) {
  absl::flat_hash_map<std::string, uint32_t> users, items, lists;
  std::vector<std::string> user_keys, item_keys, list_keys;
  auto intern = [](absl::flat_hash_map<std::string, uint32_t>& m,
                   std::vector<std::string>& keys, const std::string& k) {
    auto [it, inserted] = m.try_emplace(k, static_cast<uint32_t>(keys.size()));
    if (inserted) keys.push_back(k);
    return it->second;
  };
  std::vector<uint32_t> uid(events.size()), iid(events.size()),
      lid(events.size(), kNoList);
  for (size_t e = 0; e < events.size(); ++e) {
    uid[e] = intern(users, user_keys, events[e].user);
    iid[e] = intern(items, item_keys, events[e].item);
    if (events[e].list_id) lid[e] = intern(lists, list_keys, *events[e].list_id);
  }
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return uid[a] < uid[b]; });
  DatasetViewBuilder b;
  b.Reserve(events.size());
  for (size_t e : order) {
    const Interaction& x = events[e];
    b.Add(uid[e], iid[e], x.label, x.timestamp, lid[e], x.position,
          x.propensity, x.features, x.event_id);
  }
  return b.Finish(std::move(user_keys), std::move(item_keys),
                  std::move(list_keys), 0);
}

data::DatasetView SubsetView(const data::DatasetView& view,
                             const std::function<bool(size_t)>& keep) {
  data::DatasetView out;
  out.user_keys = view.user_keys;
  out.item_keys = view.item_keys;
  out.list_keys = view.list_keys;
  out.feature_dim = view.feature_dim;
  out.data_version = view.data_version;
  out.user_offsets.assign(view.num_users() + 1, 0);
  const bool ts = !view.timestamp.empty(), li = !view.list.empty(),
             po = !view.position.empty(), pr = !view.propensity.empty();
  for (size_t e = 0; e < view.num_events(); ++e) {
    if (!keep(e)) continue;
    out.user.push_back(view.user[e]);
    out.item.push_back(view.item[e]);
    out.label.push_back(view.label[e]);
    if (ts) out.timestamp.push_back(view.timestamp[e]);
    if (li) out.list.push_back(view.list[e]);
    if (po) out.position.push_back(view.position[e]);
    if (pr) out.propensity.push_back(view.propensity[e]);
    if (view.feature_dim > 0) {
      auto f = view.FeaturesOf(e);
      out.features.insert(out.features.end(), f.begin(), f.end());
    }
    if (view.user[e] < view.num_users()) ++out.user_offsets[view.user[e] + 1];
  }
  for (size_t u = 0; u < view.num_users(); ++u) out.user_offsets[u + 1] += out.user_offsets[u];
  return out;
}


std::vector<uint8_t> HoldoutMask(const DatasetView& view, double fraction, uint64_t seed) {
  std::vector<uint8_t> held(view.num_events(), 0);
  if (!(fraction > 0)) return held;
  const uint64_t cut = fraction >= 1 ? ~uint64_t{0}
                                     : static_cast<uint64_t>(fraction * 18446744073709551616.0);
  for (size_t e = 0; e < view.num_events(); ++e) {
    // FNV-1a over the event's identity, then a 64-bit finaliser: the same
    // event gets the same draw in any view of the dataset, whatever else
    // was ingested since.
    uint64_t h = 1469598103934665603ULL ^ seed;
    auto mix = [&h](const void* p, size_t n) {
      const auto* b = static_cast<const unsigned char*>(p);
      for (size_t k = 0; k < n; ++k) h = (h ^ b[k]) * 1099511628211ULL;
      h = (h ^ 0xff) * 1099511628211ULL;  // field separator
    };
    const std::string& u = view.user_keys[view.user[e]];
    const std::string& i = view.item_keys[view.item[e]];
    mix(u.data(), u.size());
    mix(i.data(), i.size());
    if (!view.timestamp.empty()) mix(&view.timestamp[e], sizeof(int64_t));
    if (!view.list.empty() && view.list[e] != kNoList) {
      const std::string& l = view.list_keys[view.list[e]];
      mix(l.data(), l.size());
    }
    if (!view.position.empty()) mix(&view.position[e], sizeof(int32_t));
    if (!view.event_id.empty()) mix(view.event_id[e].data(), view.event_id[e].size());
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    held[e] = h < cut ? 1 : 0;
  }
  return held;
}

}  // namespace debias::data
