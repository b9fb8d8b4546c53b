// The models component's view of Model: the interface (core/model/model.h)
// and DeserializeModel, which knows every concrete kind (model_registry.h).
//
// Code outside core/models that only scores a model includes
// core/model/model.h instead; core/eval must not include this header (it
// would bring back the eval <-> models cycle; .ci/run checks).
#ifndef DEBIAS_CORE_MODELS_MODEL_H_
#define DEBIAS_CORE_MODELS_MODEL_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/model/model.h"

namespace debias::models {

// The trainers and concrete models of this namespace implement model::Model;
// code that still spells it models::Model (server/log_evaluation.cc) finds it
// here.
using model::Model;

// Rebuilds a model from Serialize() output. DATA_LOSS for truncated or
// corrupt bytes, INVALID_ARGUMENT for an unknown kind.
absl::StatusOr<std::unique_ptr<Model>> DeserializeModel(std::string_view bytes);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_MODEL_H_
