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
  int64_t skipped_pairs = 0;
  std::vector<float> scores, labels;  // kTestItems pooled
};

// Stage 1 of EvaluateRanking: options, the test view and the key tables.
absl::Status ValidateInputs(const model::Model& model,
                            std::span<const std::string> model_user_keys,
                            std::span<const std::string> model_item_keys,
                            const data::DatasetView& test, const RankingEvalOptions& opts) {
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
  return absl::OkStatus();
}

// Stage 2: the excluded items per model user (kAllItems with an exclude
// view; else empty).
absl::StatusOr<std::vector<std::vector<uint32_t>>> ExcludedItems(
    const RankingEvalOptions& opts, std::span<const std::string> model_user_keys,
    std::span<const std::string> model_item_keys, uint32_t nu, uint32_t ni) {
  std::vector<std::vector<uint32_t>> excluded;
  if (opts.protocol != Protocol::kAllItems || opts.exclude == nullptr) return excluded;
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
  return excluded;
}

// Stage 3: test users with at least one event that the model knows,
// optionally subsampled; counts the unknown ones in *skipped_users.
std::vector<uint32_t> SelectUsers(const data::DatasetView& test,
                                  const std::vector<uint32_t>& umap,
                                  const RankingEvalOptions& opts, int64_t* skipped_users) {
  std::vector<uint32_t> users;
  for (uint32_t u = 0; u < test.num_users(); ++u) {
    auto [b, e] = test.UserRange(u);
    if (b == e) continue;
    if (umap[u] == kMissing) {
      ++*skipped_users;
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
  return users;
}

// Stage 4: scores users into per-thread partials. One scratch set per
// thread; user k goes to thread k % num_threads.
class UserScorer {
 public:
  UserScorer(const model::Model& model, const data::DatasetView& test,
             const RankingEvalOptions& opts, const std::vector<uint32_t>& umap,
             const std::vector<uint32_t>& imap,
             const std::vector<std::vector<uint32_t>>& excluded)
      : model_(model), test_(test), opts_(opts), umap_(umap), imap_(imap),
        excluded_(excluded), ni_(model.num_items()) {}

  // false when cancelled.
  bool Run(const std::vector<uint32_t>& users, int nt, std::vector<Partial>& parts) {
    std::atomic<bool> stop{false};
    auto work = [&](int t) {
      Scratch s;
      for (size_t k = t; k < users.size(); k += nt) {
        if (opts_.cancelled && (k / nt) % 64 == 0 && opts_.cancelled()) stop = true;
        if (stop.load(std::memory_order_relaxed)) return;
        ScoreUser(users[k], s, parts[t]);
      }
    };
    if (nt == 1) {
      work(0);
    } else {
      std::vector<std::thread> threads;
      for (int t = 0; t < nt; ++t) threads.emplace_back(work, t);
      for (auto& th : threads) th.join();
    }
    return !stop.load();
  }

 private:
  struct Scratch {
    std::vector<uint32_t> items;
    std::vector<float> scores, labels, all;
    std::vector<uint8_t> mark;
  };

  float Binarise(float l) const {
    return (opts_.threshold ? l >= *opts_.threshold : l > 0) ? 1.0f : 0.0f;
  }

  void ScoreUser(uint32_t tu, Scratch& s, Partial& P) const {
    const uint32_t mu = umap_[tu];
    auto [b, e] = test_.UserRange(tu);
    s.items.clear();
    s.labels.clear();
    for (uint64_t x = b; x < e; ++x) {
      uint32_t mi = test_.item[x] < imap_.size() ? imap_[test_.item[x]] : kMissing;
      if (mi == kMissing) {
        ++P.skipped_pairs;
        continue;
      }
      s.items.push_back(mi);
      s.labels.push_back(Binarise(test_.label[x]));
    }
    if (s.items.empty()) return;
    if (opts_.protocol == Protocol::kTestItems) {
      s.scores.resize(s.items.size());
      model_.ScoreItems(mu, s.items, s.scores);
      P.acc.AddList(s.scores, s.labels);
      P.scores.insert(P.scores.end(), s.scores.begin(), s.scores.end());
      P.labels.insert(P.labels.end(), s.labels.begin(), s.labels.end());
      P.pairs += s.items.size();
      return;
    }
    ScoreAllItems(mu, s, P);
  }

  // kAllItems: candidates are all items minus excluded ones; relevant =
  // test items with a positive label.
  void ScoreAllItems(uint32_t mu, Scratch& s, Partial& P) const {
    s.all.resize(ni_);
    model_.ScoreAll(mu, s.all);
    s.mark.assign(ni_, 0);  // 1 excluded, 2 relevant
    if (!excluded_.empty()) {
      for (uint32_t i : excluded_[mu]) s.mark[i] = 1;
    }
    int n_rel = 0;
    for (size_t j = 0; j < s.items.size(); ++j) {
      if (s.labels[j] > 0 && s.mark[s.items[j]] != 2) {
        s.mark[s.items[j]] = 2;  // a test item also in `exclude` stays relevant
        ++n_rel;
      }
    }
    s.scores.clear();
    s.labels.clear();
    for (uint32_t i = 0; i < ni_; ++i) {
      if (s.mark[i] == 1) continue;
      s.scores.push_back(s.all[i]);
      s.labels.push_back(s.mark[i] == 2 ? 1.0f : 0.0f);
    }
    P.acc.AddList(s.scores, s.labels);
    P.pairs += s.items.size();
    if (n_rel > 0 && static_cast<size_t>(n_rel) < s.scores.size()) {
      P.auc_sum += Auc(s.scores, s.labels);
      ++P.auc_users;
    }
  }

  const model::Model& model_;
  const data::DatasetView& test_;
  const RankingEvalOptions& opts_;
  const std::vector<uint32_t>& umap_;
  const std::vector<uint32_t>& imap_;
  const std::vector<std::vector<uint32_t>>& excluded_;
  const uint32_t ni_;
};

// Stage 5: merges the partials in thread order; user k went to thread
// k % nt, so pooled vectors are concatenated per thread (AUC/log loss/MSE do
// not depend on order).
std::map<std::string, double> MergePartials(const std::vector<Partial>& parts,
                                            const RankingEvalOptions& opts,
                                            int64_t skipped_users) {
  RankingAccumulator acc(opts.metrics);
  std::vector<float> scores, labels;
  double auc_sum = 0;
  int64_t auc_users = 0, pairs = 0, sp = 0;
  for (const Partial& p : parts) {
    acc.Merge(p.acc);
    scores.insert(scores.end(), p.scores.begin(), p.scores.end());
    labels.insert(labels.end(), p.labels.begin(), p.labels.end());
    auc_sum += p.auc_sum;
    auc_users += p.auc_users;
    pairs += p.pairs;
    sp += p.skipped_pairs;
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

}  // namespace

absl::StatusOr<std::map<std::string, double>> EvaluateRanking(
    const model::Model& model, std::span<const std::string> model_user_keys,
    std::span<const std::string> model_item_keys, const data::DatasetView& test,
    const RankingEvalOptions& opts) {
  RETURN_IF_ERROR(ValidateInputs(model, model_user_keys, model_item_keys, test, opts));
  const uint32_t nu = model.num_users(), ni = model.num_items();
  const std::vector<uint32_t> umap = MapIds(model_user_keys, test.user_keys, nu);
  const std::vector<uint32_t> imap = MapIds(model_item_keys, test.item_keys, ni);
  ASSIGN_OR_RETURN(const std::vector<std::vector<uint32_t>> excluded,
                   ExcludedItems(opts, model_user_keys, model_item_keys, nu, ni));
  int64_t skipped_users = 0;
  const std::vector<uint32_t> users = SelectUsers(test, umap, opts, &skipped_users);

  const int nt = std::min<int>(opts.num_threads, std::max<size_t>(1, users.size()));
  std::vector<Partial> parts(nt, Partial(opts.metrics));
  UserScorer scorer(model, test, opts, umap, imap, excluded);
  if (!scorer.Run(users, nt, parts)) {
    return absl::CancelledError("evaluation cancelled (deadline or client)");
  }
  return MergePartials(parts, opts, skipped_users);
}

}  // namespace debias::eval
