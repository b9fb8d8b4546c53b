#include "core/samplers/nbpo_sampler.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace debias::samplers {
namespace {

double Sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}
double Softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

class NbpoSampler final : public NegativeSampler {
 public:
  NbpoSampler(std::shared_ptr<const PositiveIndex> pos, NbpoFactors f,
              uint64_t max_table_entries)
      : NegativeSampler(std::move(pos)), f_(std::move(f)) {
    const uint64_t entries = uint64_t{num_users()} * num_items();
    if (entries == 0 || entries > max_table_entries) return;
    // Dense table of w(u, i): one matrix-vector product per user instead of
    // two dot products per proposal.
    table_.resize(entries);
    Eigen::VectorXf x(num_items()), gamma(num_items());
    for (uint32_t u = 0; u < num_users(); ++u) {
      x.noalias() = f_.item_factors * f_.user_factors.row(u).transpose();
      gamma.noalias() = f_.item_flip * f_.user_flip.row(u).transpose();
      float* row = table_.data() + uint64_t{u} * num_items();
      for (uint32_t i = 0; i < num_items(); ++i) {
        row[i] = static_cast<float>(Sigmoid(Softplus(-gamma[i]) - x[i]));
      }
    }
  }
  std::string_view name() const override { return "nbpo"; }
  double Weight(uint32_t user, uint32_t item) const override {
    if (!table_.empty()) return table_[uint64_t{user} * num_items() + item];
    return NbpoTrueNegativeProbability(f_, user, item);
  }

 protected:
  uint32_t Propose(uint32_t, Rng& rng) const override {
    return static_cast<uint32_t>(UniformBelow(rng, num_items()));
  }
  bool Accept(uint32_t user, uint32_t item, Rng& rng) const override {
    return UniformUnit(rng) < Weight(user, item);
  }
  double AcceptanceHint(uint32_t user) const override {
    return 1.0 - static_cast<double>(positives().Of(user).size()) / num_items();
  }

 private:
  NbpoFactors f_;
  std::vector<float> table_;  // users x items, row-major; empty = on the fly
};

bool AllFinite(const FactorMatrix& m) { return m.array().isFinite().all(); }

}  // namespace

double NbpoTrueNegativeProbability(const NbpoFactors& f, uint32_t user,
                                   uint32_t item) {
  const double x = f.user_factors.row(user).dot(f.item_factors.row(item));
  const double gamma = f.user_flip.row(user).dot(f.item_flip.row(item));
  // (1-r)/((1-r)+rg) = 1/(1 + e^x g) = sigma(-x - log g), log g = -softplus(-gamma)
  return Sigmoid(Softplus(-gamma) - x);
}

absl::Status ValidateNbpoFactorShapes(const NbpoFactors& f, const std::string& who) {
  if (f.user_factors.cols() != f.item_factors.cols() ||
      f.user_flip.cols() != f.item_flip.cols() ||
      f.user_factors.rows() != f.user_flip.rows() ||
      f.item_factors.rows() != f.item_flip.rows() ||
      f.user_factors.cols() == 0 || f.user_flip.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": factor shapes disagree: U ", f.user_factors.rows(), "x",
        f.user_factors.cols(), ", V ", f.item_factors.rows(), "x",
        f.item_factors.cols(), ", P ", f.user_flip.rows(), "x",
        f.user_flip.cols(), ", Q ", f.item_flip.rows(), "x",
        f.item_flip.cols()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NegativeSampler>> MakeNbpoSampler(
    const data::DatasetView& view, NbpoFactors f, uint64_t max_table_entries) {
  if (absl::Status s = ValidateNbpoFactorShapes(f, "nbpo sampler"); !s.ok()) return s;
  if (!AllFinite(f.user_factors) || !AllFinite(f.item_factors) ||
      !AllFinite(f.user_flip) || !AllFinite(f.item_flip)) {
    return absl::InvalidArgumentError("nbpo sampler: factors hold NaN or inf");
  }
  if (static_cast<size_t>(f.user_factors.rows()) != view.num_users() ||
      static_cast<size_t>(f.item_factors.rows()) != view.num_items()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nbpo sampler: the model has ", f.user_factors.rows(), " users and ",
        f.item_factors.rows(), " items but the dataset view has ",
        view.num_users(), " users and ", view.num_items(),
        " items; train the model on this dataset version"));
  }
  if (view.num_items() == 0) {
    return absl::FailedPreconditionError("nbpo sampler: no items");
  }
  return std::make_unique<NbpoSampler>(BuildPositiveIndex(view), std::move(f),
                                       max_table_entries);
}

}  // namespace debias::samplers
