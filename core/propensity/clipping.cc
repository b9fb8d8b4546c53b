// Clipping wrapper, see estimators.h.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"

namespace debias::propensity {
namespace {

class Clipped final : public Estimator {
 public:
  Clipped(std::unique_ptr<Estimator> inner, double m)
      : inner_(std::move(inner)), m_(static_cast<float>(m)),
        name_(absl::StrCat("clipped(", std::string(inner_->name()), ")")) {}
  std::string_view name() const override { return name_; }
  float Pair(uint32_t u, uint32_t i, int label) const override {
    return std::max(inner_->Pair(u, i, label), m_);
  }
  float Event(const data::DatasetView& view, size_t e, int label) const override {
    return std::max(inner_->Event(view, e, label), m_);
  }
  std::optional<double> clip() const override { return m_; }
  const Estimator& unclipped() const override { return inner_->unclipped(); }
  nlohmann::json Describe() const override {
    nlohmann::json j = inner_->Describe();
    j["inner"] = std::string(inner_->name());
    j["clip"] = m_;
    return j;
  }

 private:
  std::unique_ptr<Estimator> inner_;
  float m_;
  std::string name_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> Clip(std::unique_ptr<Estimator> inner,
                                                double m) {
  if (!(m > 0 && m <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip=", m, ": clip must be in (0, 1]"));
  }
  if (inner == nullptr) return absl::InternalError("Clip: null estimator");
  return std::unique_ptr<Estimator>(new Clipped(std::move(inner), m));
}

}  // namespace debias::propensity
