#include "core/clickmodels/click_model.h"

#include <cmath>
#include <vector>

#include "core/clickmodels/pbm.h"
#include "core/clickmodels/ubm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::clickmodels {
namespace {

using ::debias::testing::StatusIs;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<ClickModel> Make(ClickModelKind kind, double eta = 1.0,
                                 double continuation = 0.0) {
  ClickModelOptions o;
  o.kind = kind;
  o.eta = eta;
  o.continuation = continuation;
  absl::StatusOr<std::unique_ptr<ClickModel>> m = ClickModel::Create(o);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(*m);
}

TEST(ClickProbabilitiesTest, MatchesPaperFixture) {
  absl::StatusOr<std::vector<double>> p = ClickProbabilities(0.1, 1.0, 4);
  ASSERT_OK(p);
  EXPECT_THAT(*p, ElementsAre(DoubleNear(0.1, 1e-12), DoubleNear(0.16, 1e-12),
                              DoubleNear(0.28, 1e-12), DoubleNear(0.52, 1e-12),
                              DoubleNear(1.0, 1e-12)));
}

TEST(ClickProbabilitiesTest, RejectsOutOfRange) {
  EXPECT_THAT(ClickProbabilities(-0.1, 1.0, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, "eps=-0.1"));
  EXPECT_THAT(ClickProbabilities(0.5, 0.2, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, "pos=0.2"));
  EXPECT_THAT(ClickProbabilities(0.1, 1.0, 0),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "ymax=0: ymax must be in [1, 30]"));
}

TEST(PbmTest, OracleInversePropensitiesMatchPaperAtEtaOne) {
  absl::StatusOr<std::vector<double>> w = PbmOracleInversePropensities(1.0, 10);
  ASSERT_OK(w);
  const std::vector<double> expected = {1,   1.115, 1.417, 2.0, 2.429,
                                        3.4, 6.18,  6.8,   8.5, 11.33};
  ASSERT_EQ(w->size(), expected.size());
  for (size_t r = 0; r < expected.size(); ++r) {
    // "To the printed precision": half a unit in the last printed digit.
    const double digits = r == 9 ? 2 : (r == 6 ? 2 : 3);
    EXPECT_NEAR((*w)[r], expected[r], 0.5 * std::pow(10.0, -digits) + 1e-12)
        << "rank " << r + 1;
  }
  // The model's own oracle agrees with the free function.
  auto pbm = Make(ClickModelKind::kPbm);
  std::vector<double> w2 = pbm->OracleInversePropensities(10);
  for (size_t r = 0; r < 10; ++r) EXPECT_DOUBLE_EQ(w2[r], (*w)[r]);
}

TEST(PbmTest, ExaminationIsRaisedToEtaAndRanksBeyondTenUseTheLast) {
  absl::StatusOr<std::vector<double>> e = PbmExamination(2.0, 12);
  ASSERT_OK(e);
  EXPECT_DOUBLE_EQ((*e)[0], 0.68 * 0.68);
  EXPECT_DOUBLE_EQ((*e)[3], 0.34 * 0.34);
  EXPECT_DOUBLE_EQ((*e)[10], 0.06 * 0.06);
  EXPECT_DOUBLE_EQ((*e)[11], 0.06 * 0.06);
  absl::StatusOr<std::vector<double>> flat = PbmExamination(0.0, 10);
  ASSERT_OK(flat);
  for (double v : *flat) EXPECT_DOUBLE_EQ(v, 1.0);
  EXPECT_THAT(PbmExamination(11.0, 10),
              StatusIs(absl::StatusCode::kInvalidArgument, "eta=11"));
  EXPECT_THAT(PbmExamination(1.0, -1),
              StatusIs(absl::StatusCode::kInvalidArgument, "num_ranks=-1"));
}

TEST(PbmTest, SimulatedClickFrequenciesMatchExamTimesClick) {
  auto pbm = Make(ClickModelKind::kPbm);
  // Every label at every rank, so each (rank, label) cell gets traffic.
  const std::vector<float> labels = {4, 3, 2, 1, 0, 4, 3, 2, 1, 0};
  Rng rng(12345);
  std::vector<double> freq(10, 0.0);
  std::vector<uint8_t> clicks;
  const int kLists = 200000;
  for (int i = 0; i < kLists; ++i) {
    ASSERT_OK(pbm->Simulate(labels, rng, &clicks));
    for (int r = 0; r < 10; ++r) freq[r] += clicks[r];
  }
  const std::vector<double> click = {1.0, 0.52, 0.28, 0.16, 0.1,
                                     1.0, 0.52, 0.28, 0.16, 0.1};
  for (int r = 0; r < 10; ++r) {
    const double p = kPbmBaseExamination[r] * click[r];
    const double se = std::sqrt(p * (1 - p) / kLists);
    EXPECT_NEAR(freq[r] / kLists, p, 4 * se + 1e-4) << "rank " << r + 1;
  }
}

TEST(PbmTest, SameSeedSameClicks) {
  auto pbm = Make(ClickModelKind::kPbm);
  const std::vector<float> labels = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  Rng a(7), b(7), c(8);
  std::vector<uint8_t> ca, cb, cc;
  std::vector<uint8_t> all_a, all_b, all_c;
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(pbm->Simulate(labels, a, &ca));
    ASSERT_OK(pbm->Simulate(labels, b, &cb));
    ASSERT_OK(pbm->Simulate(labels, c, &cc));
    all_a.insert(all_a.end(), ca.begin(), ca.end());
    all_b.insert(all_b.end(), cb.begin(), cb.end());
    all_c.insert(all_c.end(), cc.begin(), cc.end());
  }
  EXPECT_EQ(all_a, all_b);
  EXPECT_NE(all_a, all_c);
}

TEST(PbmTest, LogLikelihoodByHand) {
  auto pbm = Make(ClickModelKind::kPbm);
  const std::vector<double> a = {0.5, 0.2, 1.0};
  const std::vector<uint8_t> c = {1, 0, 1};
  absl::StatusOr<double> ll = pbm->LogLikelihood(a, c);
  ASSERT_OK(ll);
  EXPECT_NEAR(
      *ll,
      std::log(0.68 * 0.5) + std::log(1 - 0.61 * 0.2) + std::log(0.48 * 1.0),
      1e-12);
}

TEST(ClickModelTest, LabelsAreTruncatedAndClamped) {
  auto pbm = Make(ClickModelKind::kPbm);
  EXPECT_DOUBLE_EQ(pbm->Attractiveness(-3.0f), 0.1);
  EXPECT_DOUBLE_EQ(pbm->Attractiveness(2.9f), 0.28);
  EXPECT_DOUBLE_EQ(pbm->Attractiveness(4.0f), 1.0);
  EXPECT_DOUBLE_EQ(pbm->Attractiveness(7.0f), 1.0);
}

TEST(ClickModelTest, RejectsBadInputs) {
  auto pbm = Make(ClickModelKind::kPbm);
  Rng rng(1);
  std::vector<uint8_t> clicks;
  const std::vector<float> bad_labels = {1.0f, NAN};
  EXPECT_THAT(pbm->Simulate(bad_labels, rng, &clicks),
              StatusIs(absl::StatusCode::kInvalidArgument, "labels[1]"));
  const std::vector<double> bad_a = {0.5, 1.5};
  EXPECT_THAT(pbm->SimulateFromAttractiveness(bad_a, rng, &clicks),
              StatusIs(absl::StatusCode::kInvalidArgument, "attract[1]=1.5"));
  const std::vector<double> a = {0.5, 0.5};
  const std::vector<uint8_t> short_clicks = {1};
  EXPECT_THAT(pbm->LogLikelihood(a, short_clicks),
              StatusIs(absl::StatusCode::kInvalidArgument, "sizes must match"));
  const std::vector<uint8_t> bad_clicks = {1, 2};
  EXPECT_THAT(pbm->LogLikelihood(a, bad_clicks),
              StatusIs(absl::StatusCode::kInvalidArgument, "clicks[1]=2"));
  ClickModelOptions o;
  o.continuation = 2.0;
  EXPECT_THAT(ClickModel::Create(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "continuation=2"));
}

TEST(ClickModelTest, ParsesNames) {
  EXPECT_EQ(*ParseClickModelKind("pbm"), ClickModelKind::kPbm);
  EXPECT_EQ(*ParseClickModelKind("user_browsing_model"), ClickModelKind::kUbm);
  EXPECT_EQ(*ParseClickModelKind("cascade"), ClickModelKind::kCascade);
  EXPECT_THAT(ParseClickModelKind("dbn"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "must be one of pbm, ubm, cascade"));
  EXPECT_EQ(ClickModelKindName(ClickModelKind::kUbm), "ubm");
}

// exp(LL) summed over every click vector of a short list is 1 for a proper
// likelihood; checks every model, with and without cascade continuation.
TEST(ClickModelTest, LikelihoodSumsToOneOverAllClickVectors) {
  const std::vector<double> a = {0.3, 0.9, 0.1, 0.6, 0.45};
  const size_t n = a.size();
  struct Case {
    ClickModelKind kind;
    double eta, continuation;
  };
  for (const Case& cs : {Case{ClickModelKind::kPbm, 1.0, 0.0},
                         Case{ClickModelKind::kUbm, 1.5, 0.0},
                         Case{ClickModelKind::kCascade, 1.0, 0.0},
                         Case{ClickModelKind::kCascade, 1.0, 0.4}}) {
    auto m = Make(cs.kind, cs.eta, cs.continuation);
    double total = 0.0;
    std::vector<double> click_marg(n, 0.0);
    for (unsigned mask = 0; mask < (1u << n); ++mask) {
      std::vector<uint8_t> c(n);
      for (size_t r = 0; r < n; ++r) c[r] = (mask >> r) & 1u;
      absl::StatusOr<double> ll = m->LogLikelihood(a, c);
      ASSERT_OK(ll);
      const double p = std::exp(*ll);
      total += p;
      for (size_t r = 0; r < n; ++r) click_marg[r] += c[r] * p;
    }
    EXPECT_NEAR(total, 1.0, 1e-12) << m->name();
    // The marginals agree with the likelihood.
    std::vector<double> click;
    ASSERT_OK(m->Marginals(a, nullptr, &click));
    for (size_t r = 0; r < n; ++r) {
      EXPECT_NEAR(click[r], click_marg[r], 1e-12) << m->name() << " rank " << r;
    }
  }
}

TEST(UbmTest, TableAndCurve) {
  auto ubm = Make(ClickModelKind::kUbm);
  EXPECT_THAT(
      ubm->ExaminationCurve(10),
      ElementsAre(1.0, 1.0, 0.95, 0.82, 0.69, 0.54, 0.47, 0.43, 0.41, 0.43));
  const auto* u = static_cast<const UserBrowsingModel*>(ubm.get());
  EXPECT_DOUBLE_EQ(u->Examination(3, 2), 1.0);   // just clicked rank 2
  EXPECT_DOUBLE_EQ(u->Examination(5, 1), 0.31);  // d = 4 -> gamma(5, 4)
  EXPECT_DOUBLE_EQ(u->Examination(15, 0), 0.43);
  EXPECT_DOUBLE_EQ(u->Examination(15, 14), 1.0);
  EXPECT_DOUBLE_EQ(u->Examination(15, 1), 0.12);  // d >= 9 -> gamma(10, 9)
  auto ubm2 = Make(ClickModelKind::kUbm, 2.0);
  EXPECT_DOUBLE_EQ(ubm2->ExaminationCurve(3)[2], 0.95 * 0.95);
}

TEST(UbmTest, SimulatedFrequenciesMatchMarginals) {
  auto ubm = Make(ClickModelKind::kUbm);
  const std::vector<float> labels = {3, 0, 4, 1, 2, 0, 4, 1, 0, 2};
  std::vector<double> a(labels.size());
  for (size_t r = 0; r < a.size(); ++r) a[r] = ubm->Attractiveness(labels[r]);
  std::vector<double> exam, click;
  ASSERT_OK(ubm->Marginals(a, &exam, &click));
  Rng rng(99);
  const int kLists = 100000;
  std::vector<double> freq(10, 0.0);
  std::vector<uint8_t> c;
  for (int i = 0; i < kLists; ++i) {
    ASSERT_OK(ubm->Simulate(labels, rng, &c));
    for (int r = 0; r < 10; ++r) freq[r] += c[r];
  }
  for (int r = 0; r < 10; ++r) {
    const double se = std::sqrt(click[r] * (1 - click[r]) / kLists);
    EXPECT_NEAR(freq[r] / kLists, click[r], 4 * se + 1e-4) << "rank " << r + 1;
  }
}

TEST(CascadeTest, AtMostOneClickAndFrequenciesMatchMarginals) {
  for (double lambda : {0.0, 0.5}) {
    auto cas = Make(ClickModelKind::kCascade, 1.0, lambda);
    const std::vector<float> labels = {1, 0, 2, 4, 0, 1, 3, 0, 0, 2};
    std::vector<double> a(labels.size());
    for (size_t r = 0; r < a.size(); ++r) a[r] = cas->Attractiveness(labels[r]);
    std::vector<double> exam, click;
    ASSERT_OK(cas->Marginals(a, &exam, &click));
    EXPECT_DOUBLE_EQ(exam[0], 1.0);
    EXPECT_DOUBLE_EQ(exam[1], 1.0 - 0.16 + 0.16 * lambda);
    Rng rng(5);
    const int kLists = 100000;
    std::vector<double> freq(10, 0.0);
    int max_clicks = 0;
    std::vector<uint8_t> c;
    for (int i = 0; i < kLists; ++i) {
      ASSERT_OK(cas->Simulate(labels, rng, &c));
      int n = 0;
      for (int r = 0; r < 10; ++r) {
        freq[r] += c[r];
        n += c[r];
      }
      max_clicks = std::max(max_clicks, n);
    }
    if (lambda == 0.0) {
      EXPECT_EQ(max_clicks, 1);
    } else {
      EXPECT_GT(max_clicks, 1);
    }
    for (int r = 0; r < 10; ++r) {
      const double se = std::sqrt(click[r] * (1 - click[r]) / kLists);
      EXPECT_NEAR(freq[r] / kLists, click[r], 4 * se + 1e-4)
          << "lambda " << lambda << " rank " << r + 1;
    }
  }
}

TEST(CascadeTest, ImpossibleClicksHaveMinusInfinityLogLikelihood) {
  auto cas = Make(ClickModelKind::kCascade);
  const std::vector<double> a = {0.5, 0.5, 0.5};
  const std::vector<uint8_t> two = {1, 0, 1};
  absl::StatusOr<double> ll = cas->LogLikelihood(a, two);
  ASSERT_OK(ll);
  EXPECT_TRUE(std::isinf(*ll) && *ll < 0);
  const std::vector<uint8_t> one = {0, 1, 0};
  ll = cas->LogLikelihood(a, one);
  ASSERT_OK(ll);
  EXPECT_NEAR(*ll, std::log(0.25), 1e-12);  // skip rank 1, click rank 2, stop
  EXPECT_THAT(cas->ExaminationCurve(4), ElementsAre(1.0, 1.0, 1.0, 1.0));
}

}  // namespace
}  // namespace debias::clickmodels
