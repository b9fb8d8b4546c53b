#include "core/models/ranker_model.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/util/coding.h"

namespace debias::models {
namespace {
constexpr uint32_t kFormatVersion = 1;
constexpr int kChunk = 1024;  // rows per forward pass when scoring
}  // namespace

std::unique_ptr<RankerModel> RankerModel::Create(RankerNet net) {
  return std::unique_ptr<RankerModel>(new RankerModel(std::move(net)));
}

absl::Status RankerModel::ScoreFeatures(std::span<const float> features,
                                        std::span<float> out) const {
  const size_t d = static_cast<size_t>(net_.input_dim());
  if (features.size() != out.size() * d) {
    return absl::InvalidArgumentError(absl::StrCat(
        "features: ", features.size(), " floats for ", out.size(),
        " documents; expected documents x feature_dim = ", out.size() * d));
  }
  for (size_t k = 0; k < features.size(); ++k) {
    if (!std::isfinite(features[k])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "features[", k / d, "][", k % d, "]: must be finite"));
    }
  }
  RankerWorkspace ws;
  for (size_t begin = 0; begin < out.size(); begin += kChunk) {
    const int n = static_cast<int>(std::min<size_t>(kChunk, out.size() - begin));
    net_.Forward(features.data() + begin * d, n, &ws, out.data() + begin);
  }
  return absl::OkStatus();
}

std::string RankerModel::Serialize() const {
  std::string out;
  util::PutBytes(&out, kind());
  util::PutFixed32(&out, kFormatVersion);
  util::PutFixed32(&out, static_cast<uint32_t>(net_.input_dim()));
  util::PutFixed32(&out, static_cast<uint32_t>(net_.hidden().size()));
  for (int h : net_.hidden()) util::PutFixed32(&out, static_cast<uint32_t>(h));
  auto put = [&](const Eigen::VectorXf& v) {
    util::PutFloats(&out, std::span<const float>(v.data(), v.size()));
  };
  put(net_.shift());
  put(net_.scale());
  put(net_.params());
  return out;
}

absl::StatusOr<std::unique_ptr<Model>> RankerModel::Deserialize(
    std::string_view bytes) {
  util::Reader r(bytes);
  std::string_view kind;
  if (!r.GetBytes(&kind)) {
    return absl::DataLossError("ranker snapshot: truncated header");
  }
  if (kind != kLinearKind && kind != kMlpKind) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ranker snapshot: kind '", std::string(kind), "' is not a ranker"));
  }
  uint32_t version, dim, layers;
  if (!r.GetFixed32(&version) || !r.GetFixed32(&dim) || !r.GetFixed32(&layers)) {
    return absl::DataLossError("ranker snapshot: truncated header");
  }
  if (version != kFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("ranker snapshot: unsupported format version ", version));
  }
  if (layers > static_cast<uint32_t>(RankerNet::kMaxHiddenLayers) ||
      dim > static_cast<uint32_t>(RankerNet::kMaxInputDim)) {
    return absl::DataLossError("ranker snapshot: layer count or dim out of range");
  }
  std::vector<int> hidden;
  for (uint32_t l = 0; l < layers; ++l) {
    uint32_t h;
    if (!r.GetFixed32(&h)) return absl::DataLossError("ranker snapshot: truncated layers");
    if (h > static_cast<uint32_t>(RankerNet::kMaxUnits)) {
      return absl::DataLossError("ranker snapshot: layer size out of range");
    }
    hidden.push_back(static_cast<int>(h));
  }
  if ((kind == kLinearKind) != hidden.empty()) {
    return absl::DataLossError("ranker snapshot: kind disagrees with layers");
  }
  auto net = RankerNet::Create(static_cast<int>(dim), hidden);
  if (!net.ok()) return absl::DataLossError(net.status().message());
  std::vector<float> shift, scale, params;
  if (!r.GetFloats(&shift, dim) || !r.GetFloats(&scale, dim) ||
      !r.GetFloats(&params, net->num_params()) || !r.done()) {
    return absl::DataLossError("ranker snapshot: truncated parameters");
  }
  auto to_vec = [](const std::vector<float>& v) {
    return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(v.data(), v.size()));
  };
  if (absl::Status s = net->SetStandardization(to_vec(shift), to_vec(scale)); !s.ok()) {
    return absl::DataLossError(absl::StrCat("ranker snapshot: ", s.message()));
  }
  if (absl::Status s = net->SetParams(to_vec(params)); !s.ok()) {
    return absl::DataLossError(absl::StrCat("ranker snapshot: ", s.message()));
  }
  return std::unique_ptr<Model>(Create(*std::move(net)));
}

}  // namespace debias::models
