#include "core/propensity/kernel_balance.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace debias::propensity {

absl::StatusOr<KernelType> ParseKernelType(std::string_view name) {
  if (name == "gaussian" || name == "gau") return KernelType::kGaussian;
  if (name == "exponential" || name == "exp") return KernelType::kExponential;
  return absl::InvalidArgumentError(
      absl::StrCat("kernel='", std::string(name),
                   "': must be one of gaussian, exponential (or gau, exp)"));
}

std::string_view KernelTypeName(KernelType k) {
  return k == KernelType::kGaussian ? "gaussian" : "exponential";
}

absl::StatusOr<KernelNorm> ParseKernelNorm(std::string_view name) {
  if (name == "global") return KernelNorm::kGlobal;
  if (name == "reference" || name == "reference-bug") {
    return KernelNorm::kReferenceBug;
  }
  if (name == "none") return KernelNorm::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("norm='", std::string(name),
                   "': must be one of global, reference, none"));
}

std::string_view KernelNormName(KernelNorm n) {
  switch (n) {
    case KernelNorm::kGlobal: return "global";
    case KernelNorm::kReferenceBug: return "reference";
    case KernelNorm::kNone: return "none";
  }
  return "unknown";
}

absl::Status ValidateKernelPoints(const KernelMatrixF& x, std::string_view what) {
  const float* p = x.data();
  for (Eigen::Index k = 0; k < x.size(); ++k) {
    if (!std::isfinite(p[k]) || std::fabs(p[k]) > kMaxAbsKernelFeature) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(what), "[", k / std::max<Eigen::Index>(1, x.cols()), ",",
          k % std::max<Eigen::Index>(1, x.cols()), "]=", p[k],
          ": kernel features must be finite with |x| <= 1e15"));
    }
  }
  return absl::OkStatus();
}

void KernelMatrixUnchecked(const KernelMatrixF& x, const KernelMatrixF& y,
                           KernelType type, float bandwidth,
                           KernelMatrixF* out) {
  if (out->rows() != x.rows() || out->cols() != y.rows()) {
    out->resize(x.rows(), y.rows());
  }
  if (x.rows() == 0 || y.rows() == 0) return;
  out->noalias() = x * y.transpose();
  const Eigen::VectorXf xn = x.rowwise().squaredNorm();
  const Eigen::RowVectorXf yn = y.rowwise().squaredNorm().transpose();
  // d2 = xn + yn - 2 xy, clamped at 0 against cancellation; row by row so
  // that every expression is a plain contiguous one Eigen vectorises
  // (including its packet exp; a replicate() expression falls back to scalar
  // expf).
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    out->row(r).array() =
        (out->row(r).array() * -2.0f + yn.array() + xn[r]).max(0.0f);
  }
  Eigen::Map<Eigen::ArrayXf> flat(out->data(), out->size());
  if (type == KernelType::kExponential) flat = flat.sqrt();
  flat = (flat * -bandwidth).exp();
}

absl::Status KernelMatrix(const KernelMatrixF& x, const KernelMatrixF& y,
                          KernelType type, float bandwidth, KernelMatrixF* out) {
  if (out == nullptr) return absl::InvalidArgumentError("out: must not be null");
  if (x.cols() != y.cols()) {
    return absl::InvalidArgumentError(
        absl::StrCat("x has ", x.cols(), " columns, y has ", y.cols(),
                     ": point sets must have the same dimension"));
  }
  if (!std::isfinite(bandwidth) || bandwidth <= 0.0f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bandwidth=", bandwidth, ": must be finite and > 0"));
  }
  if (auto s = ValidateKernelPoints(x, "x"); !s.ok()) return s;
  if (auto s = ValidateKernelPoints(y, "y"); !s.ok()) return s;
  KernelMatrixUnchecked(x, y, type, bandwidth, out);
  return absl::OkStatus();
}

absl::Status NormalizeColumnsMinMax(KernelMatrixF* table, float scale) {
  if (table == nullptr) return absl::InvalidArgumentError("table: must not be null");
  if (!std::isfinite(scale) || scale <= 0.0f || scale > 1e6f) {
    return absl::InvalidArgumentError(
        absl::StrCat("scale=", scale, ": must be in (0, 1e6]"));
  }
  for (Eigen::Index k = 0; k < table->size(); ++k) {
    if (!std::isfinite(table->data()[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature table entry ", k, " is not finite"));
    }
  }
  if (table->rows() == 0) return absl::OkStatus();
  for (Eigen::Index c = 0; c < table->cols(); ++c) {
    const double lo = table->col(c).minCoeff();
    const double hi = table->col(c).maxCoeff();
    const double range = hi - lo;
    for (Eigen::Index r = 0; r < table->rows(); ++r) {
      const double v = range > 0.0 ? ((*table)(r, c) - lo) / range : 0.0;
      (*table)(r, c) = static_cast<float>(v * scale);
    }
  }
  return absl::OkStatus();
}

void ReferenceBugNormalize(KernelMatrixF* set, float divisor) {
  if (set->size() == 0) return;
  const float lo = set->minCoeff();
  const float hi = set->maxCoeff();
  // The reference computes phi - f_min / (f_max - f_min): a shift.
  const float shift = hi > lo ? lo / (hi - lo) : 0.0f;
  set->array() = (set->array() - shift) / divisor;
}

namespace {

absl::Status CheckBalanceShapes(const KernelMatrixF& k_obs,
                                const KernelMatrixF& k_all, size_t w_size) {
  if (k_obs.cols() != k_all.cols() || k_obs.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "k_obs has ", k_obs.cols(), " centres and k_all ", k_all.cols(),
        ": both need the same number J >= 1"));
  }
  if (static_cast<size_t>(k_obs.rows()) != w_size || w_size == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("k_obs has ", k_obs.rows(), " rows but w has ", w_size,
                     " entries: need one weight per observed point, >= 1"));
  }
  if (k_all.rows() == 0) {
    return absl::InvalidArgumentError("k_all: needs at least one sampled point");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BalanceTerms> ComputeBalance(const KernelMatrixF& k_obs,
                                            const KernelMatrixF& k_all,
                                            std::span<const float> w,
                                            double margin) {
  if (auto s = CheckBalanceShapes(k_obs, k_all, w.size()); !s.ok()) return s;
  if (!std::isfinite(margin) || margin < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("margin=", margin, ": must be finite and >= 0"));
  }
  for (size_t o = 0; o < w.size(); ++o) {
    if (!std::isfinite(w[o])) {
      return absl::InvalidArgumentError(
          absl::StrCat("w[", o, "]=", w[o], ": weights must be finite"));
    }
  }
  BalanceTerms t;
  const Eigen::Map<const Eigen::VectorXf> wv(w.data(), w.size());
  t.h_all = k_all.cast<double>().colwise().mean().transpose();
  t.h_obs = (k_obs.cast<double>().transpose() * wv.cast<double>()) /
            static_cast<double>(w.size());
  t.gap_sum = (t.h_all - t.h_obs).sum();
  t.hinge = std::max(0.0, t.gap_sum - margin) + std::max(0.0, -t.gap_sum - margin);
  return t;
}

absl::StatusOr<BalanceObjective> BalanceLossAndGrad(
    const KernelMatrixF& k_obs, const KernelMatrixF& k_all,
    std::span<const float> log_w, double penalty, double margin,
    Eigen::VectorXf* grad_log_w) {
  if (auto s = CheckBalanceShapes(k_obs, k_all, log_w.size()); !s.ok()) return s;
  if (!std::isfinite(penalty) || penalty < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("penalty=", penalty, ": must be finite and >= 0"));
  }
  if (!std::isfinite(margin) || margin < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("margin=", margin, ": must be finite and >= 0"));
  }
  if (grad_log_w == nullptr) {
    return absl::InvalidArgumentError("grad_log_w: must not be null");
  }
  const size_t b = log_w.size();
  const double inv_b = 1.0 / static_cast<double>(b);
  grad_log_w->resize(b);
  BalanceObjective obj;
  // Row sums of k_obs: d(sum_j h_obs_j)/dw_o = rowsum_o / B.
  double h_all_sum = 0.0;
  for (Eigen::Index j = 0; j < k_all.cols(); ++j) {
    h_all_sum += k_all.col(j).cast<double>().mean();
  }
  double h_obs_sum = 0.0;
  double entropy = 0.0;
  for (size_t o = 0; o < b; ++o) {
    if (std::isnan(log_w[o])) {
      return absl::InvalidArgumentError(
          absl::StrCat("log_w[", o, "] is NaN"));
    }
    const double l = std::clamp<double>(log_w[o], -kMaxLogWeight, kMaxLogWeight);
    const double w = std::exp(l);  // in [e^-80, e^80]: finite
    entropy += w * l;
    h_obs_sum += w * k_obs.row(o).cast<double>().sum();
  }
  h_obs_sum *= inv_b;
  obj.entropy = entropy * inv_b;
  obj.gap_sum = h_all_sum - h_obs_sum;
  const bool over = obj.gap_sum - margin > 0;    // h_all above h_obs
  const bool under = -obj.gap_sum - margin > 0;  // h_obs above h_all
  obj.hinge = std::max(0.0, obj.gap_sum - margin) +
              std::max(0.0, -obj.gap_sum - margin);
  obj.loss = obj.entropy + penalty * obj.hinge;
  // dhinge/dh_obs_sum: -1 when over, +1 when under.
  const double dh = over ? -1.0 : (under ? 1.0 : 0.0);
  for (size_t o = 0; o < b; ++o) {
    const bool clamped = std::fabs(static_cast<double>(log_w[o])) > kMaxLogWeight;
    const double l = std::clamp<double>(log_w[o], -kMaxLogWeight, kMaxLogWeight);
    const double w = std::exp(l);
    // d(w l)/dl = w (l + 1); d(h_obs_sum)/dl_o = w rowsum_o / B.
    double g = inv_b * w * (l + 1.0) +
               penalty * dh * inv_b * w * k_obs.row(o).cast<double>().sum();
    if (clamped) g = 0.0;  // flat beyond the clamp
    (*grad_log_w)[o] = static_cast<float>(g);
  }
  return obj;
}

nlohmann::json SummarizeWeights(std::span<const float> w) {
  std::vector<float> v;
  v.reserve(w.size());
  size_t non_finite = 0;
  for (float x : w) {
    if (std::isfinite(x)) {
      v.push_back(x);
    } else {
      ++non_finite;
    }
  }
  nlohmann::json j;
  j["n"] = v.size();
  if (non_finite > 0) j["non_finite"] = non_finite;
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  double sum = 0.0, sum2 = 0.0;
  for (float x : v) {
    sum += x;
    sum2 += static_cast<double>(x) * x;
  }
  auto q = [&](double p) {
    const double pos = p * (v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
  };
  j["mean"] = sum / v.size();
  j["min"] = v.front();
  j["max"] = v.back();
  j["quantiles"] = {{"p01", q(0.01)}, {"p05", q(0.05)}, {"p25", q(0.25)},
                    {"p50", q(0.50)}, {"p75", q(0.75)}, {"p95", q(0.95)},
                    {"p99", q(0.99)}};
  const double ess = sum2 > 0.0 ? sum * sum / sum2 : 0.0;
  j["ess"] = ess;
  j["ess_fraction"] = ess / v.size();
  return j;
}

}  // namespace debias::propensity
