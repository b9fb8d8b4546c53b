// logistic-regression estimator, see estimators.h.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"
#include "core/propensity/pair_index.h"

namespace debias::propensity {
namespace {

inline double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Parameter layout: [bias | w_user (nu) | w_item (ni) | a (du) | c (di)].
class Logistic final : public Estimator {
 public:
  Logistic(std::vector<float> w, uint32_t nu, uint32_t ni, bool use_ids,
           SideFeatures uf, SideFeatures itf, float correction, float floor,
           nlohmann::json info)
      : w_(std::move(w)), nu_(nu), ni_(ni), use_ids_(use_ids), uf_(std::move(uf)),
        if_(std::move(itf)), correction_(correction), floor_(floor),
        info_(std::move(info)) {}
  std::string_view name() const override { return "logistic"; }
  float Pair(uint32_t u, uint32_t i, int) const override {
    double z = Logit(u, i) + correction_;
    return static_cast<float>(std::clamp(Sigmoid(z), double{floor_}, 1.0));
  }
  nlohmann::json Describe() const override { return info_; }

  double Logit(uint32_t u, uint32_t i) const {
    double z = w_[0];
    const bool ku = u < nu_, ki = i < ni_;
    if (use_ids_) {
      if (ku) z += w_[1 + u];
      if (ki) z += w_[1 + nu_ + i];
    }
    size_t off = 1 + nu_ + ni_;
    if (uf_.dim && ku) {
      const float* x = uf_.values.data() + size_t{u} * uf_.dim;
      for (int k = 0; k < uf_.dim; ++k) z += w_[off + k] * x[k];
    }
    off += uf_.dim;
    if (if_.dim && ki) {
      const float* x = if_.values.data() + size_t{i} * if_.dim;
      for (int k = 0; k < if_.dim; ++k) z += w_[off + k] * x[k];
    }
    return z;
  }

 private:
  std::vector<float> w_;
  uint32_t nu_, ni_;
  bool use_ids_;
  SideFeatures uf_, if_;
  float correction_, floor_;
  nlohmann::json info_;
};

absl::Status CheckFeatures(const SideFeatures* f, size_t rows, const char* what) {
  if (f == nullptr) return absl::OkStatus();
  if (f->dim < 0 || f->dim > 100000 ||
      f->values.size() != rows * static_cast<size_t>(f->dim)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", f->values.size(), " values for ", rows, " rows of dim ",
        f->dim, "; need rows x dim"));
  }
  for (float v : f->values) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": non-finite value"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> FitLogistic(
    const data::DatasetView& train, const LogisticOptions& o) {
  if (!(o.l2 >= 0 && o.l2 <= 10))
    return absl::InvalidArgumentError(absl::StrCat("l2=", o.l2, ": l2 must be in [0, 10]"));
  if (!(o.lr > 0 && o.lr <= 10))
    return absl::InvalidArgumentError(absl::StrCat("lr=", o.lr, ": lr must be in (0, 10]"));
  if (o.epochs < 1 || o.epochs > 10000)
    return absl::InvalidArgumentError(
        absl::StrCat("epochs=", o.epochs, ": epochs must be in [1, 10000]"));
  if (!(o.neg_ratio > 0 && o.neg_ratio <= 1000))
    return absl::InvalidArgumentError(
        absl::StrCat("neg_ratio=", o.neg_ratio, ": neg_ratio must be in (0, 1000]"));
  if (o.batch_size < 1 || o.batch_size > (1 << 20))
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size=", o.batch_size, ": batch_size must be in [1, 1048576]"));
  if (!(o.min_propensity > 0 && o.min_propensity < 1))
    return absl::InvalidArgumentError(absl::StrCat(
        "min_propensity=", o.min_propensity, ": min_propensity must be in (0, 1)"));
  const uint32_t nu = train.num_users(), ni = train.num_items();
  if (auto st = CheckFeatures(o.user_features, nu, "user_features"); !st.ok()) return st;
  if (auto st = CheckFeatures(o.item_features, ni, "item_features"); !st.ok()) return st;
  SideFeatures uf = o.user_features ? *o.user_features : SideFeatures{};
  SideFeatures itf = o.item_features ? *o.item_features : SideFeatures{};
  if (!o.use_ids && uf.dim == 0 && itf.dim == 0) {
    return absl::InvalidArgumentError(
        "logistic: use_ids=false needs user or item side features");
  }
  PairIndex observed = PairIndex::Build(train);
  const double grid = static_cast<double>(nu) * ni;
  const double n_obs = observed.size();
  if (n_obs == 0) return absl::FailedPreconditionError("logistic: empty training view");
  if (grid - n_obs < 1) {
    return absl::FailedPreconditionError(
        "logistic: every pair is observed; there are no negatives to fit against");
  }

  const size_t np = 1 + nu + ni + uf.dim + itf.dim;
  std::vector<float> w(np, 0.0f), m(np, 0.0f), v(np, 0.0f), g(np, 0.0f);
  std::vector<uint8_t> touched(np, 0);
  std::vector<uint32_t> touched_list;
  // Start at the observed rate so early steps are not spent on the intercept.
  const size_t n_neg = std::max<size_t>(1, static_cast<size_t>(o.neg_ratio * n_obs));
  w[0] = static_cast<float>(std::log(n_obs / n_neg));

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<uint32_t> du(0, nu - 1), di(0, ni - 1);
  struct Sample { uint32_t u, i; float y; };
  std::vector<Sample> samples;
  samples.reserve(train.num_events() + n_neg);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  int64_t t = 0;
  double last_loss = 0;
  for (int epoch = 0; epoch < o.epochs; ++epoch) {
    samples.clear();
    for (size_t e = 0; e < train.num_events(); ++e)
      samples.push_back({train.user[e], train.item[e], 1.0f});
    for (size_t k = 0; k < n_neg; ++k) {
      uint32_t u, i;
      int tries = 0;
      do {
        u = du(rng);
        i = di(rng);
      } while (observed.Contains(u, i) && ++tries < 1000);
      samples.push_back({u, i, 0.0f});
    }
    std::shuffle(samples.begin(), samples.end(), rng);
    double loss_sum = 0;
    for (size_t start = 0; start < samples.size(); start += o.batch_size) {
      size_t end = std::min(samples.size(), start + o.batch_size);
      const float inv_b = 1.0f / (end - start);
      auto add = [&](uint32_t idx, float val) {
        if (!touched[idx]) {
          touched[idx] = 1;
          touched_list.push_back(idx);
        }
        g[idx] += val;
      };
      for (size_t k = start; k < end; ++k) {
        const Sample& s = samples[k];
        // Score with the current weights (w is the live vector).
        double z = w[0];
        if (o.use_ids) z += w[1 + s.u] + w[1 + nu + s.i];
        size_t off = 1 + nu + ni;
        for (int d = 0; d < uf.dim; ++d) z += w[off + d] * uf.values[size_t{s.u} * uf.dim + d];
        off += uf.dim;
        for (int d = 0; d < itf.dim; ++d) z += w[off + d] * itf.values[size_t{s.i} * itf.dim + d];
        double p = Sigmoid(z);
        loss_sum += -(s.y * std::log(std::max(p, 1e-12)) +
                      (1 - s.y) * std::log(std::max(1 - p, 1e-12)));
        float r = static_cast<float>(p - s.y) * inv_b;
        add(0, r);
        if (o.use_ids) {
          add(1 + s.u, r);
          add(1 + nu + s.i, r);
        }
        off = 1 + nu + ni;
        for (int d = 0; d < uf.dim; ++d) add(off + d, r * uf.values[size_t{s.u} * uf.dim + d]);
        off += uf.dim;
        for (int d = 0; d < itf.dim; ++d) add(off + d, r * itf.values[size_t{s.i} * itf.dim + d]);
      }
      ++t;
      const float c1 = 1.0f - std::pow(b1, t), c2 = 1.0f - std::pow(b2, t);
      for (uint32_t idx : touched_list) {
        float gi = g[idx] + (idx == 0 ? 0.0f : static_cast<float>(o.l2) * w[idx]);
        m[idx] = b1 * m[idx] + (1 - b1) * gi;
        v[idx] = b2 * v[idx] + (1 - b2) * gi * gi;
        w[idx] -= static_cast<float>(o.lr) * (m[idx] / c1) /
                  (std::sqrt(v[idx] / c2) + eps);
        g[idx] = 0;
        touched[idx] = 0;
      }
      touched_list.clear();
    }
    last_loss = loss_sum / samples.size();
  }
  const double correction = std::log(n_neg / (grid - n_obs));
  nlohmann::json info = {{"epochs", o.epochs},         {"l2", o.l2},
                         {"lr", o.lr},                 {"neg_ratio", o.neg_ratio},
                         {"intercept", w[0]},          {"subsampling_correction", correction},
                         {"final_train_log_loss", last_loss},
                         {"use_ids", o.use_ids},       {"user_feature_dim", uf.dim},
                         {"item_feature_dim", itf.dim}};
  return std::unique_ptr<Estimator>(new Logistic(
      std::move(w), nu, ni, o.use_ids, std::move(uf), std::move(itf),
      static_cast<float>(correction), static_cast<float>(o.min_propensity),
      std::move(info)));
}

}  // namespace debias::propensity
