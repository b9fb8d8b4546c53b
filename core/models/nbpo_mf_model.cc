#include "core/models/nbpo_mf_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/util/coding.h"

namespace debias::models {
namespace {
constexpr uint32_t kFormatVersion = 1;
using samplers::FactorMatrix;
}  // namespace

absl::StatusOr<std::unique_ptr<NbpoMfModel>> NbpoMfModel::Create(
    samplers::NbpoFactors f) {
  if (absl::Status s = samplers::ValidateNbpoFactorShapes(f, "nbpo-mf"); !s.ok()) return s;
  return std::unique_ptr<NbpoMfModel>(new NbpoMfModel(std::move(f)));
}

float NbpoMfModel::ScorePair(uint32_t u, uint32_t i) const {
  return f_.user_factors.row(u).dot(f_.item_factors.row(i));
}

float NbpoMfModel::FlipProbability(uint32_t u, uint32_t i) const {
  const float z = f_.user_flip.row(u).dot(f_.item_flip.row(i));
  return z >= 0 ? 1.0f / (1.0f + std::exp(-z))
                : std::exp(z) / (1.0f + std::exp(z));
}

void NbpoMfModel::ScoreItems(uint32_t user, std::span<const uint32_t> items,
                             std::span<float> out) const {
  for (size_t k = 0; k < items.size(); ++k) out[k] = ScorePair(user, items[k]);
}

void NbpoMfModel::ScoreAll(uint32_t user, std::span<float> out) const {
  Eigen::Map<Eigen::VectorXf> o(out.data(), out.size());
  o.noalias() = f_.item_factors * f_.user_factors.row(user).transpose();
}

std::string NbpoMfModel::Serialize() const {
  std::string out;
  util::PutBytes(&out, kKind);
  util::PutFixed32(&out, kFormatVersion);
  util::PutFixed32(&out, num_users());
  util::PutFixed32(&out, num_items());
  util::PutFixed32(&out, dim());
  util::PutFixed32(&out, flip_dim());
  for (const FactorMatrix* m :
       {&f_.user_factors, &f_.item_factors, &f_.user_flip, &f_.item_flip}) {
    util::PutFloats(&out, std::span<const float>(m->data(), m->size()));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Model>> NbpoMfModel::Deserialize(
    std::string_view bytes) {
  util::Reader r(bytes);
  std::string_view kind;
  uint32_t version, nu, ni, dim, fdim;
  if (!r.GetBytes(&kind) || kind != kKind || !r.GetFixed32(&version) ||
      !r.GetFixed32(&nu) || !r.GetFixed32(&ni) || !r.GetFixed32(&dim) ||
      !r.GetFixed32(&fdim)) {
    return absl::DataLossError("nbpo-mf snapshot: truncated or wrong header");
  }
  if (version != kFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("nbpo-mf snapshot: unsupported format version ", version));
  }
  std::vector<float> uf, vf, pf, qf;
  if (!r.GetFloats(&uf) || !r.GetFloats(&vf) || !r.GetFloats(&pf) ||
      !r.GetFloats(&qf) || !r.done()) {
    return absl::DataLossError("nbpo-mf snapshot: truncated parameters");
  }
  if (uf.size() != uint64_t{nu} * dim || vf.size() != uint64_t{ni} * dim ||
      pf.size() != uint64_t{nu} * fdim || qf.size() != uint64_t{ni} * fdim) {
    return absl::DataLossError(
        "nbpo-mf snapshot: parameter sizes disagree with header");
  }
  samplers::NbpoFactors f;
  f.user_factors = Eigen::Map<FactorMatrix>(uf.data(), nu, dim);
  f.item_factors = Eigen::Map<FactorMatrix>(vf.data(), ni, dim);
  f.user_flip = Eigen::Map<FactorMatrix>(pf.data(), nu, fdim);
  f.item_flip = Eigen::Map<FactorMatrix>(qf.data(), ni, fdim);
  auto m = Create(std::move(f));
  if (!m.ok()) return absl::DataLossError(m.status().message());
  return std::unique_ptr<Model>(std::move(*m));
}

}  // namespace debias::models
