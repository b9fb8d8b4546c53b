// Fuzz target: model snapshot decoding and the binary codecs.
//
// Input: byte 0 picks the decoder:
//   0           models::DeserializeModel (dispatch on the kind header)
//   1..kinds    the deserializer of ModelKinds()[b - 1] directly
//   kinds+1     util::Reader driven by the input (op codes, then payload)
//   kinds+2     store::keys::DecodeEventValue
// the rest is the snapshot / encoded bytes.
// Checks: a corrupted snapshot gives DATA_LOSS or INVALID_ARGUMENT, never a
// crash; a snapshot that decodes re-serializes to bytes that decode to the
// same bytes again; a decoded model scores in-range ids and feature rows
// without reading out of bounds (ASan) and reports consistent sizes.
#include <cstdint>
#include <string>
#include <vector>

#include "core/models/model.h"
#include "core/models/model_registry.h"
#include "core/store/keys.h"
#include "core/util/coding.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace debias;

void ExerciseModel(const model::Model& m) {
  const uint32_t nu = m.num_users(), ni = m.num_items();
  if (nu > 0 && ni > 0) {
    const std::vector<uint32_t> items = {0, ni - 1, ni / 2};
    std::vector<float> out(items.size());
    m.ScoreItems(0, items, out);
    m.ScoreItems(nu - 1, items, out);
    if (ni <= (1u << 16)) {
      std::vector<float> all(ni);
      m.ScoreAll(nu / 2, all);
    }
  }
  const int dim = m.feature_dim();
  FUZZ_CHECK(dim >= 0);
  if (dim > 0 && dim <= (1 << 16)) {
    std::vector<float> features(2 * static_cast<size_t>(dim), 0.5f);
    std::vector<float> out(2);
    (void)m.ScoreFeatures(features, out);
    // A mismatched length must be rejected, not read past the end.
    std::vector<float> short_features(static_cast<size_t>(dim), 0.5f);
    FUZZ_CHECK(!m.ScoreFeatures(short_features, out).ok());
  }
}

void CheckDecoded(absl::StatusOr<std::unique_ptr<model::Model>> m) {
  if (!m.ok()) {
    const auto code = m.status().code();
    FUZZ_CHECK(code == absl::StatusCode::kDataLoss ||
               code == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(*m != nullptr);
  ExerciseModel(**m);
  // Serialize is the inverse of decoding: decode(serialize(m)) succeeds and
  // is a fixed point.
  const std::string bytes = (*m)->Serialize();
  auto again = models::DeserializeModel(bytes);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK((*again)->kind() == (*m)->kind());
  FUZZ_CHECK((*again)->num_users() == (*m)->num_users());
  FUZZ_CHECK((*again)->num_items() == (*m)->num_items());
  FUZZ_CHECK((*again)->feature_dim() == (*m)->feature_dim());
  FUZZ_CHECK((*again)->Serialize() == bytes);
}

void FuzzReader(fuzz::Input& input) {
  const int num_ops = input.Byte() % 32;
  std::vector<uint8_t> ops(num_ops);
  for (auto& op : ops) op = input.Byte();
  const std::string_view payload = input.Rest();
  util::Reader r(payload);
  size_t last_remaining = r.remaining();
  for (uint8_t op : ops) {
    bool ok = false;
    switch (op % 9) {
      case 0: { uint32_t v; ok = r.GetFixed32(&v); break; }
      case 1: { uint64_t v; ok = r.GetFixed64(&v); break; }
      case 2: { float v; ok = r.GetFloat(&v); break; }
      case 3: { double v; ok = r.GetDouble(&v); break; }
      case 4: { uint32_t v; ok = r.GetBigEndian32(&v); break; }
      case 5: { uint64_t v; ok = r.GetBigEndian64(&v); break; }
      case 6: {
        std::string_view s;
        ok = r.GetBytes(&s);
        if (ok) FUZZ_CHECK(s.data() >= payload.data() &&
                           s.data() + s.size() <= payload.data() + payload.size());
        break;
      }
      case 7: { std::vector<float> v; ok = r.GetFloats(&v); break; }
      default: { std::vector<float> v; ok = r.GetFloats(&v, op >> 4); break; }
    }
    FUZZ_CHECK(r.remaining() <= last_remaining);
    if (!ok) FUZZ_CHECK(r.failed());
    last_remaining = r.remaining();
  }
  if (r.done()) FUZZ_CHECK(r.remaining() == 0);
}

void FuzzEventValue(fuzz::Input& input) {
  const uint64_t max_features = input.Byte();
  const std::string_view bytes = input.Rest();
  store::keys::DecodedEvent e;
  if (!store::keys::DecodeEventValue(bytes, &e, max_features)) return;
  FUZZ_CHECK(e.features.size() <= max_features);
  // Re-encode what was decoded: the same bytes come out.
  data::Interaction ev;
  ev.label = e.label;
  if (e.flags & store::keys::kHasTimestamp) ev.timestamp = e.timestamp;
  if (e.flags & store::keys::kHasList) ev.list_id = "";
  if (e.flags & store::keys::kHasPosition) ev.position = e.position;
  if (e.flags & store::keys::kHasPropensity) ev.propensity = e.propensity;
  ev.features = e.features;
  ev.event_id = std::string(e.event_id);
  std::string again;
  store::keys::EncodeEventValue(&again, e.list, ev);
  // Unknown flag bits are not re-encoded; compare the rest.
  FUZZ_CHECK(again.size() == bytes.size());
  FUZZ_CHECK(again.substr(1) == bytes.substr(1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  fuzz::Input input(data, size);
  const auto& kinds = models::ModelKinds();
  const size_t which = input.Byte() % (kinds.size() + 3);
  if (which == 0) {
    CheckDecoded(models::DeserializeModel(input.Rest()));
  } else if (which <= kinds.size()) {
    const auto& kind = kinds[which - 1];
    CheckDecoded(kind.deserialize(input.Rest()));
  } else if (which == kinds.size() + 1) {
    FuzzReader(input);
  } else {
    FuzzEventValue(input);
  }
  return 0;
}
