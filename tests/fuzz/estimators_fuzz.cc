// Fuzz target: the estimators' numeric inputs.
//
// Input: byte 0 picks the estimator family, the rest is decoded into its
// inputs with fuzz::Input (NaN, +-inf, 0, -0, denormal and huge values are
// drawn often; ids may be negative or out of range; users may be empty):
//   0  eval::EstimateRankingMetrics (naive, ips, snips, dr; options too)
//   1  eval::EstimatePolicyValue (dm, ips, snips, dr, switch-dr, dr-os)
//   2  propensity::FitEstimator (every registry row, with clip) on a small
//      view built from decoded events, queried with in- and out-of-range
//      ids; Clip(); Diagnostics(); the position click-list estimators
// Checks: bad input is INVALID_ARGUMENT / FAILED_PRECONDITION / NOT_FOUND,
// never a crash or a sanitizer report; accepted input gives finite results
// (metrics, values, interval ends) and propensities in (0, 1].
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/data/dataset_view.h"
#include "core/data/interaction.h"
#include "core/eval/policy.h"
#include "core/eval/unbiased.h"
#include "core/propensity/estimator.h"
#include "core/propensity/estimators.h"
#include "core/propensity/position_lists.h"
#include "core/propensity/registry.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using namespace debias;

bool IsInputError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kFailedPrecondition ||
         s.code() == absl::StatusCode::kNotFound ||
         s.code() == absl::StatusCode::kOutOfRange;
}

// Ids mostly in [0, 12), sometimes negative or far out of range.
int32_t Id(fuzz::Input& in) {
  const uint8_t b = in.Byte();
  if (b < 240) return b % 12;
  switch (b % 4) {
    case 0: return -1;
    case 1: return std::numeric_limits<int32_t>::max();
    case 2: return std::numeric_limits<int32_t>::min();
    default: return 1000 + b;
  }
}

double Options01(fuzz::Input& in, double usual) {
  const uint8_t b = in.Byte();
  if (b < 128) return usual;
  if (b < 192) return (b - 127) / 64.0;
  return in.Double();
}

void FuzzRanking(fuzz::Input& in) {
  eval::UnbiasedRankingOptions o;
  o.estimator = static_cast<eval::RelevanceEstimator>(in.Byte() % 4);
  const int nk = in.Byte() % 4;  // 0 ks is invalid
  o.ks.clear();
  for (int k = 0; k < nk; ++k) {
    const uint8_t b = in.Byte();
    o.ks.push_back(b < 250 ? 1 + b % 12 : (b == 250 ? 0 : b == 251 ? 1001 : -b));
  }
  o.clip = in.Bool() ? 0.0 : in.Prob();
  o.bootstrap = in.Byte() % 8;
  if (o.bootstrap == 7) o.bootstrap = -1;
  o.seed = in.Byte();
  o.confidence = Options01(in, 0.95);
  o.num_threads = 1 + in.Byte() % 3;

  const int num_users = in.Byte() % 10;
  const bool with_loss = in.Bool();
  std::vector<eval::UserRanking> users(num_users);
  for (auto& u : users) {
    const int nr = in.Byte() % 10;
    for (int r = 0; r < nr; ++r) u.ranked.push_back(Id(in));
    const int nc = in.Byte() % 6;
    int32_t last = -1;
    const bool ascending = in.Byte() < 230;
    for (int c = 0; c < nc; ++c) {
      int32_t id = Id(in);
      if (ascending) id = last + 1 + (id & 3);
      last = id;
      u.clicked.push_back(id);
      u.clicked_propensity.push_back(in.Prob());
    }
    if (in.Byte() > 240) u.clicked_propensity.push_back(0.5);  // length mismatch
    if (o.estimator == eval::RelevanceEstimator::kDr || in.Byte() > 240) {
      const size_t n = u.ranked.size() + (in.Byte() > 245 ? 1 : 0);
      for (size_t r = 0; r < n; ++r) {
        u.ranked_propensity.push_back(in.Prob());
        u.ranked_imputed.push_back(in.Prob());
      }
    }
    if (with_loss) {
      for (size_t c = 0; c < u.clicked.size(); ++c) u.clicked_score.push_back(in.Prob());
      u.negative_log_loss_sum = in.Bool() ? in.Byte() / 8.0 : in.Double();
      u.num_candidates = static_cast<int64_t>(u.clicked.size()) + in.Range(-1, 30);
    }
  }
  auto r = eval::EstimateRankingMetrics(users, o);
  if (!r.ok()) {
    FUZZ_CHECK(IsInputError(r.status()));
    return;
  }
  FUZZ_CHECK(!r->metrics.empty());
  for (const auto& [name, v] : r->metrics) FUZZ_CHECK(std::isfinite(v));
  for (const auto& [name, iv] : r->intervals) {
    FUZZ_CHECK(std::isfinite(iv.low) && std::isfinite(iv.high));
    FUZZ_CHECK(iv.low <= iv.high);
  }
  for (const auto& [name, iv] : r->normal_intervals) {
    FUZZ_CHECK(!std::isnan(iv.low) && !std::isnan(iv.high));
    FUZZ_CHECK(iv.low <= iv.high);
  }
  (void)r->diagnostics.dump();  // the JSON must serialise (no NaN traps)
}

void FuzzPolicy(fuzz::Input& in) {
  eval::PolicyOptions o;
  o.estimator = static_cast<eval::PolicyEstimator>(in.Byte() % 6);
  o.clip = in.Bool() ? 0.0 : in.Double();
  if (in.Bool()) o.tau = in.Double();
  if (in.Bool()) o.lambda = in.Double();
  o.bootstrap = in.Byte() % 8;
  o.seed = in.Byte();
  o.confidence = Options01(in, 0.95);
  o.num_threads = 1 + in.Byte() % 3;
  const int n = in.Byte() % 12;
  std::vector<eval::LoggedDecision> d(n);
  for (auto& x : d) {
    const int len = in.Byte() % 4;  // 0 positions is invalid
    for (int k = 0; k < len; ++k) {
      x.reward.push_back(in.Bool() ? in.Byte() % 2 : in.Double());
      x.logging_prob.push_back(in.Prob());
      x.target_prob.push_back(in.Prob());
      if (in.Byte() < 200) x.reward_hat.push_back(in.Prob());
    }
    if (in.Byte() > 245) x.target_prob.push_back(1.0);  // length mismatch
    x.target_dm = in.Bool() ? in.Prob() : in.Double();
  }
  auto r = eval::EstimatePolicyValue(d, o);
  if (!r.ok()) {
    FUZZ_CHECK(IsInputError(r.status()));
    return;
  }
  FUZZ_CHECK(std::isfinite(r->value));
  FUZZ_CHECK(!std::isnan(r->normal_interval.low) && !std::isnan(r->normal_interval.high));
  FUZZ_CHECK(r->normal_interval.low <= r->normal_interval.high);
  if (r->interval) {
    FUZZ_CHECK(std::isfinite(r->interval->low) && std::isfinite(r->interval->high));
    FUZZ_CHECK(r->interval->low <= r->interval->high);
  }
  (void)r->diagnostics.dump();
}

std::string ParamValue(fuzz::Input& in) {
  static const char* kValues[] = {"0",     "1",    "2",     "3",     "0.5",  "0.999",
                                  "-1",    "nan",  "inf",   "-inf",  "1e-320", "1e-12",
                                  "100",   "x",    "",      "true",  "false", "1e400",
                                  "0x10",  " 1",   "1 ",    "0.05",  "4",     "1e-7"};
  const uint8_t b = in.Byte();
  if (b < 250) return kValues[b % (sizeof(kValues) / sizeof(kValues[0]))];
  return in.String(8);
}

void CheckPropensity(float p) {
  FUZZ_CHECK(std::isfinite(p));
  FUZZ_CHECK(p > 0.0f && p <= 1.0f);
}

void ExerciseEstimator(const propensity::Estimator& est, const data::DatasetView& view,
                       const propensity::LabelRule& rule) {
  const uint32_t nu = view.num_users(), ni = view.num_items();
  const uint32_t users[] = {0, nu ? nu - 1 : 0, nu, nu + 1, UINT32_MAX};
  const uint32_t items[] = {0, ni ? ni - 1 : 0, ni, ni + 7, UINT32_MAX};
  const int labels[] = {propensity::kUnknownLabel, 0, 1, 7};
  for (uint32_t u : users) {
    for (uint32_t i : items) {
      for (int l : labels) CheckPropensity(est.Pair(u, i, l));
    }
  }
  for (size_t e = 0; e < view.num_events(); ++e) {
    for (int l : labels) CheckPropensity(est.Event(view, e, l));
  }
  for (float p : propensity::EventPropensities(est, view, rule)) CheckPropensity(p);
  (void)propensity::Diagnostics(est, view, rule).dump();
  (void)est.Describe().dump();
  (void)est.unclipped().name();
}

void FuzzPropensity(fuzz::Input& in) {
  const int n = in.Byte() % 24;
  std::vector<data::Interaction> events(n);
  for (auto& e : events) {
    e.user = "u" + std::to_string(in.Byte() % 6);
    e.item = "i" + std::to_string(in.Byte() % 8);
    const uint8_t lb = in.Byte();
    e.label = lb < 200 ? static_cast<float>(lb % 3) : in.Float();
    const uint8_t flags = in.Byte();
    if (flags & 1) e.propensity = in.Byte() < 200 ? static_cast<float>(in.Prob()) : in.Float();
    if (flags & 2) e.list_id = "l" + std::to_string(in.Byte() % 4);
    if (flags & 4) e.position = static_cast<int32_t>(in.Range(-1, 12));
    if (flags & 8) e.timestamp = static_cast<int64_t>(in.U32());
  }
  auto view_or = data::BuildViewFromInteractions(events);
  if (!view_or.ok()) {
    FUZZ_CHECK(IsInputError(view_or.status()));
    return;
  }
  const data::DatasetView& view = *view_or;

  propensity::FitContext ctx;
  if (in.Bool()) ctx.rule.threshold = in.Bool() ? 1.0 : in.Double();
  ctx.seed = in.Byte();
  if (in.Bool()) ctx.mar = &view;
  if (in.Bool()) ctx.mar_rule.threshold = 1.0;
  const auto& rows = propensity::Estimators();
  const uint8_t pick = in.Byte();
  const std::string name = pick < 250 ? std::string(rows[pick % rows.size()].name)
                                      : in.String(12);
  std::vector<std::string> row_keys;  // the row's own keys (clip is picked below)
  if (pick < 250) {
    for (const auto& spec : propensity::EstimatorParams(name)) {
      if (spec.name != "clip") row_keys.push_back(spec.name);
    }
  }
  std::map<std::string, std::string> params;
  const int np = in.Byte() % 4;
  for (int p = 0; p < np; ++p) {
    std::string key;
    const uint8_t kb = in.Byte();
    const auto* row = pick < 250 ? &rows[pick % rows.size()] : nullptr;
    if (kb < 40) {
      key = "clip";
    } else if (row && kb < 230 && !row_keys.empty()) {
      key = row_keys[kb % row_keys.size()];
    } else {
      key = in.String(8);
    }
    params[key] = ParamValue(in);
  }
  // Keep one execution fast: the logistic fit runs epochs x neg_ratio steps.
  for (const char* slow : {"epochs", "neg_ratio", "batch_size"}) {
    auto it = params.find(slow);
    if (it != params.end() && it->second == "100") it->second = "3";
  }
  auto est = propensity::FitEstimator(name, view, params, ctx);
  if (!est.ok()) {
    FUZZ_CHECK(IsInputError(est.status()));
  } else {
    ExerciseEstimator(**est, view, ctx.rule);
    auto clipped = propensity::Clip(std::move(*est), in.Prob());
    if (clipped.ok()) {
      ExerciseEstimator(**clipped, view, ctx.rule);
      FUZZ_CHECK((*clipped)->clip().has_value());
    } else {
      FUZZ_CHECK(IsInputError(clipped.status()));
    }
  }

  // Position-bias estimates from click lists.
  const int k = static_cast<int>(in.Range(-1, 12));
  auto lists = propensity::BuildClickLists(view, k);
  if (!lists.ok()) {
    FUZZ_CHECK(IsInputError(lists.status()));
    return;
  }
  FUZZ_CHECK(lists->event.size() == lists->num_lists() * lists->num_positions);
  FUZZ_CHECK(lists->click.size() == lists->event.size());
  FUZZ_CHECK(lists->mask.size() == lists->event.size());
  (void)propensity::CountPositionClicks(*lists);
  for (auto r : {propensity::RandomizationPropensities(*lists),
                 propensity::ClickRateRatios(*lists)}) {
    if (!r.ok()) {
      FUZZ_CHECK(IsInputError(r.status()));
      continue;
    }
    FUZZ_CHECK(static_cast<int>(r->size()) == lists->num_positions);
    for (double p : *r) FUZZ_CHECK(std::isfinite(p) && p >= 0.0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  fuzz::Input in(data, size);
  switch (in.Byte() % 3) {
    case 0: FuzzRanking(in); break;
    case 1: FuzzPolicy(in); break;
    default: FuzzPropensity(in); break;
  }
  return 0;
}
