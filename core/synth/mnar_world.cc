#include "core/synth/mnar_world.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "core/clickmodels/click_model.h"
#include "core/synth/synth_util.h"
#include "core/util/status_macros.h"

namespace debias::synth {
namespace {

using clickmodels::Uniform01;
using internal::StandardNormal;
using internal::StreamRng;
using internal::UniformIndex;

constexpr int64_t kMaxUsers = 10'000'000;
constexpr int64_t kMaxItems = 10'000'000;
constexpr double kMaxFactorFloats = 256.0 * 1024 * 1024;
constexpr double kMaxExpectedExposures = 2e9;
constexpr double kMaxExpectedClicks = 5e8;
constexpr int64_t kCalibrationPairs = 200'000;
constexpr int kActivityBuckets = 64;

// Independent random streams of one world.
enum Stream : uint64_t {
  kUserFactors = 1,
  kItemFactors = 2,
  kPopularity = 3,
  kActivity = 4,
  kCalibration = 5,
  kExposure = 6,
  kMarTest = 7,
  kTruthSample = 8,
};

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

absl::Status Range(const char* name, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, "=", v, ": ", name, " must be in [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

// Sum over users of min(1, t * a_u), given a_u sorted ascending and their
// prefix sums (prefix[k] = a_0 + ... + a_{k-1}).
double ExposedUsers(double t, const std::vector<double>& sorted_a,
                    const std::vector<double>& prefix) {
  if (t <= 0.0) return 0.0;
  // Users with t * a_u >= 1 are always exposed.
  const double thr = 1.0 / t;
  const size_t k = std::lower_bound(sorted_a.begin(), sorted_a.end(), thr) -
                   sorted_a.begin();
  return t * prefix[k] + static_cast<double>(sorted_a.size() - k);
}

void AppendTruthRow(uint32_t u, uint32_t i, double rel, double expo,
                    std::string* out) {
  char buf[96];
  const int n =
      std::snprintf(buf, sizeof(buf), "u%u,i%u,%.9g,%.9g\n", u, i, rel, expo);
  out->append(buf, n);
}

// Several exposure passes click the same pair more than once: sorts each
// user's items (CSR `offsets` / `items`) and folds repeats into `counts`.
void FoldRepeatedClicks(size_t num_users, std::vector<uint64_t>* offsets,
                        std::vector<uint32_t>* items, std::vector<uint16_t>* counts) {
  std::vector<uint32_t> folded;
  std::vector<uint64_t> folded_offsets(num_users + 1, 0);
  folded.reserve(items->size());
  counts->clear();
  counts->reserve(items->size());
  for (size_t u = 0; u < num_users; ++u) {
    auto b = items->begin() + (*offsets)[u];
    auto e = items->begin() + (*offsets)[u + 1];
    std::sort(b, e);
    for (auto it = b; it != e; ++it) {
      if (it != b && *it == *(it - 1)) {
        ++counts->back();
      } else {
        folded.push_back(*it);
        counts->push_back(1);
      }
    }
    folded_offsets[u + 1] = folded.size();
  }
  *items = std::move(folded);
  *offsets = std::move(folded_offsets);
}

}  // namespace

absl::Status ValidateMnarWorldOptions(const MnarWorldOptions& o) {
  if (o.num_users < 1 || o.num_users > kMaxUsers) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_users=", o.num_users, ": num_users must be in [1, ",
                     kMaxUsers, "]"));
  }
  if (o.num_items < 1 || o.num_items > kMaxItems) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_items=", o.num_items, ": num_items must be in [1, ",
                     kMaxItems, "]"));
  }
  if (o.dim < 1 || o.dim > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("dim=", o.dim, ": dim must be in [1, 256]"));
  }
  if (absl::Status s = Range("exposure_power", o.exposure_power, 0, 10);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          Range("popularity_exponent", o.popularity_exponent, 0, 5);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Range("relevance_mean", o.relevance_mean, 0.01, 0.9);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Range("relevance_spread", o.relevance_spread, 0, 10);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          Range("user_activity_sigma", o.user_activity_sigma, 0, 3);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          Range("expected_clicks", o.expected_clicks, 0, kMaxExpectedClicks);
      !s.ok()) {
    return s;
  }
  if (!(o.exposure_scale > 0.0 && o.exposure_scale <= 1e12)) {
    return absl::InvalidArgumentError(
        absl::StrCat("exposure_scale=", o.exposure_scale,
                     ": exposure_scale must be in (0, 1e12]"));
  }
  const int64_t max_k = std::min<int64_t>(o.num_items, 1000);
  if (o.exposures < 1 || o.exposures > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exposures=", o.exposures, ": exposures must be in [1, 1000]"));
  }
  if (o.mar_test_items_per_user < 0 || o.mar_test_items_per_user > max_k) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mar_test_items_per_user=", o.mar_test_items_per_user,
        ": mar_test_items_per_user must be in [0, min(num_items, 1000)] = [0, ",
        max_k, "]"));
  }
  if (o.truth_sample_pairs < 0 || o.truth_sample_pairs > 10'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("truth_sample_pairs=", o.truth_sample_pairs,
                     ": truth_sample_pairs must be in [0, 10000000]"));
  }
  const double floats = static_cast<double>(o.num_users + o.num_items) * o.dim;
  if (floats > kMaxFactorFloats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "(num_users + num_items) * dim = ", floats,
        ": latent factors must fit in ", kMaxFactorFloats, " floats"));
  }
  return absl::OkStatus();
}

// Popularity ranks: a random permutation, Zipf weights.
void MnarWorld::DrawPopularity() {
  const size_t I = options_.num_items;
  popularity_.resize(I);
  exposure_weight_.resize(I);
  std::vector<uint32_t> rank(I);
  std::iota(rank.begin(), rank.end(), 1u);
  std::mt19937_64 rng = StreamRng(options_.seed, kPopularity);
  for (size_t k = I; k > 1; --k) {
    std::swap(rank[k - 1], rank[UniformIndex(rng, k)]);
  }
  for (size_t i = 0; i < I; ++i) {
    popularity_[i] = std::pow(static_cast<double>(rank[i]), -options_.popularity_exponent);
    exposure_weight_[i] = std::pow(popularity_[i], options_.exposure_power);
  }
}

// User activity, and the users sorted by it for the exposure sums.
MnarWorld::ActivityOrder MnarWorld::DrawActivity() {
  const size_t U = options_.num_users;
  ActivityOrder a;
  a.order.resize(U);  // users by ascending activity
  std::iota(a.order.begin(), a.order.end(), 0u);
  a.sorted.assign(U, 1.0);
  if (options_.user_activity_sigma > 0.0) {
    const double sg = options_.user_activity_sigma;
    activity_.resize(U);
    std::mt19937_64 rng = StreamRng(options_.seed, kActivity);
    for (double& x : activity_) x = std::exp(sg * StandardNormal(rng) - 0.5 * sg * sg);
    std::stable_sort(a.order.begin(), a.order.end(),
                     [&](uint32_t x, uint32_t y) { return activity_[x] < activity_[y]; });
    for (size_t k = 0; k < U; ++k) a.sorted[k] = activity_[a.order[k]];
  }
  a.prefix.assign(U + 1, 0.0);
  for (size_t k = 0; k < U; ++k) a.prefix[k + 1] = a.prefix[k] + a.sorted[k];
  return a;
}

double MnarWorld::ExpectedExposures(const ActivityOrder& a, double scale) const {
  double s = 0.0;
  for (size_t i = 0; i < options_.num_items; ++i) {
    s += ExposedUsers(scale * exposure_weight_[i], a.sorted, a.prefix);
  }
  return s;
}

void MnarWorld::DrawFactors() {
  const size_t U = options_.num_users, I = options_.num_items;
  const int dim = options_.dim;
  user_factors_.resize(U * dim);
  {
    std::mt19937_64 rng = StreamRng(options_.seed, kUserFactors);
    internal::FillStandardNormal(rng, user_factors_.data(), user_factors_.size());
  }
  item_factors_.resize(I * dim);
  item_const_.resize(I);
  std::mt19937_64 rng = StreamRng(options_.seed, kItemFactors);
  const double fs = options_.relevance_spread * 0.8 / std::sqrt(dim);
  const double bs = options_.relevance_spread * 0.6;
  for (size_t i = 0; i < I; ++i) {
    for (int k = 0; k < dim; ++k) {
      item_factors_[i * dim + k] = static_cast<float>(fs * StandardNormal(rng));
    }
    item_const_[i] = static_cast<float>(bs * StandardNormal(rng));
  }
}

// Relevance offset: match the mean of gamma on a fixed sample of pairs.
void MnarWorld::CalibrateRelevance() {
  const size_t U = options_.num_users, I = options_.num_items;
  const uint64_t total = static_cast<uint64_t>(U) * I;
  std::vector<double> z;
  if (total <= static_cast<uint64_t>(kCalibrationPairs)) {
    z.reserve(total);
    for (uint32_t u = 0; u < U; ++u) {
      for (uint32_t i = 0; i < I; ++i) z.push_back(Score(u, i));
    }
  } else {
    std::mt19937_64 rng = StreamRng(options_.seed, kCalibration);
    z.reserve(kCalibrationPairs);
    for (int64_t n = 0; n < kCalibrationPairs; ++n) {
      const uint32_t u = static_cast<uint32_t>(UniformIndex(rng, U));
      const uint32_t i = static_cast<uint32_t>(UniformIndex(rng, I));
      z.push_back(Score(u, i));
    }
  }
  auto mean_at = [&](double c) {
    double s = 0.0;
    for (double v : z) s += Sigmoid(v + c);
    return s / static_cast<double>(z.size());
  };
  double lo = -60.0, hi = 60.0;
  for (int it = 0; it < 80; ++it) {
    const double mid = 0.5 * (lo + hi);
    (mean_at(mid) < options_.relevance_mean ? lo : hi) = mid;
  }
  const double c = 0.5 * (lo + hi);
  for (float& v : item_const_) v = static_cast<float>(v + c);
  summary_.relevance_offset = c;
  summary_.mean_relevance = mean_at(c);
}

// The exposure scale that gives options_.expected_clicks (or the given
// exposure_scale).
absl::StatusOr<double> MnarWorld::ExposureScale(const ActivityOrder& a) const {
  if (!(options_.expected_clicks > 0.0)) return options_.exposure_scale;
  const size_t U = options_.num_users, I = options_.num_items;
  const int dim = options_.dim;
  // E[#clicks] = sum_i sum_u theta_ui gamma_ui; gamma is independent of
  // theta across worlds but not within one (item biases), so weight each
  // item by its mean relevance over a fixed sample of users.
  const size_t m = std::min<size_t>(
      U, std::clamp<size_t>(static_cast<size_t>(2e8 / (static_cast<double>(I) * dim)), 16, 512));
  std::vector<uint32_t> sample(m);
  if (m == U) {
    std::iota(sample.begin(), sample.end(), 0u);
  } else {
    std::mt19937_64 rng = StreamRng(options_.seed, kCalibration, 1);
    for (uint32_t& u : sample) u = static_cast<uint32_t>(UniformIndex(rng, U));
  }
  std::vector<double> item_gamma(I);
  double reachable = 0.0;
  for (uint32_t i = 0; i < I; ++i) {
    double g = 0.0;
    for (uint32_t u : sample) g += Relevance(u, i);
    item_gamma[i] = g / static_cast<double>(m);
    reachable += static_cast<double>(U) * item_gamma[i];
  }
  auto expected_clicks = [&](double sc) {
    double e = 0.0;
    for (size_t i = 0; i < I; ++i) {
      e += item_gamma[i] * ExposedUsers(sc * exposure_weight_[i], a.sorted, a.prefix);
    }
    return e;
  };
  if (options_.expected_clicks >= 0.999 * reachable) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected_clicks=", options_.expected_clicks,
                     ": unreachable; at most about ", 0.999 * reachable,
                     " clicks with num_users=", U, ", num_items=", I,
                     ", relevance_mean=", options_.relevance_mean));
  }
  double lo = std::log(1e-300), hi = std::log(1e300);
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    (expected_clicks(std::exp(mid)) < options_.expected_clicks ? lo : hi) = mid;
  }
  return std::exp(0.5 * (lo + hi));
}

// Exposures and clicks, item by item. Users are walked in activity buckets;
// within a bucket each user is a candidate with the bucket's largest theta
// and is kept with probability theta_ui / that (thinning), so every user is
// exposed independently with probability theta_ui.
void MnarWorld::DrawClicks(const ActivityOrder& a, std::vector<uint32_t>* click_user,
                           std::vector<uint32_t>* click_item) {
  const size_t U = options_.num_users, I = options_.num_items;
  const double expect_clicks = summary_.expected_exposures * summary_.mean_relevance;
  click_user->reserve(static_cast<size_t>(expect_clicks * 1.02 + 1024));
  click_item->reserve(click_user->capacity());
  const size_t B = activity_.empty() ? 1 : std::min<size_t>(U, kActivityBuckets);
  std::vector<size_t> bucket_begin(B + 1);
  for (size_t b = 0; b <= B; ++b) bucket_begin[b] = b * U / B;
  std::mt19937_64 rng = StreamRng(options_.seed, kExposure);
  uint64_t exposures = 0;
  double gamma_sum = 0.0;
  for (int pass = 0; pass < options_.exposures; ++pass)
  for (uint32_t i = 0; i < I; ++i) {
    const double wi = scale_ * exposure_weight_[i];
    for (size_t b = 0; b < B; ++b) {
      const size_t lo = bucket_begin[b], hi = bucket_begin[b + 1];
      const double tmax = std::min(1.0, wi * a.sorted[hi - 1]);
      if (!(tmax > 0.0)) continue;
      const double log_q = tmax < 1.0 ? std::log1p(-tmax) : 0.0;
      const size_t n = hi - lo;
      size_t j = 0;
      while (true) {
        if (tmax < 1.0) {
          // Number of non-candidates before the next candidate.
          const double skip = std::floor(std::log(1.0 - Uniform01(rng)) / log_q);
          if (!(skip < static_cast<double>(n - j))) break;
          j += static_cast<size_t>(skip);
        }
        if (j >= n) break;
        const uint32_t u = a.order[lo + j];
        ++j;
        if (!activity_.empty()) {
          const double theta = std::min(1.0, wi * activity_[u]);
          if (theta < tmax && !(Uniform01(rng) * tmax < theta)) continue;
        }
        ++exposures;
        const double gamma = Relevance(u, i);
        gamma_sum += gamma;
        if (Uniform01(rng) < gamma) {
          click_user->push_back(u);
          click_item->push_back(i);
        }
      }
    }
  }
  summary_.exposures = exposures;
  summary_.expected_clicks_estimate = gamma_sum;
}

// Item-major clicks -> user-major CSR (items stay ascending per user), and
// the click counts of the summary.
void MnarWorld::BuildClickIndex(const std::vector<uint32_t>& click_user,
                                const std::vector<uint32_t>& click_item) {
  const size_t U = options_.num_users, I = options_.num_items;
  click_offsets_.assign(U + 1, 0);
  for (uint32_t u : click_user) ++click_offsets_[u + 1];
  for (size_t u = 0; u < U; ++u) click_offsets_[u + 1] += click_offsets_[u];
  click_items_.resize(click_user.size());
  {
    std::vector<uint64_t> next(click_offsets_.begin(), click_offsets_.end() - 1);
    for (size_t k = 0; k < click_user.size(); ++k) {
      click_items_[next[click_user[k]]++] = click_item[k];
    }
  }
  if (options_.exposures > 1) {
    FoldRepeatedClicks(U, &click_offsets_, &click_items_, &click_counts_);
  }
  summary_.clicks = click_items_.size();
  std::vector<uint8_t> item_seen(I, 0);
  for (uint32_t i : click_item) item_seen[i] = 1;
  summary_.items_with_clicks = std::count(item_seen.begin(), item_seen.end(), 1);
  for (size_t u = 0; u < U; ++u) {
    summary_.users_with_clicks += click_offsets_[u + 1] > click_offsets_[u] ? 1 : 0;
  }
}

// MAR test sample: Floyd's algorithm for K distinct items per user.
void MnarWorld::DrawMarTest() {
  const size_t U = options_.num_users, I = options_.num_items;
  const size_t K = options_.mar_test_items_per_user;
  test_items_.resize(U * K);
  test_labels_.resize(U * K);
  if (K > 0) {
    std::mt19937_64 rng = StreamRng(options_.seed, kMarTest);
    std::vector<uint8_t> taken(I, 0);
    for (uint32_t u = 0; u < U; ++u) {
      uint32_t* items = &test_items_[u * K];
      size_t m = 0;
      for (size_t j = I - K; j < I; ++j) {
        uint32_t t = static_cast<uint32_t>(UniformIndex(rng, j + 1));
        if (taken[t]) t = static_cast<uint32_t>(j);
        taken[t] = 1;
        items[m++] = t;
      }
      std::sort(items, items + K);
      for (size_t k = 0; k < K; ++k) {
        taken[items[k]] = 0;
        const uint8_t r = Uniform01(rng) < Relevance(u, items[k]) ? 1 : 0;
        test_labels_[u * K + k] = r;
        summary_.test_positives += r;
      }
    }
  }
  summary_.test_events = U * K;
}

absl::StatusOr<MnarWorld> MnarWorld::Generate(const MnarWorldOptions& options) {
  if (absl::Status s = ValidateMnarWorldOptions(options); !s.ok()) return s;
  MnarWorld w;
  w.options_ = options;
  w.DrawPopularity();
  const ActivityOrder activity = w.DrawActivity();
  if (options.expected_clicks == 0.0) {
    // Fail before the expensive part when the world would be too big.
    const double e = w.ExpectedExposures(activity, options.exposure_scale);
    if (e > kMaxExpectedExposures) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expected exposures ", e, " exceed ", kMaxExpectedExposures,
          ": lower exposure_scale or raise exposure_power"));
    }
  }
  w.DrawFactors();
  w.CalibrateRelevance();
  ASSIGN_OR_RETURN(w.scale_, w.ExposureScale(activity));
  w.summary_.exposure_scale = w.scale_;
  w.summary_.expected_exposures = w.ExpectedExposures(activity, w.scale_);
  if (w.summary_.expected_exposures > kMaxExpectedExposures) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected exposures ", w.summary_.expected_exposures, " exceed ",
        kMaxExpectedExposures,
        ": lower exposure_scale or expected_clicks, or raise exposure_power"));
  }
  if (w.summary_.expected_exposures * w.summary_.mean_relevance > kMaxExpectedClicks) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected clicks ", w.summary_.expected_exposures * w.summary_.mean_relevance,
                     " exceed ", kMaxExpectedClicks, ": lower exposure_scale"));
  }
  {
    std::vector<uint32_t> click_user, click_item;
    w.DrawClicks(activity, &click_user, &click_item);
    w.BuildClickIndex(click_user, click_item);
  }
  w.DrawMarTest();
  return w;
}

double MnarWorld::Relevance(uint32_t u, uint32_t i) const {
  if (u >= num_users() || i >= num_items()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return Sigmoid(Score(u, i));
}

double MnarWorld::Score(uint32_t u, uint32_t i) const {
  const int dim = options_.dim;
  const float* x = &user_factors_[static_cast<size_t>(u) * dim];
  const float* y = &item_factors_[static_cast<size_t>(i) * dim];
  float s = 0.0f;
  for (int k = 0; k < dim; ++k) s += x[k] * y[k];
  return static_cast<double>(s) + item_const_[i];
}

double MnarWorld::Exposure(uint32_t u, uint32_t i) const {
  if (u >= num_users() || i >= num_items()) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const double a = activity_.empty() ? 1.0 : activity_[u];
  return std::min(1.0, scale_ * exposure_weight_[i] * a);
}

double MnarWorld::Popularity(uint32_t i) const {
  return i < num_items() ? popularity_[i]
                         : std::numeric_limits<double>::quiet_NaN();
}

double MnarWorld::UserActivity(uint32_t u) const {
  if (u >= num_users()) return std::numeric_limits<double>::quiet_NaN();
  return activity_.empty() ? 1.0 : activity_[u];
}

std::span<const uint32_t> MnarWorld::ClickedItems(uint32_t u) const {
  if (u >= num_users()) return {};
  return {click_items_.data() + click_offsets_[u],
          click_items_.data() + click_offsets_[u + 1]};
}

std::span<const uint32_t> MnarWorld::TestItems(uint32_t u) const {
  if (u >= num_users()) return {};
  const size_t K = options_.mar_test_items_per_user;
  return {test_items_.data() + u * K, K};
}

std::span<const uint8_t> MnarWorld::TestLabels(uint32_t u) const {
  if (u >= num_users()) return {};
  const size_t K = options_.mar_test_items_per_user;
  return {test_labels_.data() + u * K, K};
}

namespace {

data::Interaction Event(uint32_t u, uint32_t i, float label) {
  data::Interaction e;
  e.user = absl::StrCat("u", u);
  e.item = absl::StrCat("i", i);
  e.label = label;
  return e;
}

std::vector<std::string> Keys(const char* prefix, size_t n) {
  std::vector<std::string> keys(n);
  for (size_t k = 0; k < n; ++k) keys[k] = absl::StrCat(prefix, k);
  return keys;
}

}  // namespace

float MnarWorld::ClickLabel(uint32_t u, size_t k) const {
  if (click_counts_.empty()) return 1.0f;
  return static_cast<float>(click_counts_[click_offsets_[u] + k]) /
         static_cast<float>(options_.exposures);
}

std::vector<data::Interaction> MnarWorld::ClickEvents() const {
  std::vector<data::Interaction> events;
  events.reserve(click_items_.size());
  for (uint32_t u = 0; u < num_users(); ++u) {
    std::span<const uint32_t> items = ClickedItems(u);
    for (size_t k = 0; k < items.size(); ++k) {
      events.push_back(Event(u, items[k], ClickLabel(u, k)));
    }
  }
  return events;
}

std::vector<data::Interaction> MnarWorld::TestEvents() const {
  std::vector<data::Interaction> events;
  events.reserve(test_items_.size());
  for (uint32_t u = 0; u < num_users(); ++u) {
    std::span<const uint32_t> items = TestItems(u);
    std::span<const uint8_t> labels = TestLabels(u);
    for (size_t k = 0; k < items.size(); ++k) {
      events.push_back(Event(u, items[k], labels[k]));
    }
  }
  return events;
}

absl::StatusOr<data::DatasetView> MnarWorld::ClickView() const {
  data::DatasetViewBuilder b;
  b.Reserve(click_items_.size());
  for (uint32_t u = 0; u < num_users(); ++u) {
    std::span<const uint32_t> items = ClickedItems(u);
    for (size_t k = 0; k < items.size(); ++k) {
      b.Add(u, items[k], ClickLabel(u, k), std::nullopt, data::kNoList, std::nullopt,
            std::nullopt, {});
    }
  }
  return b.Finish(Keys("u", num_users()), Keys("i", num_items()), {}, 0);
}

absl::StatusOr<data::DatasetView> MnarWorld::TestView() const {
  data::DatasetViewBuilder b;
  b.Reserve(test_items_.size());
  for (uint32_t u = 0; u < num_users(); ++u) {
    std::span<const uint32_t> items = TestItems(u);
    std::span<const uint8_t> labels = TestLabels(u);
    for (size_t k = 0; k < items.size(); ++k) {
      b.Add(u, items[k], labels[k], std::nullopt, data::kNoList, std::nullopt,
            std::nullopt, {});
    }
  }
  return b.Finish(Keys("u", num_users()), Keys("i", num_items()), {}, 0);
}

nlohmann::json MnarWorld::ToJson() const {
  const MnarWorldOptions& o = options_;
  const MnarWorldSummary& s = summary_;
  nlohmann::json j;
  j["kind"] = "mnar";
  j["options"] = {{"num_users", o.num_users},
                  {"num_items", o.num_items},
                  {"dim", o.dim},
                  {"exposure_power", o.exposure_power},
                  {"popularity_exponent", o.popularity_exponent},
                  {"relevance_mean", o.relevance_mean},
                  {"relevance_spread", o.relevance_spread},
                  {"user_activity_sigma", o.user_activity_sigma},
                  {"expected_clicks", o.expected_clicks},
                  {"exposure_scale", o.exposure_scale},
                  {"mar_test_items_per_user", o.mar_test_items_per_user},
                  {"exposures", o.exposures},
                  {"truth_sample_pairs", o.truth_sample_pairs},
                  {"seed", o.seed}};
  j["summary"] = {{"clicks", s.clicks},
                  {"exposures", s.exposures},
                  {"expected_exposures", s.expected_exposures},
                  {"expected_clicks_estimate", s.expected_clicks_estimate},
                  {"exposure_scale", s.exposure_scale},
                  {"relevance_offset", s.relevance_offset},
                  {"mean_relevance", s.mean_relevance},
                  {"users_with_clicks", s.users_with_clicks},
                  {"items_with_clicks", s.items_with_clicks},
                  {"test_events", s.test_events},
                  {"test_positives", s.test_positives}};
  j["model"] =
      "gamma=sigmoid(spread*(0.8*x_u.y_i/sqrt(dim)+0.6*b_i)+offset); "
      "theta=min(1, scale*(pop_i/max_pop)^p*a_u); pop_i=rank_i^-a; "
      "Y=Bernoulli(theta)*Bernoulli(gamma); with exposures K > 1 the label is the click "
      "rate over K independent draws of Y";
  return j;
}

absl::Status MnarWorld::WriteWorld(const std::string& dir) const {
  if (absl::Status s = internal::EnsureDirectory(dir); !s.ok()) return s;
  // train.csv: clicks, user-major, 1M rows per chunk.
  {
    uint32_t u = 0;  // the user of the next row; rows are visited in order
    absl::Status s = internal::WriteEventsCsv(
        dir + "/train.csv", click_items_.size(), 1 << 20,
        [&](uint64_t begin, std::vector<data::Interaction>* chunk) {
          const uint64_t end =
              std::min<uint64_t>(begin + (1 << 20), click_items_.size());
          for (uint64_t k = begin; k < end; ++k) {
            while (click_offsets_[u + 1] <= k) ++u;
            chunk->push_back(Event(u, click_items_[k], ClickLabel(u, k - click_offsets_[u])));
            if (options_.log_propensity) {
              chunk->back().propensity =
                  static_cast<float>(Exposure(u, click_items_[k]));
            }
          }
        });
    if (!s.ok()) return s;
  }
  {
    const size_t K = options_.mar_test_items_per_user;
    absl::Status s = internal::WriteEventsCsv(
        dir + "/test.csv", test_items_.size(), 1 << 20,
        [&](uint64_t begin, std::vector<data::Interaction>* chunk) {
          const uint64_t end =
              std::min<uint64_t>(begin + (1 << 20), test_items_.size());
          for (uint64_t k = begin; k < end; ++k) {
            chunk->push_back(Event(static_cast<uint32_t>(k / K), test_items_[k],
                                   test_labels_[k]));
          }
        });
    if (!s.ok()) return s;
  }
  std::string truth = "user,item,relevance,exposure\n";
  const uint64_t total = static_cast<uint64_t>(num_users()) * num_items();
  const bool all_pairs =
      total <= static_cast<uint64_t>(options_.truth_sample_pairs);
  if (all_pairs) {
    for (uint32_t u = 0; u < num_users(); ++u) {
      for (uint32_t i = 0; i < num_items(); ++i) {
        AppendTruthRow(u, i, Relevance(u, i), Exposure(u, i), &truth);
      }
    }
  } else {
    const size_t K = options_.mar_test_items_per_user;
    for (size_t k = 0; k < test_items_.size(); ++k) {
      const uint32_t u = static_cast<uint32_t>(k / K), i = test_items_[k];
      AppendTruthRow(u, i, Relevance(u, i), Exposure(u, i), &truth);
    }
    std::mt19937_64 rng = StreamRng(options_.seed, kTruthSample);
    for (int64_t n = 0; n < options_.truth_sample_pairs; ++n) {
      const uint32_t u = static_cast<uint32_t>(UniformIndex(rng, num_users()));
      const uint32_t i = static_cast<uint32_t>(UniformIndex(rng, num_items()));
      AppendTruthRow(u, i, Relevance(u, i), Exposure(u, i), &truth);
    }
  }
  if (absl::Status s = internal::WriteTextFile(dir + "/truth.csv", truth);
      !s.ok()) {
    return s;
  }
  nlohmann::json j = ToJson();
  j["files"] = {
      {"train", "train.csv"},
      {"test", "test.csv"},
      {"truth", "truth.csv"},
      {"truth_rows", all_pairs ? "all_pairs" : "mar_test_pairs_then_random"},
      {"truth_mar_rows", all_pairs ? 0 : test_items_.size()},
      {"truth_random_rows", all_pairs ? 0 : options_.truth_sample_pairs}};
  return internal::WriteTextFile(dir + "/world.json", j.dump(2) + "\n");
}

}  // namespace debias::synth
