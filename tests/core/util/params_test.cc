#include "core/util/params.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::util {
namespace {

using ::debias::testing::StatusIs;

TEST(ParamReaderTest, DefaultsGivenValuesAndTheSchema) {
  const std::map<std::string, std::string> given = {{"lr", "0.5"}, {"lr_imp", "0.1"}};
  ParamReader p(given, "m");
  EXPECT_EQ(*p.Double("lr", 0.01, {0, 10, true}, "learning rate"), 0.5);
  EXPECT_EQ(*p.Int("epochs", 7, 1, 100, "passes"), 7);
  EXPECT_EQ(*p.OptionalDouble("floor", {0, 1}, "from data", "lowest value"), std::nullopt);
  EXPECT_EQ(*p.Double("lr_imp", 0.2, {0, 1}, "imputation lr", {"imp_lr"}), 0.1);
  EXPECT_OK(p.Finish());
  ASSERT_EQ(p.specs().size(), 4u);
  EXPECT_EQ(p.specs()[0].range, "(0, 10]");
  EXPECT_EQ(p.specs()[2].default_value, "from data");
  EXPECT_EQ(p.resolved().at("epochs"), "7");
  EXPECT_EQ(p.resolved().count("floor"), 0u);  // not given, no value
}

TEST(ParamReaderTest, ErrorsNameTheKeyTheRangeAndTheMethod) {
  const std::map<std::string, std::string> given = {{"eta", "11"}, {"x", "1"}};
  ParamReader p(given, "popularity", "propensity estimator");
  EXPECT_THAT(p.OptionalDouble("eta", {0, 10}, "none", "exponent"),
              StatusIs(absl::StatusCode::kInvalidArgument, "eta=11: eta must be a number in [0, 10]"));
  EXPECT_THAT(p.Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "unknown parameter 'x' for propensity estimator 'popularity'; "
                                   "known: eta"));
  const std::map<std::string, std::string> both = {{"lr_imp", "1"}, {"imp_lr", "1"}};
  ParamReader q(both, "relmf");
  EXPECT_THAT(q.Double("lr_imp", 0.2, {0, 10}, "doc", {"imp_lr"}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "two spellings of one parameter of loss 'relmf'"));
}

}  // namespace
}  // namespace debias::util
