// Small fixtures shared by the core tests: one interaction, and a fixed
// two-user, three-item score table served as a Model.
#ifndef DEBIAS_TESTS_UTIL_FIXTURES_H_
#define DEBIAS_TESTS_UTIL_FIXTURES_H_

#include <optional>
#include <string>

#include "core/data/interaction.h"
#include "core/model/model.h"

namespace debias::testing {

inline data::Interaction Ev(std::string u, std::string i, float label,
                            std::optional<float> p = std::nullopt) {
  data::Interaction e;
  e.user = std::move(u);
  e.item = std::move(i);
  e.label = label;
  e.propensity = p;
  return e;
}

// Users x, y; items p, q, r. x ranks q (0.9), r (0.5), p (0.1); y ranks
// p (0.8), r (0.3), q (0.2).
class TableModel final : public model::Model {
 public:
  static constexpr float kScores[2][3] = {{0.1f, 0.9f, 0.5f}, {0.8f, 0.2f, 0.3f}};
  std::string_view kind() const override { return "table"; }
  uint32_t num_users() const override { return 2; }
  uint32_t num_items() const override { return 3; }
  std::string Serialize() const override { return ""; }

 protected:
  float ScorePair(uint32_t u, uint32_t i) const override { return kScores[u][i]; }
};

}  // namespace debias::testing

#endif  // DEBIAS_TESTS_UTIL_FIXTURES_H_
