#include "core/synth/kb_world.h"

#include <cmath>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"

namespace debias::synth {

absl::StatusOr<KbWorld> MakeKbWorld(const KbWorldOptions& o) {
  if (o.users == 0 || o.items == 0 || o.users > (1u << 24) || o.items > (1u << 24)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "users=", o.users, ", items=", o.items, ": both must be in [1, 2^24]"));
  }
  const double grid = double(o.users) * o.items;
  if (o.events == 0 || o.events > grid / 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events=", o.events, ": must be in [1, users * items / 2]"));
  }
  if (o.test_per_user > o.items) {
    return absl::InvalidArgumentError(absl::StrCat(
        "test_per_user=", o.test_per_user, ": must be <= items"));
  }
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> g(0.0, 1.0 / std::sqrt(3.0));
  std::normal_distribution<double> gb(0.0, o.item_sd);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  constexpr int kDim = 3;
  std::vector<double> p(size_t(o.users) * kDim), q(size_t(o.items) * kDim), b(o.items),
      pop(o.items);
  for (double& x : p) x = g(rng);
  for (double& x : q) x = g(rng);
  for (uint32_t i = 0; i < o.items; ++i) {
    b[i] = gb(rng);
    const double r = u01(rng);
    pop[i] = std::max(r * r, 1e-3);
  }
  auto truth = [&](uint32_t u, uint32_t i) {
    double s = b[i];
    for (int k = 0; k < kDim; ++k) s += p[size_t(u) * kDim + k] * q[size_t(i) * kDim + k];
    return 1.0 / (1.0 + std::exp(-(o.scale * s + o.shift)));
  };
  // Normalising constant from the expected count under the truth.
  double m_pos = 0.0, m_neg = 0.0;
  std::vector<double> f_pos(o.items), f_neg(o.items);
  for (uint32_t i = 0; i < o.items; ++i) {
    f_pos[i] = o.pos_boost * std::pow(pop[i], o.pos_popularity);
    f_neg[i] = std::pow(pop[i], o.neg_popularity);
    m_pos += f_pos[i] / o.items;
    m_neg += f_neg[i] / o.items;
  }
  // E[#observed] ~ c * grid * (P(y=1) m_pos + P(y=0) m_neg), P(y=1) ~ 0.5.
  const double c = double(o.events) / (grid * 0.5 * (m_pos + m_neg));
  data::DatasetViewBuilder builder;
  builder.Reserve(o.events + o.events / 4);
  KbWorld w;
  std::vector<uint32_t> pick(o.items);
  for (uint32_t u = 0; u < o.users; ++u) {
    for (uint32_t i = 0; i < o.items; ++i) {
      // Draw the observation first from an upper bound, then thin, so the
      // truth is only evaluated for candidate pairs.
      const double hi = c * std::max(f_pos[i], f_neg[i]);
      if (u01(rng) >= std::min(1.0, hi)) continue;
      const bool y = u01(rng) < truth(u, i);
      if (u01(rng) * hi >= c * (y ? f_pos[i] : f_neg[i])) continue;
      builder.Add(u, i, y ? 5.0f : 1.0f, std::nullopt, data::kNoList, std::nullopt,
                  std::nullopt, {});
    }
    // MCAR test: test_per_user distinct items (partial Fisher-Yates).
    for (uint32_t i = 0; i < o.items; ++i) pick[i] = i;
    for (uint32_t k = 0; k < o.test_per_user; ++k) {
      std::uniform_int_distribution<uint32_t> d(k, o.items - 1);
      std::swap(pick[k], pick[d(rng)]);
      const bool y = u01(rng) < truth(u, pick[k]);
      w.test_user.push_back(u);
      w.test_item.push_back(pick[k]);
      w.test_label.push_back(y ? 1.0f : 0.0f);
      w.mcar_pos_rate += y;
    }
  }
  if (!w.test_label.empty()) w.mcar_pos_rate /= w.test_label.size();
  std::vector<std::string> uk(o.users), ik(o.items);
  for (uint32_t k = 0; k < o.users; ++k) uk[k] = absl::StrCat("u", k);
  for (uint32_t k = 0; k < o.items; ++k) ik[k] = absl::StrCat("i", k);
  auto v = builder.Finish(std::move(uk), std::move(ik), {}, 1);
  if (!v.ok()) return v.status();
  w.train = std::move(*v);
  return w;
}

}  // namespace debias::synth
