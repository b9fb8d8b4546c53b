// RankerNet: the trainable feed-forward scorer behind the "linear-ranker"
// and "mlp-ranker" model kinds, plus the small optimisers the click trainers
// use (Adagrad, Adam, global-norm clipping).
//
// score(x) = MLP((x - shift) * scale): `hidden` layers of ELU units, then one
// linear output unit; no hidden layers = a linear ranker w . x' + b. The
// input standardisation (shift, scale; one entry per feature) is part of the
// model so that served scores see the same transform as training.
//
// Parameters live in one flat float vector (all layers, in order; per layer
// the weight matrix in x out, row-major, then the bias), so optimisers and
// snapshots treat them as one array. Batches are row-major n x input_dim.
// Thread safety: a const RankerNet may be shared; Forward/Backward write only
// the caller's RankerWorkspace.
#ifndef DEBIAS_CORE_MODELS_RANKER_NET_H_
#define DEBIAS_CORE_MODELS_RANKER_NET_H_

#include <cstdint>
#include <span>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"

namespace debias::models {

using RankerMatrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Scratch of one forward pass, reused between calls to avoid allocation in
// the hot loop (buffers only grow).
struct RankerWorkspace {
  std::vector<RankerMatrix> h;  // h[0] = standardised input, h[l+1] = ELU(z[l])
  std::vector<RankerMatrix> z;  // pre-activations of the hidden layers
  RankerMatrix dh, dz;          // backward scratch
  int n = 0;
};

class RankerNet {
 public:
  // Largest accepted sizes (validated by Create).
  static constexpr int kMaxInputDim = 100000;
  static constexpr int kMaxHiddenLayers = 8;
  static constexpr int kMaxUnits = 4096;

  // INVALID_ARGUMENT unless input_dim in [1, 100000], at most 8 hidden
  // layers, each in [1, 4096]. Parameters start at zero, shift 0, scale 1.
  static absl::StatusOr<RankerNet> Create(int input_dim,
                                          std::vector<int> hidden);

  // Glorot-uniform weights (the output layer scaled down by 10 so initial
  // scores are near 0), zero biases; deterministic in `seed`.
  void InitRandom(uint64_t seed);

  int input_dim() const { return input_dim_; }
  const std::vector<int>& hidden() const { return hidden_; }
  size_t num_params() const { return static_cast<size_t>(params_.size()); }
  Eigen::VectorXf& params() { return params_; }
  const Eigen::VectorXf& params() const { return params_; }
  const Eigen::VectorXf& shift() const { return shift_; }
  const Eigen::VectorXf& scale() const { return scale_; }
  // INVALID_ARGUMENT unless both have input_dim finite entries.
  absl::Status SetStandardization(Eigen::VectorXf shift, Eigen::VectorXf scale);
  // INVALID_ARGUMENT unless the size is num_params() and all are finite.
  absl::Status SetParams(Eigen::VectorXf params);

  // Scores the n rows of `x` (row-major n x input_dim; the caller checks the
  // size) into out[0..n). Keeps the activations in `ws` for Backward.
  void Forward(const float* x, int n, RankerWorkspace* ws, float* out) const;
  // Adds dL/dparams to *grad (size num_params()) given dL/dscore of the
  // rows of the last Forward on `ws`.
  void Backward(RankerWorkspace* ws, const float* dscore,
                Eigen::VectorXf* grad) const;

 private:
  RankerNet(int input_dim, std::vector<int> hidden);
  int input_dim_ = 0;
  std::vector<int> hidden_;
  // Offsets into params_: weight and bias of layer l (the last is output).
  std::vector<size_t> w_off_, b_off_;
  std::vector<int> in_, out_;
  Eigen::VectorXf params_, shift_, scale_;
};

// Per-feature standardisation from `n` rows: shift = mean, scale = 1/std
// (1 for a constant feature). Rows are row-major n x dim.
void ComputeStandardization(const float* x, size_t n, int dim,
                            Eigen::VectorXf* shift, Eigen::VectorXf* scale);

// Rescales g so that its L2 norm is at most max_norm (no-op when
// max_norm <= 0). Returns the norm before clipping.
double ClipGlobalNorm(Eigen::VectorXf* g, double max_norm);

// Adagrad as in TensorFlow (accumulator starts at `initial_accumulator`).
class Adagrad {
 public:
  Adagrad(size_t n, double lr, double initial_accumulator = 0.1)
      : lr_(lr), acc_(Eigen::VectorXf::Constant(n, initial_accumulator)) {}
  void Step(Eigen::VectorXf* params, const Eigen::VectorXf& grad);

 private:
  float lr_;
  Eigen::VectorXf acc_;
};

// Adam (Kingma & Ba) with the usual bias correction.
class Adam {
 public:
  Adam(size_t n, double lr, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8)
      : lr_(lr), b1_(beta1), b2_(beta2), eps_(eps),
        m_(Eigen::VectorXf::Zero(n)), v_(Eigen::VectorXf::Zero(n)) {}
  void Step(Eigen::VectorXf* params, const Eigen::VectorXf& grad);

 private:
  double lr_, b1_, b2_, eps_;
  Eigen::VectorXf m_, v_;
  int64_t t_ = 0;
};

enum class OptimizerKind { kAdagrad, kAdam };

// One optimiser of either kind behind one Step().
class Optimizer {
 public:
  Optimizer(OptimizerKind kind, size_t n, double lr)
      : kind_(kind), adagrad_(kind == OptimizerKind::kAdagrad ? n : 0, lr),
        adam_(kind == OptimizerKind::kAdam ? n : 0, lr) {}
  void Step(Eigen::VectorXf* params, const Eigen::VectorXf& grad) {
    if (kind_ == OptimizerKind::kAdagrad) {
      adagrad_.Step(params, grad);
    } else {
      adam_.Step(params, grad);
    }
  }

 private:
  OptimizerKind kind_;
  Adagrad adagrad_;
  Adam adam_;
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_RANKER_NET_H_
