#include "core/models/mf_model.h"

#include "absl/strings/str_cat.h"
#include "core/util/coding.h"

namespace debias::models {
namespace {
constexpr uint32_t kFormatVersion = 1;
}  // namespace

absl::StatusOr<std::unique_ptr<MfModel>> MfModel::Create(MfParams p) {
  if (p.user_factors.cols() != p.item_factors.cols()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mf: user factor dim ", p.user_factors.cols(),
        " != item factor dim ", p.item_factors.cols()));
  }
  if (p.user_bias.size() != 0 && p.user_bias.size() != p.user_factors.rows()) {
    return absl::InvalidArgumentError("mf: user_bias length != num_users");
  }
  if (p.item_bias.size() != 0 && p.item_bias.size() != p.item_factors.rows()) {
    return absl::InvalidArgumentError("mf: item_bias length != num_items");
  }
  return std::unique_ptr<MfModel>(new MfModel(std::move(p)));
}

float MfModel::ScorePair(uint32_t u, uint32_t i) const {
  float s = params_.user_factors.row(u).dot(params_.item_factors.row(i)) +
            params_.global_bias;
  if (params_.user_bias.size()) s += params_.user_bias[u];
  if (params_.item_bias.size()) s += params_.item_bias[i];
  return s;
}

void MfModel::ScoreItems(uint32_t user, std::span<const uint32_t> items,
                         std::span<float> out) const {
  // Candidates are scattered over an item table larger than the caches:
  // fetch the rows a few candidates ahead so their misses overlap.
  constexpr size_t kAhead = 4, kFloatsPerLine = 16;
  const auto& V = params_.item_factors;
  const size_t n = items.size(), d = static_cast<size_t>(V.cols());
  auto prefetch = [&](uint32_t i) {  // a hint: never faults, whatever the address
    const float* row = V.data() + size_t{i} * d;
    for (size_t c = 0; c < d; c += kFloatsPerLine) __builtin_prefetch(row + c);
  };
  for (size_t k = 0; k < std::min(n, kAhead); ++k) prefetch(items[k]);
  for (size_t k = 0; k < n; ++k) {
    if (k + kAhead < n) prefetch(items[k + kAhead]);
    out[k] = ScorePair(user, items[k]);
  }
}

void MfModel::ScoreAll(uint32_t user, std::span<float> out) const {
  Eigen::Map<Eigen::VectorXf> o(out.data(), out.size());
  o.noalias() = params_.item_factors * params_.user_factors.row(user).transpose();
  float add = params_.global_bias;
  if (params_.user_bias.size()) add += params_.user_bias[user];
  o.array() += add;
  if (params_.item_bias.size()) o += params_.item_bias;
}

std::string MfModel::Serialize() const {
  std::string out;
  util::PutBytes(&out, kKind);
  util::PutFixed32(&out, kFormatVersion);
  util::PutFixed32(&out, num_users());
  util::PutFixed32(&out, num_items());
  util::PutFixed32(&out, dim());
  auto put = [&](const float* p, size_t n) {
    util::PutFloats(&out, std::span<const float>(p, n));
  };
  put(params_.user_factors.data(), params_.user_factors.size());
  put(params_.item_factors.data(), params_.item_factors.size());
  put(params_.user_bias.data(), params_.user_bias.size());
  put(params_.item_bias.data(), params_.item_bias.size());
  util::PutFloat(&out, params_.global_bias);
  return out;
}

absl::StatusOr<std::unique_ptr<Model>> MfModel::Deserialize(std::string_view bytes) {
  util::Reader r(bytes);
  std::string_view kind;
  uint32_t version, nu, ni, dim;
  if (!r.GetBytes(&kind) || kind != kKind || !r.GetFixed32(&version) ||
      !r.GetFixed32(&nu) || !r.GetFixed32(&ni) || !r.GetFixed32(&dim)) {
    return absl::DataLossError("mf snapshot: truncated or wrong header");
  }
  if (version != kFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("mf snapshot: unsupported format version ", version));
  }
  std::vector<float> uf, vf, ub, ib;
  float gb;
  if (!r.GetFloats(&uf) || !r.GetFloats(&vf) || !r.GetFloats(&ub) ||
      !r.GetFloats(&ib) || !r.GetFloat(&gb) || !r.done()) {
    return absl::DataLossError("mf snapshot: truncated parameters");
  }
  if (uf.size() != uint64_t{nu} * dim || vf.size() != uint64_t{ni} * dim ||
      (!ub.empty() && ub.size() != nu) || (!ib.empty() && ib.size() != ni)) {
    return absl::DataLossError("mf snapshot: parameter sizes disagree with header");
  }
  MfParams p;
  p.user_factors = Eigen::Map<RowMatrix>(uf.data(), nu, dim);
  p.item_factors = Eigen::Map<RowMatrix>(vf.data(), ni, dim);
  p.user_bias = Eigen::Map<Eigen::VectorXf>(ub.data(), ub.size());
  p.item_bias = Eigen::Map<Eigen::VectorXf>(ib.data(), ib.size());
  p.global_bias = gb;
  auto m = Create(std::move(p));
  if (!m.ok()) return absl::DataLossError(m.status().message());
  return std::unique_ptr<Model>(std::move(*m));
}

}  // namespace debias::models
