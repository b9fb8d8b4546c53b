#include "core/propensity/position_lists.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace debias::propensity {

absl::StatusOr<ClickLists> BuildClickLists(const data::DatasetView& view,
                                           int max_positions) {
  if (max_positions < 1 || max_positions > kMaxListPositions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_positions=", max_positions, ": max_positions must be in [1, ",
        kMaxListPositions, "]"));
  }
  if (view.list.empty()) {
    return absl::FailedPreconditionError(
        "click log: the dataset has no list ids (list_id column)");
  }
  if (view.position.empty()) {
    return absl::FailedPreconditionError(
        "click log: the dataset has no positions (position column)");
  }
  const size_t num_view_lists = view.list_keys.size();
  const int K = max_positions;
  // Dense view list id -> kept list index, assigned in order of first use.
  std::vector<uint32_t> index(num_view_lists, kNoEvent);
  ClickLists out;
  out.num_positions = K;
  for (size_t e = 0; e < view.num_events(); ++e) {
    const uint32_t l = view.list[e];
    const int32_t p = view.position[e];
    if (l == data::kNoList || l >= num_view_lists || p < 1 || p > K) {
      ++out.skipped_events;
      continue;
    }
    if (index[l] == kNoEvent) {
      index[l] = static_cast<uint32_t>(out.list_id.size());
      out.list_id.push_back(l);
      out.event.resize(out.event.size() + K, kNoEvent);
    }
    const size_t s = out.slot(index[l], p);
    if (out.event[s] != kNoEvent) {
      return absl::InvalidArgumentError(absl::StrCat(
          "click log: list '", view.list_keys[l], "' has two events at position ", p));
    }
    out.event[s] = static_cast<uint32_t>(e);
  }
  out.click.assign(out.event.size(), 0.0f);
  out.mask.assign(out.event.size(), 0);
  for (size_t s = 0; s < out.event.size(); ++s) {
    if (out.event[s] == kNoEvent) continue;
    out.mask[s] = 1;
    out.click[s] = view.label[out.event[s]] > 0.0f ? 1.0f : 0.0f;
  }
  return out;
}

PositionClickCounts CountPositionClicks(const ClickLists& lists) {
  const int K = lists.num_positions;
  PositionClickCounts c;
  c.first.assign(K, 0.0);
  c.at.assign(K, 0.0);
  c.lists.assign(K, 0.0);
  for (size_t q = 0; q < lists.num_lists(); ++q) {
    const size_t s1 = lists.slot(q, 1);
    if (!lists.mask[s1]) continue;
    for (int r = 1; r <= K; ++r) {
      const size_t s = lists.slot(q, r);
      if (!lists.mask[s]) continue;
      c.first[r - 1] += lists.click[s1];
      c.at[r - 1] += lists.click[s];
      c.lists[r - 1] += 1.0;
    }
  }
  return c;
}

absl::StatusOr<std::vector<double>> RandomizationPropensities(
    const ClickLists& lists) {
  const PositionClickCounts c = CountPositionClicks(lists);
  if (lists.num_positions == 0 || c.first[0] <= 0.0) {
    return absl::FailedPreconditionError(
        "randomization: no list has a click at position 1");
  }
  std::vector<double> p(lists.num_positions);
  for (int r = 0; r < lists.num_positions; ++r) {
    const double F = c.first[r];
    if (F <= 0.0) {  // no list of this length: nothing known, assume 1/F_1
      p[r] = 1.0 / c.first[0];
      continue;
    }
    const double ipw = std::min(F / (c.at[r] + 1e-5), F);
    p[r] = 1.0 / ipw;
  }
  p[0] = 1.0;
  return p;
}

absl::StatusOr<std::vector<double>> ClickRateRatios(const ClickLists& lists) {
  const int K = lists.num_positions;
  std::vector<double> clicks(K, 0.0), shown(K, 0.0);
  for (size_t q = 0; q < lists.num_lists(); ++q) {
    for (int r = 1; r <= K; ++r) {
      const size_t s = lists.slot(q, r);
      if (!lists.mask[s]) continue;
      clicks[r - 1] += lists.click[s];
      shown[r - 1] += 1.0;
    }
  }
  if (K == 0 || clicks[0] <= 0.0) {
    return absl::FailedPreconditionError(
        "click-rate ratio: position 1 has no click");
  }
  const double ctr1 = clicks[0] / shown[0];
  std::vector<double> p(K, 0.0);
  for (int r = 0; r < K; ++r) {
    p[r] = shown[r] > 0 ? (clicks[r] / shown[r]) / ctr1 : 0.0;
  }
  return p;
}

}  // namespace debias::propensity
