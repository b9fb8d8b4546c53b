// logged estimator, see estimators.h.
#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/propensity/estimators.h"

namespace debias::propensity {
namespace {

class Logged final : public Estimator {
 public:
  Logged(absl::flat_hash_map<uint64_t, float> pairs, float fallback,
         uint64_t events)
      : pairs_(std::move(pairs)), fallback_(fallback), events_(events) {}
  std::string_view name() const override { return "logged"; }
  float Pair(uint32_t u, uint32_t i, int) const override {
    auto it = pairs_.find((uint64_t{u} << 32) | i);
    return it == pairs_.end() ? fallback_ : it->second;
  }
  float Event(const data::DatasetView& view, size_t e, int label) const override {
    if (e < view.propensity.size()) {
      float p = view.propensity[e];
      if (p > 0 && p <= 1 && std::isfinite(p)) return p;
    }
    return Pair(view.user[e], view.item[e], label);
  }
  nlohmann::json Describe() const override {
    return {{"fallback", fallback_}, {"pairs", pairs_.size()},
            {"logged_events", events_}};
  }

 private:
  absl::flat_hash_map<uint64_t, float> pairs_;
  float fallback_;
  uint64_t events_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Estimator>> FitLogged(
    const data::DatasetView& train, const LoggedOptions& opts) {
  if (!train.has_propensities()) {
    return absl::FailedPreconditionError(
        "logged: the training events carry no logged propensity");
  }
  if (opts.fallback && !(*opts.fallback > 0 && *opts.fallback <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fallback=", *opts.fallback, ": fallback must be in (0, 1]"));
  }
  absl::flat_hash_map<uint64_t, std::pair<double, uint32_t>> acc;
  float min_p = 1.0f;
  uint64_t events = 0;
  for (size_t e = 0; e < train.num_events(); ++e) {
    float p = train.propensity[e];
    if (p == 0.0f) continue;  // this event has none
    if (!(p > 0 && p <= 1) || !std::isfinite(p)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "logged: event ", e, " has propensity ", p, "; it must be in (0, 1]"));
    }
    auto& a = acc[(uint64_t{train.user[e]} << 32) | train.item[e]];
    a.first += p;
    ++a.second;
    min_p = std::min(min_p, p);
    ++events;
  }
  absl::flat_hash_map<uint64_t, float> pairs;
  pairs.reserve(acc.size());
  for (const auto& [k, a] : acc) pairs[k] = static_cast<float>(a.first / a.second);
  float fallback = opts.fallback ? static_cast<float>(*opts.fallback) : min_p;
  return std::unique_ptr<Estimator>(new Logged(std::move(pairs), fallback, events));
}

}  // namespace debias::propensity
