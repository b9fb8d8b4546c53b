// Row-sparse optimisers for factor matrices: Adam (lazy or dense) and SGD.
//
// A RowOptimizer owns the gradient accumulator and the optimiser state of
// one row-major parameter block (rows x dim floats, e.g. MfParams'
// user_factors, or a bias vector with dim 1). Per mini-batch:
//   float* g = opt.Grad(row);  // zeroed on first touch in this step
//   ... add dL/d(row) into g ...
//   opt.Step();                // update, then forget the gradients
// Lazy mode (default) updates only the rows touched in the step (TF's
// LazyAdam: the moments of untouched rows are not decayed; bias correction
// uses the global step count), so a step costs O(touched rows x dim), which
// is what makes one epoch over millions of events affordable. Dense mode
// updates every row every step (the Rel-MF reference's tf.train.AdamOptimizer
// with full-matrix L2), O(rows x dim) per step: only for small problems.
// L2: l2 * w is added to the gradient of every updated row (lazy: touched
// rows; dense: all rows), i.e. the penalty (l2/2)|W|^2 per step.
// No heap allocation per sample; Grad() allocates only while the touched set
// grows past its high-water mark. Not thread-safe; one optimiser per block
// per training thread. The parameter memory is borrowed and must outlive it.
#ifndef DEBIAS_CORE_MODELS_OPTIM_H_
#define DEBIAS_CORE_MODELS_OPTIM_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace debias::models {

enum class OptimizerKind { kAdam, kSgd };

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdam;
  float lr = 0.01f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float l2 = 0.0f;
  bool dense = false;  // Adam/SGD over every row every step
};

// "adam" | "sgd"; INVALID_ARGUMENT "optimizer=x: ..." otherwise.
absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view s);
std::string_view OptimizerKindName(OptimizerKind k);

class RowOptimizer {
 public:
  // params: rows x dim contiguous floats, row-major.
  RowOptimizer(float* params, int64_t rows, int dim, const OptimizerOptions& opts);

  // Gradient accumulator of `row` for the current step (dim floats).
  // Precondition: row < rows.
  float* Grad(uint32_t row) {
    int32_t& s = slot_[row];
    if (s < 0) {
      s = static_cast<int32_t>(touched_.size());
      touched_.push_back(row);
      if (grad_.size() < touched_.size() * dim_) grad_.resize(touched_.size() * dim_);
      std::fill_n(grad_.data() + size_t{static_cast<uint32_t>(s)} * dim_, dim_, 0.0f);
    }
    return grad_.data() + size_t{static_cast<uint32_t>(s)} * dim_;
  }

  // Applies one update and clears the accumulated gradients.
  void Step();
  // Drops the accumulated gradients without updating.
  void Discard();

  void set_lr(float lr) { opts_.lr = lr; }
  const OptimizerOptions& options() const { return opts_; }
  int64_t steps() const { return t_; }
  size_t touched() const { return touched_.size(); }

 private:
  void UpdateRow(float* w, const float* g, float* m, float* v, float c1, float c2);

  float* params_;
  int64_t rows_;
  int dim_;
  OptimizerOptions opts_;
  int64_t t_ = 0;
  std::vector<float> m_, v_;       // Adam moments, rows x dim (Adam only)
  std::vector<int32_t> slot_;      // row -> slot in grad_, -1 untouched
  std::vector<uint32_t> touched_;  // rows touched this step, in touch order
  std::vector<float> grad_;        // touched x dim
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_OPTIM_H_
