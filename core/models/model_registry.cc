#include "core/models/model_registry.h"

#include "core/models/mf_model.h"

namespace debias::models {

const std::vector<ModelKind>& ModelKinds() {
  static const auto* kinds = new std::vector<ModelKind>{
      {MfModel::kKind, &MfModel::Deserialize},
  };
  return *kinds;
}

}  // namespace debias::models
