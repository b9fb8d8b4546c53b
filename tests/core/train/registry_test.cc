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

TEST(MethodParamsTest, TheSchemaIsWhatTheParserAccepts) {
  for (const TrainerInfo& t : Trainers()) {
    for (FeedbackKind kind : t.feedback) {
      SCOPED_TRACE(std::string(t.name) + " on " + std::string(FeedbackKindName(kind)));
      const std::vector<models::ParamSpec> params = MethodParams(t, kind);
      ASSERT_FALSE(params.empty());
      for (const models::ParamSpec& p : params) {
        EXPECT_FALSE(p.doc.empty()) << p.name;
        EXPECT_FALSE(p.range.empty()) << p.name;
        // Giving every numeric, bool or choice parameter its own default is
        // accepted (the listed default is in the listed range), and so is
        // each alias.
        if (p.type == "list" || (p.type == "double" && p.default_value == "observed")) continue;
        TrainSpec spec;
        spec.loss = std::string(t.name);
        spec.feedback = kind;
        if (t.name == "ipw") spec.params["propensities"] = "1,.9,.8,.7,.6,.5,.4,.3,.2,.1";
        spec.params[p.name] = p.default_value;
        EXPECT_OK(CheckParams(spec)) << p.name << "=" << p.default_value;
        for (const std::string& alias : p.aliases) {
          spec.params.erase(p.name);
          spec.params[alias] = p.default_value;
          EXPECT_OK(CheckParams(spec)) << alias;
        }
      }
    }
  }
  // Defaults follow the feedback kind where the trainer's do.
  const TrainerInfo* naive = *FindTrainer("naive");
  auto find = [](const std::vector<models::ParamSpec>& ps, const std::string& name) {
    for (const auto& p : ps) {
      if (p.name == name) return p.default_value;
    }
    return std::string("absent");
  };
  EXPECT_EQ(find(MethodParams(*naive, FeedbackKind::kExplicit), "dim"), "32");
  EXPECT_EQ(find(MethodParams(*naive, FeedbackKind::kImplicit), "dim"), "16");
  EXPECT_EQ(find(MethodParams(*naive, FeedbackKind::kExplicit), "neg_ratio"), "absent");
}

}  // namespace
}  // namespace debias::train

namespace debias::train {
namespace {

TEST(SpecParamsTest, NumbersAndBoolsByTheMethodsSchema) {
  const nlohmann::json j = SpecParams(
      "relmf", {{"lr", "0.01"}, {"epochs", "3"}, {"l2", "1"}, {"bias", "false"},
                {"loss_form", "squared"}, {"prop.eta", "0.5"}, {"propensity", "popularity"}});
  EXPECT_TRUE(j["lr"].is_number_float());
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 0.01);
  EXPECT_TRUE(j["epochs"].is_number_integer());
  EXPECT_EQ(j["epochs"].get<int>(), 3);
  EXPECT_TRUE(j["l2"].is_number_float());  // a double knob stays a double at "1"
  EXPECT_EQ(j["bias"], false);
  EXPECT_EQ(j["loss_form"], "squared");
  EXPECT_DOUBLE_EQ(j["prop.eta"].get<double>(), 0.5);  // outside the schema: read
  EXPECT_EQ(j["propensity"], "popularity");
  // auto: the chosen method's types apply to its parameters.
  const nlohmann::json a =
      SpecParams("auto", {{"selected_loss", "naive"}, {"bias", "true"}, {"dim", "16"}});
  EXPECT_EQ(a["bias"], true);
  EXPECT_EQ(a["dim"].get<int>(), 16);
  EXPECT_EQ(a["selected_loss"], "naive");
}

}  // namespace
}  // namespace debias::train
