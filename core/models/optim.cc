#include "core/models/optim.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace debias::models {

absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view s) {
  if (s == "adam") return OptimizerKind::kAdam;
  if (s == "sgd") return OptimizerKind::kSgd;
  return absl::InvalidArgumentError(absl::StrCat(
      "optimizer=", std::string(s), ": optimizer must be one of adam, sgd"));
}

std::string_view OptimizerKindName(OptimizerKind k) {
  return k == OptimizerKind::kAdam ? "adam" : "sgd";
}

RowOptimizer::RowOptimizer(float* params, int64_t rows, int dim,
                           const OptimizerOptions& opts)
    : params_(params), rows_(rows), dim_(dim), opts_(opts),
      slot_(rows, -1) {
  if (opts_.kind == OptimizerKind::kAdam) {
    m_.assign(static_cast<size_t>(rows) * dim, 0.0f);
    v_.assign(static_cast<size_t>(rows) * dim, 0.0f);
  }
  touched_.reserve(1024);
  grad_.reserve(1024 * static_cast<size_t>(dim));
}

void RowOptimizer::UpdateRow(float* w, const float* g, float* m, float* v,
                             float c1, float c2) {
  const float lr = opts_.lr, l2 = opts_.l2;
  if (opts_.kind == OptimizerKind::kSgd) {
    for (int k = 0; k < dim_; ++k) w[k] -= lr * (g[k] + l2 * w[k]);
    return;
  }
  const float b1 = opts_.beta1, b2 = opts_.beta2, eps = opts_.eps;
  const float a = lr / c1, inv_c2 = 1.0f / c2;
  for (int k = 0; k < dim_; ++k) {
    const float gk = g[k] + l2 * w[k];
    m[k] = b1 * m[k] + (1 - b1) * gk;
    v[k] = b2 * v[k] + (1 - b2) * gk * gk;
    w[k] -= a * m[k] / (std::sqrt(v[k] * inv_c2) + eps);
  }
}

void RowOptimizer::Step() {
  ++t_;
  float c1 = 1, c2 = 1;
  if (opts_.kind == OptimizerKind::kAdam) {
    c1 = 1.0f - std::pow(opts_.beta1, static_cast<float>(t_));
    c2 = 1.0f - std::pow(opts_.beta2, static_cast<float>(t_));
  }
  const bool adam = opts_.kind == OptimizerKind::kAdam;
  if (opts_.dense) {
    static thread_local std::vector<float> zero;
    zero.assign(dim_, 0.0f);
    for (int64_t r = 0; r < rows_; ++r) {
      const size_t off = static_cast<size_t>(r) * dim_;
      const int32_t s = slot_[r];
      const float* g = s >= 0 ? grad_.data() + size_t{static_cast<uint32_t>(s)} * dim_
                              : zero.data();
      UpdateRow(params_ + off, g, adam ? m_.data() + off : nullptr,
                adam ? v_.data() + off : nullptr, c1, c2);
    }
  } else {
    for (size_t s = 0; s < touched_.size(); ++s) {
      const size_t off = static_cast<size_t>(touched_[s]) * dim_;
      UpdateRow(params_ + off, grad_.data() + s * dim_,
                adam ? m_.data() + off : nullptr, adam ? v_.data() + off : nullptr,
                c1, c2);
    }
  }
  Discard();
}

void RowOptimizer::Discard() {
  for (uint32_t r : touched_) slot_[r] = -1;
  touched_.clear();
}

}  // namespace debias::models
