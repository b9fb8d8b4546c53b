#include "core/data/interaction.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/status_matchers.h"

namespace debias::data {
namespace {

using ::debias::testing::StatusIs;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

Interaction Valid() {
  Interaction e;
  e.user = "u";
  e.item = "i";
  e.label = 1.0f;
  return e;
}

TEST(ValidateInteractionTest, AcceptsMinimalAndFullEvents) {
  EXPECT_OK(ValidateInteraction(Valid()));
  Interaction e = Valid();
  e.timestamp = -5;
  e.list_id = "L";
  e.position = 100000;
  e.propensity = 1.0f;
  e.features = {0.0f, -1.0f};
  e.event_id = "e";
  e.label = -3.5f;
  EXPECT_OK(ValidateInteraction(e));
}

TEST(ValidateInteractionTest, ErrorsNameTheField) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  InteractionLimits limits;
  limits.max_key_bytes = 4;
  limits.max_features = 2;
  limits.max_position = 10;
  struct Case {
    void (*mutate)(Interaction&, float, float);
    std::string message;
  } cases[] = {
      {[](Interaction& e, float, float) { e.user.clear(); }, "user: must be a non-empty key"},
      {[](Interaction& e, float, float) { e.item.clear(); }, "item: must be a non-empty key"},
      {[](Interaction& e, float, float) { e.user = "abcde"; }, "user: key of 5 bytes; at most 4 allowed"},
      {[](Interaction& e, float, float) { e.item = "abcde"; }, "item: key of 5 bytes; at most 4"},
      {[](Interaction& e, float n, float) { e.label = n; }, "label=nan: must be a finite number"},
      {[](Interaction& e, float, float i) { e.label = i; }, "label=inf: must be a finite number"},
      {[](Interaction& e, float, float) { e.list_id = ""; }, "list_id: must be 1 to 4 bytes"},
      {[](Interaction& e, float, float) { e.list_id = "abcde"; }, "list_id: must be 1 to 4 bytes"},
      {[](Interaction& e, float, float) { e.position = 0; }, "position=0: must be in [1, 10]"},
      {[](Interaction& e, float, float) { e.position = 11; }, "position=11: must be in [1, 10]"},
      {[](Interaction& e, float, float) { e.propensity = 0.0f; }, "propensity=0: must be in (0, 1]"},
      {[](Interaction& e, float, float) { e.propensity = 1.5f; }, "propensity=1.5: must be in (0, 1]"},
      {[](Interaction& e, float n, float) { e.propensity = n; }, "propensity=nan"},
      {[](Interaction& e, float, float) { e.features = {1, 2, 3}; }, "features: 3 values; at most 2"},
      {[](Interaction& e, float, float i) { e.features = {1, i}; }, "features[1]=inf: must be finite"},
      {[](Interaction& e, float, float) { e.event_id = "abcde"; }, "event_id: 5 bytes; at most 4"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    Interaction e = Valid();
    c.mutate(e, nan, inf);
    EXPECT_THAT(ValidateInteraction(e, limits), StatusIs(kInvalid, c.message));
  }
}

TEST(ValidateInteractionTest, DefaultLimits) {
  Interaction e = Valid();
  e.user = std::string(1024, 'k');
  EXPECT_OK(ValidateInteraction(e));
  e.user += 'k';
  EXPECT_THAT(ValidateInteraction(e), StatusIs(kInvalid, "at most 1024"));
  e = Valid();
  e.features.assign(4097, 0.0f);
  EXPECT_THAT(ValidateInteraction(e), StatusIs(kInvalid, "at most 4096"));
  e = Valid();
  e.position = 100001;
  EXPECT_THAT(ValidateInteraction(e), StatusIs(kInvalid, "[1, 100000]"));
}

}  // namespace
}  // namespace debias::data
