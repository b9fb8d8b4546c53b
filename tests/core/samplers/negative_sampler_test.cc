#include "core/samplers/negative_sampler.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "core/samplers/alias_table.h"
#include "core/samplers/nbpo_sampler.h"
#include "core/samplers/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::samplers {
namespace {

using ::debias::testing::StatusIs;

// Builds a view with dense ids from per-user (item, label) lists.
data::DatasetView MakeView(
    const std::vector<std::vector<std::pair<uint32_t, float>>>& rows,
    uint32_t num_items) {
  data::DatasetViewBuilder b;
  std::vector<std::string> uk, ik;
  for (uint32_t u = 0; u < rows.size(); ++u) {
    uk.push_back("u" + std::to_string(u));
    for (auto [i, l] : rows[u]) {
      b.Add(u, i, l, std::nullopt, data::kNoList, std::nullopt, std::nullopt, {});
    }
  }
  for (uint32_t i = 0; i < num_items; ++i) ik.push_back("i" + std::to_string(i));
  auto v = b.Finish(uk, ik, {}, 1);
  EXPECT_TRUE(v.ok()) << v.status();
  return std::move(*v);
}

// Draws n samples for `user` and returns per-item frequencies.
std::vector<double> Frequencies(const NegativeSampler& s, uint32_t user,
                                size_t n, uint64_t seed) {
  Rng rng(seed);
  auto draws = s.Sample(user, n, rng);
  EXPECT_TRUE(draws.ok()) << draws.status();
  std::vector<double> f(s.num_items(), 0.0);
  for (uint32_t i : *draws) f[i] += 1.0 / n;
  return f;
}

// Every item's frequency within 5 binomial standard deviations (plus a
// hair) of p_i = w_i / sum over non-positives; positives never drawn.
void ExpectMatches(const std::vector<double>& freq,
                   const std::vector<double>& weight,
                   const std::vector<bool>& positive, size_t n) {
  double total = 0.0;
  for (size_t i = 0; i < weight.size(); ++i) {
    if (!positive[i]) total += weight[i];
  }
  for (size_t i = 0; i < weight.size(); ++i) {
    if (positive[i]) {
      EXPECT_EQ(freq[i], 0.0) << "positive item " << i << " was drawn";
      continue;
    }
    const double p = weight[i] / total;
    const double sd = std::sqrt(p * (1 - p) / n);
    EXPECT_NEAR(freq[i], p, 5 * sd + 1e-9) << "item " << i;
  }
}

TEST(AliasTableTest, DrawsInProportionAndNeverZeroWeights) {
  const std::vector<double> w = {1, 2, 3, 0, 4};
  auto t = AliasTable::Build(w);
  ASSERT_OK(t);
  Rng rng(7);
  const int n = 200000;
  std::vector<double> f(5, 0);
  for (int k = 0; k < n; ++k) f[t->Draw(rng)] += 1.0 / n;
  EXPECT_EQ(f[3], 0.0);
  for (int i : {0, 1, 2, 4}) {
    const double p = w[i] / 10.0;
    EXPECT_NEAR(f[i], p, 5 * std::sqrt(p * (1 - p) / n)) << i;
  }
}

TEST(AliasTableTest, RejectsBadWeights) {
  EXPECT_THAT(AliasTable::Build({}), StatusIs(absl::StatusCode::kInvalidArgument, "weights.size()=0"));
  const std::vector<double> neg = {1, -1};
  EXPECT_THAT(AliasTable::Build(neg), StatusIs(absl::StatusCode::kInvalidArgument, "weights[1]=-1"));
  const std::vector<double> nan = {1, NAN};
  EXPECT_THAT(AliasTable::Build(nan), StatusIs(absl::StatusCode::kInvalidArgument, "weights[1]"));
  const std::vector<double> zero = {0, 0};
  EXPECT_THAT(AliasTable::Build(zero), StatusIs(absl::StatusCode::kFailedPrecondition, "sum to 0"));
}

TEST(PositiveIndexTest, BitsetAndSortedListsAgree) {
  auto view = MakeView({{{3, 1}, {1, 1}, {3, 1}, {5, 0}}, {}, {{0, 1}, {6, 1}}}, 7);
  PositiveIndex dense(view);
  PositiveIndex sparse(view, /*max_bitset_bits=*/0);
  for (uint32_t u = 0; u < 3; ++u) {
    for (uint32_t i = 0; i < 7; ++i) {
      EXPECT_EQ(dense.Contains(u, i), sparse.Contains(u, i)) << u << "," << i;
    }
  }
  EXPECT_TRUE(sparse.Contains(0, 3));
  EXPECT_FALSE(sparse.Contains(0, 5));  // label 0 is an observed negative
  EXPECT_THAT(std::vector<uint32_t>(sparse.Of(0).begin(), sparse.Of(0).end()),
              ::testing::ElementsAre(1, 3));
  EXPECT_TRUE(sparse.Of(1).empty());
}

TEST(UniformSamplerTest, UniformOverNonPositivesWithinTolerance) {
  auto view = MakeView({{{1, 1}, {3, 1}, {5, 1}, {7, 0}}, {{0, 1}}}, 10);
  auto s = MakeUniformSampler(view);
  EXPECT_EQ(s->name(), "uniform");
  const size_t n = 100000;
  std::vector<bool> pos(10, false);
  pos[1] = pos[3] = pos[5] = true;
  ExpectMatches(Frequencies(*s, 0, n, 1), std::vector<double>(10, 1.0), pos, n);
}

TEST(PopularitySamplerTest, FollowsCountToThePower) {
  // Item counts over all users: item0 4, item1 3, item2 2, item3 1, item4 0.
  auto view = MakeView({{{0, 1}, {1, 1}, {2, 1}, {3, 1}},
                        {{0, 1}, {1, 1}, {2, 1}},
                        {{0, 1}, {1, 1}},
                        {{0, 1}}},
                       5);
  const std::vector<double> counts = {4, 3, 2, 1, 0};
  for (double power : {0.5, 1.0, 2.0}) {
    auto s = MakePopularitySampler(view, power);
    ASSERT_OK(s);
    std::vector<double> w;
    for (double c : counts) w.push_back(std::pow(c, power));
    const size_t n = 100000;
    // user 3 owns item 0: draws among items 1..3 (item 4 has weight 0).
    std::vector<bool> pos = {true, false, false, false, false};
    ExpectMatches(Frequencies(**s, 3, n, 11), w, pos, n);
    EXPECT_DOUBLE_EQ((*s)->Weight(3, 2), std::pow(2.0, power));
  }
  // power 0 is uniform, cold items included.
  auto s0 = MakePopularitySampler(view, 0.0);
  ASSERT_OK(s0);
  const size_t n = 100000;
  ExpectMatches(Frequencies(**s0, 3, n, 5), std::vector<double>(5, 1.0),
                {true, false, false, false, false}, n);
}

TEST(PopularitySamplerTest, RejectsBadPowerAndUsersWithOnlyZeroWeightLeft) {
  auto view = MakeView({{{0, 1}, {1, 1}}, {{0, 1}}}, 3);
  EXPECT_THAT(MakePopularitySampler(view, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "power=-1"));
  EXPECT_THAT(MakePopularitySampler(view, NAN),
              StatusIs(absl::StatusCode::kInvalidArgument, "power"));
  auto s = MakePopularitySampler(view, 1.0);
  ASSERT_OK(s);
  Rng rng(1);
  // User 0 owns items 0 and 1; item 2 has no positive, hence weight 0.
  EXPECT_THAT((*s)->Sample(0, 5, rng),
              StatusIs(absl::StatusCode::kFailedPrecondition, "user=0"));
  auto d = (*s)->Sample(1, 1000, rng);
  ASSERT_OK(d);
  for (uint32_t i : *d) EXPECT_EQ(i, 1u);
}

TEST(NegativeSamplerTest, NearFullAndFullUsers) {
  const uint32_t n_items = 200;
  std::vector<std::pair<uint32_t, float>> all, all_but_one, all_but_two;
  for (uint32_t i = 0; i < n_items; ++i) {
    all.push_back({i, 1});
    if (i != 17) all_but_one.push_back({i, 1});
    if (i != 3 && i != 150) all_but_two.push_back({i, 1});
  }
  // A second user makes item popularity non-trivial.
  auto view = MakeView({all, all_but_one, all_but_two, {{3, 1}, {3, 1}}}, n_items);
  auto uni = MakeUniformSampler(view);
  auto pop = MakePopularitySampler(view, 1.0);
  ASSERT_OK(pop);
  for (const NegativeSampler* s : {uni.get(), pop->get()}) {
    Rng rng(3);
    EXPECT_THAT(s->Sample(0, 10, rng),
                StatusIs(absl::StatusCode::kFailedPrecondition, "no negative"))
        << s->name();
    auto one = s->Sample(1, 1000, rng);
    ASSERT_OK(one);
    for (uint32_t i : *one) EXPECT_EQ(i, 17u);
    auto two = s->Sample(2, 40000, rng);
    ASSERT_OK(two);
    int c3 = 0;
    for (uint32_t i : *two) {
      ASSERT_TRUE(i == 3 || i == 150) << i;
      c3 += (i == 3);
    }
    // Item 3 has 4 positive events (users 0, 1 and twice user 3), item 150
    // has 2 (users 0, 1): popularity 4:2.
    const double p3 = s->name() == "uniform" ? 0.5 : 4.0 / 6.0;
    EXPECT_NEAR(c3 / 40000.0, p3, 5 * std::sqrt(p3 * (1 - p3) / 40000)) << s->name();
  }
}

TEST(NegativeSamplerTest, ArgumentErrorsAndDeterminism) {
  auto view = MakeView({{{1, 1}}, {{2, 1}}}, 50);
  auto s = MakeUniformSampler(view);
  Rng rng(1);
  EXPECT_THAT(s->Sample(2, 3, rng), StatusIs(absl::StatusCode::kNotFound, "user=2"));
  EXPECT_THAT(s->Sample(0, kMaxSamplesPerCall + 1, rng),
              StatusIs(absl::StatusCode::kInvalidArgument, "n=1000001"));
  auto empty = s->Sample(0, 0, rng);
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
  Rng a(42), b(42), c(43);
  auto da = s->Sample(0, 100, a), db = s->Sample(0, 100, b), dc = s->Sample(0, 100, c);
  ASSERT_OK(da);
  ASSERT_OK(db);
  ASSERT_OK(dc);
  EXPECT_EQ(*da, *db);
  EXPECT_NE(*da, *dc);
  // Pinned draws: the bounded-integer algorithm is ours, not the library's,
  // so a seed gives the same negatives on every platform.
  Rng p(2024);
  std::vector<uint32_t> first(5);
  ASSERT_OK(s->Sample(1, std::span<uint32_t>(first), p));
  Rng q(2024);
  for (uint32_t& x : first) {
    uint32_t expect;
    do expect = static_cast<uint32_t>(UniformBelow(q, 50)); while (expect == 2);
    EXPECT_EQ(x, expect);
  }
}

NbpoFactors TinyFactors() {
  // 2 users, 6 items, dim 2, flip_dim 1.
  NbpoFactors f;
  f.user_factors.resize(2, 2);
  f.user_factors << 1.0, 0.5, -0.5, 2.0;
  f.item_factors.resize(6, 2);
  f.item_factors << 2.0, 0.0, 1.0, 1.0, -1.0, 0.5, 0.0, -2.0, 3.0, 1.0, 0.2, 0.2;
  f.user_flip.resize(2, 1);
  f.user_flip << 1.0, -1.0;
  f.item_flip.resize(6, 1);
  f.item_flip << 2.0, -1.0, 0.0, 1.5, 3.0, -3.0;
  return f;
}

TEST(NbpoSamplerTest, WeightIsTrueNegativeProbability) {
  NbpoFactors f = TinyFactors();
  for (uint32_t u = 0; u < 2; ++u) {
    for (uint32_t i = 0; i < 6; ++i) {
      const double x = f.user_factors.row(u).dot(f.item_factors.row(i));
      const double gm = f.user_flip.row(u).dot(f.item_flip.row(i));
      const double r = 1 / (1 + std::exp(-x)), g = 1 / (1 + std::exp(-gm));
      EXPECT_NEAR(NbpoTrueNegativeProbability(f, u, i),
                  (1 - r) / ((1 - r) + r * g), 1e-12);
    }
  }
}

TEST(NbpoSamplerTest, DrawsByTrueNegativeProbability) {
  NbpoFactors f = TinyFactors();
  auto view = MakeView({{{0, 1}}, {{5, 1}, {2, 1}}}, 6);
  // Dense weight table (default) and on-the-fly weights (table disabled).
  for (uint64_t table : {kDefaultNbpoTableEntries, uint64_t{0}}) {
    auto s = MakeNbpoSampler(view, f, table);
    ASSERT_OK(s);
    EXPECT_EQ((*s)->name(), "nbpo");
    const size_t n = 100000;
    for (uint32_t u = 0; u < 2; ++u) {
      std::vector<double> w;
      for (uint32_t i = 0; i < 6; ++i) {
        w.push_back(NbpoTrueNegativeProbability(f, u, i));
        EXPECT_NEAR((*s)->Weight(u, i), w.back(), 1e-6);
      }
      std::vector<bool> pos(6, false);
      for (uint32_t i : (*s)->positives().Of(u)) pos[i] = true;
      ExpectMatches(Frequencies(**s, u, n, 100 + u), w, pos, n);
    }
  }
  // Items the model believes are hidden positives are drawn less often: for
  // user 0, item 4 (x = 3.5, g = 0.95) vs item 3 (x = -1, g = 0.82).
  EXPECT_LT(NbpoTrueNegativeProbability(f, 0, 4), 0.05);
  EXPECT_GT(NbpoTrueNegativeProbability(f, 0, 3), 0.7);
}

TEST(NbpoSamplerTest, CollapsedAcceptanceFallsBackToComplement) {
  // Every candidate looks like a hidden positive (w ~ 1e-9): rejection gives
  // up after kMaxTriesPerDraw proposals and the exact complement is used.
  NbpoFactors f;
  f.user_factors = FactorMatrix::Constant(1, 1, 5.0f);
  f.item_factors = FactorMatrix::Constant(4, 1, 5.0f);
  f.item_factors(3, 0) = 4.9f;  // w(3) ~ 1.65 w(others)
  f.user_flip = FactorMatrix::Constant(1, 1, 5.0f);
  f.item_flip = FactorMatrix::Constant(4, 1, 5.0f);
  auto view = MakeView({{{0, 1}}}, 4);
  // On-the-fly weights, and the table (whose exact per-user acceptance sends
  // the user to the complement at once).
  for (uint64_t table : {uint64_t{0}, kDefaultNbpoTableEntries}) {
    auto s = MakeNbpoSampler(view, f, table);
    ASSERT_OK(s);
    const size_t n = 30000;
    std::vector<double> w;
    for (uint32_t i = 0; i < 4; ++i) w.push_back(NbpoTrueNegativeProbability(f, 0, i));
    ASSERT_LT(w[1], 1e-8);
    ExpectMatches(Frequencies(**s, 0, n, 9), w, {true, false, false, false}, n);
  }
}

TEST(NbpoSamplerTest, TableDrawsFollowWeightsWithinQuantisationBands) {
  // Weights spread over (0, 1) so that many sit near the table's 1/254
  // band edges; many items, few positives; draws must follow the exact w.
  const uint32_t ni = 40;
  NbpoFactors f;
  f.user_factors = FactorMatrix::Constant(1, 1, 1.0f);
  f.item_factors.resize(ni, 1);
  f.user_flip = FactorMatrix::Constant(1, 1, 1.0f);
  f.item_flip = FactorMatrix::Constant(ni, 1, 0.0f);
  for (uint32_t i = 0; i < ni; ++i) f.item_factors(i, 0) = -4.0f + 8.0f * i / ni;
  auto view = MakeView({{{3, 1}, {17, 1}}}, ni);
  auto s = MakeNbpoSampler(view, f);
  ASSERT_OK(s);
  std::vector<double> w;
  for (uint32_t i = 0; i < ni; ++i) w.push_back(NbpoTrueNegativeProbability(f, 0, i));
  std::vector<bool> pos(ni, false);
  pos[3] = pos[17] = true;
  const size_t n = 400000;
  ExpectMatches(Frequencies(**s, 0, n, 21), w, pos, n);
}

TEST(NbpoSamplerTest, RejectsBadFactors) {
  auto view = MakeView({{{0, 1}}, {{1, 1}}}, 6);
  NbpoFactors f = TinyFactors();
  f.item_flip.resize(5, 1);
  f.item_flip.setZero();
  EXPECT_THAT(MakeNbpoSampler(view, f),
              StatusIs(absl::StatusCode::kInvalidArgument, "shapes disagree"));
  f = TinyFactors();
  f.user_factors(0, 0) = NAN;
  EXPECT_THAT(MakeNbpoSampler(view, f),
              StatusIs(absl::StatusCode::kInvalidArgument, "NaN"));
  auto bigger = MakeView({{{0, 1}}, {{1, 1}}, {{2, 1}}}, 6);
  EXPECT_THAT(MakeNbpoSampler(bigger, TinyFactors()),
              StatusIs(absl::StatusCode::kFailedPrecondition, "3 users"));
}

TEST(SamplerRegistryTest, ByNameWithParams) {
  auto view = MakeView({{{0, 1}, {1, 1}}, {{0, 1}}}, 6);
  std::vector<std::string> names;
  for (const SamplerInfo& s : Samplers()) names.emplace_back(s.name);
  EXPECT_THAT(names, ::testing::ElementsAre("uniform", "popularity", "nbpo"));

  auto u = CreateSampler("uniform", view);
  ASSERT_OK(u);
  EXPECT_EQ((*u)->name(), "uniform");
  SamplerOptions o;
  o.params["power"] = "0.75";
  auto p = CreateSampler("popularity", view, o);
  ASSERT_OK(p);
  EXPECT_DOUBLE_EQ((*p)->Weight(0, 0), std::pow(2.0, 0.75));

  EXPECT_THAT(CreateSampler("zipf", view),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "known samplers: uniform, popularity, nbpo"));
  SamplerOptions typo;
  typo.params["pow"] = "1";
  EXPECT_THAT(CreateSampler("popularity", view, typo),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown parameter 'pow' for sampler 'popularity'; known: power"));
  EXPECT_THAT(CreateSampler("uniform", view, typo),
              StatusIs(absl::StatusCode::kInvalidArgument, "'pow'"));
  SamplerOptions bad;
  bad.params["power"] = "abc";
  EXPECT_THAT(CreateSampler("popularity", view, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "power=abc: power must be a number in [0, 10]"));
  bad.params["power"] = "11";
  EXPECT_THAT(CreateSampler("popularity", view, bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "power=11: power must be a number in [0, 10]"));
  EXPECT_THAT(CreateSampler("nbpo", view),
              StatusIs(absl::StatusCode::kFailedPrecondition, "nbpo-mf"));
  NbpoFactors f = TinyFactors();
  SamplerOptions with_model;
  with_model.nbpo = &f;
  auto nb = CreateSampler("nbpo", view, with_model);
  ASSERT_OK(nb);
  Rng rng(1);
  auto d = (*nb)->Sample(0, 100, rng);
  ASSERT_OK(d);
  for (uint32_t i : *d) EXPECT_TRUE(i >= 2 && i < 6) << i;
}

}  // namespace
}  // namespace debias::samplers
