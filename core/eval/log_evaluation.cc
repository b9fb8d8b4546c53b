#include "core/eval/log_evaluation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/propensity/registry.h"

namespace debias::eval {
namespace {

using nlohmann::json;

std::shared_ptr<const KeyIndex> SharedIndex(const std::vector<std::string>& keys) {
  return std::make_shared<const KeyIndex>(IndexKeys(keys));
}

// The uploaded-scores table as a Model.
class ScoreTableModel : public model::Model {
 public:
  ScoreTableModel(std::vector<absl::flat_hash_map<uint32_t, float>> scores, uint32_t items)
      : scores_(std::move(scores)), items_(items) {}
  std::string_view kind() const override { return "uploaded-scores"; }
  uint32_t num_users() const override { return static_cast<uint32_t>(scores_.size()); }
  uint32_t num_items() const override { return items_; }
  void ScoreItems(uint32_t user, std::span<const uint32_t> items,
                  std::span<float> out) const override {
    for (size_t k = 0; k < items.size(); ++k) out[k] = ScorePair(user, items[k]);
  }
  void ScoreAll(uint32_t user, std::span<float> out) const override {
    std::fill(out.begin(), out.end(), -std::numeric_limits<float>::infinity());
    for (const auto& [item, score] : scores_[user]) out[item] = score;
  }
  float ScorePair(uint32_t user, uint32_t item) const override {
    auto it = scores_[user].find(item);
    return it == scores_[user].end() ? -std::numeric_limits<float>::infinity() : it->second;
  }
  std::string Serialize() const override { return {}; }

 private:
  std::vector<absl::flat_hash_map<uint32_t, float>> scores_;
  uint32_t items_ = 0;
};

}  // namespace

KeyIndex IndexKeys(const std::vector<std::string>& keys) {
  KeyIndex idx;
  idx.reserve(keys.size());
  for (uint32_t i = 0; i < keys.size(); ++i) idx.emplace(keys[i], i);
  return idx;
}

void AddWarning(nlohmann::json& diag, std::string text) {
  if (!diag.contains("warnings") || !diag["warnings"].is_array()) {
    diag["warnings"] = nlohmann::json::array();
  }
  diag["warnings"].push_back(std::move(text));
}

double KeyedModel::Relevance(const std::string& user, const std::string& item) const {
  auto u = user_index->find(user);
  auto i = item_index->find(item);
  if (u == user_index->end() || i == item_index->end()) return 0.0;
  float s = 0;
  uint32_t one = i->second;
  model->ScoreItems(u->second, {&one, 1}, {&s, 1});
  return std::isfinite(s) ? Sigmoid(s) : 0.0;
}

ScoreTable::ScoreTable(const std::vector<UploadedScores>& uploaded) {
  std::vector<absl::flat_hash_map<uint32_t, float>> scores;
  for (const UploadedScores& s : uploaded) {
    const uint32_t u = user_index.try_emplace(s.user, user_index.size()).first->second;
    if (u == user_keys.size()) user_keys.push_back(s.user);
    if (u >= scores.size()) scores.resize(u + 1);
    for (size_t i = 0; i < s.items.size(); ++i) {
      auto [it, added] = item_index.try_emplace(s.items[i], item_index.size());
      if (added) item_keys.push_back(s.items[i]);
      scores[u][it->second] = s.scores[i];
    }
  }
  model = std::make_unique<ScoreTableModel>(std::move(scores),
                                            static_cast<uint32_t>(item_index.size()));
}

KeyedModel ScoreTable::Keyed() const {
  return KeyedModel{model.get(), &user_keys, &item_keys, &user_index, &item_index, 0};
}

PropensitySource PropensitySource::Logged() {
  PropensitySource src;
  src.logged_ = true;
  src.name_ = "logged";
  return src;
}

absl::StatusOr<PropensitySource> PropensitySource::Fit(
    const std::string& name, const data::DatasetView& log,
    const std::map<std::string, std::string>& params, const propensity::LabelRule& rule,
    uint64_t seed) {
  propensity::FitContext ctx;
  ctx.rule = rule;
  ctx.seed = seed;
  auto est = propensity::FitEstimator(name, log, params, ctx);
  if (!est.ok()) {
    return absl::Status(est.status().code(), absl::StrCat("propensity_from=", name.substr(0, 64),
                                                          ": ", est.status().message()));
  }
  PropensitySource src;
  src.owned_ = std::shared_ptr<const propensity::Estimator>(std::move(*est));
  src.estimator_ = src.owned_.get();
  src.own_users_ = SharedIndex(log.user_keys);
  src.own_items_ = SharedIndex(log.item_keys);
  src.users_ = src.own_users_.get();
  src.items_ = src.own_items_.get();
  src.name_ = std::string(src.estimator_->name());
  return src;
}

PropensitySource PropensitySource::Borrowed(const propensity::Estimator* estimator,
                                            const KeyIndex* users, const KeyIndex* items,
                                            std::string name,
                                            std::shared_ptr<const void> keep_alive) {
  PropensitySource src;
  src.estimator_ = estimator;
  src.users_ = users;
  src.items_ = items;
  src.name_ = std::move(name);
  src.keep_alive_ = std::move(keep_alive);
  return src;
}

double PropensitySource::Click(const data::DatasetView& v, size_t e) const {
  if (logged_) return v.propensity[e];
  return Pair(v.user_keys[v.user[e]], v.item_keys[v.item[e]]);
}

double PropensitySource::Pair(const std::string& user, const std::string& item) const {
  auto u = users_->find(user);
  auto i = items_->find(item);
  uint32_t uid = u == users_->end() ? UINT32_MAX : u->second;
  uint32_t iid = i == items_->end() ? UINT32_MAX : i->second;
  return estimator_->Pair(uid, iid, 1);
}

namespace {

// One ranking-mode evaluation, as named stages.
class LogRankingRun {
 public:
  explicit LogRankingRun(const LogRankingRequest& req)
      : req_(req),
        dr_(req.options.estimator == RelevanceEstimator::kDr),
        max_k_(*std::max_element(req.options.ks.begin(), req.options.ks.end())) {}

  absl::StatusOr<LogEvaluation> Run() {
    SelectEvents();
    PropensityWarnings();
    if (absl::Status st = BuildKeySpace(); !st.ok()) return st;
    SamplePopulation();
    if (absl::Status st = BuildUsers(); !st.ok()) return st;
    auto result = EstimateRankingMetrics(users_, req_.options);
    if (!result.ok()) return result.status();
    LogEvaluation out;
    out.metrics = result->metrics;
    out.intervals = result->intervals;
    out.normal_intervals = result->normal_intervals;
    out.diagnostics = Diagnostics(result->diagnostics);
    if (req_.mar != nullptr) {
      if (absl::Status st = MarSideBySide(*result, &out); !st.ok()) return st;
    }
    return out;
  }

 private:
  // Which log events a model is estimated on. A model scored on its own
  // training dataset is estimated on the events it held out (train
  // --holdout): its training items are left out of the ranking and the
  // clicks thinned by the held-out share; without a holdout, on its
  // training events, with a warning that the estimate is optimistic (it
  // rewards fitting the log, not relevance).
  void SelectEvents() {
    const data::DatasetView& full = *req_.log;
    log_ = &full;
    if (!req_.model || req_.training.dataset != req_.dataset) return;
    if (!req_.training.holdout) {
      events_diag_ = json{{"events", "the model's own training events"}};
      warnings_.push_back(absl::StrCat(
          "model ", req_.model->id, " was trained on dataset '", req_.dataset,
          "' without a holdout: this estimate is made on its own training events and is "
          "optimistic (it rewards fitting the log); train with --holdout F and evaluate on "
          "the held-out events"));
      return;
    }
    const double f = *req_.training.holdout;
    const KeyedModel& m = *req_.model;
    const std::vector<uint8_t> held = data::HoldoutMask(full, f, req_.training.holdout_seed);
    held_ = data::SubsetView(full, [&](size_t e) { return held[e] != 0; });
    log_ = &*held_;
    thin_ = f;
    exclude_.assign(m.user_keys->size(), {});
    for (uint32_t u = 0; u < full.num_users(); ++u) {
      auto mu = m.user_index->find(full.user_keys[u]);
      if (mu == m.user_index->end()) continue;
      auto [b, e] = full.UserRange(u);
      for (uint64_t k = b; k < e; ++k) {
        if (held[k]) continue;
        auto mi = m.item_index->find(full.item_keys[full.item[k]]);
        if (mi != m.item_index->end()) exclude_[mu->second].push_back(mi->second);
      }
    }
    events_diag_ = json{{"events", "held out by the model (train --holdout)"},
                        {"holdout", f},
                        {"held_out_events", held_->num_events()}};
  }

  // What the numbers can and cannot be compared with, said next to them.
  void PropensityWarnings() {
    const RelevanceEstimator est = req_.options.estimator;
    const std::string& name = req_.propensity->name();
    if (name.find("popularity") != std::string::npos && est != RelevanceEstimator::kSnips &&
        est != RelevanceEstimator::kNaive) {
      warnings_.push_back(
          "popularity propensities are relative to the most popular item (clicks alone cannot "
          "identify their absolute scale), so these IPS/DR values are on an arbitrary scale and "
          "cannot be compared with the MAR truth: use them to compare models on this log, or "
          "estimate with snips, or log the propensities");
    }
    if (est == RelevanceEstimator::kSnips) {
      warnings_.push_back(
          "snips scale: dcg/precision values are the true value times one constant shared by "
          "every model evaluated on this log (the exposures are not logged, so no normaliser "
          "with a known expectation exists): compare models with them, do not read them as "
          "absolute values; recall and map are on the true scale (docs/METHODS.md)");
    }
    if (name != "logged") {
      warnings_.push_back(absl::StrCat(
          "estimated propensities (", name,
          "): the estimate and its interval assume they are right; their own error is not in "
          "the interval, so it may not cover the truth"));
    }
  }

  // Item key space: the ranking's items first, then the log's other items.
  absl::Status BuildKeySpace() {
    if (req_.model) {
      item_keys_ = *req_.model->item_keys;
      item_index_ = KeyIndex(req_.model->item_index->begin(), req_.model->item_index->end());
      population_ = *req_.model->user_keys;
    } else {
      for (const UploadedScores& s : *req_.uploaded) {
        population_.push_back(s.user);
        for (const auto& k : s.items) {
          if (item_index_.emplace(k, item_keys_.size()).second) item_keys_.push_back(k);
        }
      }
      std::vector<std::string> sorted = population_;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
        return absl::InvalidArgumentError("scores: a user appears twice");
      }
    }
    ranked_items_ = item_keys_.size();
    const data::DatasetView& log = *log_;
    log_item_to_eval_.resize(log.num_items());
    for (uint32_t i = 0; i < log.num_items(); ++i) {
      auto [it, added] = item_index_.emplace(log.item_keys[i], item_keys_.size());
      if (added) item_keys_.push_back(log.item_keys[i]);
      log_item_to_eval_[i] = it->second;
    }
    log_users_ = SharedIndex(log.user_keys);
    return absl::OkStatus();
  }

  // The users estimated on (a seeded subset if max_users), and the log's
  // users the ranking does not cover.
  void SamplePopulation() {
    order_.resize(population_.size());
    std::iota(order_.begin(), order_.end(), 0);
    if (req_.max_users > 0 && req_.max_users < order_.size()) {
      std::mt19937_64 rng(req_.options.seed ^ 0x5eedf00dULL);
      std::shuffle(order_.begin(), order_.end(), rng);
      order_.resize(req_.max_users);
      std::sort(order_.begin(), order_.end());
    }
    absl::flat_hash_set<std::string> pop(population_.begin(), population_.end());
    for (uint32_t u = 0; u < log_->num_users(); ++u) {
      if (pop.contains(log_->user_keys[u])) continue;
      ++users_outside_;
      auto [b, e] = log_->UserRange(u);
      clicks_outside_ += static_cast<int64_t>(e - b);
    }
  }

  struct Scratch {
    std::vector<float> scores;
    std::vector<uint32_t> idx;
    std::vector<std::pair<uint32_t, double>> clicks;
  };

  // The top-max_k of user n: the model's over all its items (minus the
  // items it trained on, when estimated on its held-out events), or the
  // uploaded items by score.
  void Rank(size_t n, Scratch& s, UserRanking& ur) const {
    const size_t max_k = max_k_;
    if (req_.model) {
      const uint32_t mu = order_[n];
      const model::Model& model = *req_.model->model;
      s.scores.resize(model.num_items());
      model.ScoreAll(mu, s.scores);
      if (mu < exclude_.size()) {
        for (uint32_t i : exclude_[mu]) s.scores[i] = -std::numeric_limits<float>::infinity();
      }
      s.idx.resize(s.scores.size());
      std::iota(s.idx.begin(), s.idx.end(), 0);
      const size_t k = std::min<size_t>(max_k, s.idx.size());
      const std::vector<float>& sc = s.scores;
      std::partial_sort(s.idx.begin(), s.idx.begin() + k, s.idx.end(), [&](uint32_t a, uint32_t b) {
        return sc[a] > sc[b] || (sc[a] == sc[b] && a < b);
      });
      ur.ranked.assign(s.idx.begin(), s.idx.begin() + k);
      return;
    }
    const UploadedScores& up = (*req_.uploaded)[order_[n]];
    s.idx.resize(up.items.size());
    std::iota(s.idx.begin(), s.idx.end(), 0);
    const size_t k = std::min<size_t>(max_k, s.idx.size());
    std::partial_sort(s.idx.begin(), s.idx.begin() + k, s.idx.end(), [&](uint32_t a, uint32_t b) {
      return up.scores[a] > up.scores[b] || (up.scores[a] == up.scores[b] && a < b);
    });
    ur.ranked.clear();
    for (size_t r = 0; r < k; ++r) ur.ranked.push_back(item_index_.at(up.items[s.idx[r]]));
  }

  // The user's clicks on distinct items (a repeated click keeps its first
  // propensity), times the held-out share.
  void Clicks(const std::string& user_key, Scratch& s, UserRanking& ur) const {
    const data::DatasetView& log = *log_;
    s.clicks.clear();
    if (auto lu = log_users_->find(user_key); lu != log_users_->end()) {
      auto [b, e] = log.UserRange(lu->second);
      for (size_t ev = b; ev < e; ++ev) {
        if (!req_.rule.IsPositive(log.label[ev])) continue;
        s.clicks.emplace_back(log_item_to_eval_[log.item[ev]],
                              req_.propensity->Click(log, ev) * thin_);
      }
    }
    std::stable_sort(s.clicks.begin(), s.clicks.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    s.clicks.erase(std::unique(s.clicks.begin(), s.clicks.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   s.clicks.end());
    ur.clicked.clear();
    ur.clicked_propensity.clear();
    for (const auto& [item, p] : s.clicks) {
      ur.clicked.push_back(static_cast<int32_t>(item));
      ur.clicked_propensity.push_back(p);
    }
  }

  // Pointwise loss inputs (a served model: every item is a candidate);
  // false when a click is on an item the model cannot score.
  bool Pointwise(const Scratch& s, UserRanking& ur) const {
    double neg = 0;
    for (float v : s.scores) {
      double p = std::clamp(Sigmoid(v), 1e-7, 1 - 1e-7);
      neg += -std::log1p(-p);
    }
    ur.negative_log_loss_sum = neg;
    ur.num_candidates = static_cast<int64_t>(s.scores.size());
    ur.clicked_score.clear();
    for (int32_t item : ur.clicked) {
      if (static_cast<size_t>(item) >= ranked_items_) return false;
      ur.clicked_score.push_back(Sigmoid(s.scores[item]));
    }
    return true;
  }

  // DR: imputed relevance and propensity of every ranked item.
  void Imputed(const std::string& user_key, UserRanking& ur) const {
    ur.ranked_imputed.clear();
    ur.ranked_propensity.clear();
    for (int32_t item : ur.ranked) {
      const std::string& key = item_keys_[item];
      ur.ranked_imputed.push_back(imputer().Relevance(user_key, key));
      ur.ranked_propensity.push_back(req_.propensity->Pair(user_key, key) * thin_);
    }
  }

  const KeyedModel& imputer() const { return req_.imputer ? *req_.imputer : *req_.model; }

  // Per-user estimator inputs, built on two threads.
  absl::Status BuildUsers() {
    users_.resize(order_.size());
    const bool pointwise = req_.model.has_value() && !dr_;
    std::atomic<bool> pointwise_ok{pointwise};
    std::atomic<bool> stop{false};
    const auto& cancelled = req_.options.cancelled;
    auto build = [&](size_t begin, size_t end) {
      Scratch s;
      for (size_t n = begin; n < end; ++n) {
        if (cancelled && (n - begin) % 64 == 0 && cancelled()) stop = true;
        if (stop.load(std::memory_order_relaxed)) return;
        UserRanking& ur = users_[n];
        const std::string& user_key = population_[order_[n]];
        Rank(n, s, ur);
        Clicks(user_key, s, ur);
        if (pointwise && pointwise_ok.load() && !Pointwise(s, ur)) pointwise_ok = false;
        if (dr_) Imputed(user_key, ur);
      }
    };
    if (users_.size() >= 64) {
      const size_t half = users_.size() / 2;
      std::thread t([&] { build(0, half); });
      build(half, users_.size());
      t.join();
    } else {
      build(0, users_.size());
    }
    if (stop.load()) return absl::CancelledError("evaluation cancelled (deadline or client)");
    if (users_.empty()) {
      return absl::FailedPreconditionError("no users to evaluate: the model has no users");
    }
    if (pointwise && !pointwise_ok.load()) {
      for (auto& ur : users_) {
        ur.clicked_score.clear();
        ur.num_candidates = 0;
        ur.negative_log_loss_sum = 0;
      }
    }
    return absl::OkStatus();
  }

  json Diagnostics(json diag) const {
    diag["mode"] = "log";
    diag["dataset"] = req_.dataset;
    if (req_.model) diag["model_id"] = req_.model->id;
    diag["ranking"] = req_.model ? "served model" : "uploaded scores";
    diag["propensity_from"] = req_.propensity->name();
    diag["propensity_estimated"] = req_.propensity->name() != "logged";
    if (!events_diag_.is_null()) diag["log_events"] = events_diag_;
    for (const std::string& w : warnings_) AddWarning(diag, w);
    if (dr_) diag["imputation_model_id"] = req_.model || req_.imputer ? imputer().id : 0;
    diag["population_users"] = population_.size();
    diag["log_users_outside_population"] = users_outside_;
    diag["log_clicks_outside_population"] = clicks_outside_;
    if (users_outside_ > 0) {
      AddWarning(diag, absl::StrCat(users_outside_, " users of the log (", clicks_outside_,
                                    " events) are unknown to the ranking and were left out"));
    }
    return diag;
  }

  // Labelled MAR sample, side by side: the same metrics, estimated without
  // bias from the randomly sampled labelled items of each user (IPS with the
  // known uniform sampling probability m_u / N over the N rankable items).
  absl::Status MarSideBySide(const UnbiasedRankingResult& result, LogEvaluation* out) const {
    const data::DatasetView& mar = *req_.mar;
    std::shared_ptr<const KeyIndex> mar_users = SharedIndex(mar.user_keys);
    std::vector<UserRanking> mar_rankings;
    std::vector<int32_t> sampled, positive;
    for (size_t n = 0; n < users_.size(); ++n) {
      auto mu = mar_users->find(population_[order_[n]]);
      if (mu == mar_users->end()) continue;
      sampled.clear();
      positive.clear();
      auto [b, e] = mar.UserRange(mu->second);
      for (size_t ev = b; ev < e; ++ev) {
        auto it = item_index_.find(mar.item_keys[mar.item[ev]]);
        if (it == item_index_.end() || it->second >= ranked_items_) continue;
        sampled.push_back(static_cast<int32_t>(it->second));
        if (req_.rule.IsPositive(mar.label[ev])) positive.push_back(static_cast<int32_t>(it->second));
      }
      std::sort(sampled.begin(), sampled.end());
      sampled.erase(std::unique(sampled.begin(), sampled.end()), sampled.end());
      std::sort(positive.begin(), positive.end());
      positive.erase(std::unique(positive.begin(), positive.end()), positive.end());
      if (sampled.empty()) continue;
      UserRanking ur;
      ur.ranked = users_[n].ranked;
      ur.clicked = positive;
      ur.clicked_propensity.assign(positive.size(),
                                   static_cast<double>(sampled.size()) / ranked_items_);
      mar_rankings.push_back(std::move(ur));
    }
    if (mar_rankings.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "mar_dataset '", req_.mar_dataset, "': no user of the ranking has labelled items"));
    }
    UnbiasedRankingOptions mopts = req_.options;
    mopts.estimator = RelevanceEstimator::kIps;
    mopts.clip = 0;
    mopts.bootstrap = 0;
    auto mm = EstimateRankingMetrics(mar_rankings, mopts);
    if (!mm.ok()) return mm.status();
    json mar_intervals = json::object();
    for (const auto& [k, v] : mm->metrics) {
      if (!result.metrics.contains(k)) continue;
      out->mar_metrics[k] = v;
      if (auto it = mm->normal_intervals.find(k); it != mm->normal_intervals.end()) {
        mar_intervals[k] = json::array({it->second.low, it->second.high});
      }
    }
    out->diagnostics["mar"] = json{{"dataset", req_.mar_dataset},
                                   {"users", mar_rankings.size()},
                                   {"normal_intervals", mar_intervals},
                                   {"method", "IPS with the uniform sampling probability of each "
                                              "user's labelled items among the ranked items"}};
    return absl::OkStatus();
  }

  const LogRankingRequest& req_;
  const bool dr_;
  const size_t max_k_;  // the longest cut-off: each user's ranking length
  const data::DatasetView* log_ = nullptr;  // the events estimated on
  std::optional<data::DatasetView> held_;   // the held-out events, if any
  double thin_ = 1.0;                       // E[held-out click] = thin x p x rel
  std::vector<std::vector<uint32_t>> exclude_;  // per model user: training items
  json events_diag_;                        // null when not the training dataset
  std::vector<std::string> warnings_;
  std::vector<std::string> population_;     // the ranking's users, by key
  std::vector<std::string> item_keys_;      // eval item id -> key
  KeyIndex item_index_;                     // key -> eval item id
  size_t ranked_items_ = 0;                 // eval ids below this are rankable
  std::vector<uint32_t> log_item_to_eval_;
  std::shared_ptr<const KeyIndex> log_users_;
  std::vector<uint32_t> order_;             // population ids estimated on
  int64_t users_outside_ = 0, clicks_outside_ = 0;
  std::vector<UserRanking> users_;
};

}  // namespace

absl::StatusOr<LogEvaluation> EvaluateRankingFromLog(const LogRankingRequest& req) {
  if (req.log == nullptr || req.propensity == nullptr || req.options.ks.empty() ||
      req.model.has_value() == (req.uploaded != nullptr)) {
    return absl::InvalidArgumentError(
        "EvaluateRankingFromLog: needs a log, a propensity source, at least one k and exactly "
        "one of a model and uploaded scores");
  }
  if (req.options.estimator == RelevanceEstimator::kDr && !req.model && !req.imputer) {
    return absl::InvalidArgumentError(
        "imputation_model_id: required for estimator=dr with uploaded scores");
  }
  return LogRankingRun(req).Run();
}

}  // namespace debias::eval
