#include "core/samplers/negative_sampler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace debias::samplers {
namespace {

class UniformSampler final : public NegativeSampler {
 public:
  explicit UniformSampler(std::shared_ptr<const PositiveIndex> pos)
      : NegativeSampler(std::move(pos)) {}
  std::string_view name() const override { return "uniform"; }
  double Weight(uint32_t, uint32_t) const override { return 1.0; }

 protected:
  uint32_t Propose(uint32_t, Rng& rng) const override {
    return static_cast<uint32_t>(UniformBelow(rng, num_items()));
  }
  double AcceptanceHint(uint32_t user) const override {
    return 1.0 - static_cast<double>(positives().Of(user).size()) / num_items();
  }
  absl::Status Draw(uint32_t user, std::span<uint32_t> out,
                    Rng& rng) const override {
    const uint64_t n = num_items();
    return RejectionLoop<true>(
        user, out, rng, [n](Rng& r) { return static_cast<uint32_t>(UniformBelow(r, n)); },
        [](uint32_t, Rng&) { return true; });
  }
};

class PopularitySampler final : public NegativeSampler {
 public:
  PopularitySampler(std::shared_ptr<const PositiveIndex> pos,
                    std::vector<double> weights, AliasTable table)
      : NegativeSampler(std::move(pos)),
        weights_(std::move(weights)),
        table_(std::move(table)) {
    double total = 0.0;
    for (double w : weights_) total += w;
    acceptance_.resize(num_users());
    for (uint32_t u = 0; u < num_users(); ++u) {
      double m = 0.0;
      for (uint32_t i : positives().Of(u)) m += weights_[i];
      acceptance_[u] = static_cast<float>(std::max(0.0, 1.0 - m / total));
    }
  }
  std::string_view name() const override { return "popularity"; }
  double Weight(uint32_t, uint32_t item) const override {
    return weights_[item];
  }

 protected:
  uint32_t Propose(uint32_t, Rng& rng) const override {
    return table_.Draw(rng);
  }
  double AcceptanceHint(uint32_t user) const override {
    return acceptance_[user];
  }
  absl::Status Draw(uint32_t user, std::span<uint32_t> out,
                    Rng& rng) const override {
    return RejectionLoop<true>(
        user, out, rng, [this](Rng& r) { return table_.Draw(r); },
        [](uint32_t, Rng&) { return true; });
  }

 private:
  std::vector<double> weights_;
  AliasTable table_;
  std::vector<float> acceptance_;
};

}  // namespace

PositiveIndex::PositiveIndex(const data::DatasetView& view,
                             uint64_t max_bitset_bits)
    : num_users_(static_cast<uint32_t>(view.num_users())),
      num_items_(static_cast<uint32_t>(view.num_items())) {
  offsets_.assign(num_users_ + 1, 0);
  items_.reserve(view.num_events());
  for (uint32_t u = 0; u < num_users_; ++u) {
    const auto [b, e] = view.UserRange(u);
    const size_t start = items_.size();
    for (uint64_t k = b; k < e; ++k) {
      if (view.label[k] > 0.0f) items_.push_back(view.item[k]);
    }
    std::sort(items_.begin() + start, items_.end());
    items_.erase(std::unique(items_.begin() + start, items_.end()), items_.end());
    offsets_[u + 1] = items_.size();
  }
  const uint64_t bits = uint64_t{num_users_} * num_items_;
  if (bits > 0 && bits <= max_bitset_bits) {
    bits_.assign((bits + 63) / 64, 0);
    for (uint32_t u = 0; u < num_users_; ++u) {
      for (uint32_t i : Of(u)) {
        const uint64_t b = uint64_t{u} * num_items_ + i;
        bits_[b >> 6] |= uint64_t{1} << (b & 63);
      }
    }
  }
}

std::shared_ptr<const PositiveIndex> BuildPositiveIndex(
    const data::DatasetView& view) {
  return std::make_shared<const PositiveIndex>(view);
}

absl::Status NegativeSampler::Sample(uint32_t user, std::span<uint32_t> out,
                                     Rng& rng) const {
  if (user >= num_users()) {
    return absl::NotFoundError(absl::StrCat("user=", user, ": must be in [0, ",
                                            num_users(), ")"));
  }
  if (out.size() > kMaxSamplesPerCall) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n=", out.size(), ": n must be in [0, ", kMaxSamplesPerCall, "]"));
  }
  if (out.empty()) return absl::OkStatus();
  if (num_items() == 0) {
    return absl::FailedPreconditionError("sampler: the dataset has no items");
  }
  if (AcceptanceHint(user) < kMinAcceptance) {
    return SampleFromComplement(user, out, rng);
  }
  return Draw(user, out, rng);
}

absl::Status NegativeSampler::Draw(uint32_t user, std::span<uint32_t> out,
                                   Rng& rng) const {
  return RejectionLoop<true>(
      user, out, rng, [&](Rng& r) { return Propose(user, r); },
      [&](uint32_t i, Rng& r) { return Accept(user, i, r); });
}

absl::StatusOr<std::vector<uint32_t>> NegativeSampler::Sample(uint32_t user,
                                                              size_t n,
                                                              Rng& rng) const {
  if (n > kMaxSamplesPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("n=", n, ": n must be in [0, ", kMaxSamplesPerCall, "]"));
  }
  std::vector<uint32_t> out(n);
  if (absl::Status st = Sample(user, std::span<uint32_t>(out), rng); !st.ok()) {
    return st;
  }
  return out;
}

absl::Status NegativeSampler::SampleFromComplement(uint32_t user,
                                                   std::span<uint32_t> out,
                                                   Rng& rng) const {
  const PositiveIndex& pos = *positives_;
  const std::span<const uint32_t> p = pos.Of(user);
  std::vector<uint32_t> items;
  std::vector<double> cum;
  items.reserve(num_items() - p.size());
  cum.reserve(num_items() - p.size());
  double total = 0.0;
  size_t next_pos = 0;
  for (uint32_t i = 0; i < num_items(); ++i) {
    if (next_pos < p.size() && p[next_pos] == i) {
      ++next_pos;
      continue;
    }
    const double w = Weight(user, i);
    if (!(w > 0.0) || !std::isfinite(w)) continue;
    total += w;
    items.push_back(i);
    cum.push_back(total);
  }
  if (items.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "user=", user, ": no negative item to sample (", p.size(),
        " of ", num_items(), " items are positives and the rest have weight 0)"));
  }
  for (uint32_t& o : out) {
    const double x = UniformUnit(rng) * total;
    size_t k = std::upper_bound(cum.begin(), cum.end(), x) - cum.begin();
    o = items[std::min(k, items.size() - 1)];
  }
  return absl::OkStatus();
}

std::unique_ptr<NegativeSampler> MakeUniformSampler(
    const data::DatasetView& view) {
  return std::make_unique<UniformSampler>(BuildPositiveIndex(view));
}

absl::StatusOr<std::unique_ptr<NegativeSampler>> MakePopularitySampler(
    const data::DatasetView& view, double power) {
  if (!(power >= 0.0 && power <= 10.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("power=", power, ": power must be in [0, 10]"));
  }
  if (view.num_items() == 0) {
    return absl::FailedPreconditionError("popularity sampler: no items");
  }
  std::vector<double> counts(view.num_items(), 0.0);
  for (size_t e = 0; e < view.num_events(); ++e) {
    if (view.label[e] > 0.0f) counts[view.item[e]] += 1.0;
  }
  for (double& c : counts) c = power == 0.0 ? 1.0 : std::pow(c, power);
  auto table = AliasTable::Build(counts);
  if (!table.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "popularity sampler: no item has a positive weight (",
        table.status().message(), ")"));
  }
  return std::make_unique<PopularitySampler>(
      BuildPositiveIndex(view), std::move(counts), std::move(*table));
}

}  // namespace debias::samplers
