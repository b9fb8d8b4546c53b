// CheckParams: every method's hyperparameters are checked without data, so
// the server refuses a bad Train request before a job or a record exists.
#include "core/train/registry.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::train {
namespace {

using ::debias::testing::StatusIs;

TEST(CheckParamsTest, EveryMethodAcceptsItsDefaultsAndRefusesABadOrUnknownKey) {
  for (const TrainerInfo& t : Trainers()) {
    for (FeedbackKind kind : t.feedback) {
      SCOPED_TRACE(std::string(t.name) + " on " + std::string(FeedbackKindName(kind)));
      TrainSpec spec;
      spec.loss = std::string(t.name);
      spec.feedback = kind;
      // ipw needs the examination curve it reweights by (no default).
      if (t.name == "ipw") spec.params["propensities"] = "1,0.5,0.33";
      EXPECT_OK(CheckParams(spec));  // defaults: only data is missing
      spec.params["no_such_knob"] = "1";
      EXPECT_THAT(CheckParams(spec),
                  StatusIs(absl::StatusCode::kInvalidArgument, "no_such_knob"));
    }
  }
}

TEST(CheckParamsTest, OutOfRangeValuesAndUnknownLossesAreRefused) {
  TrainSpec spec;
  spec.loss = "naive";
  spec.feedback = FeedbackKind::kExplicit;
  spec.params["l2"] = "-1";
  EXPECT_THAT(CheckParams(spec), StatusIs(absl::StatusCode::kInvalidArgument, "l2=-1"));
  spec.params = {{"epochs", "3"}, {"l2", "0.001"}};
  EXPECT_OK(CheckParams(spec));
  spec.loss = "kbips";
  spec.params = {{"gamma", "-2"}};
  EXPECT_THAT(CheckParams(spec), StatusIs(absl::StatusCode::kInvalidArgument, "gamma"));
  spec.loss = "nope";
  EXPECT_THAT(CheckParams(spec), StatusIs(absl::StatusCode::kInvalidArgument, "nope"));
}

}  // namespace
}  // namespace debias::train
