// Key and value layout of the store (internal to core/store).
//
//  00 'D' <name>                         -> dataset metadata (JSON)
//  00 'N' "dataset"|"model"              -> next id counter (fixed64)
//  00 'M' <model name>                   -> next version and labels (JSON)
//  01 <ds:be32> 'U' <user key>           -> user id (fixed32)
//  01 <ds:be32> 'u' <id:be32>            -> user key
//  01 <ds:be32> 'I'/'i', 'L'/'l'         -> the same for items and lists
//  01 <ds:be32> 'E' <user:be32> <item:be32> <discriminator> -> event value
//  01 <ds:be32> 'X' <event id>           -> <user:be32> <item:be32> of that event
//  02 <model:be64> 'R'                   -> model record (JSON)
//  02 <model:be64> 'S'                   -> model snapshot (bytes)
//
// Everything of a dataset shares the prefix 01<ds>, so one DeleteRange
// removes it. Dataset ids are never reused, so a re-created name never sees
// stale data. Event keys sort user-major, which is the DatasetView order.
#ifndef DEBIAS_CORE_STORE_KEYS_H_
#define DEBIAS_CORE_STORE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/data/interaction.h"
#include "core/util/coding.h"

namespace debias::store::keys {

inline constexpr char kCatalog = 0x00;
inline constexpr char kDatasetData = 0x01;
inline constexpr char kModel = 0x02;

inline std::string DatasetMeta(std::string_view name) {
  std::string k{kCatalog, 'D'};
  k.append(name);
  return k;
}
inline std::string ModelNameKey(std::string_view name) {
  std::string k{kCatalog, 'M'};
  k.append(name);
  return k;
}
inline std::string Counter(std::string_view which) {
  std::string k{kCatalog, 'N'};
  k.append(which);
  return k;
}
inline std::string DatasetPrefix(uint32_t ds) {
  std::string k(1, kDatasetData);
  util::PutBigEndian32(&k, ds);
  return k;
}
inline std::string DatasetFamily(uint32_t ds, char family) {
  std::string k = DatasetPrefix(ds);
  k.push_back(family);
  return k;
}
// Forward map (key -> id), family is 'U', 'I' or 'L'.
inline std::string KeyToId(uint32_t ds, char family, std::string_view key) {
  std::string k = DatasetFamily(ds, family);
  k.append(key);
  return k;
}
// Reverse map (id -> key), family is 'u', 'i' or 'l'.
inline std::string IdToKey(uint32_t ds, char family, uint32_t id) {
  std::string k = DatasetFamily(ds, family);
  util::PutBigEndian32(&k, id);
  return k;
}

// The discriminator of an event key says which identity it has:
//  '\x01' <event id>   the client's event id (the idempotency key);
//  '\x02' <seq:be64>   no id: a sequence number the store assigns, so every
//                      event sent is stored;
//  '\x00' <natural key> no id, in a dataset created with dedup=natural_key.
// Appends the event key of (user, item, e) to *k (which holds the 'E'
// family prefix). `seq` is used for an event without id unless
// `natural_key`.
inline void AppendEventKey(std::string* k, uint32_t user, uint32_t item,
                           uint32_t list, const data::Interaction& e,
                           bool natural_key, uint64_t seq) {
  util::PutBigEndian32(k, user);
  util::PutBigEndian32(k, item);
  if (!e.event_id.empty()) {
    k->push_back('\x01');
    k->append(e.event_id);
    return;
  }
  if (!natural_key) {
    k->push_back('\x02');
    util::PutBigEndian64(k, seq);
    return;
  }
  k->push_back('\x00');
  // Natural key: timestamp (sign-flipped so it sorts), list, position.
  const uint64_t ts =
      e.timestamp ? static_cast<uint64_t>(*e.timestamp) ^ (1ull << 63) : 0;
  k->push_back(e.timestamp ? '\x01' : '\x00');
  util::PutBigEndian64(k, ts);
  util::PutBigEndian32(k, list);
  util::PutBigEndian32(k, static_cast<uint32_t>(e.position.value_or(0)));
}

// The event-id index: one row per event id of a dataset, naming the user
// and item whose event holds it, so an id is unique in the dataset.
inline std::string EventIdIndexKey(uint32_t ds, std::string_view event_id) {
  std::string k = DatasetFamily(ds, 'X');
  k.append(event_id);
  return k;
}

inline std::string ModelKey(uint64_t id, char what) {
  std::string k(1, kModel);
  util::PutBigEndian64(&k, id);
  k.push_back(what);
  return k;
}

// Event value: flags, label, optional fields, features, event id.
enum EventFlags : uint8_t {
  kHasTimestamp = 1,
  kHasList = 2,
  kHasPosition = 4,
  kHasPropensity = 8,
};

inline void EncodeEventValue(std::string* v, uint32_t list,
                             const data::Interaction& e) {
  uint8_t flags = 0;
  if (e.timestamp) flags |= kHasTimestamp;
  if (e.list_id) flags |= kHasList;
  if (e.position) flags |= kHasPosition;
  if (e.propensity) flags |= kHasPropensity;
  v->push_back(static_cast<char>(flags));
  util::PutFloat(v, e.label);
  if (e.timestamp) util::PutFixed64(v, static_cast<uint64_t>(*e.timestamp));
  if (e.list_id) util::PutFixed32(v, list);
  if (e.position) util::PutFixed32(v, static_cast<uint32_t>(*e.position));
  if (e.propensity) util::PutFloat(v, *e.propensity);
  util::PutFloats(v, e.features);
  util::PutBytes(v, e.event_id);
}

struct DecodedEvent {
  uint8_t flags = 0;
  float label = 0;
  int64_t timestamp = 0;
  uint32_t list = 0;
  int32_t position = 0;
  float propensity = 0;
  std::vector<float> features;
  std::string_view event_id;
};

// False on corrupt input.
inline bool DecodeEventValue(std::string_view v, DecodedEvent* out,
                             uint64_t max_features) {
  if (v.empty()) return false;
  out->flags = static_cast<uint8_t>(v[0]);
  util::Reader r(v.substr(1));
  if (!r.GetFloat(&out->label)) return false;
  if (out->flags & kHasTimestamp) {
    uint64_t ts;
    if (!r.GetFixed64(&ts)) return false;
    out->timestamp = static_cast<int64_t>(ts);
  }
  if ((out->flags & kHasList) && !r.GetFixed32(&out->list)) return false;
  if (out->flags & kHasPosition) {
    uint32_t p;
    if (!r.GetFixed32(&p)) return false;
    out->position = static_cast<int32_t>(p);
  }
  if ((out->flags & kHasPropensity) && !r.GetFloat(&out->propensity)) return false;
  if (!r.GetFloats(&out->features, max_features)) return false;
  if (!r.GetBytes(&out->event_id)) return false;
  return r.done();
}

}  // namespace debias::store::keys

#endif  // DEBIAS_CORE_STORE_KEYS_H_
