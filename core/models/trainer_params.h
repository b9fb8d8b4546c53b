// The trainers' parameter parser: core/util/params.h (ParamReader, ParamSpec,
// Range, ParamSchemaCapture, ParamNumber), re-exported into debias::models
// where the trainers and their callers name it.
#ifndef DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_
#define DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_

#include "core/util/params.h"

namespace debias::models {

using util::ParamNumber;
using util::ParamReader;
using util::ParamSchemaCapture;
using util::ParamSpec;
using util::Range;

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_
