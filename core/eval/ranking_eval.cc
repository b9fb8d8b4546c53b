#include "core/eval/ranking_eval.h"

#include <atomic>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace debias::eval {
namespace {

constexpr uint32_t kMissing = std::numeric_limits<uint32_t>::max();

// Maps ids of `view` to model ids via keys; kMissing for unknown keys.
std::vector<uint32_t> MapIds(std::span<const std::string> model_keys,
                             const std::vector<std::string>& view_keys,
                             uint32_t model_size) {
  std::vector<uint32_t> out(view_keys.size(), kMissing);
  if (model_keys.empty()) {
    for (uint32_t j = 0; j < out.size(); ++j) out[j] = j < model_size ? j : kMissing;
    return out;
  }
  bool same = model_keys.size() >= view_keys.size();
  for (size_t j = 0; same && j < view_keys.size(); ++j) same = model_keys[j] == view_keys[j];
  if (same) {
    for (uint32_t j = 0; j < out.size(); ++j) out[j] = j < model_size ? j : kMissing;
    return out;
  }
  absl::flat_hash_map<std::string_view, uint32_t> index;
  index.reserve(model_keys.size());
  for (uint32_t j = 0; j < model_keys.size(); ++j) index.emplace(model_keys[j], j);
  for (size_t j = 0; j < view_keys.size(); ++j) {
    auto it = index.find(view_keys[j]);
    if (it != index.end() && it->second < model_size) out[j] = it->second;
  }
  return out;
}

struct Partial {
  explicit Partial(const MetricOptions& o) : acc(o) {}
  RankingAccumulator acc;
  double auc_sum = 0;  // kAllItems
  int64_t auc_users = 0;
  int64_t pairs = 0;
  std::vector<float> scores, labels;  // kTestItems pooled
};

}  // namespace

absl::StatusOr<std::map<std::string, double>> EvaluateRanking(
    const model::Model& model, std::span<const std::string> model_user_keys,
    std::span<const std::string> model_item_keys, const data::DatasetView& test,
    const RankingEvalOptions& opts) {
  RETURN_IF_ERROR(ValidateMetricOptions(opts.metrics));
  if (opts.num_threads < 1 || opts.num_threads > 64) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_threads=", opts.num_threads, ": num_threads must be in [1, 64]"));
  }
  if (opts.max_users < 0) {
    return absl::InvalidArgumentError("max_users must be >= 0");
  }
  if (test.user_offsets.size() != test.num_users() + 1) {
    return absl::InvalidArgumentError("test view: user_offsets has the wrong size");
  }
  const uint32_t nu = model.num_users(), ni = model.num_items();
  if (!model_user_keys.empty() && model_user_keys.size() != nu) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_user_keys: ", model_user_keys.size(), " keys for a model of ", nu, " users"));
  }
  if (!model_item_keys.empty() && model_item_keys.size() != ni) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_item_keys: ", model_item_keys.size(), " keys for a model of ", ni, " items"));
  }
  const std::vector<uint32_t> umap = MapIds(model_user_keys, test.user_keys, nu);
  const std::vector<uint32_t> imap = MapIds(model_item_keys, test.item_keys, ni);

  // Excluded items per model user (kAllItems).
  std::vector<std::vector<uint32_t>> excluded;
  if (opts.protocol == Protocol::kAllItems && opts.exclude != nullptr) {
    const data::DatasetView& ex = *opts.exclude;
    if (ex.user_offsets.size() != ex.num_users() + 1) {
      return absl::InvalidArgumentError("exclude view: user_offsets has the wrong size");
    }
    const auto eu = MapIds(model_user_keys, ex.user_keys, nu);
    const auto ei = MapIds(model_item_keys, ex.item_keys, ni);
    excluded.resize(nu);
    for (size_t e = 0; e < ex.num_events(); ++e) {
      uint32_t u = ex.user[e] < eu.size() ? eu[ex.user[e]] : kMissing;
      uint32_t i = ex.item[e] < ei.size() ? ei[ex.item[e]] : kMissing;
      if (u != kMissing && i != kMissing) excluded[u].push_back(i);
    }
  }

  auto binarise = [&](float l) -> float {
    return (opts.threshold ? l >= *opts.threshold : l > 0) ? 1.0f : 0.0f;
  };

  // Test users with at least one event, optionally subsampled.
  std::vector<uint32_t> users;
  int64_t skipped_users = 0;
  for (uint32_t u = 0; u < test.num_users(); ++u) {
    auto [b, e] = test.UserRange(u);
    if (b == e) continue;
    if (umap[u] == kMissing) {
      ++skipped_users;
      continue;
    }
    users.push_back(u);
  }
  if (opts.max_users > 0 && static_cast<int64_t>(users.size()) > opts.max_users) {
    std::mt19937_64 rng(opts.seed);
    std::shuffle(users.begin(), users.end(), rng);
    users.resize(opts.max_users);
    std::sort(users.begin(), users.end());
  }

  const int nt = std::min<int>(opts.num_threads, std::max<size_t>(1, users.size()));
  std::vector<Partial> parts(nt, Partial(opts.metrics));
  std::vector<int64_t> skipped_pairs(nt, 0);
  std::atomic<bool> stop{false};
  auto work = [&](int t) {
    Partial& P = parts[t];
    std::vector<uint32_t> items;
    std::vector<float> scores, labels, all;
    std::vector<uint8_t> mark;
    for (size_t k = t; k < users.size(); k += nt) {
      if (opts.cancelled && (k / nt) % 64 == 0 && opts.cancelled()) stop = true;
      if (stop.load(std::memory_order_relaxed)) return;
      const uint32_t tu = users[k];
      const uint32_t mu = umap[tu];
      auto [b, e] = test.UserRange(tu);
      items.clear();
      labels.clear();
      for (uint64_t x = b; x < e; ++x) {
        uint32_t mi = test.item[x] < imap.size() ? imap[test.item[x]] : kMissing;
        if (mi == kMissing) {
          ++skipped_pairs[t];
          continue;
        }
        items.push_back(mi);
        labels.push_back(binarise(test.label[x]));
      }
      if (items.empty()) continue;
      if (opts.protocol == Protocol::kTestItems) {
        scores.resize(items.size());
        model.ScoreItems(mu, items, scores);
        P.acc.AddList(scores, labels);
        P.scores.insert(P.scores.end(), scores.begin(), scores.end());
        P.labels.insert(P.labels.end(), labels.begin(), labels.end());
        P.pairs += items.size();
        continue;
      }
      // kAllItems: candidates are all items minus excluded ones; relevant =
      // test items with a positive label.
      all.resize(ni);
      model.ScoreAll(mu, all);
      mark.assign(ni, 0);  // 1 excluded, 2 relevant
      if (!excluded.empty()) {
        for (uint32_t i : excluded[mu]) mark[i] = 1;
      }
      int n_rel = 0;
      for (size_t j = 0; j < items.size(); ++j) {
        if (labels[j] > 0 && mark[items[j]] != 2) {
          mark[items[j]] = 2;  // a test item also in `exclude` stays relevant
          ++n_rel;
        }
      }
      scores.clear();
      labels.clear();
      for (uint32_t i = 0; i < ni; ++i) {
        if (mark[i] == 1) continue;
        scores.push_back(all[i]);
        labels.push_back(mark[i] == 2 ? 1.0f : 0.0f);
      }
      P.acc.AddList(scores, labels);
      P.pairs += items.size();
      if (n_rel > 0 && static_cast<size_t>(n_rel) < scores.size()) {
        P.auc_sum += Auc(scores, labels);
        ++P.auc_users;
      }
    }
  };
  if (nt == 1) {
    work(0);
  } else {
    std::vector<std::thread> threads;
    for (int t = 0; t < nt; ++t) threads.emplace_back(work, t);
    for (auto& th : threads) th.join();
  }
  if (stop.load()) return absl::CancelledError("evaluation cancelled (deadline or client)");
  // Merge in thread order; user k went to thread k % nt, so pooled vectors
  // are concatenated per thread (AUC/log loss/MSE do not depend on order).
  RankingAccumulator acc(opts.metrics);
  std::vector<float> scores, labels;
  double auc_sum = 0;
  int64_t auc_users = 0, pairs = 0, sp = 0;
  for (int t = 0; t < nt; ++t) {
    acc.Merge(parts[t].acc);
    scores.insert(scores.end(), parts[t].scores.begin(), parts[t].scores.end());
    labels.insert(labels.end(), parts[t].labels.begin(), parts[t].labels.end());
    auc_sum += parts[t].auc_sum;
    auc_users += parts[t].auc_users;
    pairs += parts[t].pairs;
    sp += skipped_pairs[t];
  }
  std::map<std::string, double> out = acc.Result();
  if (opts.protocol == Protocol::kTestItems) {
    out["auc"] = Auc(scores, labels);
    std::vector<float> probs(scores.size());
    for (size_t j = 0; j < scores.size(); ++j) probs[j] = 1.0f / (1.0f + std::exp(-scores[j]));
    out["logloss"] = LogLoss(probs, labels);
    out["mse"] = Mse(probs, labels);
  } else {
    out["auc"] = auc_users ? auc_sum / auc_users : 0.5;
  }
  out["pairs"] = static_cast<double>(pairs);
  out["skipped_users"] = static_cast<double>(skipped_users);
  out["skipped_pairs"] = static_cast<double>(sp);
  return out;
}

}  // namespace debias::eval
