#include "core/models/dla_trainer.h"

#include "core/models/trainer_params.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <type_traits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/models/ranker_model.h"
#include "core/models/ranker_net.h"
#include "core/propensity/position_dla.h"
#include "core/propensity/position_em.h"
#include "core/propensity/position_lists.h"
#include "core/util/status_macros.h"

namespace debias::models {
namespace {

using propensity::ClickLists;
using propensity::SlotBatch;

struct Config {
  ClickMethod method = ClickMethod::kDla;
  bool mlp = true;
  std::vector<int> hidden = {64, 32};
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double lr = 1e-3;
  double propensity_lr = 0.05;
  int batch_size = 256;
  int max_steps = 6000;
  int eval_every = 200;
  int em_update_every = 50;
  int patience = 5;
  double valid_fraction = 0.1;
  int max_positions = 10;
  double max_grad_norm = 5.0;
  double l2 = 0.0;
  double max_ratio = 0.0;
  bool init_ctr = true;  // dla: start g at the log click-rate ratios
  std::vector<double> propensities;  // ipw: relative to position 1
  uint64_t seed = 0;
};

bool IsDla(ClickMethod m) { return m == ClickMethod::kDla; }


std::string JoinDoubles(const std::vector<double>& v) {
  return absl::StrJoin(v, ",", [](std::string* out, double d) {
    absl::StrAppend(out, d);
  });
}

// The comma list of `key` as `n` numbers checked by `ok`.
template <typename T, typename Ok>
absl::StatusOr<std::vector<T>> ParseList(const std::string& key, const std::string& text,
                                         size_t max_size, Ok ok, const std::string& what) {
  std::vector<T> v;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    T x;
    bool parsed;
    if constexpr (std::is_integral_v<T>) {
      parsed = absl::SimpleAtoi(part, &x);
    } else {
      parsed = absl::SimpleAtod(part, &x);
    }
    if (!parsed || !ok(x)) {
      return absl::InvalidArgumentError(absl::StrCat(key, "=", text, ": ", key, " must be ", what));
    }
    v.push_back(x);
  }
  if (v.size() > max_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "=", text, ": ", v.size(), " values; at most ", max_size));
  }
  return v;
}

absl::StatusOr<Config> ParseConfig(ClickMethod method,
                                   const train::TrainSpec& spec,
                                   std::map<std::string, std::string>* resolved) {
  ParamReader p(spec.params, std::string(ClickMethodName(method)));
  Config c;
  c.method = method;
  c.seed = spec.seed;
  ASSIGN_OR_RETURN(std::string ranker, p.Choice("ranker", "mlp", {"mlp", "linear"},
                                                "scoring network over the features"));
  c.mlp = ranker == "mlp";
  ASSIGN_OR_RETURN(auto hidden, p.Text("hidden", "64,32", "list",
                                       absl::StrCat("1-", RankerNet::kMaxHiddenLayers,
                                                    " sizes in [1, ", RankerNet::kMaxUnits, "]"),
                                       "hidden layer sizes (ranker=mlp)"));
  if (hidden) {
    if (!c.mlp) {
      return absl::InvalidArgumentError(
          "hidden: only applies to ranker=mlp (ranker=linear has no hidden layer)");
    }
    ASSIGN_OR_RETURN(c.hidden, ParseList<int>(
        "hidden", *hidden, RankerNet::kMaxHiddenLayers,
        [](int h) { return h >= 1 && h <= RankerNet::kMaxUnits; },
        absl::StrCat("a comma list of 1 to ", RankerNet::kMaxHiddenLayers,
                     " layer sizes in [1, ", RankerNet::kMaxUnits, "]")));
  }
  if (!c.mlp) c.hidden.clear();
  ASSIGN_OR_RETURN(std::string opt, p.Choice("optimizer", "adam", {"adam", "adagrad"},
                                             "optimizer (adagrad: lr defaults to 0.05)"));
  c.optimizer = opt == "adam" ? OptimizerKind::kAdam : OptimizerKind::kAdagrad;
  if (c.optimizer == OptimizerKind::kAdagrad) c.lr = 0.05;  // reference default
  ASSIGN_OR_RETURN(c.lr, p.Double("lr", c.lr, {0, 10, true}, "learning rate of the ranker"));
  if (IsDla(method)) {
    ASSIGN_OR_RETURN(c.propensity_lr, p.Double("propensity_lr", c.propensity_lr, {0, 10, true},
                                               "learning rate of the position propensities"));
    ASSIGN_OR_RETURN(c.max_ratio, p.Double("max_ratio", c.max_ratio, {0, 1e9},
                                           "cap on the inverse propensity ratios (0: none)"));
    ASSIGN_OR_RETURN(std::string init, p.Choice("propensity_init", "ctr", {"ctr", "uniform"},
                                                "start from the log's click-rate ratios"));
    c.init_ctr = init == "ctr";
  }
  ASSIGN_OR_RETURN(int64_t bs, p.Int("batch_size", c.batch_size, 1, 1 << 16, "lists per step"));
  ASSIGN_OR_RETURN(int64_t steps, p.Int("max_steps", c.max_steps, 1, 10000000,
                                        "gradient steps at most"));
  ASSIGN_OR_RETURN(int64_t every, p.Int("eval_every", c.eval_every, 1, 1000000,
                                        "steps between validation checks"));
  ASSIGN_OR_RETURN(int64_t patience, p.Int("patience", c.patience, 0, 1000000,
                                           "validation checks without gain before stopping"));
  if (method == ClickMethod::kRegressionEm) {
    ASSIGN_OR_RETURN(int64_t em, p.Int("em_update_every", c.em_update_every, 1, 1000000,
                                       "steps between EM updates of the propensities"));
    c.em_update_every = static_cast<int>(em);
  }
  c.batch_size = static_cast<int>(bs);
  c.max_steps = static_cast<int>(steps);
  c.eval_every = static_cast<int>(every);
  c.patience = static_cast<int>(patience);
  ASSIGN_OR_RETURN(c.valid_fraction, p.Double("valid_fraction", c.valid_fraction, {0, 0.5},
                                              "share of lists held out for validation"));
  ASSIGN_OR_RETURN(int64_t positions, p.Int("max_positions", c.max_positions, 1,
                                            propensity::kMaxListPositions,
                                            "list positions modelled"));
  c.max_positions = static_cast<int>(positions);
  ASSIGN_OR_RETURN(c.max_grad_norm, p.Double("max_grad_norm", c.max_grad_norm, {0, 1e9},
                                             "gradient clipping norm"));
  ASSIGN_OR_RETURN(c.l2, p.Double("l2", c.l2, {0, 100}, "L2 penalty on the ranker"));
  if (method == ClickMethod::kIpw) {
    ASSIGN_OR_RETURN(auto props, p.Text("propensities", "", "list",
                                        "numbers in (0, 1e9], one per position",
                                        "examination propensity per position (ipw)"));
    if (props) {
      ASSIGN_OR_RETURN(std::vector<double> v, ParseList<double>(
          "propensities", *props, propensity::kMaxListPositions,
          [](double d) { return std::isfinite(d) && d > 0.0 && d <= 1e9; },
          "a comma list of numbers in (0, 1e9], one per position"));
      if (p.Given("max_positions") && static_cast<int>(v.size()) != c.max_positions) {
        return absl::InvalidArgumentError(absl::StrCat(
            "propensities: ", v.size(), " values but max_positions=", c.max_positions,
            "; give one value per position"));
      }
      c.max_positions = static_cast<int>(v.size());
      const double first = v.front();
      for (double& d : v) d /= first;
      c.propensities = std::move(v);
    }
  }
  RETURN_IF_ERROR(p.Finish());
  if (method == ClickMethod::kIpw) {
    if (spec.propensity.empty() && c.propensities.empty()) {
      return absl::InvalidArgumentError(
          "propensities: ipw needs propensities=p1,...,pK (examination per "
          "position) or propensity=randomization");
    }
    if (!spec.propensity.empty() && spec.propensity != "randomization") {
      return absl::InvalidArgumentError(absl::StrCat(
          "propensity='", spec.propensity,
          "': ipw accepts propensity=randomization or explicit "
          "propensities=p1,...,pK"));
    }
    if (!spec.propensity.empty() && !c.propensities.empty()) {
      return absl::InvalidArgumentError(
          "propensities: give either propensities=... or "
          "propensity=randomization, not both");
    }
  } else if (!spec.propensity.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "propensity='", spec.propensity, "': loss '",
        std::string(ClickMethodName(method)),
        "' estimates its own propensities; leave it empty"));
  }

  auto& r = *resolved;
  r = std::move(p.resolved());
  if (c.mlp) r["hidden"] = absl::StrJoin(c.hidden, ",");
  r["max_positions"] = absl::StrCat(c.max_positions);
  r["seed"] = absl::StrCat(c.seed);
  if (method == ClickMethod::kIpw && !c.propensities.empty()) {
    r["propensities"] = JoinDoubles(c.propensities);
  }
  if (!spec.propensity.empty()) r["propensity"] = spec.propensity;
  return c;
}

// Gathers the shown slots of a set of lists into a contiguous feature
// matrix (one row per shown document) and the slot-layout batch.
class BatchBuilder {
 public:
  BatchBuilder(const data::DatasetView& view, const ClickLists& cl)
      : view_(view), cl_(cl), K_(cl.num_positions), d_(view.feature_dim) {}

  void Build(const uint32_t* lists, int n) {
    n_lists_ = n;
    clicks_.resize(static_cast<size_t>(n) * K_);
    mask_.resize(clicks_.size());
    scores_.assign(clicks_.size(), 0.0f);
    grad_.resize(clicks_.size());
    row_slot_.clear();
    row_position_.clear();
    x_.resize(clicks_.size() * d_);
    for (int q = 0; q < n; ++q) {
      for (int i = 0; i < K_; ++i) {
        const size_t src = cl_.slot(lists[q], i + 1);
        const size_t dst = static_cast<size_t>(q) * K_ + i;
        clicks_[dst] = cl_.click[src];
        mask_[dst] = cl_.mask[src];
        if (!mask_[dst]) continue;
        const auto f = view_.FeaturesOf(cl_.event[src]);
        std::copy(f.begin(), f.end(), x_.begin() + row_slot_.size() * d_);
        row_slot_.push_back(static_cast<uint32_t>(dst));
        row_position_.push_back(i + 1);
      }
    }
    row_scores_.resize(row_slot_.size());
    row_grad_.resize(row_slot_.size());
  }

  int rows() const { return static_cast<int>(row_slot_.size()); }
  const float* x() const { return x_.data(); }
  float* row_scores() { return row_scores_.data(); }
  float* row_grad() { return row_grad_.data(); }
  int row_position(int r) const { return row_position_[r]; }
  float row_click(int r) const { return clicks_[row_slot_[r]]; }
  // Copies row scores into the slot layout.
  void ScatterScores() {
    for (size_t r = 0; r < row_slot_.size(); ++r) scores_[row_slot_[r]] = row_scores_[r];
  }
  // Copies slot gradients back to rows.
  void GatherGrad() {
    for (size_t r = 0; r < row_slot_.size(); ++r) row_grad_[r] = grad_[row_slot_[r]];
  }
  std::span<float> slot_grad() { return grad_; }
  SlotBatch batch() const {
    return SlotBatch{n_lists_, K_, scores_, clicks_, mask_};
  }

 private:
  const data::DatasetView& view_;
  const ClickLists& cl_;
  const int K_;
  const size_t d_;
  int n_lists_ = 0;
  std::vector<float> x_, clicks_, scores_, grad_, row_scores_, row_grad_;
  std::vector<uint8_t> mask_;
  std::vector<uint32_t> row_slot_;
  std::vector<int> row_position_;
};

bool ListHasClick(const ClickLists& cl, uint32_t q) {
  for (int i = 1; i <= cl.num_positions; ++i) {
    const size_t s = cl.slot(q, i);
    if (cl.mask[s] && cl.click[s] > 0.0f) return true;
  }
  return false;
}

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// One training run of a click ranker, in named stages: Prepare (checks, the
// fixed propensities, the list split, the standardised network), Step (one
// batch), Checkpoint (held-out criterion, trace, early stopping) and Finish.
// The random draws keep their order, so a seed gives the same model.
class ClickRankerRun {
 public:
  ClickRankerRun(ClickMethod method, const data::DatasetView& view,
                 const train::TrainSpec& spec, const train::TrainContext& ctx, Config c,
                 ClickLists cl)
      : method_(method), view_(view), spec_(spec), ctx_(ctx), c_(std::move(c)),
        cl_(std::move(cl)), K_(c_.max_positions),
        rng_(c_.seed * 0x9e3779b97f4a7c15ULL + 0x5bd1e995), g_(Eigen::VectorXf::Zero(K_)),
        g_opt_(K_, c_.propensity_lr), theta_(K_, 0.5), theta_acc_(K_) {}

  absl::Status Prepare();
  // One optimisation step; sets *stop when early stopping ends the run.
  absl::Status Step(int step, bool* stop);
  absl::StatusOr<train::TrainResult> Finish(int steps_run, train::TrainResult result);

 private:
  absl::Status CheckLog() const;
  absl::Status FixPropensities();
  absl::Status SplitLists();
  absl::Status MakeNet();
  void InitLogits();
  double BatchLoss();
  void Checkpoint(int step, bool* stop);
  double Evaluate(const std::vector<uint32_t>& lists);
  std::vector<double> GDouble() const;
  std::vector<double> CurrentCurve() const;

  const ClickMethod method_;
  const data::DatasetView& view_;
  const train::TrainSpec& spec_;
  const train::TrainContext& ctx_;
  const Config c_;
  const ClickLists cl_;
  const int K_;
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::mt19937_64 rng_;
  std::vector<double> fixed_prop_, fixed_w_;
  std::vector<uint32_t> train_lists_, valid_lists_, order_;
  uint64_t dropped_ = 0;
  std::optional<RankerNet> net_;
  std::optional<Optimizer> opt_;
  Eigen::VectorXf g_;  // DLA propensity logits (float for the optimiser)
  Adagrad g_opt_;
  std::vector<double> theta_;  // REM
  propensity::PbmThetaAccumulator theta_acc_;
  std::optional<BatchBuilder> bb_;
  RankerWorkspace ws_;
  Eigen::VectorXf grad_;
  size_t cursor_ = 0;
  Eigen::VectorXf best_params_, best_g_;
  std::vector<double> best_theta_;
  double best_criterion_ = std::numeric_limits<double>::infinity();
  int best_step_ = 0, since_best_ = 0;
  nlohmann::json trace_ = nlohmann::json::array();
  double running_loss_ = 0.0;
  int running_n_ = 0;
};

absl::Status ClickRankerRun::CheckLog() const {
  if (view_.feature_dim <= 0 ||
      view_.features.size() != view_.num_events() * static_cast<size_t>(view_.feature_dim)) {
    return absl::FailedPreconditionError(
        "click log: the events carry no feature vectors (features column)");
  }
  if (cl_.num_lists() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("click log: no list has an event at positions 1..", K_));
  }
  for (size_t s = 0; s < cl_.event.size(); ++s) {
    if (!cl_.mask[s]) continue;
    for (float f : view_.FeaturesOf(cl_.event[s])) {
      if (!std::isfinite(f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("features of event ", cl_.event[s], ": must be finite"));
      }
    }
  }
  return absl::OkStatus();
}

// Propensities for the fixed-weight methods.
absl::Status ClickRankerRun::FixPropensities() {
  fixed_prop_.assign(K_, 1.0);
  if (method_ == ClickMethod::kIpw && !c_.propensities.empty()) {
    fixed_prop_ = c_.propensities;
  } else if (method_ == ClickMethod::kRandomization ||
             (method_ == ClickMethod::kIpw && spec_.propensity == "randomization")) {
    ASSIGN_OR_RETURN(fixed_prop_, propensity::RandomizationPropensities(cl_));
  }
  fixed_w_.resize(K_);
  for (int i = 0; i < K_; ++i) fixed_w_[i] = 1.0 / fixed_prop_[i];
  return absl::OkStatus();
}

// Lists into training and validation (seeded).
absl::Status ClickRankerRun::SplitLists() {
  std::vector<uint32_t> all(cl_.num_lists());
  std::iota(all.begin(), all.end(), 0u);
  std::shuffle(all.begin(), all.end(), rng_);
  const size_t n_valid = static_cast<size_t>(c_.valid_fraction * all.size());
  const bool needs_click = method_ != ClickMethod::kRegressionEm;
  for (size_t k = 0; k < all.size(); ++k) {
    if (needs_click && !ListHasClick(cl_, all[k])) {
      ++dropped_;
      continue;
    }
    (k < n_valid ? valid_lists_ : train_lists_).push_back(all[k]);
  }
  if (train_lists_.empty()) {
    return absl::FailedPreconditionError("click log: no training list has a click");
  }
  return absl::OkStatus();
}

// The network, standardised from (up to 50,000) training documents, a prefix
// of the shuffled training lists (a random sample).
absl::Status ClickRankerRun::MakeNet() {
  constexpr size_t kStandardizationRows = 50000;
  std::vector<float> sample;
  sample.reserve(kStandardizationRows * view_.feature_dim);
  size_t rows = 0;
  for (uint32_t q : train_lists_) {
    for (int i = 1; i <= K_ && rows < kStandardizationRows; ++i) {
      const size_t s = cl_.slot(q, i);
      if (!cl_.mask[s]) continue;
      const auto f = view_.FeaturesOf(cl_.event[s]);
      sample.insert(sample.end(), f.begin(), f.end());
      ++rows;
    }
    if (rows >= kStandardizationRows) break;
  }
  ASSIGN_OR_RETURN(RankerNet net, RankerNet::Create(view_.feature_dim, c_.hidden));
  Eigen::VectorXf shift, scale;
  ComputeStandardization(sample.data(), sample.size() / view_.feature_dim, view_.feature_dim,
                         &shift, &scale);
  RETURN_IF_ERROR(net.SetStandardization(shift, scale));
  net.InitRandom(rng_());
  net_.emplace(std::move(net));
  opt_.emplace(c_.optimizer, net_->num_params(), c_.lr);
  return absl::OkStatus();
}

// DLA's warm start: the click-rate ratios underestimate the tail propensities
// but put the logits within reach; from 0, Adagrad needs far more steps to
// bring steep curves (eta = 2: p10 = 0.008) down, and the held-out stopping
// rule ends training first.
void ClickRankerRun::InitLogits() {
  if (!IsDla(method_) || !c_.init_ctr) return;
  if (auto ctr = propensity::ClickRateRatios(cl_); ctr.ok()) {
    for (int i = 0; i < K_; ++i) g_[i] = static_cast<float>(std::log(std::max((*ctr)[i], 1e-3)));
  }
}

absl::Status ClickRankerRun::Prepare() {
  RETURN_IF_ERROR(CheckLog());
  RETURN_IF_ERROR(FixPropensities());
  RETURN_IF_ERROR(SplitLists());
  RETURN_IF_ERROR(MakeNet());
  InitLogits();
  bb_.emplace(view_, cl_);
  grad_.resize(net_->num_params());
  cursor_ = train_lists_.size();  // forces a shuffle at the first step
  order_ = train_lists_;
  best_params_ = net_->params();
  best_g_ = g_;
  best_theta_ = theta_;
  return absl::OkStatus();
}

std::vector<double> ClickRankerRun::GDouble() const {
  std::vector<double> v(K_);
  for (int i = 0; i < K_; ++i) v[i] = g_[i];
  return v;
}

std::vector<double> ClickRankerRun::CurrentCurve() const {
  switch (method_) {
    case ClickMethod::kDla: return propensity::DlaPropensities(GDouble());
    case ClickMethod::kRegressionEm: {
      std::vector<double> p(K_);
      for (int i = 0; i < K_; ++i) p[i] = theta_[i] / theta_[0];
      return p;
    }
    default: return fixed_prop_;
  }
}

// Held-out criterion, lower is better.
double ClickRankerRun::Evaluate(const std::vector<uint32_t>& lists) {
  BatchBuilder& bb = *bb_;
  double total = 0.0, count = 0.0;
  const std::vector<double> gd = GDouble();
  for (size_t b = 0; b < lists.size(); b += c_.batch_size) {
    const int n = static_cast<int>(std::min<size_t>(c_.batch_size, lists.size() - b));
    bb.Build(lists.data() + b, n);
    net_->Forward(bb.x(), bb.rows(), &ws_, bb.row_scores());
    bb.ScatterScores();
    const SlotBatch batch = bb.batch();
    switch (method_) {
      case ClickMethod::kDla: {
        double clicks = 0.0;
        total -= propensity::DlaClickLogLikelihood(batch, gd, &clicks);
        count += clicks;
        break;
      }
      case ClickMethod::kRegressionEm:
        for (int r = 0; r < bb.rows(); ++r) {
          const double pc = std::clamp(
              theta_[bb.row_position(r) - 1] * Sigmoid(bb.row_scores()[r]), 1e-7, 1.0 - 1e-7);
          total -= bb.row_click(r) > 0 ? std::log(pc) : std::log1p(-pc);
          count += 1.0;
        }
        break;
      default: {
        // Weighted loss: un-normalise the batch mean by its weight.
        double weight = 0.0;
        for (int q = 0; q < n; ++q) {
          for (int i = 0; i < K_; ++i) {
            const size_t s = static_cast<size_t>(q) * K_ + i;
            if (batch.mask[s]) weight += (batch.clicks[s] + propensity::kDlaDelta) * fixed_w_[i];
          }
        }
        total += propensity::DlaRankerLoss(batch, fixed_w_, propensity::kDlaDelta, {}) * weight;
        count += weight;
      }
    }
  }
  return count > 0 ? total / count : 0.0;
}

// The loss of the batch in bb_ and the row gradients (REM: its E-step; DLA:
// also a step of the propensity logits).
double ClickRankerRun::BatchLoss() {
  BatchBuilder& bb = *bb_;
  const SlotBatch batch = bb.batch();
  double loss = 0.0;
  if (method_ == ClickMethod::kRegressionEm) {
    const float inv = 1.0f / std::max(1, bb.rows());
    for (int r = 0; r < bb.rows(); ++r) {
      const int k = bb.row_position(r);
      const double gamma = Sigmoid(bb.row_scores()[r]);
      const propensity::PbmPosterior post =
          propensity::PbmEStep(bb.row_click(r) > 0, theta_[k - 1], gamma);
      theta_acc_.Add(k, post.examined);
      bb.row_grad()[r] = static_cast<float>(gamma - post.relevant) * inv;
      const double gc = std::clamp(gamma, 1e-7, 1.0 - 1e-7);
      loss -= (post.relevant * std::log(gc) + (1 - post.relevant) * std::log1p(-gc)) * inv;
    }
    return loss;
  }
  const std::vector<double> w = IsDla(method_) ? propensity::DlaWeights(GDouble()) : fixed_w_;
  loss = propensity::DlaRankerLoss(batch, w, propensity::kDlaDelta, bb.slot_grad());
  if (IsDla(method_)) {
    std::vector<double> gg(K_);
    loss += propensity::DlaPropensityLoss(batch, GDouble(), propensity::kDlaDelta, c_.max_ratio,
                                          gg);
    Eigen::VectorXf gf(K_);
    for (int i = 0; i < K_; ++i) gf[i] = static_cast<float>(gg[i]);
    ClipGlobalNorm(&gf, c_.max_grad_norm);
    g_opt_.Step(&g_, gf);
  }
  bb.GatherGrad();
  return loss;
}

absl::Status ClickRankerRun::Step(int step, bool* stop) {
  if (ctx_.IsCancelled()) return absl::CancelledError("training cancelled");
  if (cursor_ + c_.batch_size > order_.size()) {
    std::shuffle(order_.begin(), order_.end(), rng_);
    cursor_ = 0;
  }
  const int n = static_cast<int>(std::min<size_t>(c_.batch_size, order_.size()));
  BatchBuilder& bb = *bb_;
  bb.Build(order_.data() + cursor_, n);
  cursor_ += n;
  net_->Forward(bb.x(), bb.rows(), &ws_, bb.row_scores());
  bb.ScatterScores();
  const double loss = BatchLoss();
  grad_.setZero();
  net_->Backward(&ws_, bb.row_grad(), &grad_);
  if (c_.l2 > 0) grad_ += static_cast<float>(c_.l2) * net_->params();
  ClipGlobalNorm(&grad_, c_.max_grad_norm);
  opt_->Step(&net_->params(), grad_);
  if (!net_->params().allFinite()) {
    return absl::InternalError(absl::StrCat(
        "training diverged at step ", step, " (non-finite parameters); lower lr"));
  }
  running_loss_ += loss;
  ++running_n_;
  if (method_ == ClickMethod::kRegressionEm &&
      (step % c_.em_update_every == 0 || step % c_.eval_every == 0 || step == c_.max_steps)) {
    // M-step for theta from the posteriors of the steps since the last one.
    theta_ = theta_acc_.Theta(theta_);
    theta_acc_ = propensity::PbmThetaAccumulator(K_);
  }
  if (step % c_.eval_every == 0 || step == c_.max_steps) Checkpoint(step, stop);
  return absl::OkStatus();
}

// The held-out criterion now: traced, the best parameters kept, progress
// reported; *stop after `patience` checks without gain.
void ClickRankerRun::Checkpoint(int step, bool* stop) {
  const bool validate = !valid_lists_.empty();
  const double crit = validate ? Evaluate(valid_lists_) : running_loss_ / running_n_;
  nlohmann::json point = {
      {"step", step}, {"train_loss", running_loss_ / running_n_}, {"valid_criterion", crit}};
  if (IsDla(method_) || method_ == ClickMethod::kRegressionEm) {
    point["position_propensities"] = CurrentCurve();
  }
  trace_.push_back(std::move(point));
  if (crit < best_criterion_ || !validate) {
    best_criterion_ = crit;
    best_step_ = step;
    best_params_ = net_->params();
    best_g_ = g_;
    best_theta_ = theta_;
    since_best_ = 0;
  } else {
    ++since_best_;
  }
  if (ctx_.on_progress) {
    train::TrainProgress prog;
    prog.epoch = step / c_.eval_every;
    prog.total_epochs = (c_.max_steps + c_.eval_every - 1) / c_.eval_every;
    prog.loss = running_loss_ / running_n_;
    prog.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    prog.metrics["valid_criterion"] = crit;
    ctx_.on_progress(prog);
  }
  running_loss_ = 0.0;
  running_n_ = 0;
  *stop = validate && since_best_ > c_.patience;
}

absl::StatusOr<train::TrainResult> ClickRankerRun::Finish(int steps_run,
                                                          train::TrainResult result) {
  RETURN_IF_ERROR(net_->SetParams(best_params_));
  g_ = best_g_;
  theta_ = best_theta_;
  nlohmann::json diag;
  diag["position_propensities"] = CurrentCurve();
  diag["method"] = std::string(ClickMethodName(method_));
  if (auto naive = propensity::ClickRateRatios(cl_); naive.ok()) {
    diag["click_rate_ratios"] = *naive;
  }
  if (method_ == ClickMethod::kRegressionEm) diag["theta"] = theta_;
  if (IsDla(method_)) diag["propensity_logits"] = GDouble();
  diag["lists"] = cl_.num_lists();
  diag["train_lists"] = train_lists_.size();
  diag["valid_lists"] = valid_lists_.size();
  diag["lists_without_clicks_dropped"] = dropped_;
  diag["skipped_events"] = cl_.skipped_events;
  diag["best_step"] = best_step_;
  diag["steps"] = steps_run;
  diag["stopped_early"] = steps_run < c_.max_steps;
  diag["trace"] = trace_;
  result.diagnostics = std::move(diag);
  result.metrics["valid_criterion"] = best_criterion_;
  result.metrics["best_step"] = best_step_;
  result.metrics["steps"] = steps_run;
  result.model = RankerModel::Create(std::move(*net_));
  return result;
}

}  // namespace

std::string_view ClickMethodName(ClickMethod m) {
  switch (m) {
    case ClickMethod::kDla: return "dla";
    case ClickMethod::kIpw: return "ipw";
    case ClickMethod::kNaive: return "naive-clicks";
    case ClickMethod::kRegressionEm: return "regression-em";
    case ClickMethod::kRandomization: return "randomization";
  }
  return "unknown";
}


absl::StatusOr<train::TrainResult> TrainClickRanker(
    ClickMethod method, const data::DatasetView& view,
    const train::TrainSpec& spec, const train::TrainContext& ctx) {
  train::TrainResult result;
  ASSIGN_OR_RETURN(Config c, ParseConfig(method, spec, &result.resolved_params));
  ASSIGN_OR_RETURN(ClickLists cl, propensity::BuildClickLists(view, c.max_positions));
  const int max_steps = c.max_steps;
  ClickRankerRun run(method, view, spec, ctx, std::move(c), std::move(cl));
  RETURN_IF_ERROR(run.Prepare());
  int step = 1;
  for (bool stop = false; step <= max_steps && !stop; ++step) {
    RETURN_IF_ERROR(run.Step(step, &stop));
  }
  // The last step run: the loop's counter is one past it.
  return run.Finish(std::min(step - 1, max_steps), std::move(result));
}

absl::StatusOr<train::TrainResult> TrainDla(const data::DatasetView& train,
                                            const train::TrainSpec& spec,
                                            const train::TrainContext& ctx) {
  return TrainClickRanker(ClickMethod::kDla, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainIpwRanker(
    const data::DatasetView& train, const train::TrainSpec& spec,
    const train::TrainContext& ctx) {
  return TrainClickRanker(ClickMethod::kIpw, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainNaiveClickRanker(
    const data::DatasetView& train, const train::TrainSpec& spec,
    const train::TrainContext& ctx) {
  return TrainClickRanker(ClickMethod::kNaive, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainRegressionEm(
    const data::DatasetView& train, const train::TrainSpec& spec,
    const train::TrainContext& ctx) {
  return TrainClickRanker(ClickMethod::kRegressionEm, train, spec, ctx);
}
absl::StatusOr<train::TrainResult> TrainRandomization(
    const data::DatasetView& train, const train::TrainSpec& spec,
    const train::TrainContext& ctx) {
  return TrainClickRanker(ClickMethod::kRandomization, train, spec, ctx);
}

}  // namespace debias::models
