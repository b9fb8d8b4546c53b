#include "server/log_evaluation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/eval/policy.h"
#include "core/eval/policy_select.h"
#include "core/eval/reward_regression.h"
#include "core/eval/unbiased.h"
#include "core/propensity/registry.h"
#include "google/protobuf/util/json_util.h"

namespace debias::server {
namespace {

using nlohmann::json;
using KeyIndex = absl::flat_hash_map<std::string, uint32_t>;

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

KeyIndex IndexKeys(const std::vector<std::string>& keys) {
  KeyIndex idx;
  idx.reserve(keys.size());
  for (uint32_t i = 0; i < keys.size(); ++i) idx.emplace(keys[i], i);
  return idx;
}

// sigmoid(score) of `m` for (user, item) by key: the relevance an
// imputation / reward model predicts; 0 for keys the model does not know.
double KeyedRelevance(const LoadedModel& m, const std::string& user, const std::string& item) {
  auto u = m.user_index.find(user);
  auto i = m.item_index.find(item);
  if (u == m.user_index.end() || i == m.item_index.end()) return 0.0;
  float s = 0;
  uint32_t one = i->second;
  m.model->ScoreItems(u->second, {&one, 1}, {&s, 1});
  return std::isfinite(s) ? Sigmoid(s) : 0.0;
}

// "ipw,snips,dr" -> names as spelled (trimmed) and estimators; at most 16,
// none twice (after aliases: "ips,ipw" is a duplicate).
absl::Status ParsePolicyEstimators(const std::string& list, std::vector<std::string>* names,
                                   std::vector<eval::PolicyEstimator>* estimators) {
  constexpr size_t kMaxEstimators = 16;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    const std::string name(absl::StripAsciiWhitespace(part));
    auto est = eval::ParsePolicyEstimator(name);
    if (!est.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy_estimator='", list.substr(0, 64), "': ", est.status().message()));
    }
    if (std::find(estimators->begin(), estimators->end(), *est) != estimators->end()) {
      return absl::InvalidArgumentError(absl::StrCat("policy_estimator='", list.substr(0, 64),
                                                     "': '", name, "' is named twice"));
    }
    if (estimators->size() == kMaxEstimators) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy_estimator: at most ", kMaxEstimators, " estimators in one call"));
    }
    names->push_back(name);
    estimators->push_back(*est);
  }
  return absl::OkStatus();
}

// bootstrap and confidence, shared by both log modes.
absl::Status ParseIntervalRequest(const v1::EvaluateRequest& req, const Limits& limits,
                                  int* bootstrap, double* confidence) {
  if (req.bootstrap() > static_cast<uint32_t>(limits.max_bootstrap)) {
    return absl::InvalidArgumentError(absl::StrCat("bootstrap=", req.bootstrap(),
                                                   ": must be in [0, ", limits.max_bootstrap,
                                                   "] (the server's max_bootstrap)"));
  }
  *bootstrap = static_cast<int>(req.bootstrap());
  if (req.confidence() != 0) {
    if (!std::isfinite(req.confidence()) || req.confidence() < 0.5 ||
        req.confidence() > 0.9999) {
      return absl::InvalidArgumentError(
          absl::StrCat("confidence=", req.confidence(), ": must be in [0.5, 0.9999]"));
    }
    *confidence = req.confidence();
  }
  return absl::OkStatus();
}

v1::Interval ToProto(const eval::Interval& v) {
  v1::Interval iv;
  iv.set_low(v.low);
  iv.set_high(v.high);
  return iv;
}

// Answers P(exposed) for the log's clicks and for arbitrary (user, item)
// keys, whichever source the request named.
class PropensitySource {
 public:
  // Fitted on the log, or the log's recorded column.
  static absl::StatusOr<PropensitySource> FromLog(const v1::EvaluateRequest& req,
                                                  const data::DatasetView& log,
                                                  const propensity::LabelRule& rule,
                                                  const Limits& limits) {
    PropensitySource src;
    src.log_ = &log;
    std::string name = req.propensity_from().empty() ? "popularity" : req.propensity_from();
    if (req.propensity_params_size() > limits.max_params) {
      return absl::InvalidArgumentError(absl::StrCat("propensity_params: at most ",
                                                     limits.max_params, " allowed"));
    }
    std::map<std::string, std::string> params(req.propensity_params().begin(),
                                              req.propensity_params().end());
    if (name == "logged") {
      if (!log.has_propensities()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "propensity_from=logged: dataset '", req.dataset(),
            "' has no logged propensities; use a fitted estimator such as popularity"));
      }
      src.logged_ = true;
      src.name_ = "logged";
      return src;
    }
    propensity::FitContext ctx;
    ctx.rule = rule;
    ctx.seed = req.seed();
    auto est = propensity::FitEstimator(name, log, params, ctx);
    if (!est.ok()) {
      return absl::Status(est.status().code(),
                          absl::StrCat("propensity_from=", name.substr(0, 64), ": ",
                                       est.status().message()));
    }
    src.owned_ = std::move(*est);
    src.estimator_ = src.owned_.get();
    src.users_ = IndexKeys(log.user_keys);
    src.items_ = IndexKeys(log.item_keys);
    src.name_ = std::string(src.estimator_->name());
    return src;
  }

  // The training propensity estimator of another model.
  static absl::StatusOr<PropensitySource> FromModel(uint64_t id, ModelManager* models,
                                                    store::InteractionStore* store,
                                                    const data::DatasetView& log) {
    PropensitySource src;
    src.log_ = &log;
    auto m = models->Get(id);
    if (!m.ok()) return m.status();
    auto fitted = (*m)->Propensity(store);
    if (!fitted.ok()) {
      return absl::Status(fitted.status().code(),
                          absl::StrCat("propensity_from=", id, ": ", fitted.status().message()));
    }
    src.model_ = *m;  // keeps the fitted estimator alive
    src.estimator_ = (*fitted)->estimator.get();
    src.users_ptr_ = &(*fitted)->users;
    src.items_ptr_ = &(*fitted)->items;
    src.name_ = absl::StrCat("model ", id, " (", std::string(src.estimator_->name()), ")");
    return src;
  }

  const std::string& name() const { return name_; }
  bool logged() const { return logged_; }

  // Propensity of log event e (a click).
  // Propensity of event e of `v` (the log or a subset of it with the same
  // key tables, e.g. the held-out events).
  double Click(const data::DatasetView& v, size_t e) const {
    if (logged_) return v.propensity[e];
    return Pair(v.user_keys[v.user[e]], v.item_keys[v.item[e]]);
  }
  // Propensity of an arbitrary pair by key; unknown keys get the estimator's
  // fallback (its floor or marginal), never 0.
  double Pair(const std::string& user, const std::string& item) const {
    const KeyIndex& users = users_ptr_ ? *users_ptr_ : users_;
    const KeyIndex& items = items_ptr_ ? *items_ptr_ : items_;
    auto u = users.find(user);
    auto i = items.find(item);
    uint32_t uid = u == users.end() ? UINT32_MAX : u->second;
    uint32_t iid = i == items.end() ? UINT32_MAX : i->second;
    return estimator_->Pair(uid, iid, 1);
  }

 private:
  const data::DatasetView* log_ = nullptr;
  bool logged_ = false;
  std::string name_;
  std::unique_ptr<propensity::Estimator> owned_;
  std::shared_ptr<const LoadedModel> model_;
  const propensity::Estimator* estimator_ = nullptr;
  KeyIndex users_, items_;
  const KeyIndex* users_ptr_ = nullptr;
  const KeyIndex* items_ptr_ = nullptr;
};

// The ranking side: a served model or uploaded scores, over one item key
// space shared with the log.
struct RankingInput {
  std::vector<std::string> users;          // population, by key
  std::vector<std::string> item_keys;      // eval item id -> key
  KeyIndex item_index;                     // key -> eval item id
};

// EvaluateRequest.scores: at most max_batch_users users, each with 1 to
// max_candidates items and as many finite scores.
absl::Status ValidateUploadedScores(const v1::EvaluateRequest& req, const Limits& limits) {
  if (req.scores_size() > limits.max_batch_users) {
    return absl::InvalidArgumentError(absl::StrCat("scores: ", req.scores_size(),
                                                   " users, at most ", limits.max_batch_users));
  }
  for (int u = 0; u < req.scores_size(); ++u) {
    const v1::UserScores& s = req.scores(u);
    if (s.user().empty()) return absl::InvalidArgumentError(absl::StrCat("scores[", u, "].user: required"));
    if (s.items_size() != s.scores_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scores[", u, "]: ", s.items_size(), " items but ", s.scores_size(), " scores"));
    }
    if (s.items_size() < 1 || s.items_size() > limits.max_candidates) {
      return absl::InvalidArgumentError(absl::StrCat("scores[", u, "].items: ", s.items_size(),
                                                     " given, must be in [1, ",
                                                     limits.max_candidates, "]"));
    }
    for (int i = 0; i < s.scores_size(); ++i) {
      if (!std::isfinite(s.scores(i))) {
        return absl::InvalidArgumentError(
            absl::StrCat("scores[", u, "].scores[", i, "]: must be finite"));
      }
      if (s.items(i).empty()) {
        return absl::InvalidArgumentError(absl::StrCat("scores[", u, "].items[", i, "]: empty"));
      }
    }
  }
  return absl::OkStatus();
}

// A policy given as uploaded scores (EvaluateRequest.scores), served like a
// model: each user's uploaded items score what was uploaded, every other
// item -inf, so neither greedy nor softmax ever picks it.
class ScoreTableModel : public models::Model {
 public:
  explicit ScoreTableModel(const v1::EvaluateRequest& req, LoadedModel* out) {
    for (const v1::UserScores& s : req.scores()) {
      const uint32_t u = out->user_index.try_emplace(s.user(), out->user_index.size()).first->second;
      if (u == out->record.user_keys.size()) out->record.user_keys.push_back(s.user());
      if (u >= scores_.size()) scores_.resize(u + 1);
      for (int i = 0; i < s.items_size(); ++i) {
        auto [it, added] = out->item_index.try_emplace(s.items(i), out->item_index.size());
        if (added) out->record.item_keys.push_back(s.items(i));
        scores_[u][it->second] = s.scores(i);
      }
    }
    items_ = static_cast<uint32_t>(out->item_index.size());
  }
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

// The policy to evaluate: the served model, or the uploaded scores.
absl::StatusOr<std::shared_ptr<const LoadedModel>> PolicyOf(ModelManager* models,
                                                            const v1::EvaluateRequest& req) {
  if (req.scores_size() == 0) return models->Get(req.model_id());
  auto table = std::make_shared<LoadedModel>();
  table->model = std::make_unique<ScoreTableModel>(req, table.get());
  return std::shared_ptr<const LoadedModel>(std::move(table));
}

absl::Status ValidateOptions(const v1::EvaluateRequest& req, const Limits& limits,
                             eval::UnbiasedRankingOptions* opts) {
  auto est = eval::ParseRelevanceEstimator(req.estimator());
  if (!est.ok()) return est.status();
  opts->estimator = *est;
  if (req.k_size() > 0) {
    if (req.k_size() > 20) return absl::InvalidArgumentError("k: at most 20 cut-offs");
    opts->ks.clear();
    for (uint32_t k : req.k()) {
      if (k < 1 || k > static_cast<uint32_t>(limits.max_k)) {
        return absl::InvalidArgumentError(
            absl::StrCat("k=", k, ": must be in [1, ", limits.max_k, "]"));
      }
      if (std::find(opts->ks.begin(), opts->ks.end(), static_cast<int>(k)) != opts->ks.end()) {
        return absl::InvalidArgumentError(absl::StrCat("k=", k, ": listed twice"));
      }
      opts->ks.push_back(static_cast<int>(k));
    }
  }
  if (!std::isfinite(req.clip()) || req.clip() < 0 || req.clip() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip=", req.clip(), ": must be 0 (no clipping) or in (0, 1]"));
  }
  opts->clip = req.clip();
  if (absl::Status st = ParseIntervalRequest(req, limits, &opts->bootstrap, &opts->confidence);
      !st.ok()) {
    return st;
  }
  opts->seed = req.seed();
  if (req.rank_all_items() || !req.exclude_dataset().empty() || !req.convention().empty()) {
    return absl::InvalidArgumentError(
        "rank_all_items, exclude_dataset and convention belong to the labelled-test mode "
        "(estimator empty); the log estimators always rank all items");
  }
  if (req.has_threshold() && !std::isfinite(req.threshold())) {
    return absl::InvalidArgumentError("threshold: must be finite");
  }
  const bool uploaded = req.scores_size() > 0;
  if (uploaded == (req.model_id() != 0)) {
    return absl::InvalidArgumentError(
        "model_id and scores: give exactly one (a served model or uploaded scores)");
  }
  if (absl::Status st = ValidateUploadedScores(req, limits); !st.ok()) return st;
  if (uploaded && opts->estimator == eval::RelevanceEstimator::kDr &&
      req.imputation_model_id() == 0) {
    return absl::InvalidArgumentError(
        "imputation_model_id: required for estimator=dr with uploaded scores");
  }
  if (opts->estimator == eval::RelevanceEstimator::kDr && req.propensity_from() == "logged") {
    return absl::InvalidArgumentError(
        "propensity_from=logged: dr needs propensities of unclicked pairs too; use a "
        "fitted estimator (e.g. popularity) or a model id");
  }
  if (uploaded && !req.mar_dataset().empty()) {
    return absl::InvalidArgumentError("mar_dataset: needs a served model (model_id)");
  }
  return absl::OkStatus();
}

bool IsNumber(const std::string& s, uint64_t* out) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); }) &&
         absl::SimpleAtoi(s, out);
}

// Which log events a model is estimated on. A model scored on its own
// training dataset is estimated on the events it held out (train
// --holdout): its training items are left out of the ranking and the
// clicks thinned by the held-out share; without a holdout, on its training
// events, with a warning that the estimate is optimistic.
struct LogEvents {
  std::optional<data::DatasetView> held;       // the held-out events, if any
  double thin = 1.0;                           // E[held-out click] = thin x p x rel
  std::vector<std::vector<uint32_t>> exclude;  // per model user: training items
  json diag;                                   // null when not the training dataset
};

LogEvents SelectLogEvents(const LoadedModel* model, const data::DatasetView& full_log,
                          const v1::EvaluateRequest& req, json* warnings) {
  LogEvents out;
  if (model == nullptr || model->record.dataset != req.dataset()) return out;
  const json& spec = model->record.spec;
  if (!spec.contains("holdout") || !spec["holdout"].is_number()) {
    out.diag = json{{"events", "the model's own training events"}};
    warnings->push_back(absl::StrCat(
        "model ", req.model_id(), " was trained on dataset '", req.dataset(),
        "' without a holdout: this estimate is made on its own training events and is "
        "optimistic (it rewards fitting the log); train with --holdout F and evaluate on "
        "the held-out events"));
    return out;
  }
  const double f = spec["holdout"].get<double>();
  const std::vector<uint8_t> held =
      data::HoldoutMask(full_log, f, spec.value("holdout_seed", uint64_t{0}));
  out.held = data::SubsetView(full_log, [&](size_t e) { return held[e] != 0; });
  out.thin = f;
  out.exclude.assign(model->record.user_keys.size(), {});
  for (uint32_t u = 0; u < full_log.num_users(); ++u) {
    auto mu = model->user_index.find(full_log.user_keys[u]);
    if (mu == model->user_index.end()) continue;
    auto [b, e] = full_log.UserRange(u);
    for (uint64_t k = b; k < e; ++k) {
      if (held[k]) continue;
      auto mi = model->item_index.find(full_log.item_keys[full_log.item[k]]);
      if (mi != model->item_index.end()) out.exclude[mu->second].push_back(mi->second);
    }
  }
  out.diag = json{{"events", "held out by the model (train --holdout)"},
                  {"holdout", f},
                  {"held_out_events", out.held->num_events()}};
  return out;
}

}  // namespace

absl::Status EvaluateFromLog(ModelManager* models, store::InteractionStore* store,
                             const Limits& limits, const v1::EvaluateRequest& req,
                             v1::EvaluateResponse* resp, std::function<bool()> cancelled) {
  eval::UnbiasedRankingOptions opts;
  if (absl::Status s = ValidateOptions(req, limits, &opts); !s.ok()) return s;
  opts.num_threads = 2;
  opts.cancelled = cancelled;
  const int max_k = *std::max_element(opts.ks.begin(), opts.ks.end());
  const bool dr = opts.estimator == eval::RelevanceEstimator::kDr;

  auto log_or = store->LoadView(req.dataset());
  if (!log_or.ok()) return log_or.status();
  const data::DatasetView& full_log = **log_or;
  propensity::LabelRule rule;
  if (req.has_threshold()) rule.threshold = req.threshold();

  // The ranking source.
  std::shared_ptr<const LoadedModel> model;
  if (req.model_id() != 0) {
    auto m = models->Get(req.model_id());
    if (!m.ok()) return m.status();
    model = *m;
    if (model->model->num_items() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model ", req.model_id(), " is a ranker over features; evaluate it on ranked lists"));
    }
  }
  // Which events to estimate on: a model scored on its own training
  // dataset is estimated on the events it held out (train --holdout), or,
  // without a holdout, on its training events with a warning (the estimate
  // then rewards fitting the log, not relevance: optimistic).
  json early_warnings = json::array();
  LogEvents events = SelectLogEvents(model.get(), full_log, req, &early_warnings);
  const json& events_diag = events.diag;
  const double thin = events.thin;
  const std::vector<std::vector<uint32_t>>& exclude = events.exclude;
  const std::optional<data::DatasetView>& held_log = events.held;
  const data::DatasetView& log = held_log ? *held_log : full_log;
  std::shared_ptr<const LoadedModel> imputer = model;
  if (dr && req.imputation_model_id() != 0) {
    auto m = models->Get(req.imputation_model_id());
    if (!m.ok()) return m.status();
    imputer = *m;
    if (imputer->model->num_items() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("imputation_model_id=",
                                                     req.imputation_model_id(),
                                                     ": a feature ranker cannot impute pairs"));
    }
  }

  // Propensities.
  absl::StatusOr<PropensitySource> prop = absl::UnknownError("unset");
  uint64_t prop_model = 0;
  if (IsNumber(req.propensity_from(), &prop_model)) {
    if (prop_model == 0) return absl::InvalidArgumentError("propensity_from=0: model ids are >= 1");
    prop = PropensitySource::FromModel(prop_model, models, store, log);
  } else {
    // Fitted estimators learn from the whole log (exposure is a property of
    // the pairs, not of the split); logged values are read per event.
    prop = PropensitySource::FromLog(req, req.propensity_from() == "logged" ? log : full_log,
                                     rule, limits);
  }
  if (!prop.ok()) return prop.status();
  if (prop->name().find("popularity") != std::string::npos &&
      opts.estimator != eval::RelevanceEstimator::kSnips &&
      opts.estimator != eval::RelevanceEstimator::kNaive) {
    early_warnings.push_back(
        "popularity propensities are relative to the most popular item (clicks alone cannot "
        "identify their absolute scale), so these IPS/DR values are on an arbitrary scale and "
        "cannot be compared with the MAR truth: use them to compare models on this log, or "
        "estimate with snips, or log the propensities");
  }
  if (opts.estimator == eval::RelevanceEstimator::kSnips) {
    // The scale is said where the number is read, not only in a header.
    early_warnings.push_back(
        "snips scale: dcg/precision values are the true value times one constant shared by "
        "every model evaluated on this log (the exposures are not logged, so no normaliser "
        "with a known expectation exists): compare models with them, do not read them as "
        "absolute values; recall and map are on the true scale (docs/METHODS.md)");
  }
  if (prop->name() != "logged") {
    early_warnings.push_back(absl::StrCat(
        "estimated propensities (", prop->name(),
        "): the estimate and its interval assume they are right; their own error is not in "
        "the interval, so it may not cover the truth"));
  }

  // Item key space: the ranking's items first, then the log's other items.
  RankingInput in;
  if (model) {
    in.item_keys = model->record.item_keys;
    in.item_index = KeyIndex(model->item_index.begin(), model->item_index.end());
    in.users = model->record.user_keys;
  } else {
    for (const auto& s : req.scores()) {
      in.users.push_back(s.user());
      for (const auto& k : s.items()) {
        if (in.item_index.emplace(k, in.item_keys.size()).second) in.item_keys.push_back(k);
      }
    }
    std::vector<std::string> sorted = in.users;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return absl::InvalidArgumentError("scores: a user appears twice");
    }
  }
  const size_t ranked_items = in.item_keys.size();
  std::vector<uint32_t> log_item_to_eval(log.num_items());
  for (uint32_t i = 0; i < log.num_items(); ++i) {
    auto [it, added] = in.item_index.emplace(log.item_keys[i], in.item_keys.size());
    if (added) in.item_keys.push_back(log.item_keys[i]);
    log_item_to_eval[i] = it->second;
  }
  KeyIndex log_users = IndexKeys(log.user_keys);

  // Population subset.
  std::vector<uint32_t> order(in.users.size());
  std::iota(order.begin(), order.end(), 0);
  if (req.max_users() > 0 && req.max_users() < order.size()) {
    std::mt19937_64 rng(req.seed() ^ 0x5eedf00dULL);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(req.max_users());
    std::sort(order.begin(), order.end());
  }
  // Log users the population does not cover.
  int64_t log_users_outside = 0, log_clicks_outside = 0;
  {
    absl::flat_hash_set<std::string> pop(in.users.begin(), in.users.end());
    for (uint32_t u = 0; u < log.num_users(); ++u) {
      if (pop.contains(log.user_keys[u])) continue;
      ++log_users_outside;
      auto [b, e] = log.UserRange(u);
      log_clicks_outside += static_cast<int64_t>(e - b);
    }
  }

  // Per-user inputs, built on two threads.
  std::vector<eval::UserRanking> users(order.size());
  const bool pointwise = model != nullptr && !dr;
  std::atomic<bool> pointwise_ok{pointwise};
  std::atomic<bool> stop{false};
  auto build = [&](size_t begin, size_t end) {
    std::vector<float> scores;
    std::vector<uint32_t> idx;
    std::vector<std::pair<uint32_t, double>> clicks;
    for (size_t n = begin; n < end; ++n) {
      if (cancelled && (n - begin) % 64 == 0 && cancelled()) stop = true;
      if (stop.load(std::memory_order_relaxed)) return;
      eval::UserRanking& ur = users[n];
      const std::string& user_key = in.users[order[n]];
      // Ranking.
      if (model) {
        const uint32_t mu = order[n];
        scores.resize(model->model->num_items());
        model->model->ScoreAll(mu, scores);
        if (mu < exclude.size()) {
          for (uint32_t i : exclude[mu]) scores[i] = -std::numeric_limits<float>::infinity();
        }
        idx.resize(scores.size());
        std::iota(idx.begin(), idx.end(), 0);
        const size_t k = std::min<size_t>(max_k, idx.size());
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](uint32_t a, uint32_t b) {
          return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
        });
        ur.ranked.assign(idx.begin(), idx.begin() + k);
      } else {
        const v1::UserScores& s = req.scores(order[n]);
        idx.resize(s.items_size());
        std::iota(idx.begin(), idx.end(), 0);
        const size_t k = std::min<size_t>(max_k, idx.size());
        std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](uint32_t a, uint32_t b) {
          return s.scores(a) > s.scores(b) || (s.scores(a) == s.scores(b) && a < b);
        });
        ur.ranked.clear();
        for (size_t r = 0; r < k; ++r) ur.ranked.push_back(in.item_index.at(s.items(idx[r])));
      }
      // Clicks (distinct items; a repeated click keeps its first propensity).
      clicks.clear();
      if (auto lu = log_users.find(user_key); lu != log_users.end()) {
        auto [b, e] = log.UserRange(lu->second);
        for (size_t ev = b; ev < e; ++ev) {
          if (!rule.IsPositive(log.label[ev])) continue;
          clicks.emplace_back(log_item_to_eval[log.item[ev]], prop->Click(log, ev) * thin);
        }
      }
      std::stable_sort(clicks.begin(), clicks.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      clicks.erase(std::unique(clicks.begin(), clicks.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   clicks.end());
      ur.clicked.clear();
      ur.clicked_propensity.clear();
      for (const auto& [item, p] : clicks) {
        ur.clicked.push_back(static_cast<int32_t>(item));
        ur.clicked_propensity.push_back(p);
      }
      // Pointwise loss inputs (served model: every item is a candidate).
      if (pointwise && pointwise_ok.load()) {
        double neg = 0;
        for (float s : scores) {
          double p = std::clamp(Sigmoid(s), 1e-7, 1 - 1e-7);
          neg += -std::log1p(-p);
        }
        ur.negative_log_loss_sum = neg;
        ur.num_candidates = static_cast<int64_t>(scores.size());
        ur.clicked_score.clear();
        for (int32_t item : ur.clicked) {
          if (static_cast<size_t>(item) >= ranked_items) {
            pointwise_ok = false;  // a click on an item the model cannot score
            break;
          }
          ur.clicked_score.push_back(Sigmoid(scores[item]));
        }
      }
      // DR: imputed relevance and propensity of every ranked item.
      if (dr) {
        ur.ranked_imputed.clear();
        ur.ranked_propensity.clear();
        for (int32_t item : ur.ranked) {
          const std::string& key = in.item_keys[item];
          ur.ranked_imputed.push_back(KeyedRelevance(*imputer, user_key, key));
          ur.ranked_propensity.push_back(prop->Pair(user_key, key) * thin);
        }
      }
    }
  };
  if (users.size() >= 64) {
    const size_t half = users.size() / 2;
    std::thread t([&] { build(0, half); });
    build(half, users.size());
    t.join();
  } else {
    build(0, users.size());
  }
  if (stop.load()) return absl::CancelledError("evaluation cancelled (deadline or client)");
  if (users.empty()) {
    return absl::FailedPreconditionError("no users to evaluate: the model has no users");
  }
  if (pointwise && !pointwise_ok.load()) {
    for (auto& ur : users) {
      ur.clicked_score.clear();
      ur.num_candidates = 0;
      ur.negative_log_loss_sum = 0;
    }
  }
  auto result = eval::EstimateRankingMetrics(users, opts);
  if (!result.ok()) return result.status();

  for (const auto& [k, v] : result->metrics) (*resp->mutable_metrics())[k] = v;
  for (const auto& [k, v] : result->intervals) (*resp->mutable_intervals())[k] = ToProto(v);
  for (const auto& [k, v] : result->normal_intervals) {
    (*resp->mutable_normal_intervals())[k] = ToProto(v);
  }
  json diag = result->diagnostics;
  diag["mode"] = "log";
  diag["dataset"] = req.dataset();
  if (model) diag["model_id"] = req.model_id();
  diag["ranking"] = model ? "served model" : "uploaded scores";
  diag["propensity_from"] = prop->name();
  diag["propensity_estimated"] = prop->name() != "logged";
  if (!events_diag.is_null()) diag["log_events"] = events_diag;
  if (!early_warnings.empty()) {
    if (!diag.contains("warnings") || !diag["warnings"].is_array()) diag["warnings"] = json::array();
    for (const auto& w : early_warnings) diag["warnings"].push_back(w);
  }
  if (dr) diag["imputation_model_id"] = imputer ? imputer->record.id : 0;
  diag["population_users"] = in.users.size();
  diag["log_users_outside_population"] = log_users_outside;
  diag["log_clicks_outside_population"] = log_clicks_outside;
  if (log_users_outside > 0) {
    if (!diag.contains("warnings") || !diag["warnings"].is_array()) diag["warnings"] = json::array();
    diag["warnings"].push_back(absl::StrCat(
        log_users_outside, " users of the log (", log_clicks_outside,
        " events) are unknown to the ranking and were left out"));
  }
  // Labelled MAR sample, side by side: the same metrics, estimated without
  // bias from the randomly sampled labelled items of each user (IPS with the
  // known uniform sampling probability m_u / N over the N rankable items).
  if (!req.mar_dataset().empty()) {
    auto mar_or = store->LoadView(req.mar_dataset());
    if (!mar_or.ok()) return mar_or.status();
    const data::DatasetView& mar = **mar_or;
    KeyIndex mar_users = IndexKeys(mar.user_keys);
    std::vector<eval::UserRanking> mar_rankings;
    std::vector<int32_t> sampled;
    std::vector<int32_t> positive;
    for (size_t n = 0; n < users.size(); ++n) {
      auto mu = mar_users.find(in.users[order[n]]);
      if (mu == mar_users.end()) continue;
      sampled.clear();
      positive.clear();
      auto [b, e] = mar.UserRange(mu->second);
      for (size_t ev = b; ev < e; ++ev) {
        auto it = in.item_index.find(mar.item_keys[mar.item[ev]]);
        if (it == in.item_index.end() || it->second >= ranked_items) continue;
        sampled.push_back(static_cast<int32_t>(it->second));
        if (rule.IsPositive(mar.label[ev])) positive.push_back(static_cast<int32_t>(it->second));
      }
      std::sort(sampled.begin(), sampled.end());
      sampled.erase(std::unique(sampled.begin(), sampled.end()), sampled.end());
      std::sort(positive.begin(), positive.end());
      positive.erase(std::unique(positive.begin(), positive.end()), positive.end());
      if (sampled.empty()) continue;
      eval::UserRanking ur;
      ur.ranked = users[n].ranked;
      ur.clicked = positive;
      ur.clicked_propensity.assign(positive.size(),
                                   static_cast<double>(sampled.size()) / ranked_items);
      mar_rankings.push_back(std::move(ur));
    }
    if (mar_rankings.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "mar_dataset '", req.mar_dataset(), "': no user of the ranking has labelled items"));
    }
    eval::UnbiasedRankingOptions mopts = opts;
    mopts.estimator = eval::RelevanceEstimator::kIps;
    mopts.clip = 0;
    mopts.bootstrap = 0;
    auto mm = eval::EstimateRankingMetrics(mar_rankings, mopts);
    if (!mm.ok()) return mm.status();
    json mar_intervals = json::object();
    for (const auto& [k, v] : mm->metrics) {
      if (!result->metrics.contains(k)) continue;
      (*resp->mutable_mar_metrics())[k] = v;
      if (auto it = mm->normal_intervals.find(k); it != mm->normal_intervals.end()) {
        mar_intervals[k] = json::array({it->second.low, it->second.high});
      }
    }
    diag["mar"] = json{{"dataset", req.mar_dataset()},
                       {"users", mar_rankings.size()},
                       {"normal_intervals", mar_intervals},
                       {"method", "IPS with the uniform sampling probability of each user's "
                                  "labelled items among the ranked items"}};
  }
  (void)google::protobuf::util::JsonStringToMessage(diag.dump(), resp->mutable_diagnostics());
  return absl::OkStatus();
}

// The target's item (model index) at every position of a slate of the
// model's items `ids`: "greedy" re-ranks the slate's own items, `ranking` is
// the model's top-L over all its items (a policy of its own, so the slate
// weights are exact); UINT32_MAX past the end of the catalogue.
std::vector<uint32_t> SlateTargetItems(const models::Model& model, uint32_t user,
                                       const std::vector<uint32_t>& ids, bool ranking) {
  std::vector<uint32_t> target_item(ids.size(), UINT32_MAX);
  if (ranking) {
    std::vector<float> all(model.num_items());
    model.ScoreAll(user, all);
    std::vector<uint32_t> top(all.size());
    std::iota(top.begin(), top.end(), 0);
    const size_t L = std::min(ids.size(), top.size());
    std::partial_sort(top.begin(), top.begin() + L, top.end(), [&](uint32_t a, uint32_t b) {
      return all[a] > all[b] || (all[a] == all[b] && a < b);
    });
    for (size_t k = 0; k < L; ++k) target_item[k] = top[k];
    return target_item;
  }
  std::vector<float> s(ids.size());
  model.ScoreItems(user, ids, s);
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s[a] > s[b]; });
  for (size_t k = 0; k < ids.size(); ++k) target_item[k] = ids[order[k]];
  return target_item;
}

// metrics, intervals and the diagnostics of the estimators: one estimator in
// the format since the first release, several as policy_value/NAME.
json WritePolicyResults(const std::vector<std::string>& names,
                        const std::vector<eval::PolicyResult>* results, v1::EvaluateResponse* resp) {
  json diag;
  if (names.size() == 1) {  // the single-estimator format, as before
    const eval::PolicyResult& r = results->front();
    (*resp->mutable_metrics())["policy_value"] = r.value;
    if (r.interval) (*resp->mutable_intervals())["policy_value"] = ToProto(*r.interval);
    (*resp->mutable_normal_intervals())["policy_value"] = ToProto(r.normal_interval);
    diag = r.diagnostics;
  } else {
    diag["estimators"] = json::object();
    diag["warnings"] = json::array();
    for (size_t j = 0; j < names.size(); ++j) {
      const eval::PolicyResult& r = (*results)[j];
      const std::string key = absl::StrCat("policy_value/", names[j]);
      (*resp->mutable_metrics())[key] = r.value;
      if (r.interval) (*resp->mutable_intervals())[key] = ToProto(*r.interval);
      (*resp->mutable_normal_intervals())[key] = ToProto(r.normal_interval);
      for (const auto& w : r.diagnostics["warnings"]) {
        diag["warnings"].push_back(absl::StrCat(names[j], ": ", w.get<std::string>()));
      }
      diag["estimators"][names[j]] = r.diagnostics;
    }
    diag["decisions"] = results->front().diagnostics["decisions"];
    diag["positions"] = results->front().diagnostics["positions"];
  }
  return diag;
}

// The reward-model, embedding and selection fields of a policy request
// (issue 27), checked.
struct PolicyExtras {
  std::string reward_model;  // "self", "imputation" or "crossfit"
  eval::RewardRegressionOptions crossfit;
  absl::flat_hash_map<std::string, uint64_t> category;  // item key -> id
  bool embeddings = false;  // mips / snmips requested
  bool slope = false;
};
absl::StatusOr<PolicyExtras> ParsePolicyExtras(
    const v1::EvaluateRequest& req, const std::vector<eval::PolicyEstimator>& estimators) {
  PolicyExtras x;
  x.reward_model = req.reward_model();
  if (x.reward_model.empty()) x.reward_model = req.imputation_model_id() != 0 ? "imputation" : "self";
  if (x.reward_model != "self" && x.reward_model != "imputation" && x.reward_model != "crossfit") {
    return absl::InvalidArgumentError(absl::StrCat("reward_model='", req.reward_model().substr(0, 64),
                                                   "': must be self, imputation or crossfit"));
  }
  if (x.reward_model == "imputation" && req.imputation_model_id() == 0) {
    return absl::InvalidArgumentError("reward_model=imputation: needs imputation_model_id");
  }
  if (x.reward_model != "imputation" && req.imputation_model_id() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("imputation_model_id=", req.imputation_model_id(),
                                                   ": only with reward_model=imputation (got ",
                                                   x.reward_model, ")"));
  }
  if (req.has_crossfit_folds()) {
    if (x.reward_model != "crossfit") {
      return absl::InvalidArgumentError("crossfit_folds: only with reward_model=crossfit");
    }
    if (req.crossfit_folds() < 2 || req.crossfit_folds() > 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("crossfit_folds=", req.crossfit_folds(), ": must be in [2, 20] (unset = 5)"));
    }
    x.crossfit.folds = static_cast<int>(req.crossfit_folds());
  }
  x.crossfit.seed = req.seed();
  x.embeddings = std::any_of(estimators.begin(), estimators.end(),
                             eval::PolicyEstimatorUsesEmbeddings);
  if (!x.embeddings && !req.item_category().empty()) {
    return absl::InvalidArgumentError("item_category: only for mips and snmips");
  }
  if (x.embeddings && req.item_category().empty()) {
    return absl::FailedPreconditionError(
        "mips/snmips: the log carries no action embedding; give item_category (item key -> "
        "category) for every logged item");
  }
  absl::flat_hash_map<std::string, uint64_t> ids;
  for (const auto& [item, cat] : req.item_category()) {
    if (cat.empty() || cat.size() > 256) {
      return absl::InvalidArgumentError(absl::StrCat("item_category['", item.substr(0, 64),
                                                     "']: category must be 1 to 256 bytes"));
    }
    x.category[item] = ids.try_emplace(cat, ids.size()).first->second;
  }
  x.slope = req.slope();
  if (x.slope && (req.clip() != 0 || req.has_tau() || req.has_lambda() ||
                  req.has_subgaussian_lambda())) {
    return absl::InvalidArgumentError(
        "slope: chooses clip, tau, lambda and subgaussian_lambda itself; do not set them");
  }
  return x;
}

absl::Status EvaluatePolicyFromLog(ModelManager* models, store::InteractionStore* store,
                                   const Limits& limits, const v1::EvaluateRequest& req,
                                   v1::EvaluateResponse* resp, std::function<bool()> cancelled) {
  std::vector<std::string> names;
  std::vector<eval::PolicyEstimator> estimators;
  if (absl::Status st = ParsePolicyEstimators(req.policy_estimator(), &names, &estimators);
      !st.ok()) {
    return st;
  }
  eval::PolicyOptions opts;
  opts.num_threads = 2;
  opts.cancelled = cancelled;
  if (!req.estimator().empty()) {
    return absl::InvalidArgumentError("estimator and policy_estimator: give one, not both");
  }
  const bool uploaded = req.scores_size() > 0;
  if (uploaded == (req.model_id() != 0)) {
    return absl::InvalidArgumentError(
        "model_id and scores: give exactly one (a served model's policy, or your own policy "
        "as uploaded scores)");
  }
  if (absl::Status st = ValidateUploadedScores(req, limits); !st.ok()) return st;
  if (!req.mar_dataset().empty() || req.rank_all_items() || !req.exclude_dataset().empty() ||
      !req.propensity_from().empty() || req.k_size() > 0) {
    return absl::InvalidArgumentError(
        "mar_dataset, rank_all_items, exclude_dataset, propensity_from and k do not "
        "apply to policy_estimator (the logged propensities are the logging probabilities)");
  }
  const std::string target = req.target().empty() ? "greedy" : req.target();
  if (target != "greedy" && target != "softmax" && target != "ranking") {
    return absl::InvalidArgumentError(
        absl::StrCat("target='", req.target().substr(0, 64), "': must be greedy, softmax or ranking"));
  }
  auto finite_nonneg = [](double v) { return std::isfinite(v) && v >= 0; };
  if (!finite_nonneg(req.temperature())) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature=", req.temperature(), ": must be > 0 (0 means 1)"));
  }
  const double temperature = req.temperature() == 0 ? 1.0 : req.temperature();
  if (!finite_nonneg(req.clip()) || req.clip() > 1e12) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip=", req.clip(), ": the weight cap must be 0 (none) or in (0, 1e12]"));
  }
  opts.clip = req.clip();
  // Unset is unset; 0 is a value (OBP's meaning: DM).
  if (req.has_tau()) {
    if (!(req.tau() >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tau=", req.tau(), ": must be >= 0 (0 = DM; unset = no switching)"));
    }
    opts.tau = req.tau();
  }
  if (req.has_lambda()) {
    if (!(req.lambda() >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("lambda=", req.lambda(), ": must be >= 0 (0 = DM; unset = 1)"));
    }
    opts.lambda = req.lambda();
  }
  if (req.has_subgaussian_lambda()) {
    if (!(req.subgaussian_lambda() >= 0 && req.subgaussian_lambda() <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "subgaussian_lambda=", req.subgaussian_lambda(), ": must be in [0, 1] (unset = 0)"));
    }
    opts.subgaussian_lambda = req.subgaussian_lambda();
  }
  if (absl::Status st = ParseIntervalRequest(req, limits, &opts.bootstrap, &opts.confidence);
      !st.ok()) {
    return st;
  }
  opts.seed = req.seed();
  auto extras_or = ParsePolicyExtras(req, estimators);
  if (!extras_or.ok()) return extras_or.status();
  const PolicyExtras& extras = *extras_or;
  const bool model_based = std::any_of(estimators.begin(), estimators.end(),
                                      eval::PolicyEstimatorUsesRewardModel);
  const bool crossfit = model_based && extras.reward_model == "crossfit";
  // The reward model is a served model's sigmoid(score) unless cross-fitted.
  const bool served_rewards = model_based && !crossfit;

  if (uploaded && served_rewards && req.imputation_model_id() == 0) {
    return absl::InvalidArgumentError(
        "imputation_model_id: required for dm, dr and their variants with uploaded scores "
        "(scores rank items; they are not reward predictions), or reward_model=crossfit");
  }
  auto m = PolicyOf(models, req);
  if (!m.ok()) return m.status();
  std::shared_ptr<const LoadedModel> model = *m;
  if (model->model->num_items() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", req.model_id(), " is a ranker over features; it is not an item policy"));
  }
  std::shared_ptr<const LoadedModel> rewarder = model;
  if (req.imputation_model_id() != 0) {
    auto r = models->Get(req.imputation_model_id());
    if (!r.ok()) return r.status();
    rewarder = *r;
    if (rewarder->model->num_items() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("imputation_model_id=",
                                                     req.imputation_model_id(),
                                                     ": a feature ranker cannot model rewards"));
    }
  }
  auto log_or = store->LoadView(req.dataset());
  if (!log_or.ok()) return log_or.status();
  const data::DatasetView& log = **log_or;
  if (!log.has_propensities()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "dataset '", req.dataset(), "' has no logged propensities: policy estimates need the "
        "logging policy's probability of every logged decision"));
  }

  // Reward model: sigmoid of the rewarder's score for (user key, item key);
  // 0 for keys it does not know, counted.
  int64_t reward_lookups = 0, reward_unknown = 0;
  auto reward_hat = [&](const std::string& user, const std::string& item) {
    ++reward_lookups;
    if (!rewarder->user_index.contains(user) || !rewarder->item_index.contains(item)) {
      ++reward_unknown;
      return 0.0;
    }
    return KeyedRelevance(*rewarder, user, item);
  };

  // Group the events into decisions: a list is a slate, an event without a
  // list is one action.
  absl::flat_hash_map<uint32_t, std::vector<size_t>> slates;
  std::vector<size_t> singles;
  int64_t missing_prop = 0;
  for (size_t e = 0; e < log.num_events(); ++e) {
    if (!(log.propensity[e] > 0)) {
      ++missing_prop;
      continue;
    }
    if (!log.list.empty() && log.list[e] != data::kNoList) {
      slates[log.list[e]].push_back(e);
    } else {
      singles.push_back(e);
    }
  }
  if (target == "softmax" && !slates.empty()) {
    return absl::InvalidArgumentError(
        "target=softmax: only for single-action logs; slates use greedy re-ranking");
  }
  std::vector<eval::LoggedDecision> decisions;
  eval::TargetDistributions targets;  // crossfit only
  const KeyIndex log_items = crossfit ? IndexKeys(log.item_keys) : KeyIndex();
  // A model item as an action of the log (items the log never shows get ids
  // of their own, which the cross-fitted model predicts at the global mean).
  auto log_action = [&](uint32_t j) -> uint64_t {
    auto it = log_items.find(model->record.item_keys[j]);
    return it != log_items.end() ? it->second : (uint64_t{1} << 63) | j;
  };
  // The embedding of logged event e (mips / snmips); the first missing
  // category is reported.
  std::string missing_category;
  auto embed = [&](size_t e) -> uint64_t {
    auto it = extras.category.find(log.item_keys[log.item[e]]);
    if (it != extras.category.end()) return it->second;
    if (missing_category.empty()) missing_category = log.item_keys[log.item[e]];
    return 0;
  };
  int64_t skipped = 0;
  std::vector<float> scores;
  uint32_t scored_user = UINT32_MAX;
  double dm_cache = 0;
  uint32_t top_item = 0;
  std::vector<double> pi;
  size_t polled = 0;
  for (size_t e : singles) {
    if (cancelled && ++polled % 1024 == 0 && cancelled()) {
      return absl::CancelledError("evaluation cancelled (deadline or client)");
    }
    auto u = model->user_index.find(log.user_keys[log.user[e]]);
    auto i = model->item_index.find(log.item_keys[log.item[e]]);
    if (u == model->user_index.end() || i == model->item_index.end()) {
      ++skipped;
      continue;
    }
    if (u->second != scored_user) {  // events are user-major: score each user once
      scored_user = u->second;
      scores.resize(model->model->num_items());
      model->model->ScoreAll(scored_user, scores);
      top_item = static_cast<uint32_t>(std::max_element(scores.begin(), scores.end()) -
                                       scores.begin());
      pi.assign(scores.size(), 0.0);
      if (target != "softmax") {  // greedy and ranking: the top item
        pi[top_item] = 1.0;
      } else {
        const float mx = scores[top_item];
        double z = 0;
        for (size_t j = 0; j < scores.size(); ++j) {
          pi[j] = std::exp((scores[j] - mx) / temperature);
          z += pi[j];
        }
        for (double& p : pi) p /= z;
      }
      dm_cache = 0;
      if (crossfit) {
        targets.table.emplace_back();
        for (size_t j = 0; j < pi.size(); ++j) {
          if (pi[j] > 1e-12) targets.table.back().push_back({log_action(j), pi[j]});
        }
      }
      if (served_rewards) {
        // The policy's own scores are the reward model's unless another
        // model imputes: then look each item up by key.
        const std::string& ukey = model->record.user_keys[scored_user];
        for (size_t j = 0; j < pi.size(); ++j) {
          if (pi[j] <= 1e-12) continue;
          const double r = rewarder == model
                               ? (std::isfinite(scores[j]) ? Sigmoid(scores[j]) : 0.0)
                               : reward_hat(ukey, model->record.item_keys[j]);
          dm_cache += pi[j] * r;
        }
      }
    }
    eval::LoggedDecision d;
    d.reward = {static_cast<double>(log.label[e])};
    d.logging_prob = {std::min(1.0, static_cast<double>(log.propensity[e]))};
    d.target_prob = {pi[i->second]};
    d.context = log.user[e];
    d.action = {log.item[e]};
    if (extras.embeddings) d.embedding = {embed(e)};
    if (crossfit) targets.of.push_back({static_cast<uint32_t>(targets.table.size() - 1)});
    if (served_rewards) {
      d.reward_hat = {reward_hat(log.user_keys[log.user[e]], log.item_keys[log.item[e]])};
      d.target_dm = dm_cache;
    }
    decisions.push_back(std::move(d));
  }
  // Slates, in list order for determinism.
  std::vector<uint32_t> list_ids;
  list_ids.reserve(slates.size());
  for (const auto& [l, _] : slates) list_ids.push_back(l);
  std::sort(list_ids.begin(), list_ids.end());
  for (uint32_t l : list_ids) {
    std::vector<size_t>& ev = slates[l];
    std::sort(ev.begin(), ev.end(), [&](size_t a, size_t b) {
      return log.position[a] < log.position[b] || (log.position[a] == log.position[b] && a < b);
    });
    const std::string& ukey = log.user_keys[log.user[ev.front()]];
    auto u = model->user_index.find(ukey);
    std::vector<uint32_t> ids;
    bool known = u != model->user_index.end();
    for (size_t e : ev) {
      if (!known) break;
      auto i = model->item_index.find(log.item_keys[log.item[e]]);
      if (i == model->item_index.end()) known = false; else ids.push_back(i->second);
    }
    if (!known) {
      ++skipped;
      continue;
    }
    const std::vector<uint32_t> target_item =
        SlateTargetItems(*model->model, u->second, ids, target == "ranking");
    eval::LoggedDecision d;
    d.context = log.user[ev.front()];
    if (crossfit) targets.of.emplace_back();
    for (size_t k = 0; k < ev.size(); ++k) {
      const size_t e = ev[k];
      d.action.push_back(log.item[e]);
      if (extras.embeddings) d.embedding.push_back(embed(e));
      const bool has_target = target_item[k] != UINT32_MAX;  // slate longer than the catalogue
      if (crossfit) {
        targets.of.back().push_back(static_cast<uint32_t>(targets.table.size()));
        targets.table.emplace_back();
        if (has_target) targets.table.back().push_back({log_action(target_item[k]), 1.0});
      }
      d.reward.push_back(log.label[e]);
      d.logging_prob.push_back(std::min(1.0, static_cast<double>(log.propensity[e])));
      d.target_prob.push_back(target_item[k] == ids[k] ? 1.0 : 0.0);
      if (served_rewards) {
        d.reward_hat.push_back(reward_hat(ukey, log.item_keys[log.item[e]]));
        d.target_reward_hat.push_back(
            has_target ? reward_hat(ukey, model->record.item_keys[target_item[k]]) : 0.0);
        d.target_dm += d.target_reward_hat.back();
      }
    }
    decisions.push_back(std::move(d));
  }
  if (decisions.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no logged decision of dataset '", req.dataset(), "' can be evaluated (", skipped,
        " have users or items unknown to model ", req.model_id(), ", ", missing_prop,
        " events lack a propensity)"));
  }
  if (!missing_category.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "item_category: no category for logged item '", missing_category.substr(0, 64),
        "' (mips and snmips need the category of every logged item)"));
  }
  json crossfit_diag;
  if (crossfit) {
    auto filled = eval::FillCrossFitRewards(decisions, targets, extras.crossfit);
    if (!filled.ok()) return filled.status();
    crossfit_diag = *filled;
  }
  auto evaluation = eval::EvaluatePolicies(decisions, names, estimators, opts, extras.slope);
  if (!evaluation.ok()) return evaluation.status();
  const std::vector<eval::PolicyResult>* results = &evaluation->results;
  json diag = WritePolicyResults(names, results, resp);
  diag["trust"] = evaluation->trust;
  if (extras.slope) diag["slope"] = evaluation->slope_report;
  if (crossfit) {
    diag["reward_model"] = crossfit_diag;
    diag["reward_model"]["kind"] = "crossfit";
  } else if (model_based) {
    diag["reward_model"] = {
        {"kind", extras.reward_model},
        {"model_id", rewarder->record.id},
        {"source", rewarder == model ? "sigmoid(score) of the evaluated model"
                                     : "sigmoid(score) of imputation_model_id"},
        {"lookups", reward_lookups},
        {"unknown_keys", reward_unknown}};
    if (reward_unknown > 0) {
      if (!diag.contains("warnings") || !diag["warnings"].is_array()) {
        diag["warnings"] = json::array();
      }
      diag["warnings"].push_back(absl::StrCat(
          "the reward model (model ", rewarder->record.id, ") does not know ", reward_unknown,
          " of ", reward_lookups, " (user, item) keys it was asked for; they were predicted 0"));
    }
  }
  diag["mode"] = "policy";
  diag["dataset"] = req.dataset();
  diag["model_id"] = req.model_id();
  diag["target"] = target;
  if (target == "softmax") diag["temperature"] = temperature;
  diag["single_actions"] = singles.size();
  diag["slates"] = list_ids.size();
  diag["skipped_decisions"] = skipped;
  diag["events_without_propensity"] = missing_prop;
  if (skipped > 0 || missing_prop > 0) {
    if (!diag.contains("warnings") || !diag["warnings"].is_array()) diag["warnings"] = json::array();
    diag["warnings"].push_back(absl::StrCat(skipped, " decisions with users or items unknown to "
                                            "the model and ", missing_prop,
                                            " events without a propensity were left out"));
  }
  (void)google::protobuf::util::JsonStringToMessage(diag.dump(), resp->mutable_diagnostics());
  return absl::OkStatus();
}

}  // namespace debias::server
