#include "core/synth/mnar_world.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/loaders.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/util/status_matchers.h"

namespace debias::synth {
namespace {

using ::debias::testing::StatusIs;

MnarWorldOptions Small(uint64_t seed = 1) {
  MnarWorldOptions o;
  o.num_users = 2000;
  o.num_items = 300;
  o.dim = 8;
  o.exposure_power = 1.0;
  o.popularity_exponent = 1.0;
  o.exposure_scale = 10.0;
  o.mar_test_items_per_user = 10;
  o.seed = seed;
  return o;
}

MnarWorld Gen(const MnarWorldOptions& o) {
  absl::StatusOr<MnarWorld> w = MnarWorld::Generate(o);
  EXPECT_TRUE(w.ok()) << w.status();
  return std::move(*w);
}

TEST(MnarWorldTest, DeterministicForSeed) {
  MnarWorld a = Gen(Small(3)), b = Gen(Small(3)), c = Gen(Small(4));
  EXPECT_GT(a.num_clicks(), 1000u);
  EXPECT_EQ(a.ClickEvents(), b.ClickEvents());
  EXPECT_EQ(a.TestEvents(), b.TestEvents());
  EXPECT_EQ(a.Relevance(17, 42), b.Relevance(17, 42));
  EXPECT_NE(a.ClickEvents(), c.ClickEvents());
  EXPECT_NE(a.Relevance(17, 42), c.Relevance(17, 42));
}

// Clicks ~ sum of independent Bernoulli(theta * gamma): compare the count
// with its exact expectation over all pairs, with and without user activity.
TEST(MnarWorldTest, ClickCountMatchesSumOfThetaTimesGamma) {
  for (double sigma : {0.0, 0.8}) {
    MnarWorldOptions o = Small(5);
    o.user_activity_sigma = sigma;
    MnarWorld w = Gen(o);
    double mean = 0.0, var = 0.0, theta_sum = 0.0;
    for (uint32_t u = 0; u < w.num_users(); ++u) {
      for (uint32_t i = 0; i < w.num_items(); ++i) {
        const double p = w.Exposure(u, i) * w.Relevance(u, i);
        mean += p;
        var += p * (1 - p);
        theta_sum += w.Exposure(u, i);
      }
    }
    EXPECT_NEAR(static_cast<double>(w.num_clicks()), mean, 4 * std::sqrt(var))
        << "sigma " << sigma;
    EXPECT_NEAR(w.summary().expected_exposures, theta_sum, 1e-6 * theta_sum);
    // Sum of gamma over realised exposures estimates the same expectation.
    EXPECT_NEAR(w.summary().expected_clicks_estimate, mean, 0.03 * mean);
    EXPECT_NEAR(static_cast<double>(w.summary().exposures), theta_sum,
                4 * std::sqrt(theta_sum));
  }
}

TEST(MnarWorldTest, ExposuresGiveClickRatesWithTheSameExpectation) {
  // K exposure opportunities per pair: the label is C / K, so the labels sum
  // to about sum theta gamma as with one opportunity, each is a multiple of
  // 1 / K in (0, 1], and every clicked pair appears once, items ascending.
  MnarWorldOptions o = Small(5);
  o.exposures = 8;
  MnarWorld w = Gen(o);
  double expected = 0.0, var = 0.0, labels = 0.0;
  for (uint32_t u = 0; u < w.num_users(); ++u) {
    for (uint32_t i = 0; i < w.num_items(); ++i) {
      const double p = w.Exposure(u, i) * w.Relevance(u, i);
      expected += p;
      var += p * (1 - p) / o.exposures;
    }
    const auto items = w.ClickedItems(u);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0) EXPECT_LT(items[k - 1], items[k]);
      const float l = w.ClickLabel(u, k);
      EXPECT_GT(l, 0.0f);
      EXPECT_LE(l, 1.0f);
      EXPECT_NEAR(l * o.exposures, std::round(l * o.exposures), 1e-4);
      labels += l;
    }
  }
  EXPECT_NEAR(labels, expected, 4 * std::sqrt(var));
  o.exposures = 0;
  EXPECT_THAT(MnarWorld::Generate(o), StatusIs(absl::StatusCode::kInvalidArgument, "exposures"));
}

TEST(MnarWorldTest, RelevanceMeanIsCalibrated) {
  MnarWorldOptions o = Small(6);
  o.relevance_mean = 0.15;
  MnarWorld w = Gen(o);
  double sum = 0.0;
  for (uint32_t u = 0; u < w.num_users(); ++u) {
    for (uint32_t i = 0; i < w.num_items(); ++i) sum += w.Relevance(u, i);
  }
  // U * I = 600k > the 200k calibration sample, so not exact.
  EXPECT_NEAR(sum / (2000.0 * 300.0), 0.15, 0.005);
  EXPECT_NEAR(w.summary().mean_relevance, 0.15, 1e-6);
}

TEST(MnarWorldTest, ExposureIncreasesWithPopularity) {
  MnarWorldOptions o = Small(7);
  o.exposure_power = 2.0;
  o.user_activity_sigma = 0.5;
  MnarWorld w = Gen(o);
  std::vector<uint32_t> by_pop(w.num_items());
  for (uint32_t i = 0; i < w.num_items(); ++i) by_pop[i] = i;
  std::sort(by_pop.begin(), by_pop.end(), [&](uint32_t a, uint32_t b) {
    return w.Popularity(a) > w.Popularity(b);
  });
  EXPECT_DOUBLE_EQ(w.Popularity(by_pop[0]), 1.0);
  for (uint32_t u : {0u, 99u, 1999u}) {
    for (size_t k = 1; k < by_pop.size(); ++k) {
      EXPECT_GE(w.Exposure(u, by_pop[k - 1]), w.Exposure(u, by_pop[k]));
    }
  }
  // theta = min(1, scale * pop^p * a_u).
  const uint32_t i = by_pop[50];
  EXPECT_NEAR(
      w.Exposure(3, i),
      std::min(1.0, 10.0 * std::pow(w.Popularity(i), 2.0) * w.UserActivity(3)),
      1e-12);
  // Realised clicks follow: the top tenth of items by popularity gets far
  // more clicks per item than the bottom half.
  std::vector<double> clicks(w.num_items(), 0.0);
  for (uint32_t u = 0; u < w.num_users(); ++u) {
    for (uint32_t it : w.ClickedItems(u)) clicks[it] += 1;
  }
  double top = 0, bottom = 0;
  for (size_t k = 0; k < 30; ++k) top += clicks[by_pop[k]];
  for (size_t k = 150; k < 300; ++k) bottom += clicks[by_pop[k]];
  EXPECT_GT(top / 30, 20 * bottom / 150);
}

TEST(MnarWorldTest, MarTestLabelsMatchRelevance) {
  MnarWorldOptions o = Small(8);
  o.mar_test_items_per_user = 20;
  MnarWorld w = Gen(o);
  double label_sum = 0, gamma_sum = 0, gamma_var = 0;
  size_t n = 0;
  for (uint32_t u = 0; u < w.num_users(); ++u) {
    auto items = w.TestItems(u);
    auto labels = w.TestLabels(u);
    ASSERT_EQ(items.size(), 20u);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0) {
        ASSERT_LT(items[k - 1], items[k]);  // distinct, ascending
      }
      const double g = w.Relevance(u, items[k]);
      label_sum += labels[k];
      gamma_sum += g;
      gamma_var += g * (1 - g);
      ++n;
    }
  }
  EXPECT_EQ(n, w.summary().test_events);
  EXPECT_EQ(label_sum, w.summary().test_positives);
  EXPECT_NEAR(label_sum, gamma_sum, 4 * std::sqrt(gamma_var));
  EXPECT_NEAR(gamma_sum / n, o.relevance_mean, 0.01);
}

TEST(MnarWorldTest, ExpectedClicksSetsTheScale) {
  MnarWorldOptions o = Small(9);
  o.num_users = 3000;
  o.num_items = 1000;
  o.exposure_power = 2.0;
  o.expected_clicks = 30000;
  MnarWorld w = Gen(o);
  EXPECT_NEAR(static_cast<double>(w.num_clicks()), 30000, 0.03 * 30000);
  double expect = 0.0;
  for (uint32_t u = 0; u < w.num_users(); ++u) {
    for (uint32_t i = 0; i < w.num_items(); ++i) {
      expect += w.Exposure(u, i) * w.Relevance(u, i);
    }
  }
  // The scale is fitted on a 512-user sample: close, not exact.
  EXPECT_NEAR(expect, 30000, 0.02 * 30000);
  o.expected_clicks = 3000.0 * 1000.0;  // more than every pair
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "expected_clicks=3e+06: unreachable"));
}

TEST(MnarWorldTest, EventsAndViewsAreUserMajorWithWorldIds) {
  MnarWorld w = Gen(Small(10));
  std::vector<data::Interaction> events = w.ClickEvents();
  ASSERT_EQ(events.size(), w.num_clicks());
  EXPECT_EQ(events[0].label, 1.0f);
  absl::StatusOr<data::DatasetView> view = w.ClickView();
  ASSERT_OK(view);
  ASSERT_EQ(view->num_events(), w.num_clicks());
  EXPECT_EQ(view->num_users(), 2000u);
  EXPECT_EQ(view->num_items(), 300u);
  for (size_t e = 0; e < events.size(); ++e) {
    EXPECT_EQ(events[e].user, "u" + std::to_string(view->user[e]));
    EXPECT_EQ(events[e].item, "i" + std::to_string(view->item[e]));
    if (e > 0) {
      ASSERT_LE(view->user[e - 1], view->user[e]);
    }
  }
  auto [b, end] = view->UserRange(5);
  auto items = w.ClickedItems(5);
  ASSERT_EQ(end - b, items.size());
  for (size_t k = 0; k < items.size(); ++k)
    EXPECT_EQ(view->item[b + k], items[k]);
  absl::StatusOr<data::DatasetView> test = w.TestView();
  ASSERT_OK(test);
  EXPECT_EQ(test->num_events(), 2000u * 10u);
  EXPECT_TRUE(std::isnan(w.Relevance(2000, 0)));
  EXPECT_TRUE(std::isnan(w.Exposure(0, 300)));
  EXPECT_TRUE(w.ClickedItems(5000).empty());
}

TEST(MnarWorldTest, RejectsBadOptions) {
  MnarWorldOptions o = Small();
  o.num_users = 0;
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "num_users=0: num_users must be in [1, 10000000]"));
  o = Small();
  o.mar_test_items_per_user = 301;
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "mar_test_items_per_user=301"));
  o = Small();
  o.exposure_power = NAN;
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "exposure_power"));
  o = Small();
  o.num_users = 10'000'000;
  o.num_items = 10'000'000;
  o.dim = 64;
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument, "latent factors"));
  o.dim = 8;
  o.num_users = 1'000'000;
  o.num_items = 100'000;
  o.exposure_scale = 1e6;
  o.popularity_exponent = 0.0;
  EXPECT_THAT(MnarWorld::Generate(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "expected exposures 1e+11 exceed"));
}

TEST(MnarWorldTest, WritesWorldFiles) {
  const std::string dir = ::testing::TempDir() + "/mnar_world_test";
  std::filesystem::remove_all(dir);
  MnarWorldOptions o = Small(11);
  o.num_users = 200;
  o.num_items = 100;
  o.truth_sample_pairs = 500;  // < U * I: MAR pairs then 500 random pairs
  MnarWorld w = Gen(o);
  ASSERT_OK(w.WriteWorld(dir));
  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  std::vector<std::string> train = lines(dir + "/train.csv");
  ASSERT_EQ(train.size(), w.num_clicks() + 1);
  EXPECT_EQ(train[0], "user,item,label");
  EXPECT_EQ(train[1],
            w.ClickEvents()[0].user + "," + w.ClickEvents()[0].item + ",1");
  EXPECT_EQ(lines(dir + "/test.csv").size(), 200u * 10u + 1);
  // The files load back through the csv loader to the same events.
  absl::StatusOr<data::LoadResult> train_back =
      data::LoadFile(dir + "/train.csv", data::Format::kCsv, {});
  ASSERT_OK(train_back);
  EXPECT_EQ(train_back->events, w.ClickEvents());
  absl::StatusOr<data::LoadResult> test_back =
      data::LoadFile(dir + "/test.csv", data::Format::kCsv, {});
  ASSERT_OK(test_back);
  EXPECT_EQ(test_back->events, w.TestEvents());
  std::vector<std::string> truth = lines(dir + "/truth.csv");
  ASSERT_EQ(truth.size(), 1 + 200u * 10u + 500u);
  EXPECT_EQ(truth[0], "user,item,relevance,exposure");
  std::ifstream jin(dir + "/world.json");
  nlohmann::json j = nlohmann::json::parse(jin);
  EXPECT_EQ(j["summary"]["clicks"].get<uint64_t>(), w.num_clicks());
  EXPECT_EQ(j["options"]["seed"].get<uint64_t>(), 11u);
  EXPECT_EQ(j["files"]["truth_rows"], "mar_test_pairs_then_random");

  // A small world writes every pair.
  o.truth_sample_pairs = 200 * 100;
  MnarWorld w2 = Gen(o);
  ASSERT_OK(w2.WriteWorld(dir));
  EXPECT_EQ(lines(dir + "/truth.csv").size(), 1 + 200u * 100u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace debias::synth
