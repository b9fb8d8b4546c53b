#include "core/propensity/position_lists.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/propensity/position_em.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::propensity {
namespace {

using ::debias::testing::StatusIs;

constexpr double kExam[10] = {0.68, 0.61, 0.48, 0.34, 0.28,
                              0.20, 0.11, 0.10, 0.08, 0.06};

data::Interaction Event(const std::string& list, int pos, float click) {
  data::Interaction e;
  e.user = "q";
  e.item = list + "-" + std::to_string(pos);
  e.label = click;
  e.list_id = list;
  e.position = pos;
  return e;
}

TEST(BuildClickListsTest, LaysOutSlotsAndMasks) {
  std::vector<data::Interaction> ev = {Event("a", 1, 1), Event("a", 3, 0),
                                       Event("b", 2, 1), Event("b", 7, 1)};
  auto view = data::BuildViewFromInteractions(ev);
  ASSERT_TRUE(view.ok()) << view.status();
  auto cl = BuildClickLists(*view, 3);
  ASSERT_TRUE(cl.ok()) << cl.status();
  ASSERT_EQ(cl->num_lists(), 2u);
  EXPECT_EQ(cl->skipped_events, 1u);  // position 7 > 3
  EXPECT_EQ(cl->mask, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0}));
  EXPECT_EQ(cl->click, (std::vector<float>{1, 0, 0, 0, 1, 0}));
}

TEST(BuildClickListsTest, RejectsBadInput) {
  std::vector<data::Interaction> ev = {Event("a", 1, 1), Event("a", 1, 0)};
  auto view = data::BuildViewFromInteractions(ev);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(BuildClickLists(*view, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, "two events at position 1"));
  EXPECT_THAT(BuildClickLists(*view, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, "max_positions=0"));
  data::Interaction plain;
  plain.user = "u";
  plain.item = "i";
  auto no_lists = data::BuildViewFromInteractions({plain});
  ASSERT_TRUE(no_lists.ok());
  EXPECT_THAT(BuildClickLists(*no_lists, 10),
              StatusIs(absl::StatusCode::kFailedPrecondition, "list"));
}

// Builds ClickLists directly: n lists of K shown slots with PBM clicks;
// attractiveness either uniform at random (shuffled lists) or sorted
// descending (a logging ranker that puts the attractive documents first).
ClickLists Simulate(int n, int K, bool shuffled, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  ClickLists cl;
  cl.num_positions = K;
  std::vector<double> a(K);
  for (int q = 0; q < n; ++q) {
    cl.list_id.push_back(q);
    for (double& v : a) v = 0.1 + 0.9 * u(rng);
    if (!shuffled) std::sort(a.begin(), a.end(), std::greater<double>());
    for (int i = 0; i < K; ++i) {
      cl.event.push_back(q * K + i);
      cl.mask.push_back(1);
      cl.click.push_back(u(rng) < kExam[i] * a[i] ? 1.0f : 0.0f);
    }
  }
  return cl;
}

TEST(RandomizationPropensitiesTest, RecoversPbmCurveOnShuffledLists) {
  const ClickLists cl = Simulate(200000, 10, /*shuffled=*/true, 3);
  auto p = RandomizationPropensities(cl);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 10u);
  EXPECT_EQ((*p)[0], 1.0);
  for (int i = 0; i < 10; ++i) {
    const double truth = kExam[i] / kExam[0];
    EXPECT_NEAR((*p)[i], truth, 0.06 * truth) << "position " << i + 1;
  }
}

TEST(ClickRateRatiosTest, IsBiasedWhenTheLoggerSortsByRelevance) {
  const ClickLists cl = Simulate(50000, 10, /*shuffled=*/false, 4);
  auto naive = ClickRateRatios(cl);
  ASSERT_TRUE(naive.ok());
  // Sorted lists put low attractiveness at the bottom: the naive ratio
  // underestimates examination there by far more than noise.
  const double truth = kExam[9] / kExam[0];
  EXPECT_LT((*naive)[9], 0.75 * truth);
  EXPECT_EQ((*naive)[0], 1.0);
}

TEST(RandomizationPropensitiesTest, FailsWithoutClicksAtPositionOne) {
  ClickLists cl;
  cl.num_positions = 2;
  cl.list_id = {0};
  cl.event = {0, 1};
  cl.mask = {1, 1};
  cl.click = {0, 1};
  EXPECT_THAT(RandomizationPropensities(cl),
              StatusIs(absl::StatusCode::kFailedPrecondition, "position 1"));
}

TEST(PbmEStepTest, PosteriorsMatchBayes) {
  const PbmPosterior c = PbmEStep(true, 0.3, 0.4);
  EXPECT_EQ(c.examined, 1.0);
  EXPECT_EQ(c.relevant, 1.0);
  const PbmPosterior n = PbmEStep(false, 0.3, 0.4);
  const double z = 1 - 0.12;
  EXPECT_NEAR(n.examined, 0.3 * 0.6 / z, 1e-12);
  EXPECT_NEAR(n.relevant, 0.7 * 0.4 / z, 1e-12);
}

TEST(PbmEmTest, TabularEmRecoversTheta) {
  // EM with one free gamma per document (each shown at random positions)
  // recovers theta_k / theta_1: the M-step of both parts is closed form.
  const int docs = 300, K = 10, shows = 400;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> a(docs);
  for (double& v : a) v = 0.1 + 0.9 * u(rng);
  struct Obs { int doc, pos; bool click; };
  std::vector<Obs> obs;
  for (int d = 0; d < docs; ++d) {
    for (int s = 0; s < shows; ++s) {
      const int k = static_cast<int>(u(rng) * K) + 1;
      obs.push_back({d, k, u(rng) < kExam[k - 1] * a[d]});
    }
  }
  std::vector<double> theta(K, 0.5), gamma(docs, 0.5);
  for (int it = 0; it < 200; ++it) {
    PbmThetaAccumulator acc(K);
    std::vector<double> rel(docs, 0.0), cnt(docs, 0.0);
    for (const Obs& o : obs) {
      const PbmPosterior p = PbmEStep(o.click, theta[o.pos - 1], gamma[o.doc]);
      acc.Add(o.pos, p.examined);
      rel[o.doc] += p.relevant;
      cnt[o.doc] += 1;
    }
    theta = acc.Theta(theta);
    for (int d = 0; d < docs; ++d) gamma[d] = rel[d] / cnt[d];
  }
  for (int k = 0; k < K; ++k) {
    const double truth = kExam[k] / kExam[0];
    EXPECT_NEAR(theta[k] / theta[0], truth, 0.1 * truth) << "position " << k + 1;
  }
}

}  // namespace
}  // namespace debias::propensity
