#include "core/models/nbpo_trainer.h"

#include "core/models/trainer_params.h"
#include "core/util/status_macros.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/models/nbpo_mf_model.h"
#include "core/samplers/nbpo_sampler.h"

namespace debias::models {
namespace {

// The reference's sigmoid: exactly 0 / 1 outside [-10, 10].
inline float HardSigmoid(float z) {
  if (z > 10.0f) return 1.0f;
  if (z < -10.0f) return 0.0f;
  return 1.0f / (1.0f + std::exp(-z));
}
inline double HardSigmoidD(double z) {
  if (z > 10.0) return 1.0;
  if (z < -10.0) return 0.0;
  return 1.0 / (1.0 + std::exp(-z));
}
inline double SafeLog(double v) { return std::log(std::max(v, 1e-30)); }

constexpr double kZEpsilon = 1e-10;

// Hand-vectorised kernels: 8-lane GCC vector extensions, so the same lane
// order (hence the same float results) in the AVX2 clone and in the SSE2
// default clone of the accumulation loop below (no FMA contraction).
// The helpers are always inlined, so the vector-ABI note (-Wpsabi) is moot.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float V8 __attribute__((vector_size(32)));

[[gnu::always_inline]] inline V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
[[gnu::always_inline]] inline void Store8(float* p, V8 v) {
  std::memcpy(p, &v, sizeof(v));
}
[[gnu::always_inline]] inline float Dot(const float* a, const float* b, int n) {
  V8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  int k = 0;
  for (; k + 8 <= n; k += 8) acc += Load8(a + k) * Load8(b + k);
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
            ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}
[[gnu::always_inline]] inline void Axpy(float a, const float* x, float* y,
                                        int n) {
  const V8 av = {a, a, a, a, a, a, a, a};
  int k = 0;
  for (; k + 8 <= n; k += 8) Store8(y + k, Load8(y + k) + av * Load8(x + k));
  for (; k < n; ++k) y[k] += a * x[k];
}
#pragma GCC diagnostic pop

// Objective of one term (double precision, as the kernel's coefficients).
struct TermValue {
  double x, gamma;
};

double PositiveTermObjective(NbpoLoss loss, double r, double g) {
  switch (loss) {
    case NbpoLoss::kBpo: return SafeLog(r);
    case NbpoLoss::kNbpoo: return SafeLog(r * (1.0 - g));
    case NbpoLoss::kNbpo: return (1.0 - g) * SafeLog(r) + r * SafeLog(1.0 - g);
    case NbpoLoss::kBpr: return 0.0;
  }
  return 0.0;
}
double NegativeTermObjective(NbpoLoss loss, double r, double g) {
  switch (loss) {
    case NbpoLoss::kBpo: return SafeLog(1.0 - r);
    case NbpoLoss::kNbpoo: return std::log((1.0 - r) + g * r + kZEpsilon);
    case NbpoLoss::kNbpo:
      return g * SafeLog(r) + r * SafeLog(g) + SafeLog(1.0 - r);
    case NbpoLoss::kBpr: return 0.0;
  }
  return 0.0;
}

// (Dx, Dg) of a positive and of a negative term (the table in the header).
inline void PositiveCoefficients(NbpoLoss loss, float r, float g, float* dx,
                                 float* dg) {
  switch (loss) {
    case NbpoLoss::kBpo: *dx = 1.0f - r; *dg = 0.0f; return;
    case NbpoLoss::kNbpoo: *dx = 1.0f - r; *dg = -g; return;
    case NbpoLoss::kNbpo: *dx = (1.0f - g) * (1.0f - r); *dg = -g * r; return;
    case NbpoLoss::kBpr: *dx = 0.0f; *dg = 0.0f; return;
  }
}
inline void NegativeCoefficients(NbpoLoss loss, float r, float g, float* dx,
                                 float* dg) {
  switch (loss) {
    case NbpoLoss::kBpo: *dx = -r; *dg = 0.0f; return;
    case NbpoLoss::kNbpoo: {
      const float inv_z =
          1.0f / static_cast<float>((1.0 - r) + g * r + kZEpsilon);
      *dx = (g - 1.0f) * r * (1.0f - r) * inv_z;
      *dg = g * (1.0f - g) * r * inv_z;
      return;
    }
    case NbpoLoss::kNbpo: *dx = g * (1.0f - r) - r; *dg = (1.0f - g) * r; return;
    case NbpoLoss::kBpr: *dx = 0.0f; *dg = 0.0f; return;
  }
}

// One ifunc-dispatched copy per ISA; the rest of the library stays generic.
__attribute__((target_clones("avx2", "default"))) double Accumulate(
    NbpoLoss loss, const NbpoParams& p, const NbpoBlock& b, NbpoParams* grad,
    bool kWantObjective) {
  const int d = static_cast<int>(p.U.cols());
  const int fd = static_cast<int>(p.P.cols());
  const bool flip = HasFlipModel(loss);
  const int s = b.sample_rate;
  const float* U = p.U.data();
  const float* V = p.V.data();
  const float* P = flip ? p.P.data() : nullptr;
  const float* Q = flip ? p.Q.data() : nullptr;
  float* gU = grad->U.data();
  float* gV = grad->V.data();
  float* gP = flip ? grad->P.data() : nullptr;
  float* gQ = flip ? grad->Q.data() : nullptr;
  double obj = 0.0;
  for (size_t t = 0; t < b.users.size(); ++t) {
    const size_t u = b.users[t], i = b.pos_items[t];
    const float* Uu = U + u * d;
    const float* Vi = V + i * d;
    float* gUu = gU + u * d;
    float* gVi = gV + i * d;
    const uint32_t* negs = b.neg_items.data() + t * s;
    const float xi = Dot(Uu, Vi, d);
    if (loss == NbpoLoss::kBpr) {
      float csum = 0.0f;
      for (int k = 0; k < s; ++k) {
        const size_t j = negs[k];
        const float* Vj = V + j * d;
        const float xj = Dot(Uu, Vj, d);
        const float c = HardSigmoid(xj - xi);
        if (kWantObjective) {
          obj += SafeLog(HardSigmoidD(static_cast<double>(xi) - xj));
        }
        csum += c;
        Axpy(-c, Vj, gUu, d);
        Axpy(-c, Uu, gV + j * d, d);
      }
      Axpy(csum, Vi, gUu, d);
      Axpy(csum, Uu, gVi, d);
      continue;
    }
    const float* Pu = flip ? P + u * fd : nullptr;
    float* gPu = flip ? gP + u * fd : nullptr;
    float r = HardSigmoid(xi), g = 0.0f;
    if (flip) g = HardSigmoid(Dot(Pu, Q + i * fd, fd));
    float dx = 0.0f, dg = 0.0f;
    PositiveCoefficients(loss, r, g, &dx, &dg);
    // The positive term is counted once per negative (reference).
    Axpy(s * dx, Vi, gUu, d);
    Axpy(s * dx, Uu, gVi, d);
    if (flip) {
      Axpy(s * dg, Q + i * fd, gPu, fd);
      Axpy(s * dg, Pu, gQ + i * fd, fd);
    }
    if (kWantObjective) obj += s * PositiveTermObjective(loss, r, g);
    for (int k = 0; k < s; ++k) {
      const size_t j = negs[k];
      const float* Vj = V + j * d;
      r = HardSigmoid(Dot(Uu, Vj, d));
      if (flip) g = HardSigmoid(Dot(Pu, Q + j * fd, fd));
      NegativeCoefficients(loss, r, g, &dx, &dg);
      Axpy(dx, Vj, gUu, d);
      Axpy(dx, Uu, gV + j * d, d);
      if (flip) {
        Axpy(dg, Q + j * fd, gPu, fd);
        Axpy(dg, Pu, gQ + j * fd, fd);
      }
      if (kWantObjective) obj += NegativeTermObjective(loss, r, g);
    }
  }
  return obj;
}

// Shortest of %.15g / %.17g that reads back as the same double.
std::string FormatDouble(double v) {
  std::string s = absl::StrFormat("%.15g", v);
  if (std::strtod(s.c_str(), nullptr) != v) s = absl::StrFormat("%.17g", v);
  return s;
}

nlohmann::json Summary(std::vector<float> v) {
  nlohmann::json j = nlohmann::json::object();
  j["count"] = v.size();
  if (v.empty()) return j;
  std::sort(v.begin(), v.end());
  double sum = 0.0;
  for (float x : v) sum += x;
  j["mean"] = sum / v.size();
  nlohmann::json q = nlohmann::json::object();
  for (double p : {0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0}) {
    const size_t k = std::min(v.size() - 1,
                              static_cast<size_t>(p * (v.size() - 1) + 0.5));
    q[absl::StrCat("p", static_cast<int>(p * 100 + 0.5))] = v[k];
  }
  j["quantiles"] = q;
  return j;
}

}  // namespace

std::string_view NbpoLossName(NbpoLoss loss) {
  switch (loss) {
    case NbpoLoss::kBpr: return "bpr";
    case NbpoLoss::kBpo: return "bpo";
    case NbpoLoss::kNbpo: return "nbpo";
    case NbpoLoss::kNbpoo: return "nbpoo";
  }
  return "unknown";
}

NbpoOptions DefaultNbpoOptions(NbpoLoss loss) {
  // lr / lambda values: the reference's Amazon settings (its tuning on the
  // validation split). sample_rate and epochs: chosen on validation by
  // bench/fidelity/fidelity_nbpo.cc (docs/results/nbpo.md).
  NbpoOptions o;
  o.loss = loss;
  switch (loss) {
    case NbpoLoss::kBpr:
      o.lr = 0.05; o.lambda_r = 1.0; o.lambda_phi = 0.0; o.sample_rate = 3;
      break;
    case NbpoLoss::kBpo:
      o.lr = 0.05; o.lambda_r = 1.0; o.lambda_phi = 0.0; o.sample_rate = 3;
      break;
    case NbpoLoss::kNbpo:
      o.lr = 0.05; o.lambda_r = 1.0; o.lambda_phi = 5.0; o.sample_rate = 4;
      break;
    case NbpoLoss::kNbpoo:
      o.lr = 0.005; o.lambda_r = 1.0; o.lambda_phi = 0.5; o.sample_rate = 4;
      break;
  }
  return o;
}

absl::StatusOr<NbpoOptions> ParseNbpoOptions(
    NbpoLoss loss, const std::map<std::string, std::string>& params,
    uint64_t seed) {
  NbpoOptions o = DefaultNbpoOptions(loss);
  o.seed = seed;
  ParamReader p(params, std::string(NbpoLossName(loss)));
  auto read_int = [&](const std::string& key, int* field, int64_t lo, int64_t hi,
                      const std::string& doc) {
    auto v = p.Int(key, *field, lo, hi, doc);
    if (v.ok()) *field = static_cast<int>(*v);
    return v.status();
  };
  auto read_double = [&](const std::string& key, double* field, Range range,
                         const std::string& doc) {
    auto v = p.Double(key, *field, range, doc);
    if (v.ok()) *field = *v;
    return v.status();
  };
  RETURN_IF_ERROR(read_int("dim", &o.dim, 1, 1024, "latent factors"));
  if (HasFlipModel(loss)) {
    RETURN_IF_ERROR(read_int("flip_dim", &o.flip_dim, 1, 1024, "factors of the flip model"));
  }
  RETURN_IF_ERROR(read_double("lr", &o.lr, {0.0, 10.0, true}, "learning rate"));
  RETURN_IF_ERROR(read_double("lambda_r", &o.lambda_r, {0.0, 1e4}, "L2 penalty of the ranker"));
  if (HasFlipModel(loss)) {
    RETURN_IF_ERROR(read_double("lambda_phi", &o.lambda_phi, {0.0, 1e4},
                                "L2 penalty of the flip model"));
  }
  RETURN_IF_ERROR(read_int("epochs", &o.epochs, 1, 100000, "passes over the positives"));
  RETURN_IF_ERROR(read_int("batch_size", &o.batch_size, 1, 100000000, "samples per step"));
  RETURN_IF_ERROR(read_int("sample_rate", &o.sample_rate, 1, 1000,
                           "unobserved items sampled per positive"));
  RETURN_IF_ERROR(read_double("lr_decay", &o.lr_decay, {0.0, 1.0, true},
                              "learning-rate factor per epoch"));
  RETURN_IF_ERROR(p.Finish());
  return o;
}

std::map<std::string, std::string> ResolvedNbpoParams(const NbpoOptions& o) {
  std::map<std::string, std::string> m = {
      {"dim", absl::StrCat(o.dim)},
      {"lr", FormatDouble(o.lr)},
      {"lambda_r", FormatDouble(o.lambda_r)},
      {"epochs", absl::StrCat(o.epochs)},
      {"batch_size", absl::StrCat(o.batch_size)},
      {"sample_rate", absl::StrCat(o.sample_rate)},
      {"lr_decay", FormatDouble(o.lr_decay)},
      {"seed", absl::StrCat(o.seed)},
  };
  if (HasFlipModel(o.loss)) {
    m["flip_dim"] = absl::StrCat(o.flip_dim);
    m["lambda_phi"] = FormatDouble(o.lambda_phi);
  }
  return m;
}

double AccumulateNbpoGradient(NbpoLoss loss, const NbpoParams& params,
                              const NbpoBlock& block, NbpoParams* grad) {
  return Accumulate(loss, params, block, grad, true);
}

double NbpoObjective(NbpoLoss loss, const NbpoParams& p,
                     const NbpoBlock& b) {
  const bool flip = HasFlipModel(loss);
  const int s = b.sample_rate;
  double obj = 0.0;
  auto dot = [](const RowMatrix& a, size_t r, const RowMatrix& c, size_t q) {
    double v = 0.0;
    for (Eigen::Index k = 0; k < a.cols(); ++k) {
      v += static_cast<double>(a(r, k)) * c(q, k);
    }
    return v;
  };
  for (size_t t = 0; t < b.users.size(); ++t) {
    const size_t u = b.users[t], i = b.pos_items[t];
    const double xi = dot(p.U, u, p.V, i);
    const double gi = flip ? HardSigmoidD(dot(p.P, u, p.Q, i)) : 0.0;
    if (loss != NbpoLoss::kBpr) {
      obj += s * PositiveTermObjective(loss, HardSigmoidD(xi), gi);
    }
    for (int k = 0; k < s; ++k) {
      const size_t j = b.neg_items[t * s + k];
      const double xj = dot(p.U, u, p.V, j);
      if (loss == NbpoLoss::kBpr) {
        obj += SafeLog(HardSigmoidD(xi - xj));
        continue;
      }
      const double gj = flip ? HardSigmoidD(dot(p.P, u, p.Q, j)) : 0.0;
      obj += NegativeTermObjective(loss, HardSigmoidD(xj), gj);
    }
  }
  return obj;
}

absl::StatusOr<std::unique_ptr<NbpoTrainer>> NbpoTrainer::Create(
    const data::DatasetView& train, const NbpoOptions& o) {
  // Re-validate through the parser's ranges so that direct callers get the
  // same errors as spec.params.
  std::map<std::string, std::string> as_params = ResolvedNbpoParams(o);
  as_params.erase("seed");
  if (auto parsed = ParseNbpoOptions(o.loss, as_params, o.seed); !parsed.ok()) {
    return parsed.status();
  }
  if (train.num_users() == 0 || train.num_items() == 0) {
    return absl::FailedPreconditionError("training view has no users or items");
  }
  auto t = std::unique_ptr<NbpoTrainer>(new NbpoTrainer(o));
  t->sampler_ = samplers::MakeUniformSampler(train);
  const samplers::PositiveIndex& pos = t->sampler_->positives();
  for (uint32_t u = 0; u < train.num_users(); ++u) {
    const bool has_negative = pos.Of(u).size() < train.num_items();
    const auto [b, e] = train.UserRange(u);
    for (uint64_t k = b; k < e; ++k) {
      if (!(train.label[k] > 0.0f)) continue;
      if (!has_negative) {
        ++t->skipped_;
        continue;
      }
      t->users_.push_back(u);
      t->items_.push_back(train.item[k]);
    }
  }
  if (t->users_.empty()) {
    return absl::FailedPreconditionError(
        "no trainable positive: no event with label > 0 whose user has a "
        "non-positive item");
  }
  t->negs_.resize(t->users_.size() * static_cast<size_t>(o.sample_rate));
  const size_t nu = train.num_users(), ni = train.num_items();
  auto init = [&](RowMatrix* m, size_t rows, int cols, float scale) {
    m->resize(rows, cols);
    float* p = m->data();
    for (Eigen::Index k = 0; k < m->size(); ++k) {
      p[k] = scale * samplers::UniformUnitFloat(t->rng_);
    }
  };
  const float s0 = 1.0f / std::sqrt(static_cast<float>(o.dim));
  init(&t->params_.U, nu, o.dim, s0);
  init(&t->params_.V, ni, o.dim, s0);
  t->grad_.U.resize(nu, o.dim);
  t->grad_.V.resize(ni, o.dim);
  if (HasFlipModel(o.loss)) {
    const float s1 = 1.0f / std::sqrt(static_cast<float>(o.flip_dim));
    init(&t->params_.P, nu, o.flip_dim, 5.0f * s1);
    init(&t->params_.Q, ni, o.flip_dim, -5.0f * s1);
    t->grad_.P.resize(nu, o.flip_dim);
    t->grad_.Q.resize(ni, o.flip_dim);
  }
  t->lr_ = o.lr;
  return t;
}

absl::StatusOr<double> NbpoTrainer::RunEpoch(const train::TrainContext* ctx,
                                              bool compute_objective) {
  lr_ *= o_.lr_decay;
  const int s = o_.sample_rate;
  for (size_t t = 0; t < users_.size(); ++t) {
    absl::Status st = sampler_->Sample(
        users_[t], std::span<uint32_t>(negs_.data() + t * s, s), rng_);
    if (!st.ok()) return absl::InternalError(st.message());  // excluded above
  }
  const bool flip = HasFlipModel(o_.loss);
  const float lr = static_cast<float>(lr_);
  const float decay_r = static_cast<float>(1.0 - lr_ * o_.lambda_r);
  const float decay_phi = static_cast<float>(1.0 - lr_ * o_.lambda_phi);
  double obj = 0.0;
  const size_t n = users_.size();
  for (size_t b = 0; b < n; b += o_.batch_size) {
    if (ctx != nullptr && ctx->IsCancelled()) {
      return absl::CancelledError("training cancelled");
    }
    const size_t e = std::min(n, b + static_cast<size_t>(o_.batch_size));
    grad_.U.setZero();
    grad_.V.setZero();
    if (flip) {
      grad_.P.setZero();
      grad_.Q.setZero();
    }
    NbpoBlock block{std::span<const uint32_t>(users_.data() + b, e - b),
                    std::span<const uint32_t>(items_.data() + b, e - b),
                    std::span<const uint32_t>(negs_.data() + b * s, (e - b) * s),
                    s};
    obj += compute_objective ? Accumulate(o_.loss, params_, block, &grad_, true)
                             : Accumulate(o_.loss, params_, block, &grad_, false);
    // x <- x + lr (dx - lambda x), on the full matrices (reference).
    params_.U = decay_r * params_.U + lr * grad_.U;
    params_.V = decay_r * params_.V + lr * grad_.V;
    if (flip) {
      params_.P = decay_phi * params_.P + lr * grad_.P;
      params_.Q = decay_phi * params_.Q + lr * grad_.Q;
    }
  }
  ++epoch_;
  const double sum_u = params_.U.sum();
  if (!std::isfinite(sum_u) || std::abs(sum_u) >= 1e10 ||
      !std::isfinite(params_.V.sum()) ||
      (flip && (!std::isfinite(params_.P.sum()) ||
                !std::isfinite(params_.Q.sum())))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "training diverged at epoch ", epoch_, " (sum of user factors ", sum_u,
        "); lower lr (lr=", o_.lr, ")"));
  }
  return obj / static_cast<double>(n * s + (o_.loss == NbpoLoss::kBpr ? 0 : n));
}

absl::StatusOr<std::unique_ptr<Model>> NbpoTrainer::MakeModel() const {
  if (!HasFlipModel(o_.loss)) {
    MfParams p;
    p.user_factors = params_.U;
    p.item_factors = params_.V;
    auto m = MfModel::Create(std::move(p));
    if (!m.ok()) return m.status();
    return std::unique_ptr<Model>(std::move(*m));
  }
  samplers::NbpoFactors f{params_.U, params_.V, params_.P, params_.Q};
  auto m = NbpoMfModel::Create(std::move(f));
  if (!m.ok()) return m.status();
  return std::unique_ptr<Model>(std::move(*m));
}

nlohmann::json NbpoTrainer::FlipDiagnostics() const {
  if (!HasFlipModel(o_.loss)) return nlohmann::json::object();
  samplers::NbpoFactors f{params_.U, params_.V, params_.P, params_.Q};
  auto g_of = [&](size_t u, size_t i) {
    return static_cast<float>(
        HardSigmoidD(params_.P.row(u).dot(params_.Q.row(i))));
  };
  std::vector<float> g_train(users_.size());
  for (size_t t = 0; t < users_.size(); ++t) g_train[t] = g_of(users_[t], items_[t]);
  // A fixed sample of unobserved pairs (positive-proportional users, uniform
  // negatives) to compare against.
  samplers::Rng rng(o_.seed ^ 0x9e3779b97f4a7c15ull);
  const size_t m = std::min<size_t>(20000, users_.size() * 4);
  std::vector<float> g_unobs, p_true_neg;
  g_unobs.reserve(m);
  p_true_neg.reserve(m);
  for (size_t k = 0; k < m; ++k) {
    const uint32_t u = users_[samplers::UniformBelow(rng, users_.size())];
    uint32_t j;
    if (!sampler_->Sample(u, std::span<uint32_t>(&j, 1), rng).ok()) continue;
    g_unobs.push_back(g_of(u, j));
    p_true_neg.push_back(
        static_cast<float>(samplers::NbpoTrueNegativeProbability(f, u, j)));
  }
  nlohmann::json j;
  j["g_train_pairs"] = Summary(std::move(g_train));
  j["g_unobserved_sample"] = Summary(std::move(g_unobs));
  j["p_true_negative_unobserved_sample"] = Summary(std::move(p_true_neg));
  return j;
}

namespace {

absl::StatusOr<train::TrainResult> TrainFamily(NbpoLoss loss,
                                               const data::DatasetView& train,
                                               const train::TrainSpec& spec,
                                               const train::TrainContext& ctx) {
  auto opts = ParseNbpoOptions(loss, spec.params, spec.seed);
  if (!opts.ok()) return opts.status();
  auto trainer = NbpoTrainer::Create(train, *opts);
  if (!trainer.ok()) return trainer.status();
  NbpoTrainer& t = **trainer;
  const auto start = std::chrono::steady_clock::now();
  nlohmann::json trace = nlohmann::json::array();
  double last = 0.0;
  for (int e = 1; e <= opts->epochs; ++e) {
    auto obj = t.RunEpoch(&ctx);
    if (!obj.ok()) return obj.status();
    last = *obj;
    trace.push_back(last);
    if (ctx.on_progress) {
      train::TrainProgress p;
      p.epoch = e;
      p.total_epochs = opts->epochs;
      p.loss = -last;
      p.elapsed_seconds = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - start)
                              .count();
      ctx.on_progress(p);
    }
  }
  train::TrainResult result;
  auto model = t.MakeModel();
  if (!model.ok()) return model.status();
  result.model = std::move(*model);
  result.metrics["objective_per_term"] = last;
  result.metrics["epochs_run"] = t.epoch();
  result.diagnostics["objective_per_term_by_epoch"] = std::move(trace);
  result.diagnostics["skipped_positives"] = t.skipped_positives();
  result.diagnostics["model_kind"] = std::string(result.model->kind());
  if (HasFlipModel(loss)) result.diagnostics["flip"] = t.FlipDiagnostics();
  result.resolved_params = ResolvedNbpoParams(*opts);
  return result;
}

}  // namespace

absl::StatusOr<train::TrainResult> TrainBpr(const data::DatasetView& train,
                                            const train::TrainSpec& spec,
                                            const train::TrainContext& ctx) {
  return TrainFamily(NbpoLoss::kBpr, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainBpo(const data::DatasetView& train,
                                            const train::TrainSpec& spec,
                                            const train::TrainContext& ctx) {
  return TrainFamily(NbpoLoss::kBpo, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainNbpo(const data::DatasetView& train,
                                             const train::TrainSpec& spec,
                                             const train::TrainContext& ctx) {
  return TrainFamily(NbpoLoss::kNbpo, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainNbpoo(const data::DatasetView& train,
                                              const train::TrainSpec& spec,
                                              const train::TrainContext& ctx) {
  return TrainFamily(NbpoLoss::kNbpoo, train, spec, ctx);
}

}  // namespace debias::models
