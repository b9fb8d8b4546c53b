#include "core/models/kb_trainer.h"

#include "core/models/trainer_params.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/propensity/kernel_balance.h"
#include "core/propensity/registry.h"
#include "core/util/status_macros.h"

namespace debias::models {
namespace {

using propensity::KernelMatrixF;
using propensity::KernelNorm;
using propensity::KernelType;

enum class Centres { kNone, kRandom, kAdaptive, kWorstCase };
enum class Weights { kUniform, kBase, kLearned };

struct MethodTraits {
  Weights weights;
  Centres centres;
  bool dr;
};

MethodTraits Traits(KbMethod m) {
  switch (m) {
    case KbMethod::kNaive: return {Weights::kUniform, Centres::kNone, false};
    case KbMethod::kIps: return {Weights::kBase, Centres::kNone, false};
    case KbMethod::kDrJl: return {Weights::kBase, Centres::kNone, true};
    case KbMethod::kKbIps: return {Weights::kLearned, Centres::kRandom, false};
    case KbMethod::kAkbIps: return {Weights::kLearned, Centres::kAdaptive, false};
    case KbMethod::kWkbIps: return {Weights::kLearned, Centres::kWorstCase, false};
    case KbMethod::kKbDr: return {Weights::kLearned, Centres::kRandom, true};
    case KbMethod::kAkbDr: return {Weights::kLearned, Centres::kAdaptive, true};
    case KbMethod::kWkbDr: return {Weights::kLearned, Centres::kWorstCase, true};
  }
  return {Weights::kUniform, Centres::kNone, false};
}

// ---------------------------------------------------------------------------
// Hyperparameters.

struct Config {
  KbMethod method = KbMethod::kKbIps;
  KernelType kernel = KernelType::kGaussian;
  KernelNorm norm = KernelNorm::kGlobal;
  double bandwidth = 0.1;
  // The prediction and imputation models' dimension. The reference
  // uses 4 on Coat; 64 is what the validated grid of the MF family chose for
  // the same IPS loss on Coat (docs/results/relmf_tune.txt, ips/snips), and
  // through the front door it lifts every KB variant from about 0.72 to
  // about 0.745 test AUC (docs/RESULTS.md). The kernel features and the
  // weight model keep the reference's 4 dimensions (kPretrainDim,
  // kWeightDim).
  int dim = 64;
  int batch_size = 128;
  int neg_ratio = 5;
  int centres = 3;
  int eps_steps = 3;
  double eps_threshold = 0.2;
  double lr_pred = 1e-2, l2_pred = 1e-3;
  double lr_imp = 1e-2, l2_imp = 3e-3;
  double lr_weight = 5e-3, l2_weight = 5e-2;
  double lr_eps = 3e-3, l2_eps = 1e-3;
  double penalty = 1.0, margin = 1e-2;
  int max_epochs = 1000;
  double tol = 1e-5;
  int patience = 5;
  std::string features = "pretrain";
  // weight_model=frozen: an ablation. The weight model keeps its U(0, 1)
  // initialisation, the centre and weight steps are skipped, and the base
  // loss trains with w = rho * sigmoid(a_init). An earlier revision of the
  // reference code (2b67229) does this by accident: its weight step reads w
  // through weight_model.predict(), which detaches it.
  bool freeze_weights = false;
  int pretrain_epochs = 100;
  double pretrain_lr = 1e-2, pretrain_l2 = 1e-4;
  double mcar_pos_rate = -1.0;  // < 0: not given
  int wkb_ref_cap = 512;
  double threshold = 3.0;
  std::string propensity = "naive-bayes";
  std::map<std::string, std::string> prop_params;  // prop.<key> of spec.params
  double clip = 0.0;  // 0: no clipping
};

// The DR family's weight decay. The reference's Coat values (0.1; AKBDR-Exp
// 0.05) decay the weight model to one factor for every pair (sigmoid(0) =
// 0.5), so no balancing takes place: a degenerate model, refused since the
// front-door issue. 5e-3, the smallest value of the earlier validation grid
// {5e-3, 5e-2, 0.1}, is the only one of it whose weights stay varied.
constexpr double kDrL2Weight = 5e-3;
// The kernel features: 4-d user and item embeddings, as the reference's.
constexpr int kPretrainDim = 4;
// The weight model a keeps the reference's 4 dimensions whatever `dim`:
// initialised U(0, 1) as in the reference, a 64-d dot product starts near
// 16, where sigmoid(a) = 1 for every pair and balancing has no gradient.
constexpr int kWeightDim = 4;

// Reference defaults on Coat (B = 128, G = 5), per method and kernel.
void ApplyReferenceDefaults(KbMethod m, KernelType k, Config* c) {
  const bool gau = k == KernelType::kGaussian;
  switch (m) {
    case KbMethod::kNaive:
    case KbMethod::kIps:
      c->lr_pred = 1e-2; c->l2_pred = 1e-3;
      break;
    case KbMethod::kDrJl:
      c->lr_pred = 1e-2; c->l2_pred = 3e-3; c->lr_imp = 1e-2; c->l2_imp = 3e-3;
      break;
    case KbMethod::kKbIps:
      c->lr_pred = 1e-2; c->l2_pred = 1e-3;
      c->lr_weight = gau ? 5e-3 : 3e-3; c->l2_weight = 5e-2;
      c->penalty = 1; c->margin = 1e-2;
      break;
    case KbMethod::kAkbIps:
      c->lr_pred = 1e-2; c->l2_pred = 1e-3; c->lr_weight = 3e-3; c->l2_weight = 5e-2;
      c->lr_eps = 3e-3; c->l2_eps = 1e-3; c->penalty = 1; c->margin = 1e-2;
      c->eps_threshold = 0.2;
      break;
    case KbMethod::kWkbIps:
      c->lr_pred = 1e-2; c->l2_pred = 1e-3; c->lr_weight = 3e-3; c->l2_weight = 5e-2;
      c->lr_eps = 3e-2; c->l2_eps = 1e-3; c->penalty = 1; c->margin = 1e-3;
      c->eps_threshold = 0.5;
      break;
    case KbMethod::kKbDr:
      c->lr_pred = 1e-2; c->l2_pred = 3e-3; c->lr_imp = 1e-2; c->l2_imp = 3e-3;
      c->lr_weight = 1e-2; c->l2_weight = kDrL2Weight; c->penalty = 1; c->margin = 1e-4;
      break;
    case KbMethod::kAkbDr:
      c->lr_pred = 1e-2; c->l2_pred = 3e-3;
      c->lr_imp = gau ? 3e-2 : 1e-2; c->l2_imp = gau ? 3e-3 : 1e-3;
      c->lr_weight = 1e-2; c->l2_weight = kDrL2Weight;
      c->lr_eps = 3e-2; c->l2_eps = 1e-3; c->penalty = 0.1;
      c->margin = gau ? 1e-4 : 1e-5; c->eps_threshold = 0.4;
      break;
    case KbMethod::kWkbDr:
      c->lr_pred = 3e-2; c->l2_pred = 3e-3; c->lr_imp = 3e-2; c->l2_imp = 3e-3;
      c->lr_weight = 1e-2; c->l2_weight = kDrL2Weight; c->lr_eps = 5e-2; c->l2_eps = 0;
      c->penalty = 1; c->margin = 1e-4; c->eps_threshold = 0.5;
      break;
  }
}

bool Kernels(const MethodTraits& t) { return t.weights == Weights::kLearned; }
bool Eps(const MethodTraits& t) {
  return t.centres == Centres::kAdaptive || t.centres == Centres::kWorstCase;
}
bool NeedsBase(const MethodTraits& t) { return t.weights != Weights::kUniform; }
bool NeedsD(const MethodTraits& t) { return t.dr || t.weights == Weights::kLearned; }



std::string Num(double v) { return absl::StrCat(v); }

absl::StatusOr<Config> ParseConfig(KbMethod method, const train::TrainSpec& spec,
                                   std::map<std::string, std::string>* resolved) {
  const MethodTraits tr = Traits(method);
  ParamReader p(spec.params, std::string(KbMethodName(method)));
  Config c;
  c.method = method;
  if (Kernels(tr)) {
    ASSIGN_OR_RETURN(std::string kernel, p.Choice("kernel", "gaussian",
                                                  {"gaussian", "gau", "exponential", "exp"},
                                                  "balancing kernel (sets the reference defaults)"));
    ASSIGN_OR_RETURN(c.kernel, propensity::ParseKernelType(kernel));
  }
  ApplyReferenceDefaults(method, c.kernel, &c);
  auto read_int = [&](const std::string& key, int* field, int64_t lo, int64_t hi,
                      const std::string& doc, std::vector<std::string> aliases = {}) {
    auto v = p.Int(key, *field, lo, hi, doc, std::move(aliases));
    if (v.ok()) *field = static_cast<int>(*v);
    return v.status();
  };
  auto read_double = [&](const std::string& key, double* field, Range range,
                         const std::string& doc, std::vector<std::string> aliases = {}) {
    auto v = p.Double(key, *field, range, doc, std::move(aliases));
    if (v.ok()) *field = *v;
    return v.status();
  };
  RETURN_IF_ERROR(read_int("dim", &c.dim, 1, 256, "factors of the prediction model"));
  RETURN_IF_ERROR(read_int("batch_size", &c.batch_size, 1, 1 << 16, "observed pairs per step"));
  RETURN_IF_ERROR(read_double("lr", &c.lr_pred, {0, 10, true},
                              "learning rate of the prediction model", {"lr_pred"}));
  RETURN_IF_ERROR(read_double("l2", &c.l2_pred, {0, 100},
                              "L2 penalty of the prediction model", {"l2_pred"}));
  RETURN_IF_ERROR(read_int("epochs", &c.max_epochs, 1, 100000,
                           "epochs at most (early stopping on the training loss)",
                           {"max_epochs"}));
  RETURN_IF_ERROR(read_double("tol", &c.tol, {0, 1}, "relative loss change that counts as none"));
  RETURN_IF_ERROR(read_int("patience", &c.patience, 0, 100000,
                           "epochs without change before stopping"));
  if (NeedsD(tr)) {
    RETURN_IF_ERROR(read_int("neg_ratio", &c.neg_ratio, 1, 64,
                             "unobserved pairs sampled per observed one"));
  }
  if (tr.dr) {
    RETURN_IF_ERROR(read_double("lr_imp", &c.lr_imp, {0, 10, true},
                                "learning rate of the imputation model", {"imp_lr"}));
    RETURN_IF_ERROR(read_double("l2_imp", &c.l2_imp, {0, 100},
                                "L2 penalty of the imputation model", {"imp_l2"}));
  }
  if (Kernels(tr)) {
    ASSIGN_OR_RETURN(std::string norm, p.Choice("norm", "global",
                                                {"global", "reference", "reference-bug", "none"},
                                                "kernel normalisation"));
    ASSIGN_OR_RETURN(c.norm, propensity::ParseKernelNorm(norm));
    RETURN_IF_ERROR(read_double("bandwidth", &c.bandwidth, {0, 1e6, true}, "kernel bandwidth"));
    ASSIGN_OR_RETURN(c.features, p.Choice("features", c.features, {"pretrain", "side", "both"},
                                          "kernel features: pretrained embeddings, side "
                                          "features, or both"));
    ASSIGN_OR_RETURN(std::string wm, p.Choice("weight_model", "trained", {"trained", "frozen"},
                                              "frozen: the ablation without balancing"));
    c.freeze_weights = wm == "frozen";
    RETURN_IF_ERROR(read_int("pretrain_epochs", &c.pretrain_epochs, 1, 100000,
                             "epochs of the feature embeddings"));
    RETURN_IF_ERROR(read_double("pretrain_lr", &c.pretrain_lr, {0, 10, true},
                                "learning rate of the feature embeddings"));
    RETURN_IF_ERROR(read_double("pretrain_l2", &c.pretrain_l2, {0, 100},
                                "L2 penalty of the feature embeddings"));
    RETURN_IF_ERROR(read_int("centres", &c.centres, 1, 1024, "kernel centres balanced"));
    RETURN_IF_ERROR(read_double("lr_weight", &c.lr_weight, {0, 10, true},
                                "learning rate of the weight model"));
    RETURN_IF_ERROR(read_double("l2_weight", &c.l2_weight, {0, 100},
                                "L2 penalty of the weight model"));
    RETURN_IF_ERROR(read_double("penalty", &c.penalty, {0, 1e6}, "balance penalty"));
    RETURN_IF_ERROR(read_double("margin", &c.margin, {0, 1e6}, "balance margin"));
  }
  if (Eps(tr)) {
    RETURN_IF_ERROR(read_double("lr_eps", &c.lr_eps, {0, 10, true},
                                "learning rate of the adaptive centres"));
    RETURN_IF_ERROR(read_double("l2_eps", &c.l2_eps, {0, 100},
                                "L2 penalty of the adaptive centres"));
    RETURN_IF_ERROR(read_int("eps_steps", &c.eps_steps, 0, 100, "centre steps per epoch"));
    RETURN_IF_ERROR(read_double("eps_threshold", &c.eps_threshold, {-1e6, 1e6},
                                "threshold of the adaptive centres"));
  }
  if (tr.centres == Centres::kWorstCase) {
    RETURN_IF_ERROR(read_int("wkb_ref_cap", &c.wkb_ref_cap, 1, 1 << 20,
                             "reference pairs of the worst-case centres"));
  }
  if (NeedsBase(tr)) {
    ASSIGN_OR_RETURN(auto rate, p.Text("mcar_pos_rate", "observed", "double", "(0, 1)",
                                       "P(y = 1) under random exposure (default: from the "
                                       "MAR sample, else the observed rate)"));
    if (rate) {
      if (!absl::SimpleAtod(*rate, &c.mcar_pos_rate) || !(c.mcar_pos_rate > 0) ||
          !(c.mcar_pos_rate < 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mcar_pos_rate=", *rate, ": mcar_pos_rate must be a number in (0, 1)"));
      }
    }
    c.prop_params = p.Prefixed("prop.");
  }
  RETURN_IF_ERROR(p.Finish());

  if (spec.threshold.has_value()) {
    if (!std::isfinite(*spec.threshold)) {
      return absl::InvalidArgumentError("threshold: must be finite");
    }
    c.threshold = *spec.threshold;
  }
  if (!spec.propensity.empty()) c.propensity = spec.propensity;  // checked when fitted
  if (spec.clip.has_value()) {
    if (!std::isfinite(*spec.clip) || *spec.clip <= 0.0 || *spec.clip > 1.0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "clip=", *spec.clip, ": clip (lowest propensity) must be in (0, 1]"));
    }
    c.clip = *spec.clip;
  }

  auto& r = *resolved;
  r = std::move(p.resolved());
  r["threshold"] = Num(c.threshold);
  r["seed"] = Num(spec.seed);
  if (Kernels(tr)) {
    r["kernel"] = std::string(propensity::KernelTypeName(c.kernel));
    r["norm"] = std::string(propensity::KernelNormName(c.norm));
  }
  if (NeedsBase(tr)) {
    r["propensity"] = c.propensity;
    for (const auto& [k, v] : c.prop_params) r["prop." + k] = v;
    r["mcar_pos_rate"] = c.mcar_pos_rate > 0 ? Num(c.mcar_pos_rate) : "observed";
    r["clip"] = c.clip > 0 ? Num(c.clip) : "none";
  }
  return c;
}

// ---------------------------------------------------------------------------
// Numerics.

inline double Softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
inline double Sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
// BCE(sigmoid(s), t) for a soft target t in [0, 1].
inline double BceLogit(double s, double t) { return Softplus(s) - t * s; }

// PyTorch-style Adam with coupled L2 (weight_decay added to the gradient),
// dense over the whole parameter array, as torch.optim.Adam on nn.Embedding.
class Adam {
 public:
  Adam(double lr, double wd, size_t n) : lr_(lr), wd_(wd) {
    m_.setZero(n);
    v_.setZero(n);
  }
  void Step(float* param, const float* grad, size_t n) {
    ++t_;
    Eigen::Map<Eigen::ArrayXf> p(param, n);
    Eigen::Map<const Eigen::ArrayXf> g(grad, n);
    const float b1 = 0.9f, b2 = 0.999f;
    const float wd = static_cast<float>(wd_);
    m_ = b1 * m_ + (1 - b1) * (g + wd * p);
    v_ = b2 * v_ + (1 - b2) * (g + wd * p).square();
    const double bc1 = 1.0 - std::pow(0.9, static_cast<double>(t_));
    const double bc2 = 1.0 - std::pow(0.999, static_cast<double>(t_));
    const float step = static_cast<float>(lr_ / bc1);
    const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
    p -= step * m_ / (v_.sqrt() * inv_sqrt_bc2 + 1e-8f);
  }

 private:
  double lr_, wd_;
  int64_t t_ = 0;
  Eigen::ArrayXf m_, v_;
};

// One MF sub-model sigmoid(U_u . V_i) with its Adam state and gradients.
struct Mf {
  RowMatrix u, v, gu, gv;
  std::unique_ptr<Adam> au, av;

  void Init(size_t nu, size_t ni, int dim, double lr, double wd,
            std::mt19937_64* rng) {
    std::uniform_real_distribution<float> unif(0.0f, 1.0f);
    u.resize(nu, dim);
    v.resize(ni, dim);
    for (Eigen::Index k = 0; k < u.size(); ++k) u.data()[k] = unif(*rng);
    for (Eigen::Index k = 0; k < v.size(); ++k) v.data()[k] = unif(*rng);
    gu.setZero(nu, dim);
    gv.setZero(ni, dim);
    au = std::make_unique<Adam>(lr, wd, u.size());
    av = std::make_unique<Adam>(lr, wd, v.size());
  }
  float Logit(uint32_t user, uint32_t item) const {
    return u.row(user).dot(v.row(item));
  }
  // Accumulates d/dlogit = g for pair (user, item).
  void AddGrad(uint32_t user, uint32_t item, float g) {
    gu.row(user).noalias() += g * v.row(item);
    gv.row(item).noalias() += g * u.row(user);
  }
  void Step() {
    au->Step(u.data(), gu.data(), u.size());
    av->Step(v.data(), gv.data(), v.size());
    gu.setZero();
    gv.setZero();
  }
};

// ---------------------------------------------------------------------------
// The engine.

struct Data {
  size_t nu = 0, ni = 0, n = 0;
  std::vector<uint32_t> user, item;
  std::vector<float> y;    // 0/1
  std::vector<float> rho;  // base inverse propensity per event
  double rho_pos = 1.0, rho_neg = 1.0;
};

struct Pair {
  uint32_t u, i;
};

struct FitOutput {
  Mf f, a, m;
  int epochs = 0;
  double last_loss = 0.0;
  std::vector<double> epoch_losses;
  int64_t eps_updates = 0, eps_checks = 0;
  double seconds = 0.0;
};

class FeatureTable {
 public:
  KernelMatrixF user, item;  // already globally normalised unless norm != global
  int dim() const { return static_cast<int>(user.cols() + item.cols()); }
  void Fill(std::span<const Pair> pairs, KernelNorm norm, KernelMatrixF* out) const {
    const int du = user.cols(), d = dim();
    if (out->rows() != static_cast<Eigen::Index>(pairs.size()) || out->cols() != d) {
      out->resize(pairs.size(), d);
    }
    for (size_t k = 0; k < pairs.size(); ++k) {
      out->row(k).head(du) = user.row(pairs[k].u);
      out->row(k).tail(d - du) = item.row(pairs[k].i);
    }
    if (norm == KernelNorm::kReferenceBug) {
      propensity::ReferenceBugNormalize(out, static_cast<float>(d));
    }
  }
};

class Engine {
 public:
  Engine(const Config& c, const Data& d, const FeatureTable* feats,
         const train::TrainContext& ctx, uint64_t seed)
      : c_(c), d_(d), feats_(feats), ctx_(ctx), rng_(seed), tr_(Traits(c.method)) {}

  absl::StatusOr<FitOutput> Run();

 private:
  void SampleD();
  void SelectCentres();
  absl::Status WeightStep();
  void AdaptiveEpsStep(const std::vector<double>& target);
  void WorstCaseEpsStep();
  // Stages of Run.
  void Setup();
  absl::StatusOr<double> Batch(const std::vector<size_t>& perm, size_t bi);
  void RefreshWeights();
  void CentreStep();
  double PredictionStep();
  void ImputationStep();
  // Progress and the stopping rule after an epoch; true to stop.
  bool EndEpoch(int epoch, double epoch_loss, std::chrono::steady_clock::time_point t0);

  const Config& c_;
  const Data& d_;
  const FeatureTable* feats_;
  const train::TrainContext& ctx_;
  std::mt19937_64 rng_;
  MethodTraits tr_;
  FitOutput out_;

  // Per-batch workspaces (allocated once).
  size_t b_ = 0, nd_ = 0;
  std::vector<size_t> batch_;  // event indices of O
  std::vector<Pair> opairs_, dpairs_, cpairs_;
  std::vector<int> centre_idx_;
  KernelMatrixF phi_o_, phi_d_, phi_c_, k_oc_, k_dc_, k_od_, k_dr_, phi_r_;
  std::vector<float> log_w_, w_;
  Eigen::VectorXf grad_lw_, eps_, eps_grad_;
  std::unique_ptr<Adam> eps_adam_;
  double eps_prev_ = 0.0;
  // Gaussian kernels of concatenated features factorise:
  // k([a, b], [c, d]) = k(a, c) k(b, d). For small catalogues the user-user
  // and item-item tables are precomputed once and K_OD is a product of two
  // gathers (no exp in the loop). Only with one global normalisation.
  bool factorised_ = false;
  KernelMatrixF ku_, ki_;
  std::vector<uint32_t> du_, di_;
  void ComputeKod();
  // Set by Setup: learned kernel weights trained (not frozen), and an eps
  // step (adaptive or worst-case centres).
  bool kernels_ = false, eps_step_ = false;
  std::vector<double> target_;  // adaptive centres' per-pair targets
  double last_loss_ = 0.0;
  int strikes_ = 0;
};

void Engine::ComputeKod() {
  if (!factorised_) {
    propensity::KernelMatrixUnchecked(phi_o_, phi_d_, c_.kernel,
                                      static_cast<float>(c_.bandwidth), &k_od_);
    return;
  }
  if (k_od_.rows() != static_cast<Eigen::Index>(b_) ||
      k_od_.cols() != static_cast<Eigen::Index>(nd_)) {
    k_od_.resize(b_, nd_);
  }
  for (size_t k = 0; k < nd_; ++k) {
    du_[k] = dpairs_[k].u;
    di_[k] = dpairs_[k].i;
  }
  for (size_t o = 0; o < b_; ++o) {
    const float* ku = ku_.row(opairs_[o].u).data();
    const float* ki = ki_.row(opairs_[o].i).data();
    float* out = k_od_.row(o).data();
    for (size_t k = 0; k < nd_; ++k) out[k] = ku[du_[k]] * ki[di_[k]];
  }
}

void Engine::SampleD() {
  std::uniform_int_distribution<uint32_t> du(0, d_.nu - 1), di(0, d_.ni - 1);
  for (size_t k = 0; k < nd_; ++k) dpairs_[k] = {du(rng_), di(rng_)};
}

void Engine::SelectCentres() {
  const int j = c_.centres;
  centre_idx_.resize(j);
  if (tr_.centres == Centres::kRandom) {
    std::uniform_int_distribution<int> pick(0, static_cast<int>(nd_) - 1);
    for (int k = 0; k < j; ++k) centre_idx_[k] = pick(rng_);
  } else {
    // Largest |eps|: the kernel functions that matter most.
    std::vector<int> idx(nd_);
    std::iota(idx.begin(), idx.end(), 0);
    const int take = std::min<int>(j, static_cast<int>(nd_));
    std::partial_sort(idx.begin(), idx.begin() + take, idx.end(), [&](int x, int y) {
      const float ax = std::fabs(eps_[x]), ay = std::fabs(eps_[y]);
      return ax > ay || (ax == ay && x < y);
    });
    for (int k = 0; k < j; ++k) centre_idx_[k] = idx[k % take];
  }
  for (int k = 0; k < j; ++k) cpairs_[k] = dpairs_[centre_idx_[k]];
}

void Engine::AdaptiveEpsStep(const std::vector<double>& target) {
  // L = sum_o rho_o (t_o - (K_OD eps)_o)^2; the kernel projection of the
  // per-sample loss onto the span of k(., phi_d).
  auto loss_and_grad = [&](bool grad) {
    const Eigen::VectorXf g = k_od_ * eps_;
    Eigen::VectorXf rr(b_);
    double l = 0.0;
    for (size_t o = 0; o < b_; ++o) {
      const double r = target[o] - g[o];
      const double rho = d_.rho[batch_[o]];
      l += rho * r * r;
      rr[o] = static_cast<float>(-2.0 * rho * r);
    }
    if (grad) eps_grad_.noalias() = k_od_.transpose() * rr;
    return l;
  };
  const double l0 = loss_and_grad(false);
  ++out_.eps_checks;
  const bool first = out_.eps_checks == 1;
  if (first || (eps_prev_ - l0) / (eps_prev_ + 1e-10) < c_.eps_threshold) {
    ++out_.eps_updates;
    for (int s = 0; s < c_.eps_steps; ++s) {
      loss_and_grad(true);
      eps_adam_->Step(eps_.data(), eps_grad_.data(), nd_);
    }
  }
  eps_prev_ = l0;
}

void Engine::WorstCaseEpsStep() {
  // f_eps(x) = sum_d eps_d k(x, phi_d). worst / norm =
  // (eps.(u - v))^2 / (eps.s)^2, u = K_OD^T w, v = K_DD 1, s = K_OD^T 1 (the
  // 1/|D| factors of the reference cancel). Minimise -worst/norm.
  Eigen::Map<const Eigen::VectorXf> w(w_.data(), b_);
  const Eigen::VectorXd u = (k_od_.transpose() * w).cast<double>();
  const Eigen::VectorXd s = k_od_.colwise().sum().transpose().cast<double>();
  // v_d = sum_d' k(phi_d', phi_d), estimated from at most wkb_ref_cap rows.
  const size_t m = std::min<size_t>(nd_, c_.wkb_ref_cap);
  Eigen::VectorXd v = Eigen::VectorXd::Zero(nd_);
  if (factorised_) {
    for (size_t r = 0; r < m; ++r) {
      const float* ku = ku_.row(dpairs_[r].u).data();
      const float* ki = ki_.row(dpairs_[r].i).data();
      for (size_t k = 0; k < nd_; ++k) v[k] += ku[du_[k]] * ki[di_[k]];
    }
  } else {
    if (phi_r_.rows() != static_cast<Eigen::Index>(m)) phi_r_.resize(m, phi_d_.cols());
    phi_r_ = phi_d_.topRows(m);  // D is i.i.d., so its first m rows are a sample
    propensity::KernelMatrixUnchecked(phi_r_, phi_d_, c_.kernel,
                                      static_cast<float>(c_.bandwidth), &k_dr_);
    v = k_dr_.colwise().sum().transpose().cast<double>();
  }
  v *= double(nd_) / m;
  const Eigen::VectorXd uv = u - v;
  auto loss = [&](Eigen::VectorXf* grad) {
    const Eigen::VectorXd e = eps_.cast<double>();
    const double a = e.dot(uv);
    double b = e.dot(s);
    if (std::fabs(b) < 1e-12) b = b < 0 ? -1e-12 : 1e-12;
    if (grad) {
      *grad = (-2.0 * a / (b * b) * uv + 2.0 * a * a / (b * b * b) * s).cast<float>();
    }
    return -(a * a) / (b * b);
  };
  const double l0 = loss(nullptr);
  ++out_.eps_checks;
  const bool first = out_.eps_checks == 1;
  if (first || (l0 - eps_prev_) / (eps_prev_ + 1e-10) < c_.eps_threshold) {
    ++out_.eps_updates;
    for (int st = 0; st < c_.eps_steps; ++st) {
      loss(&eps_grad_);
      if (!eps_grad_.allFinite()) break;
      eps_adam_->Step(eps_.data(), eps_grad_.data(), nd_);
    }
  }
  eps_prev_ = l0;
}

absl::Status Engine::WeightStep() {
  feats_->Fill(cpairs_, c_.norm, &phi_c_);
  const float bw = static_cast<float>(c_.bandwidth);
  propensity::KernelMatrixUnchecked(phi_o_, phi_c_, c_.kernel, bw, &k_oc_);
  propensity::KernelMatrixUnchecked(phi_d_, phi_c_, c_.kernel, bw, &k_dc_);
  for (size_t o = 0; o < b_; ++o) {
    const Pair p = opairs_[o];
    const double x = out_.a.Logit(p.u, p.i);
    // log w = log rho + log sigmoid(x), finite for any finite x.
    log_w_[o] = static_cast<float>(std::log(d_.rho[batch_[o]]) - Softplus(-x));
  }
  ASSIGN_OR_RETURN(auto obj, propensity::BalanceLossAndGrad(
                                 k_oc_, k_dc_, log_w_, c_.penalty, c_.margin,
                                 &grad_lw_));
  (void)obj;
  for (size_t o = 0; o < b_; ++o) {
    const Pair p = opairs_[o];
    const double x = out_.a.Logit(p.u, p.i);
    // dl/dx = 1 - sigmoid(x) = sigmoid(-x).
    out_.a.AddGrad(p.u, p.i, static_cast<float>(grad_lw_[o] * Sigmoid(-x)));
  }
  out_.a.Step();
  return absl::OkStatus();
}

void Engine::Setup() {
  out_.f.Init(d_.nu, d_.ni, c_.dim, c_.lr_pred, c_.l2_pred, &rng_);
  if (tr_.weights == Weights::kLearned) {
    out_.a.Init(d_.nu, d_.ni, kWeightDim, c_.lr_weight, c_.l2_weight, &rng_);
  }
  if (tr_.dr) out_.m.Init(d_.nu, d_.ni, c_.dim, c_.lr_imp, c_.l2_imp, &rng_);
  b_ = std::min<size_t>(c_.batch_size, d_.n);
  nd_ = NeedsD(tr_) ? b_ * c_.neg_ratio : 0;
  // Frozen weights: no centre, eps or weight step (see Config).
  kernels_ = tr_.weights == Weights::kLearned && !c_.freeze_weights;
  eps_step_ = kernels_ && (tr_.centres == Centres::kAdaptive ||
                           tr_.centres == Centres::kWorstCase);
  batch_.resize(b_);
  opairs_.resize(b_);
  dpairs_.resize(nd_);
  cpairs_.resize(kernels_ ? c_.centres : 0);
  log_w_.resize(b_);
  w_.resize(b_);
  target_.resize(b_);
  if (!eps_step_) return;
  std::uniform_real_distribution<float> unif(0.0f, 1.0f);
  eps_.resize(nd_);
  for (size_t k = 0; k < nd_; ++k) eps_[k] = unif(rng_);
  eps_grad_.setZero(nd_);
  eps_adam_ = std::make_unique<Adam>(c_.lr_eps, c_.l2_eps, nd_);
  const double cells = double(d_.nu) * d_.nu + double(d_.ni) * d_.ni;
  factorised_ = c_.kernel == KernelType::kGaussian &&
                c_.norm != KernelNorm::kReferenceBug && cells <= 8e6;
  if (factorised_) {
    const float bw = static_cast<float>(c_.bandwidth);
    propensity::KernelMatrixUnchecked(feats_->user, feats_->user, c_.kernel, bw, &ku_);
    propensity::KernelMatrixUnchecked(feats_->item, feats_->item, c_.kernel, bw, &ki_);
    du_.resize(nd_);
    di_.resize(nd_);
  }
}

// Current weights (detached) of the batch's observed pairs.
void Engine::RefreshWeights() {
  for (size_t o = 0; o < b_; ++o) {
    const size_t e = batch_[o];
    if (tr_.weights == Weights::kUniform) {
      w_[o] = 1.0f;
    } else if (tr_.weights == Weights::kBase) {
      w_[o] = d_.rho[e];
    } else {
      w_[o] = static_cast<float>(d_.rho[e] * Sigmoid(out_.a.Logit(opairs_[o].u, opairs_[o].i)));
    }
  }
  if (tr_.dr && tr_.weights == Weights::kLearned) {
    // DR needs its correction term on the inverse-propensity scale:
    // with weights w the observed-pair gradient is w (p - y) - (p - m),
    // which loses its label once w nears 1, and the balancing step pins
    // the mean learned weight near 1 (it balances the constant function).
    // So balancing shapes the weights and the base propensities keep
    // their scale: w is rescaled to the batch's mean base weight.
    double sw = 0, sr = 0;
    for (size_t o = 0; o < b_; ++o) {
      sw += w_[o];
      sr += d_.rho[batch_[o]];
    }
    if (sw > 0) {
      const float k = static_cast<float>(sr / sw);
      for (size_t o = 0; o < b_; ++o) w_[o] *= k;
    }
  }
}

// The eps step of adaptive (towards the per-pair loss) or worst-case
// centres.
void Engine::CentreStep() {
  ComputeKod();
  if (tr_.centres != Centres::kAdaptive) {
    RefreshWeights();
    WorstCaseEpsStep();
    return;
  }
  for (size_t o = 0; o < b_; ++o) {
    const Pair p = opairs_[o];
    const double s = out_.f.Logit(p.u, p.i);
    double t = BceLogit(s, d_.y[batch_[o]]);
    if (tr_.dr) {
      // e_hat = BCE(m, f): imputed error with the roles swapped.
      t -= BceLogit(out_.m.Logit(p.u, p.i), Sigmoid(s));
    }
    target_[o] = t;
  }
  AdaptiveEpsStep(target_);
}

// Prediction step (weights and imputation detached); returns the batch's
// prediction loss.
double Engine::PredictionStep() {
  const double inv_b = 1.0 / b_;
  double lpred = 0.0;
  for (size_t o = 0; o < b_; ++o) {
    const Pair p = opairs_[o];
    const double s = out_.f.Logit(p.u, p.i);
    const double y = d_.y[batch_[o]];
    const double pr = Sigmoid(s);
    double g = w_[o] * (pr - y);
    lpred += w_[o] * BceLogit(s, y);
    if (tr_.dr) {
      const double mm = Sigmoid(out_.m.Logit(p.u, p.i));
      g -= (pr - mm);
      lpred -= BceLogit(s, mm);
    }
    out_.f.AddGrad(p.u, p.i, static_cast<float>(g * inv_b));
  }
  lpred *= inv_b;
  if (tr_.dr) {
    const double inv_d = 1.0 / nd_;
    double ld = 0.0;
    for (size_t k = 0; k < nd_; ++k) {
      const Pair p = dpairs_[k];
      const double s = out_.f.Logit(p.u, p.i);
      const double mm = Sigmoid(out_.m.Logit(p.u, p.i));
      ld += BceLogit(s, mm);
      out_.f.AddGrad(p.u, p.i, static_cast<float>((Sigmoid(s) - mm) * inv_d));
    }
    lpred += ld * inv_d;
  }
  out_.f.Step();
  return lpred;
}

// Imputation step (prediction detached): sum_O w (e - e_hat)^2.
void Engine::ImputationStep() {
  for (size_t o = 0; o < b_; ++o) {
    const Pair p = opairs_[o];
    const double s = out_.f.Logit(p.u, p.i);
    const double fp = Sigmoid(s);
    const double e = BceLogit(s, d_.y[batch_[o]]);
    const double t = out_.m.Logit(p.u, p.i);
    const double eh = BceLogit(t, fp);
    const double g = -2.0 * w_[o] * (e - eh) * (Sigmoid(t) - fp);
    out_.m.AddGrad(p.u, p.i, static_cast<float>(g));
  }
  out_.m.Step();
}

// One mini-batch (batch bi of the epoch's permutation): the centre, weight,
// prediction and imputation steps; returns its prediction loss.
absl::StatusOr<double> Engine::Batch(const std::vector<size_t>& perm, size_t bi) {
  for (size_t o = 0; o < b_; ++o) {
    batch_[o] = perm[bi * b_ + o];
    opairs_[o] = {d_.user[batch_[o]], d_.item[batch_[o]]};
  }
  if (nd_ > 0) SampleD();
  if (kernels_) {
    feats_->Fill(opairs_, c_.norm, &phi_o_);
    feats_->Fill(dpairs_, c_.norm, &phi_d_);
  }
  if (eps_step_) CentreStep();
  if (kernels_) {
    SelectCentres();
    RETURN_IF_ERROR(WeightStep());
  }
  RefreshWeights();
  const double lpred = PredictionStep();
  if (tr_.dr) ImputationStep();
  return lpred;
}

bool Engine::EndEpoch(int epoch, double epoch_loss, std::chrono::steady_clock::time_point t0) {
  out_.epochs = epoch + 1;
  out_.epoch_losses.push_back(epoch_loss);
  if (ctx_.on_progress) {
    train::TrainProgress pr;
    pr.epoch = epoch + 1;
    pr.total_epochs = c_.max_epochs;
    pr.loss = epoch_loss;
    pr.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ctx_.on_progress(pr);
  }
  const double rel = (last_loss_ - epoch_loss) / (last_loss_ + 1e-10);
  if (epoch > 0 && rel < c_.tol) {
    if (strikes_ > c_.patience) return true;
    ++strikes_;
  }
  last_loss_ = epoch_loss;
  return false;
}

absl::StatusOr<FitOutput> Engine::Run() {
  const auto t0 = std::chrono::steady_clock::now();
  Setup();
  std::vector<size_t> perm(d_.n);
  std::iota(perm.begin(), perm.end(), 0);
  const size_t batches = d_.n / b_;
  for (int epoch = 0; epoch < c_.max_epochs; ++epoch) {
    std::shuffle(perm.begin(), perm.end(), rng_);
    double epoch_loss = 0.0;
    for (size_t bi = 0; bi < batches; ++bi) {
      if (ctx_.IsCancelled()) return absl::CancelledError("training cancelled");
      ASSIGN_OR_RETURN(double lpred, Batch(perm, bi));
      epoch_loss += lpred;
    }
    if (!std::isfinite(epoch_loss)) {
      out_.epochs = epoch + 1;
      out_.epoch_losses.push_back(epoch_loss);
      return absl::InternalError(absl::StrCat(
          "kernel balancing: non-finite loss at epoch ", epoch + 1));
    }
    if (EndEpoch(epoch, epoch_loss, t0)) break;
  }
  out_.last_loss = last_loss_;
  out_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return std::move(out_);
}

// Naive-Bayes base inverse propensity (reference _compute_IPS): depends only
// on the label. P(o=1) = n / (users * items); P(y=1 | o=1) = observed positive
// rate; P(y=1) = the mcar_pos_rate param when given, else the positive rate
// of spec.mar_sample (the reference uses a 5 % MCAR slice), else the
// observed rate (then rho is the same for both labels).
absl::Status ComputeBaseRho(const Config& c, const data::DatasetView& view,
                            const data::DatasetView* mar, Data* d,
                            nlohmann::json* diag) {
  if (c.propensity == "logged") {
    if (!view.has_propensities()) {
      return absl::FailedPreconditionError(
          "propensity=logged: the dataset has no logged propensities");
    }
    for (size_t e = 0; e < d->n; ++e) {
      float p = view.propensity[e];
      if (!(p > 0.0f && p <= 1.0f)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "event ", e, ": logged propensity ", p, " must be in (0, 1]"));
      }
      p = std::max<float>(p, c.clip);
      d->rho[e] = 1.0f / p;
    }
    (*diag)["base_propensity"] = "logged";
    return absl::OkStatus();
  }
  double pos = 0;
  for (float y : d->y) pos += y;
  const double py_o = pos / d->n;
  const double po = static_cast<double>(d->n) / (double(d->nu) * double(d->ni));
  if (c.propensity != "naive-bayes") {
    // Any other estimator of the registry (e.g. popularity of the observed
    // events, the default without a MAR sample): rho = 1 / p, rescaled so
    // that its mean over the observed pairs is 1 / P(o=1), the scale of the
    // naive-Bayes weights the reference hyperparameters were set for.
    propensity::FitContext fc;
    fc.rule.threshold = c.threshold;
    fc.mar = mar;
    fc.mar_rule.threshold = c.threshold;
    auto params = c.prop_params;
    if (c.propensity == "popularity" && !params.count("count")) params["count"] = "events";
    ASSIGN_OR_RETURN(auto est, propensity::FitEstimator(c.propensity, view, params, fc));
    double sum = 0;
    for (size_t e = 0; e < d->n; ++e) {
      const float p = std::max<float>(est->Event(view, e, d->y[e] > 0 ? 1 : 0),
                                      std::max(c.clip, 1e-12));
      d->rho[e] = 1.0f / p;
      sum += d->rho[e];
    }
    const double scale = sum > 0 ? (1.0 / po) / (sum / d->n) : 1.0;
    for (size_t e = 0; e < d->n; ++e) d->rho[e] = static_cast<float>(d->rho[e] * scale);
    d->rho_pos = d->rho_neg = 1.0 / po;
    (*diag)["base_propensity"] = {{"estimator", c.propensity}, {"p_obs", po},
                                  {"fitted", est->Describe()}};
    return absl::OkStatus();
  }
  double py = py_o;
  std::string source = "observed";
  if (c.mcar_pos_rate > 0) {
    py = c.mcar_pos_rate;
    source = "mcar_pos_rate";
  } else if (mar != nullptr && mar->num_events() > 0) {
    double mp = 0;
    for (float l : mar->label) {
      if (!std::isfinite(l)) {
        return absl::InvalidArgumentError("mar_sample: labels must be finite");
      }
      mp += l >= c.threshold ? 1.0 : 0.0;
    }
    py = std::clamp(mp / mar->num_events(), 1e-6, 1.0 - 1e-6);
    source = "mar_sample";
  }
  auto prop = [&](bool positive) {
    const double num = positive ? py_o : 1.0 - py_o;
    const double den = positive ? py : 1.0 - py;
    double p = den > 0 ? num * po / den : 1.0;
    if (!(p > 0)) p = 1.0;  // label absent: its rho is never used
    p = std::clamp(p, std::max(c.clip, 1e-12), 1.0);
    return p;
  };
  const double p1 = prop(true), p0 = prop(false);
  d->rho_pos = 1.0 / p1;
  d->rho_neg = 1.0 / p0;
  for (size_t e = 0; e < d->n; ++e) {
    d->rho[e] = static_cast<float>(d->y[e] > 0 ? d->rho_pos : d->rho_neg);
  }
  (*diag)["base_propensity"] = {
      {"estimator", "naive-bayes"}, {"p_obs", po}, {"p_pos_given_obs", py_o},
      {"p_pos", py}, {"p_pos_source", source},
      {"propensity_pos", p1}, {"propensity_neg", p0}};
  return absl::OkStatus();
}

nlohmann::json GapJson(const propensity::BalanceTerms& t) {
  std::vector<double> gaps(t.h_all.size());
  double abs_mean = 0.0;
  for (Eigen::Index j = 0; j < t.h_all.size(); ++j) {
    gaps[j] = t.h_all[j] - t.h_obs[j];
    abs_mean += std::fabs(gaps[j]);
  }
  abs_mean /= std::max<size_t>(1, gaps.size());
  return {{"gap_per_centre", gaps}, {"mean_abs_gap", abs_mean},
          {"gap_sum", t.gap_sum}};
}

// Stage 1 of TrainKernelBalancing: the events of `view` with labels
// binarised at `threshold` and unit base weights.
absl::StatusOr<Data> LoadData(const data::DatasetView& view, double threshold) {
  if (view.num_events() == 0) {
    return absl::FailedPreconditionError("training dataset has no events");
  }
  if (view.num_users() == 0 || view.num_items() == 0 ||
      view.num_users() > (1u << 31) || view.num_items() > (1u << 31)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset has ", view.num_users(), " users and ", view.num_items(),
        " items: both must be in [1, 2^31]"));
  }
  if (view.user.size() != view.num_events() || view.item.size() != view.num_events() ||
      view.label.size() != view.num_events()) {
    return absl::InvalidArgumentError("dataset columns have different lengths");
  }
  Data d;
  d.nu = view.num_users();
  d.ni = view.num_items();
  d.n = view.num_events();
  d.user = view.user;
  d.item = view.item;
  d.y.resize(d.n);
  d.rho.assign(d.n, 1.0f);
  for (size_t e = 0; e < d.n; ++e) {
    if (d.user[e] >= d.nu || d.item[e] >= d.ni) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event ", e, ": user ", d.user[e], " / item ", d.item[e],
          " out of range [0, ", d.nu, ") / [0, ", d.ni, ")"));
    }
    if (!std::isfinite(view.label[e])) {
      return absl::InvalidArgumentError(
          absl::StrCat("event ", e, ": label must be finite"));
    }
    d.y[e] = view.label[e] >= threshold ? 1.0f : 0.0f;
  }
  return d;
}

absl::Status ValidateSideFeatures(const Config& c, const Data& d,
                                  const KbSideFeatures* side) {
  if (side == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "features=", c.features, ": no side features were supplied"));
  }
  if (static_cast<size_t>(side->user.rows()) != d.nu ||
      static_cast<size_t>(side->item.rows()) != d.ni ||
      side->user.cols() + side->item.cols() == 0 ||
      side->user.cols() > 4096 || side->item.cols() > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "side features: need ", d.nu, " user rows and ", d.ni,
        " item rows with 1 to 4096 columns in total per side; got ",
        side->user.rows(), "x", side->user.cols(), " and ",
        side->item.rows(), "x", side->item.cols()));
  }
  RETURN_IF_ERROR(propensity::ValidateKernelPoints(side->user, "side.user"));
  return propensity::ValidateKernelPoints(side->item, "side.item");
}

// Stage 2 (learned weights only): the kernel features, from the side
// features, a short seeded MF-IPS pre-training whose factors are frozen
// (the reference loads 4-d MF-IPS embeddings from files), or both.
absl::StatusOr<FeatureTable> BuildFeatures(const Config& c, const Data& d,
                                           const KbSideFeatures* side,
                                           const train::TrainSpec& spec,
                                           const train::TrainContext& ctx,
                                           int* pretrain_epochs_run) {
  const bool want_side = c.features == "side" || c.features == "both";
  const bool want_emb = c.features == "pretrain" || c.features == "both";
  if (want_side) RETURN_IF_ERROR(ValidateSideFeatures(c, d, side));
  KernelMatrixF eu, ei;
  if (want_emb) {
    Config pc = c;
    pc.method = KbMethod::kIps;
    pc.dim = kPretrainDim;
    pc.lr_pred = c.pretrain_lr;
    pc.l2_pred = c.pretrain_l2;
    pc.max_epochs = c.pretrain_epochs;
    Engine pre(pc, d, nullptr, ctx, spec.seed ^ 0x9e3779b97f4a7c15ULL);
    ASSIGN_OR_RETURN(FitOutput po, pre.Run());
    *pretrain_epochs_run = po.epochs;
    eu = po.f.u;
    ei = po.f.v;
  }
  auto hcat = [](const KernelMatrixF& a, const RowMatrix* b) {
    KernelMatrixF out(a.rows() ? a.rows() : (b ? b->rows() : 0),
                      a.cols() + (b ? b->cols() : 0));
    if (a.cols()) out.leftCols(a.cols()) = a;
    if (b && b->cols()) out.rightCols(b->cols()) = *b;
    return out;
  };
  FeatureTable feats;
  feats.user = hcat(eu, want_side ? &side->user : nullptr);
  feats.item = hcat(ei, want_side ? &side->item : nullptr);
  if (c.norm == KernelNorm::kGlobal) {
    const float scale = 1.0f / static_cast<float>(feats.dim());
    RETURN_IF_ERROR(propensity::NormalizeColumnsMinMax(&feats.user, scale));
    RETURN_IF_ERROR(propensity::NormalizeColumnsMinMax(&feats.item, scale));
  }
  RETURN_IF_ERROR(propensity::ValidateKernelPoints(feats.user, "features.user"));
  RETURN_IF_ERROR(propensity::ValidateKernelPoints(feats.item, "features.item"));
  return feats;
}

// The kernel balance of no weights, the base weights and the learned ones
// (`w`, per event) on a fixed evaluation sample: up to 20,000 observed
// pairs, 4,096 uniform pairs, 16 random centres from them.
absl::StatusOr<nlohmann::json> BalanceJson(const Config& c, const Data& d,
                                           const FeatureTable& feats,
                                           const std::vector<float>& w, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x5bd1e995ULL);
  std::vector<size_t> obs(d.n);
  std::iota(obs.begin(), obs.end(), 0);
  if (obs.size() > 20000) {
    std::shuffle(obs.begin(), obs.end(), rng);
    obs.resize(20000);
  }
  std::vector<Pair> op(obs.size()), dp(4096), cp(16);
  std::uniform_int_distribution<uint32_t> du(0, d.nu - 1), di(0, d.ni - 1);
  for (auto& p : dp) p = {du(rng), di(rng)};
  std::uniform_int_distribution<size_t> pick(0, dp.size() - 1);
  for (auto& p : cp) p = dp[pick(rng)];
  for (size_t k = 0; k < obs.size(); ++k) op[k] = {d.user[obs[k]], d.item[obs[k]]};
  KernelMatrixF po, pd, pc, koc, kdc;
  feats.Fill(op, c.norm, &po);
  feats.Fill(dp, c.norm, &pd);
  feats.Fill(cp, c.norm, &pc);
  propensity::KernelMatrixUnchecked(po, pc, c.kernel, c.bandwidth, &koc);
  propensity::KernelMatrixUnchecked(pd, pc, c.kernel, c.bandwidth, &kdc);
  std::vector<float> w_one(obs.size(), 1.0f), w_base(obs.size()), w_after(obs.size());
  for (size_t k = 0; k < obs.size(); ++k) {
    w_base[k] = d.rho[obs[k]];
    w_after[k] = w[obs[k]];
  }
  nlohmann::json bal;
  ASSIGN_OR_RETURN(auto t1, propensity::ComputeBalance(koc, kdc, w_one, c.margin));
  ASSIGN_OR_RETURN(auto t2, propensity::ComputeBalance(koc, kdc, w_base, c.margin));
  ASSIGN_OR_RETURN(auto t3, propensity::ComputeBalance(koc, kdc, w_after, c.margin));
  bal["h_all"] = std::vector<double>(t1.h_all.data(), t1.h_all.data() + t1.h_all.size());
  bal["unweighted"] = GapJson(t1);
  bal["before"] = GapJson(t2);
  bal["after"] = GapJson(t3);
  bal["observed_pairs"] = obs.size();
  bal["sampled_pairs"] = dp.size();
  bal["centres"] = cp.size();
  return bal;
}

// Stage 3 (learned weights only): the learned weights' summary, the range
// of the learned factor, and the balance; FAILED_PRECONDITION when the
// weight model collapsed to one factor.
absl::Status LearnedWeightDiagnostics(const Config& c, const Data& d,
                                      const FeatureTable& feats, const FitOutput& fit,
                                      uint64_t seed, nlohmann::json* diag) {
  std::vector<float> w(d.n);
  double f_min = 1.0, f_max = 0.0;
  for (size_t e = 0; e < d.n; ++e) {
    const double f = Sigmoid(fit.a.Logit(d.user[e], d.item[e]));
    f_min = std::min(f_min, f);
    f_max = std::max(f_max, f);
    w[e] = static_cast<float>(d.rho[e] * f);
  }
  (*diag)["weights_after"] = propensity::SummarizeWeights(w);
  // The learned factor sigmoid(a) over the observed pairs. When the weight
  // model's parameters decay to zero (a large l2_weight against a small
  // lr_weight, as with the reference's KBDR settings on Coat) it is the
  // same for every pair, and the loss is its base method with rescaled
  // weights: say so rather than let the user assume balancing shaped them.
  (*diag)["learned_factor"] = {{"min", f_min}, {"max", f_max}};
  if (c.freeze_weights) {
    (*diag)["warnings"].push_back(
        "weight_model=frozen: the weight model kept its random initialisation, so the "
        "weights are the base inverse propensities times a random per-pair factor and "
        "kernel balancing did not shape them; use weight_model=trained (the default) to "
        "balance");
  } else if (d.n > 0 && f_max - f_min < 1e-3) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "degenerate: the weight model collapsed to one factor (%.4f) for every observed "
        "pair, so the weights are the base inverse propensities times that factor and "
        "kernel balancing did not shape them; lower l2_weight (now %g) or raise "
        "lr_weight (now %g)",
        0.5 * (f_min + f_max), c.l2_weight, c.lr_weight));
  }
  ASSIGN_OR_RETURN((*diag)["balance"], BalanceJson(c, d, feats, w, seed));
  return absl::OkStatus();
}

}  // namespace

std::string_view KbMethodName(KbMethod m) {
  switch (m) {
    case KbMethod::kNaive: return "kb-naive";
    case KbMethod::kIps: return "kb-ips";
    case KbMethod::kDrJl: return "kb-drjl";
    case KbMethod::kKbIps: return "kbips";
    case KbMethod::kAkbIps: return "akbips";
    case KbMethod::kWkbIps: return "wkbips";
    case KbMethod::kKbDr: return "kbdr";
    case KbMethod::kAkbDr: return "akbdr";
    case KbMethod::kWkbDr: return "wkbdr";
  }
  return "unknown";
}

absl::StatusOr<KbMethod> ParseKbMethod(std::string_view name) {
  for (KbMethod m : {KbMethod::kNaive, KbMethod::kIps, KbMethod::kDrJl,
                     KbMethod::kKbIps, KbMethod::kAkbIps, KbMethod::kWkbIps,
                     KbMethod::kKbDr, KbMethod::kAkbDr, KbMethod::kWkbDr}) {
    if (KbMethodName(m) == name) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "method='", std::string(name),
      "': must be one of kbips, akbips, wkbips, kbdr, akbdr, wkbdr, kb-naive, "
      "kb-ips, kb-drjl"));
}


absl::StatusOr<train::TrainResult> TrainKernelBalancing(
    KbMethod method, const data::DatasetView& view,
    const train::TrainSpec& spec, const train::TrainContext& ctx,
    const KbSideFeatures* side) {
  train::TrainResult result;
  ASSIGN_OR_RETURN(Config c, ParseConfig(method, spec, &result.resolved_params));
  const MethodTraits tr = Traits(method);
  ASSIGN_OR_RETURN(Data d, LoadData(view, c.threshold));
  nlohmann::json& diag = result.diagnostics;
  diag["method"] = std::string(KbMethodName(method));
  if (NeedsBase(tr)) RETURN_IF_ERROR(ComputeBaseRho(c, view, spec.mar_sample, &d, &diag));

  FeatureTable feats;
  const auto t_start = std::chrono::steady_clock::now();
  int pretrain_epochs_run = 0;
  if (tr.weights == Weights::kLearned) {
    ASSIGN_OR_RETURN(feats, BuildFeatures(c, d, side, spec, ctx, &pretrain_epochs_run));
  }
  Engine engine(c, d, tr.weights == Weights::kLearned ? &feats : nullptr, ctx,
                spec.seed);
  ASSIGN_OR_RETURN(FitOutput fit, engine.Run());
  const double total_seconds = std::chrono::duration<double>(
                                   std::chrono::steady_clock::now() - t_start).count();

  MfParams mp;
  mp.user_factors = fit.f.u;
  mp.item_factors = fit.f.v;
  ASSIGN_OR_RETURN(auto model, MfModel::Create(std::move(mp)));
  result.model = std::move(model);
  result.metrics["epochs"] = fit.epochs;
  result.metrics["final_loss"] = fit.last_loss;
  result.metrics["train_seconds"] = total_seconds;
  result.metrics["seconds_per_epoch"] = fit.seconds / std::max(1, fit.epochs);
  diag["epoch_losses"] = fit.epoch_losses;
  if (tr.weights == Weights::kLearned) {
    diag["pretrain_epochs"] = pretrain_epochs_run;
    diag["feature_dim"] = feats.dim();
  }
  if ((tr.centres == Centres::kAdaptive || tr.centres == Centres::kWorstCase) &&
      !c.freeze_weights) {
    diag["eps_updates"] = fit.eps_updates;
    diag["eps_checks"] = fit.eps_checks;
  }
  if (NeedsBase(tr)) {
    diag["weights_before"] = propensity::SummarizeWeights(d.rho);
  }
  if (tr.weights == Weights::kLearned) {
    RETURN_IF_ERROR(LearnedWeightDiagnostics(c, d, feats, fit, spec.seed, &diag));
  }
  return result;
}

#define DEBIAS_KB_ENTRY(Fn, M)                                              \
  absl::StatusOr<train::TrainResult> Fn(const data::DatasetView& train,     \
                                        const train::TrainSpec& spec,       \
                                        const train::TrainContext& ctx) {   \
    return TrainKernelBalancing(M, train, spec, ctx, nullptr);              \
  }
DEBIAS_KB_ENTRY(TrainKbIps, KbMethod::kKbIps)
DEBIAS_KB_ENTRY(TrainAkbIps, KbMethod::kAkbIps)
DEBIAS_KB_ENTRY(TrainWkbIps, KbMethod::kWkbIps)
DEBIAS_KB_ENTRY(TrainKbDr, KbMethod::kKbDr)
DEBIAS_KB_ENTRY(TrainAkbDr, KbMethod::kAkbDr)
DEBIAS_KB_ENTRY(TrainWkbDr, KbMethod::kWkbDr)
#undef DEBIAS_KB_ENTRY

}  // namespace debias::models
