#include "core/models/ranker_net.h"

#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace debias::models {
namespace {

// Same doubles with any standard library (unlike uniform_real_distribution).
double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

void Resize(RankerMatrix* m, int rows, int cols) {
  if (m->rows() != rows || m->cols() != cols) m->resize(rows, cols);
}

}  // namespace

RankerNet::RankerNet(int input_dim, std::vector<int> hidden)
    : input_dim_(input_dim), hidden_(std::move(hidden)) {
  size_t off = 0;
  int in = input_dim_;
  std::vector<int> outs = hidden_;
  outs.push_back(1);
  for (int out : outs) {
    in_.push_back(in);
    out_.push_back(out);
    w_off_.push_back(off);
    off += static_cast<size_t>(in) * out;
    b_off_.push_back(off);
    off += out;
    in = out;
  }
  params_ = Eigen::VectorXf::Zero(off);
  shift_ = Eigen::VectorXf::Zero(input_dim_);
  scale_ = Eigen::VectorXf::Ones(input_dim_);
}

absl::StatusOr<RankerNet> RankerNet::Create(int input_dim,
                                            std::vector<int> hidden) {
  if (input_dim < 1 || input_dim > kMaxInputDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feature_dim=", input_dim, ": feature_dim must be in [1, ",
        kMaxInputDim, "]"));
  }
  if (hidden.size() > kMaxHiddenLayers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hidden: ", hidden.size(), " layers; at most ", kMaxHiddenLayers));
  }
  for (int h : hidden) {
    if (h < 1 || h > kMaxUnits) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hidden: layer size ", h, " must be in [1, ", kMaxUnits, "]"));
    }
  }
  return RankerNet(input_dim, std::move(hidden));
}

void RankerNet::InitRandom(uint64_t seed) {
  std::mt19937_64 rng(seed);
  params_.setZero();
  for (size_t l = 0; l < in_.size(); ++l) {
    double a = std::sqrt(6.0 / (in_[l] + out_[l]));
    if (l + 1 == in_.size()) a *= 0.1;
    const size_t n = static_cast<size_t>(in_[l]) * out_[l];
    for (size_t k = 0; k < n; ++k) {
      params_[w_off_[l] + k] = static_cast<float>((2.0 * Uniform01(rng) - 1.0) * a);
    }
  }
}

absl::Status RankerNet::SetStandardization(Eigen::VectorXf shift,
                                           Eigen::VectorXf scale) {
  if (shift.size() != input_dim_ || scale.size() != input_dim_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "standardisation: shift/scale sizes ", shift.size(), "/", scale.size(),
        " must equal feature_dim ", input_dim_));
  }
  if (!shift.allFinite() || !scale.allFinite()) {
    return absl::InvalidArgumentError("standardisation: non-finite entry");
  }
  shift_ = std::move(shift);
  scale_ = std::move(scale);
  return absl::OkStatus();
}

absl::Status RankerNet::SetParams(Eigen::VectorXf params) {
  if (params.size() != params_.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "params: size ", params.size(), " != ", params_.size()));
  }
  if (!params.allFinite()) {
    return absl::InvalidArgumentError("params: non-finite entry");
  }
  params_ = std::move(params);
  return absl::OkStatus();
}

void RankerNet::Forward(const float* x, int n, RankerWorkspace* ws,
                        float* out) const {
  const size_t layers = in_.size();
  ws->h.resize(layers);
  ws->z.resize(layers - 1);
  ws->n = n;
  Resize(&ws->h[0], n, input_dim_);
  Eigen::Map<const RankerMatrix> xin(x, n, input_dim_);
  ws->h[0].noalias() =
      ((xin.rowwise() - shift_.transpose()).array().rowwise() *
       scale_.transpose().array())
          .matrix();
  for (size_t l = 0; l + 1 < layers; ++l) {
    Eigen::Map<const RankerMatrix> w(params_.data() + w_off_[l], in_[l], out_[l]);
    Eigen::Map<const Eigen::RowVectorXf> b(params_.data() + b_off_[l], out_[l]);
    Resize(&ws->z[l], n, out_[l]);
    ws->z[l].noalias() = ws->h[l] * w;
    ws->z[l].rowwise() += b;
    Resize(&ws->h[l + 1], n, out_[l]);
    // Vectorised ELU; exp(min(z, 0)) - 1 keeps the unused branch finite.
    ws->h[l + 1].array() =
        (ws->z[l].array() > 0.0f)
            .select(ws->z[l].array(), ws->z[l].array().min(0.0f).exp() - 1.0f);
  }
  const size_t L = layers - 1;
  Eigen::Map<const Eigen::VectorXf> w(params_.data() + w_off_[L], in_[L]);
  const float b = params_[b_off_[L]];
  Eigen::Map<Eigen::VectorXf> o(out, n);
  o.noalias() = ws->h[L] * w;
  o.array() += b;
}

void RankerNet::Backward(RankerWorkspace* ws, const float* dscore,
                         Eigen::VectorXf* grad) const {
  const int n = ws->n;
  const size_t L = in_.size() - 1;
  Eigen::Map<const Eigen::VectorXf> ds(dscore, n);
  {
    Eigen::Map<Eigen::VectorXf> gw(grad->data() + w_off_[L], in_[L]);
    gw.noalias() += ws->h[L].transpose() * ds;
    (*grad)[b_off_[L]] += ds.sum();
  }
  if (L == 0) return;
  Eigen::Map<const Eigen::RowVectorXf> wout(params_.data() + w_off_[L], in_[L]);
  Resize(&ws->dh, n, in_[L]);
  ws->dh.noalias() = ds * wout;
  for (size_t l = L; l-- > 0;) {
    // ELU'(z) = 1 for z > 0, else exp(z) = h + 1.
    Resize(&ws->dz, n, out_[l]);
    ws->dz = (ws->z[l].array() > 0.0f)
                 .select(ws->dh.array(), ws->dh.array() * (ws->h[l + 1].array() + 1.0f))
                 .matrix();
    Eigen::Map<RankerMatrix> gw(grad->data() + w_off_[l], in_[l], out_[l]);
    gw.noalias() += ws->h[l].transpose() * ws->dz;
    Eigen::Map<Eigen::RowVectorXf> gb(grad->data() + b_off_[l], out_[l]);
    gb += ws->dz.colwise().sum();
    if (l > 0) {
      Eigen::Map<const RankerMatrix> w(params_.data() + w_off_[l], in_[l], out_[l]);
      ws->dh.resize(n, in_[l]);
      ws->dh.noalias() = ws->dz * w.transpose();
    }
  }
}

void ComputeStandardization(const float* x, size_t n, int dim,
                            Eigen::VectorXf* shift, Eigen::VectorXf* scale) {
  Eigen::VectorXd sum = Eigen::VectorXd::Zero(dim), sq = Eigen::VectorXd::Zero(dim);
  for (size_t r = 0; r < n; ++r) {
    Eigen::Map<const Eigen::VectorXf> row(x + r * dim, dim);
    const Eigen::VectorXd d = row.cast<double>();
    sum += d;
    sq += d.cwiseProduct(d);
  }
  shift->resize(dim);
  scale->resize(dim);
  for (int j = 0; j < dim; ++j) {
    const double mean = n > 0 ? sum[j] / n : 0.0;
    const double var = n > 0 ? std::max(0.0, sq[j] / n - mean * mean) : 0.0;
    (*shift)[j] = static_cast<float>(mean);
    (*scale)[j] = var > 1e-12 ? static_cast<float>(1.0 / std::sqrt(var)) : 1.0f;
  }
}

double ClipGlobalNorm(Eigen::VectorXf* g, double max_norm) {
  const double norm = g->cast<double>().norm();
  if (max_norm > 0 && norm > max_norm) *g *= static_cast<float>(max_norm / norm);
  return norm;
}

void Adagrad::Step(Eigen::VectorXf* params, const Eigen::VectorXf& grad) {
  acc_.array() += grad.array().square();
  params->array() -= lr_ * grad.array() / acc_.array().sqrt();
}

void Adam::Step(Eigen::VectorXf* params, const Eigen::VectorXf& grad) {
  ++t_;
  const float b1 = static_cast<float>(b1_), b2 = static_cast<float>(b2_);
  m_ = b1 * m_ + (1.0f - b1) * grad;
  v_ = b2 * v_ + (1.0f - b2) * grad.cwiseProduct(grad);
  const double c1 = 1.0 - std::pow(b1_, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(b2_, static_cast<double>(t_));
  const float step = static_cast<float>(lr_ * std::sqrt(c2) / c1);
  params->array() -= step * m_.array() / (v_.array().sqrt() + static_cast<float>(eps_));
}

}  // namespace debias::models
