#include "server/log_evaluation.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/eval/log_evaluation.h"
#include "google/protobuf/util/json_util.h"

namespace debias::server {
namespace {

using nlohmann::json;

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


eval::KeyedModel Keyed(const LoadedModel& m) {
  return eval::KeyedModel{m.model.get(),  &m.record.user_keys, &m.record.item_keys,
                          &m.user_index,  &m.item_index,       m.record.id};
}

// Where `m` was trained and what it held out (its spec's holdout).
eval::ModelTraining TrainingOf(const LoadedModel& m) {
  eval::ModelTraining t;
  t.dataset = m.record.dataset;
  const json& spec = m.record.spec;
  if (spec.contains("holdout") && spec["holdout"].is_number()) {
    t.holdout = spec["holdout"].get<double>();
    t.holdout_seed = spec.value("holdout_seed", uint64_t{0});
  }
  return t;
}

std::vector<eval::UploadedScores> UploadedOf(const v1::EvaluateRequest& req) {
  std::vector<eval::UploadedScores> out(req.scores_size());
  for (int u = 0; u < req.scores_size(); ++u) {
    const v1::UserScores& s = req.scores(u);
    out[u].user = s.user();
    out[u].items.assign(s.items().begin(), s.items().end());
    out[u].scores.assign(s.scores().begin(), s.scores().end());
  }
  return out;
}

// A served model that ranks items (not a ranker over features).
// `if_features` is the error when it is one.
absl::StatusOr<std::shared_ptr<const LoadedModel>> ItemModel(ModelManager* models, uint64_t id,
                                                             const std::string& if_features) {
  auto m = models->Get(id);
  if (!m.ok()) return m.status();
  if ((*m)->model->num_items() == 0) return absl::InvalidArgumentError(if_features);
  return *m;
}

// propensity_from: "logged", a fitted estimator's name, or a model id whose
// training propensities to use. `fit_log` is the whole log.
absl::StatusOr<eval::PropensitySource> PropensityOf(ModelManager* models,
                                                    store::InteractionStore* store,
                                                    const Limits& limits,
                                                    const v1::EvaluateRequest& req,
                                                    const data::DatasetView& fit_log,
                                                    const propensity::LabelRule& rule) {
  uint64_t id = 0;
  if (IsNumber(req.propensity_from(), &id)) {
    if (id == 0) return absl::InvalidArgumentError("propensity_from=0: model ids are >= 1");
    auto m = models->Get(id);
    if (!m.ok()) return m.status();
    auto fitted = (*m)->Propensity(store);
    if (!fitted.ok()) {
      return absl::Status(fitted.status().code(),
                          absl::StrCat("propensity_from=", id, ": ", fitted.status().message()));
    }
    const LoadedModel::FittedPropensity* f = *fitted;
    return eval::PropensitySource::Borrowed(
        f->estimator.get(), &f->users, &f->items,
        absl::StrCat("model ", id, " (", std::string(f->estimator->name()), ")"), *m);
  }
  if (req.propensity_params_size() > limits.max_params) {
    return absl::InvalidArgumentError(
        absl::StrCat("propensity_params: at most ", limits.max_params, " allowed"));
  }
  if (req.propensity_from() == "logged") {
    if (!fit_log.has_propensities()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "propensity_from=logged: dataset '", req.dataset(),
          "' has no logged propensities; use a fitted estimator such as popularity"));
    }
    return eval::PropensitySource::Logged();
  }
  // Fitted estimators learn from the whole log (exposure is a property of
  // the pairs, not of the split).
  const std::string name = req.propensity_from().empty() ? "popularity" : req.propensity_from();
  std::map<std::string, std::string> params(req.propensity_params().begin(),
                                            req.propensity_params().end());
  return eval::PropensitySource::Fit(name, fit_log, params, rule, req.seed());
}

v1::Interval ToProto(const eval::Interval& v) {
  v1::Interval iv;
  iv.set_low(v.low);
  iv.set_high(v.high);
  return iv;
}

void WriteResponse(const eval::LogEvaluation& ev, v1::EvaluateResponse* resp) {
  for (const auto& [k, v] : ev.metrics) (*resp->mutable_metrics())[k] = v;
  for (const auto& [k, v] : ev.intervals) (*resp->mutable_intervals())[k] = ToProto(v);
  for (const auto& [k, v] : ev.normal_intervals) {
    (*resp->mutable_normal_intervals())[k] = ToProto(v);
  }
  for (const auto& [k, v] : ev.mar_metrics) (*resp->mutable_mar_metrics())[k] = v;
  (void)google::protobuf::util::JsonStringToMessage(ev.diagnostics.dump(),
                                                    resp->mutable_diagnostics());
}

// The reward-model, embedding and selection fields of a policy request
// (issue 27), checked, into `out`.
absl::Status ParsePolicyExtras(const v1::EvaluateRequest& req, eval::PolicyLogRequest* out) {
  std::string& reward_model = out->reward_model;
  reward_model = req.reward_model();
  if (reward_model.empty()) reward_model = req.imputation_model_id() != 0 ? "imputation" : "self";
  if (reward_model != "self" && reward_model != "imputation" && reward_model != "crossfit") {
    return absl::InvalidArgumentError(absl::StrCat("reward_model='", req.reward_model().substr(0, 64),
                                                   "': must be self, imputation or crossfit"));
  }
  if (reward_model == "imputation" && req.imputation_model_id() == 0) {
    return absl::InvalidArgumentError("reward_model=imputation: needs imputation_model_id");
  }
  if (reward_model != "imputation" && req.imputation_model_id() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("imputation_model_id=", req.imputation_model_id(),
                                                   ": only with reward_model=imputation (got ",
                                                   reward_model, ")"));
  }
  if (req.has_crossfit_folds()) {
    if (reward_model != "crossfit") {
      return absl::InvalidArgumentError("crossfit_folds: only with reward_model=crossfit");
    }
    if (req.crossfit_folds() < 2 || req.crossfit_folds() > 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("crossfit_folds=", req.crossfit_folds(), ": must be in [2, 20] (unset = 5)"));
    }
    out->crossfit.folds = static_cast<int>(req.crossfit_folds());
  }
  out->crossfit.seed = req.seed();
  const bool embeddings = std::any_of(out->estimators.begin(), out->estimators.end(),
                                      eval::PolicyEstimatorUsesEmbeddings);
  if (!embeddings && !req.item_category().empty()) {
    return absl::InvalidArgumentError("item_category: only for mips and snmips");
  }
  if (embeddings && req.item_category().empty()) {
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
    out->category[item] = ids.try_emplace(cat, ids.size()).first->second;
  }
  out->slope = req.slope();
  if (out->slope && (req.clip() != 0 || req.has_tau() || req.has_lambda() ||
                     req.has_subgaussian_lambda())) {
    return absl::InvalidArgumentError(
        "slope: chooses clip, tau, lambda and subgaussian_lambda itself; do not set them");
  }
  return absl::OkStatus();
}

// The policy-mode fields: which policy, target, and the estimators' knobs.
absl::Status ParsePolicyRequest(const v1::EvaluateRequest& req, const Limits& limits,
                                eval::PolicyLogRequest* out) {
  if (absl::Status st = ParsePolicyEstimators(req.policy_estimator(), &out->names,
                                              &out->estimators);
      !st.ok()) {
    return st;
  }
  eval::PolicyOptions& opts = out->options;
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
  out->target = req.target().empty() ? "greedy" : req.target();
  if (out->target != "greedy" && out->target != "softmax" && out->target != "ranking") {
    return absl::InvalidArgumentError(
        absl::StrCat("target='", req.target().substr(0, 64), "': must be greedy, softmax or ranking"));
  }
  auto finite_nonneg = [](double v) { return std::isfinite(v) && v >= 0; };
  if (!finite_nonneg(req.temperature())) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature=", req.temperature(), ": must be > 0 (0 means 1)"));
  }
  out->temperature = req.temperature() == 0 ? 1.0 : req.temperature();
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
  return ParsePolicyExtras(req, out);
}

}  // namespace

absl::Status EvaluateFromLog(ModelManager* models, store::InteractionStore* store,
                             const Limits& limits, const v1::EvaluateRequest& req,
                             v1::EvaluateResponse* resp, std::function<bool()> cancelled) {
  eval::LogRankingRequest in;
  if (absl::Status s = ValidateOptions(req, limits, &in.options); !s.ok()) return s;
  in.options.num_threads = 2;
  in.options.cancelled = cancelled;
  auto log = store->LoadView(req.dataset());
  if (!log.ok()) return log.status();
  in.log = log->get();
  in.dataset = req.dataset();
  if (req.has_threshold()) in.rule.threshold = req.threshold();
  in.max_users = req.max_users();

  std::shared_ptr<const LoadedModel> model, imputer;
  if (req.model_id() != 0) {
    auto m = ItemModel(models, req.model_id(),
                       absl::StrCat("model ", req.model_id(),
                                    " is a ranker over features; evaluate it on ranked lists"));
    if (!m.ok()) return m.status();
    model = *m;
    in.model = Keyed(*model);
    in.training = TrainingOf(*model);
  }
  const bool dr = in.options.estimator == eval::RelevanceEstimator::kDr;
  if (dr && req.imputation_model_id() != 0) {
    auto m = ItemModel(models, req.imputation_model_id(),
                       absl::StrCat("imputation_model_id=", req.imputation_model_id(),
                                    ": a feature ranker cannot impute pairs"));
    if (!m.ok()) return m.status();
    imputer = *m;
    in.imputer = Keyed(*imputer);
  }
  auto prop = PropensityOf(models, store, limits, req, **log, in.rule);
  if (!prop.ok()) return prop.status();
  in.propensity = &*prop;
  std::vector<eval::UploadedScores> uploaded;
  if (!model) {
    uploaded = UploadedOf(req);
    in.uploaded = &uploaded;
  }
  std::shared_ptr<const data::DatasetView> mar;
  if (!req.mar_dataset().empty()) {
    auto mar_or = store->LoadView(req.mar_dataset());
    if (!mar_or.ok()) return mar_or.status();
    mar = *mar_or;
    in.mar = mar.get();
    in.mar_dataset = req.mar_dataset();
  }
  auto result = eval::EvaluateRankingFromLog(in);
  if (!result.ok()) return result.status();
  WriteResponse(*result, resp);
  return absl::OkStatus();
}

absl::Status EvaluatePolicyFromLog(ModelManager* models, store::InteractionStore* store,
                                   const Limits& limits, const v1::EvaluateRequest& req,
                                   v1::EvaluateResponse* resp, std::function<bool()> cancelled) {
  eval::PolicyLogRequest in;
  if (absl::Status st = ParsePolicyRequest(req, limits, &in); !st.ok()) return st;
  in.options.num_threads = 2;
  in.options.cancelled = cancelled;
  const bool model_based = std::any_of(in.estimators.begin(), in.estimators.end(),
                                       eval::PolicyEstimatorUsesRewardModel);
  const bool served_rewards = model_based && in.reward_model != "crossfit";
  if (req.scores_size() > 0 && served_rewards && req.imputation_model_id() == 0) {
    return absl::InvalidArgumentError(
        "imputation_model_id: required for dm, dr and their variants with uploaded scores "
        "(scores rank items; they are not reward predictions), or reward_model=crossfit");
  }
  // The policy: a served model, or the uploaded scores served as one.
  std::shared_ptr<const LoadedModel> model, rewarder;
  std::optional<eval::ScoreTable> table;
  if (req.scores_size() == 0) {
    auto m = ItemModel(models, req.model_id(),
                       absl::StrCat("model ", req.model_id(),
                                    " is a ranker over features; it is not an item policy"));
    if (!m.ok()) return m.status();
    model = *m;
    in.policy = Keyed(*model);
  } else {
    table.emplace(UploadedOf(req));
    in.policy = table->Keyed();
  }
  in.model_id = req.model_id();
  in.rewarder = in.policy;
  if (req.imputation_model_id() != 0) {
    auto r = ItemModel(models, req.imputation_model_id(),
                       absl::StrCat("imputation_model_id=", req.imputation_model_id(),
                                    ": a feature ranker cannot model rewards"));
    if (!r.ok()) return r.status();
    rewarder = *r;
    in.rewarder = Keyed(*rewarder);
  }
  auto log = store->LoadView(req.dataset());
  if (!log.ok()) return log.status();
  in.log = log->get();
  in.dataset = req.dataset();
  auto result = eval::EvaluatePolicyFromLog(in);
  if (!result.ok()) return result.status();
  WriteResponse(*result, resp);
  return absl::OkStatus();
}

}  // namespace debias::server
