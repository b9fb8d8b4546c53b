#include "core/models/dla_trainer.h"

#include "core/models/trainer_params.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
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
  const auto t0 = std::chrono::steady_clock::now();
  train::TrainResult result;
  ASSIGN_OR_RETURN(Config c, ParseConfig(method, spec, &result.resolved_params));
  ASSIGN_OR_RETURN(ClickLists cl, propensity::BuildClickLists(view, c.max_positions));
  const int K = c.max_positions;
  if (view.feature_dim <= 0 || view.features.size() != view.num_events() *
                                   static_cast<size_t>(view.feature_dim)) {
    return absl::FailedPreconditionError(
        "click log: the events carry no feature vectors (features column)");
  }
  if (cl.num_lists() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "click log: no list has an event at positions 1..", K));
  }
  for (size_t s = 0; s < cl.event.size(); ++s) {
    if (!cl.mask[s]) continue;
    for (float f : view.FeaturesOf(cl.event[s])) {
      if (!std::isfinite(f)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "features of event ", cl.event[s], ": must be finite"));
      }
    }
  }

  // Propensities for the fixed-weight methods.
  std::vector<double> fixed_prop(K, 1.0);
  if (method == ClickMethod::kIpw && !c.propensities.empty()) {
    fixed_prop = c.propensities;
  } else if (method == ClickMethod::kRandomization ||
             (method == ClickMethod::kIpw && spec.propensity == "randomization")) {
    ASSIGN_OR_RETURN(fixed_prop, propensity::RandomizationPropensities(cl));
  }
  std::vector<double> fixed_w(K);
  for (int i = 0; i < K; ++i) fixed_w[i] = 1.0 / fixed_prop[i];

  // Split lists into training and validation (seeded).
  std::mt19937_64 rng(c.seed * 0x9e3779b97f4a7c15ULL + 0x5bd1e995);
  std::vector<uint32_t> all(cl.num_lists());
  std::iota(all.begin(), all.end(), 0u);
  std::shuffle(all.begin(), all.end(), rng);
  const size_t n_valid = static_cast<size_t>(c.valid_fraction * all.size());
  const bool needs_click = method != ClickMethod::kRegressionEm;
  std::vector<uint32_t> train_lists, valid_lists;
  uint64_t dropped = 0;
  for (size_t k = 0; k < all.size(); ++k) {
    if (needs_click && !ListHasClick(cl, all[k])) {
      ++dropped;
      continue;
    }
    (k < n_valid ? valid_lists : train_lists).push_back(all[k]);
  }
  if (train_lists.empty()) {
    return absl::FailedPreconditionError(
        "click log: no training list has a click");
  }

  // Standardisation from (up to 50,000) training documents, a prefix of the
  // shuffled training lists (a random sample).
  constexpr size_t kStandardizationRows = 50000;
  std::vector<float> sample;
  sample.reserve(kStandardizationRows * view.feature_dim);
  {
    size_t rows = 0;
    for (uint32_t q : train_lists) {
      for (int i = 1; i <= K && rows < kStandardizationRows; ++i) {
        const size_t s = cl.slot(q, i);
        if (!cl.mask[s]) continue;
        const auto f = view.FeaturesOf(cl.event[s]);
        sample.insert(sample.end(), f.begin(), f.end());
        ++rows;
      }
      if (rows >= kStandardizationRows) break;
    }
  }
  ASSIGN_OR_RETURN(RankerNet net, RankerNet::Create(view.feature_dim, c.hidden));
  {
    Eigen::VectorXf shift, scale;
    ComputeStandardization(sample.data(), sample.size() / view.feature_dim,
                           view.feature_dim, &shift, &scale);
    RETURN_IF_ERROR(net.SetStandardization(shift, scale));
    sample.clear();
    sample.shrink_to_fit();
  }
  net.InitRandom(rng());
  Optimizer opt(c.optimizer, net.num_params(), c.lr);

  // DLA propensity logits (float for the optimiser) and REM theta.
  Eigen::VectorXf g = Eigen::VectorXf::Zero(K);
  if (IsDla(method) && c.init_ctr) {
    // Warm start: the click-rate ratios underestimate the tail propensities
    // but put the logits within reach; from 0, Adagrad needs far more steps
    // to bring steep curves (eta = 2: p10 = 0.008) down, and the held-out
    // stopping rule ends training first.
    if (auto ctr = propensity::ClickRateRatios(cl); ctr.ok()) {
      for (int i = 0; i < K; ++i) {
        g[i] = static_cast<float>(std::log(std::max((*ctr)[i], 1e-3)));
      }
    }
  }
  Adagrad g_opt(K, c.propensity_lr);
  std::vector<double> theta(K, 0.5);
  propensity::PbmThetaAccumulator theta_acc(K);

  auto g_double = [&]() {
    std::vector<double> v(K);
    for (int i = 0; i < K; ++i) v[i] = g[i];
    return v;
  };
  auto current_curve = [&]() -> std::vector<double> {
    switch (method) {
      case ClickMethod::kDla: return propensity::DlaPropensities(g_double());
      case ClickMethod::kRegressionEm: {
        std::vector<double> p(K);
        for (int i = 0; i < K; ++i) p[i] = theta[i] / theta[0];
        return p;
      }
      default: return fixed_prop;
    }
  };

  BatchBuilder bb(view, cl);
  RankerWorkspace ws;
  Eigen::VectorXf grad(net.num_params());

  // Held-out criterion, lower is better.
  auto evaluate = [&](const std::vector<uint32_t>& lists) -> double {
    double total = 0.0, count = 0.0;
    const std::vector<double> gd = g_double();
    for (size_t b = 0; b < lists.size(); b += c.batch_size) {
      const int n = static_cast<int>(std::min<size_t>(c.batch_size, lists.size() - b));
      bb.Build(lists.data() + b, n);
      net.Forward(bb.x(), bb.rows(), &ws, bb.row_scores());
      bb.ScatterScores();
      const SlotBatch batch = bb.batch();
      switch (method) {
        case ClickMethod::kDla: {
          double clicks = 0.0;
          total -= propensity::DlaClickLogLikelihood(batch, gd, &clicks);
          count += clicks;
          break;
        }
        case ClickMethod::kRegressionEm:
          for (int r = 0; r < bb.rows(); ++r) {
            const double pc = std::clamp(
                theta[bb.row_position(r) - 1] * Sigmoid(bb.row_scores()[r]),
                1e-7, 1.0 - 1e-7);
            total -= bb.row_click(r) > 0 ? std::log(pc) : std::log1p(-pc);
            count += 1.0;
          }
          break;
        default: {
          // Weighted loss: un-normalise the batch mean by its weight.
          double weight = 0.0;
          for (int q = 0; q < n; ++q) {
            for (int i = 0; i < K; ++i) {
              const size_t s = static_cast<size_t>(q) * K + i;
              if (batch.mask[s]) weight += (batch.clicks[s] + propensity::kDlaDelta) * fixed_w[i];
            }
          }
          total += propensity::DlaRankerLoss(batch, fixed_w, propensity::kDlaDelta, {}) * weight;
          count += weight;
        }
      }
    }
    return count > 0 ? total / count : 0.0;
  };

  size_t cursor = train_lists.size();  // forces a shuffle at the first step
  std::vector<uint32_t> order = train_lists;
  Eigen::VectorXf best_params = net.params();
  Eigen::VectorXf best_g = g;
  std::vector<double> best_theta = theta;
  double best_criterion = std::numeric_limits<double>::infinity();
  int best_step = 0, since_best = 0, step = 0;
  nlohmann::json trace = nlohmann::json::array();
  double running_loss = 0.0;
  int running_n = 0;
  const bool validate = !valid_lists.empty();

  for (step = 1; step <= c.max_steps; ++step) {
    if (ctx.IsCancelled()) return absl::CancelledError("training cancelled");
    if (cursor + c.batch_size > order.size()) {
      std::shuffle(order.begin(), order.end(), rng);
      cursor = 0;
    }
    const int n = static_cast<int>(std::min<size_t>(c.batch_size, order.size()));
    bb.Build(order.data() + cursor, n);
    cursor += n;
    net.Forward(bb.x(), bb.rows(), &ws, bb.row_scores());
    bb.ScatterScores();
    const SlotBatch batch = bb.batch();
    double loss = 0.0;
    if (method == ClickMethod::kRegressionEm) {
      const float inv = 1.0f / std::max(1, bb.rows());
      for (int r = 0; r < bb.rows(); ++r) {
        const int k = bb.row_position(r);
        const double gamma = Sigmoid(bb.row_scores()[r]);
        const propensity::PbmPosterior post =
            propensity::PbmEStep(bb.row_click(r) > 0, theta[k - 1], gamma);
        theta_acc.Add(k, post.examined);
        bb.row_grad()[r] = static_cast<float>(gamma - post.relevant) * inv;
        const double gc = std::clamp(gamma, 1e-7, 1.0 - 1e-7);
        loss -= (post.relevant * std::log(gc) + (1 - post.relevant) * std::log1p(-gc)) * inv;
      }
    } else {
      const std::vector<double> w =
          IsDla(method) ? propensity::DlaWeights(g_double()) : fixed_w;
      loss = propensity::DlaRankerLoss(batch, w, propensity::kDlaDelta, bb.slot_grad());
      if (IsDla(method)) {
        std::vector<double> gg(K);
        const std::vector<double> gd = g_double();
        loss += propensity::DlaPropensityLoss(batch, gd, propensity::kDlaDelta,
                                              c.max_ratio, gg);
        Eigen::VectorXf gf(K);
        for (int i = 0; i < K; ++i) gf[i] = static_cast<float>(gg[i]);
        ClipGlobalNorm(&gf, c.max_grad_norm);
        g_opt.Step(&g, gf);
      }
      bb.GatherGrad();
    }
    grad.setZero();
    net.Backward(&ws, bb.row_grad(), &grad);
    if (c.l2 > 0) grad += static_cast<float>(c.l2) * net.params();
    ClipGlobalNorm(&grad, c.max_grad_norm);
    opt.Step(&net.params(), grad);
    if (!net.params().allFinite()) {
      return absl::InternalError(absl::StrCat(
          "training diverged at step ", step, " (non-finite parameters); lower lr"));
    }
    running_loss += loss;
    ++running_n;

    if (method == ClickMethod::kRegressionEm &&
        (step % c.em_update_every == 0 || step % c.eval_every == 0 ||
         step == c.max_steps)) {
      // M-step for theta from the posteriors of the steps since the last one.
      theta = theta_acc.Theta(theta);
      theta_acc = propensity::PbmThetaAccumulator(K);
    }
    if (step % c.eval_every == 0 || step == c.max_steps) {
      const double crit = validate ? evaluate(valid_lists) : running_loss / running_n;
      nlohmann::json point = {{"step", step},
                              {"train_loss", running_loss / running_n},
                              {"valid_criterion", crit}};
      if (IsDla(method) || method == ClickMethod::kRegressionEm) {
        point["position_propensities"] = current_curve();
      }
      trace.push_back(std::move(point));
      if (crit < best_criterion || !validate) {
        best_criterion = crit;
        best_step = step;
        best_params = net.params();
        best_g = g;
        best_theta = theta;
        since_best = 0;
      } else {
        ++since_best;
      }
      if (ctx.on_progress) {
        train::TrainProgress prog;
        prog.epoch = step / c.eval_every;
        prog.total_epochs = (c.max_steps + c.eval_every - 1) / c.eval_every;
        prog.loss = running_loss / running_n;
        prog.elapsed_seconds = std::chrono::duration<double>(
            std::chrono::steady_clock::now() - t0).count();
        prog.metrics["valid_criterion"] = crit;
        ctx.on_progress(prog);
      }
      running_loss = 0.0;
      running_n = 0;
      if (validate && since_best > c.patience) break;
    }
  }
  const int steps_run = std::min(step, c.max_steps);
  RETURN_IF_ERROR(net.SetParams(best_params));
  g = best_g;
  theta = best_theta;
  const std::vector<double> curve = current_curve();

  nlohmann::json diag;
  diag["position_propensities"] = curve;
  diag["method"] = std::string(ClickMethodName(method));
  if (auto naive = propensity::ClickRateRatios(cl); naive.ok()) {
    diag["click_rate_ratios"] = *naive;
  }
  if (method == ClickMethod::kRegressionEm) diag["theta"] = theta;
  if (IsDla(method)) diag["propensity_logits"] = g_double();
  diag["lists"] = cl.num_lists();
  diag["train_lists"] = train_lists.size();
  diag["valid_lists"] = valid_lists.size();
  diag["lists_without_clicks_dropped"] = dropped;
  diag["skipped_events"] = cl.skipped_events;
  diag["best_step"] = best_step;
  diag["steps"] = steps_run;
  diag["stopped_early"] = steps_run < c.max_steps;
  diag["trace"] = trace;
  result.diagnostics = std::move(diag);
  result.metrics["valid_criterion"] = best_criterion;
  result.metrics["best_step"] = best_step;
  result.metrics["steps"] = steps_run;
  result.model = RankerModel::Create(std::move(net));
  return result;
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
