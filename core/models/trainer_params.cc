#include "core/models/trainer_params.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace debias::models {

absl::Status ParseDouble(const std::map<std::string, std::string>& p,
                         const std::string& key, double lo, double hi, bool lo_open,
                         double* out) {
  auto it = p.find(key);
  if (it == p.end()) return absl::OkStatus();
  double v;
  const bool ok = absl::SimpleAtod(it->second, &v) && std::isfinite(v) &&
                  (lo_open ? v > lo : v >= lo) && v <= hi;
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(key, "=", it->second, ": ", key,
                                                   " must be a number in ",
                                                   lo_open ? "(" : "[", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseInt(const std::map<std::string, std::string>& p, const std::string& key,
                      int lo, int hi, int* out) {
  auto it = p.find(key);
  if (it == p.end()) return absl::OkStatus();
  int v;
  if (!absl::SimpleAtoi(it->second, &v) || v < lo || v > hi) {
    return absl::InvalidArgumentError(absl::StrCat(
        key, "=", it->second, ": ", key, " must be an integer in [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace debias::models
