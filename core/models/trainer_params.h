// Optional-hyperparameter parsing shared by the trainers: a key absent from
// `params` leaves *out at its default; a present one must parse and lie in
// the range, else INVALID_ARGUMENT "key=value: key must be ... in [lo, hi]".
#ifndef DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_
#define DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_

#include <map>
#include <string>

#include "absl/status/status.h"

namespace debias::models {

// Range [lo, hi], or (lo, hi] when lo_open.
absl::Status ParseDouble(const std::map<std::string, std::string>& params,
                         const std::string& key, double lo, double hi, bool lo_open,
                         double* out);
absl::Status ParseInt(const std::map<std::string, std::string>& params,
                      const std::string& key, int lo, int hi, int* out);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_TRAINER_PARAMS_H_
