// impressions estimator, see estimators.h.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"

namespace debias::propensity {
namespace {

class Impressions final : public Estimator {
 public:
  Impressions(std::vector<float> p, float floor, uint64_t users)
      : p_(std::move(p)), floor_(floor), users_(users) {}
  std::string_view name() const override { return "impressions"; }
  float Pair(uint32_t, uint32_t item, int) const override {
    return item < p_.size() ? p_[item] : floor_;
  }
  nlohmann::json Describe() const override {
    return {{"floor", floor_}, {"users", users_}, {"items", p_.size()}};
  }

 private:
  std::vector<float> p_;
  float floor_;
  uint64_t users_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> FitImpressions(const data::DatasetView& train) {
  const size_t nu = train.num_users(), ni = train.num_items();
  if (nu == 0 || ni == 0 || train.num_events() == 0) {
    return absl::FailedPreconditionError("impressions: the training view has no events");
  }
  // Users exposed to each item: every event (click or impression) is an
  // exposure; a user's repeats of one item count once.
  std::vector<uint64_t> n(ni, 0);
  std::vector<uint32_t> last(ni, UINT32_MAX);
  for (uint32_t u = 0; u < nu; ++u) {
    auto [b, e] = train.UserRange(u);
    for (uint64_t k = b; k < e; ++k) {
      const uint32_t i = train.item[k];
      if (i < ni && last[i] != u) {
        last[i] = u;
        ++n[i];
      }
    }
  }
  const float floor = static_cast<float>(0.5 / static_cast<double>(nu));
  std::vector<float> p(ni);
  for (size_t i = 0; i < ni; ++i) {
    p[i] = std::clamp(static_cast<float>(static_cast<double>(n[i]) / nu), floor, 1.0f);
  }
  return std::unique_ptr<Estimator>(new Impressions(std::move(p), floor, nu));
}

}  // namespace debias::propensity
