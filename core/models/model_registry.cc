#include "core/models/model_registry.h"

#include "core/models/mf_model.h"
#include "core/models/nbpo_mf_model.h"
#include "core/models/ranker_model.h"

namespace debias::models {

const std::vector<ModelKind>& ModelKinds() {
  static const auto* kinds = new std::vector<ModelKind>{
      {MfModel::kKind, &MfModel::Deserialize},
      {NbpoMfModel::kKind, &NbpoMfModel::Deserialize},
      {RankerModel::kLinearKind, &RankerModel::Deserialize},
      {RankerModel::kMlpKind, &RankerModel::Deserialize},
  };
  return *kinds;
}

const samplers::NbpoFactors* NbpoFactorsOf(const Model& model) {
  if (model.kind() != NbpoMfModel::kKind) return nullptr;
  return &static_cast<const NbpoMfModel&>(model).factors();
}

}  // namespace debias::models
