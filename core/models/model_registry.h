// Table of model kinds for deserialisation: one row per parameter layout.
//
// Every snapshot starts with PutBytes(kind); the row's deserialize gets the
// whole snapshot (header included) and returns DATA_LOSS on corrupt input.
#ifndef DEBIAS_CORE_MODELS_MODEL_REGISTRY_H_
#define DEBIAS_CORE_MODELS_MODEL_REGISTRY_H_

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/model.h"
#include "core/samplers/nbpo_sampler.h"

namespace debias::models {

struct ModelKind {
  std::string_view name;
  std::function<absl::StatusOr<std::unique_ptr<Model>>(std::string_view)>
      deserialize;
};

const std::vector<ModelKind>& ModelKinds();

// The NBPO factors of `model` (kind "nbpo-mf"), or null for any other kind:
// what the "nbpo" negative sampler draws with.
const samplers::NbpoFactors* NbpoFactorsOf(const Model& model);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_MODEL_REGISTRY_H_
