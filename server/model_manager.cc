#include "server/model_manager.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/models/model_registry.h"
#include "core/propensity/registry.h"
#include "core/train/registry.h"
#include "core/util/memory.h"
#include "server/dataset_service.h"
#include "spdlog/spdlog.h"

namespace debias::server {
namespace {

using nlohmann::json;

size_t KeyTableBytes(const std::vector<std::string>& keys) {
  // The table and its index: the strings (heap beyond the small-string
  // buffer) plus about one map slot per key.
  size_t b = keys.capacity() * sizeof(std::string);
  for (const auto& k : keys) b += (k.size() > 15 ? k.capacity() : 0) + sizeof(std::string) + 16;
  return b;
}

std::string IndexName(uint64_t id) { return absl::StrCat("model-", id); }

// Deletes the kept index files of model `id` (any settings, any factors).
void RemoveIndexFiles(const std::string& dir, uint64_t id) {
  if (dir.empty()) return;
  const std::string prefix = IndexName(id) + "-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) std::filesystem::remove(e.path(), ec);
  }
}

// The model's retriever; the outcome of its background index build is
// logged. Null (served as before) for rankers over features.
std::unique_ptr<retrieval::Retriever> MakeRetriever(uint64_t id, const model::Model& model,
                                                    retrieval::RetrieverOptions options) {
  if (model.num_items() == 0) return nullptr;
  options.index_name = IndexName(id);
  options.on_index_done = [id](const absl::Status& s, const json& diag) {
    if (s.ok()) {
      spdlog::info("model {}: approximate index ready ({})", id, diag.dump());
    } else if (s.code() != absl::StatusCode::kCancelled) {
      spdlog::warn("model {}: approximate index not built, TopK serves exactly: {}", id,
                   s.ToString());
    }
  };
  auto r = retrieval::Retriever::Create(model, std::move(options));
  if (!r.ok()) {
    spdlog::warn("model {}: no retriever: {}", id, r.status().ToString());
    return nullptr;
  }
  return std::move(*r);
}

void AddRetrievalDiagnostics(const LoadedModel* m, store::ModelRecord* r) {
  if (m == nullptr || m->retriever == nullptr) return;
  if (!r->diagnostics.is_object()) r->diagnostics = json::object();
  r->diagnostics["retrieval"] = m->retriever->Diagnostics();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json ProgressJson(const train::TrainProgress& p) {
  return json{{"epoch", p.epoch},
              {"total_epochs", p.total_epochs},
              {"loss", p.loss},
              {"elapsed_seconds", p.elapsed_seconds},
              {"metrics", p.metrics}};
}

json SpecJson(const TrainJobRequest& r) {
  json j{{"dataset", r.dataset},
         {"loss", r.spec.loss},
         {"feedback", r.feedback},
         {"propensity", r.spec.propensity},
         {"seed", r.spec.seed},
         {"params", r.spec.params}};
  if (r.spec.clip) j["clip"] = *r.spec.clip;
  if (r.spec.threshold) j["threshold"] = *r.spec.threshold;
  if (!r.mar_dataset.empty()) j["mar_dataset"] = r.mar_dataset;
  if (r.holdout) {
    j["holdout"] = *r.holdout;
    j["holdout_seed"] = r.spec.seed;
  }
  return j;
}

}  // namespace

struct ModelManager::Job {
  uint64_t id = 0;
  std::atomic<bool> cancel{false};
  absl::Mutex mu;
  absl::CondVar changed;
  store::ModelRecord record ABSL_GUARDED_BY(mu);
  bool finished ABSL_GUARDED_BY(mu) = false;
  std::thread thread;
};

// --- LoadedModel ------------------------------------------------------------

absl::StatusOr<const std::vector<std::vector<uint32_t>>*> LoadedModel::Seen(
    store::InteractionStore* store) const {
  absl::MutexLock l(&mu_);
  if (!seen_) {
    auto view = store->LoadView(record.dataset);
    if (!view.ok()) {
      seen_ = absl::FailedPreconditionError(absl::StrCat(
          "exclude_seen needs the training dataset '", record.dataset,
          "': ", view.status().message()));
    } else {
      const data::DatasetView& v = **view;
      std::vector<std::vector<uint32_t>> seen(record.user_keys.size());
      for (uint32_t u = 0; u < v.num_users(); ++u) {
        auto mu = user_index.find(v.user_keys[u]);
        if (mu == user_index.end()) continue;
        auto [b, e] = v.UserRange(u);
        for (uint64_t k = b; k < e; ++k) {
          auto mi = item_index.find(v.item_keys[v.item[k]]);
          if (mi != item_index.end()) seen[mu->second].push_back(mi->second);
        }
        std::sort(seen[mu->second].begin(), seen[mu->second].end());
      }
      seen_ = std::move(seen);
    }
  }
  if (!seen_->ok()) return seen_->status();
  return &seen_->value();
}

absl::StatusOr<const LoadedModel::FittedPropensity*> LoadedModel::Propensity(
    store::InteractionStore* store) const {
  absl::MutexLock l(&mu_);
  if (!propensity_) {
    propensity_ = [&]() -> absl::StatusOr<std::unique_ptr<FittedPropensity>> {
      const json& spec = record.spec;
      std::string name = spec.value("propensity", "");
      if (name.empty()) name = "popularity";
      auto view = store->LoadView(record.dataset);
      if (!view.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "pair propensities are refitted on the training dataset '", record.dataset,
            "': ", view.status().message()));
      }
      // Pass on the estimator's own keys from the resolved hyperparameters.
      std::map<std::string, std::string> params;
      // Trainers pass estimator parameters as "prop.<key>".
      for (const util::ParamSpec& p : propensity::EstimatorParams(name)) {
        if (p.name == "clip") continue;  // the spec's own clip, below
        auto it = spec["params"].find("prop." + p.name);
        if (it != spec["params"].end()) {
          // Numbers since issue 25; text in records written before.
          params[p.name] = it->is_string() ? it->get<std::string>() : it->dump();
        }
      }
      if (spec.contains("clip")) params["clip"] = std::to_string(spec["clip"].get<double>());
      propensity::FitContext ctx;
      ctx.seed = spec.value("seed", uint64_t{0});
      if (spec.contains("threshold")) ctx.rule.threshold = spec["threshold"].get<double>();
      ctx.mar_rule = ctx.rule;
      std::shared_ptr<const data::DatasetView> mar;
      if (spec.contains("mar_dataset")) {
        auto m = store->LoadView(spec["mar_dataset"].get<std::string>());
        if (!m.ok()) return m.status();
        mar = *m;
        ctx.mar = mar.get();
      }
      auto est = propensity::FitEstimator(name, **view, params, ctx);
      if (!est.ok()) return est.status();
      auto out = std::make_unique<FittedPropensity>();
      out->view = *view;
      out->estimator = std::move(*est);
      const data::DatasetView& v = **view;
      for (uint32_t u = 0; u < v.num_users(); ++u) out->users.emplace(v.user_keys[u], u);
      for (uint32_t i = 0; i < v.num_items(); ++i) out->items.emplace(v.item_keys[i], i);
      return out;
    }();
  }
  if (!propensity_->ok()) return propensity_->status();
  return propensity_->value().get();
}

// --- ModelManager -------------------------------------------------------------

ModelManager::ModelManager(store::InteractionStore* store, Options options)
    : store_(store), options_(options) {
  absl::MutexLock l(&mu_);
  for (const store::ModelName& n : store_->ListModelNames()) names_[n.name].labels = n.labels;
  for (store::ModelRecord r : store_->ListModels()) {
    if (r.state != store::ModelState::kTraining) {
      IndexLocked(r, r.state == store::ModelState::kReady);
      continue;
    }
    r.state = store::ModelState::kFailed;
    r.error = "interrupted: the server stopped while this model was training";
    r.error_code = static_cast<int>(absl::StatusCode::kAborted);
    r.finish_time_unix_ms = NowMs();
    if (auto s = store_->PutModel(r, nullptr); !s.ok()) {
      spdlog::warn("cannot mark model {} as failed: {}", r.id, s.ToString());
    }
    IndexLocked(r, false);
  }
}

void ModelManager::IndexLocked(const store::ModelRecord& r, bool servable) {
  if (r.name.empty()) return;
  names_[r.name].versions[r.version] = VersionEntry{r.id, r.state, servable};
}

NameLabels ModelManager::LabelsLocked(const std::string& name, const NameEntry& e) {
  NameLabels out;
  out.name = name;
  out.labels = e.labels;
  for (const auto& [v, _] : e.versions) out.versions.push_back(v);
  return out;
}

absl::StatusOr<uint64_t> ModelManager::Resolve(const ModelRef& ref) {
  if (ref.name.empty()) {
    if (!ref.label.empty() || ref.version != 0) {
      return absl::InvalidArgumentError("model.name: required with a version or label");
    }
    if (ref.id == 0) return absl::InvalidArgumentError("model: give an id or a name");
    return ref.id;
  }
  if (ref.id != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model: id=", ref.id, " and name='", ref.name.substr(0, 80), "': give one or the other"));
  }
  if (auto s = store::ValidateModelName(ref.name, "model.name"); !s.ok()) return s;
  if (ref.version != 0 && !ref.label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("model: version=", ref.version, " and label='",
                                                   ref.label.substr(0, 80),
                                                   "': give at most one"));
  }
  if (!ref.label.empty()) {
    if (auto s = store::ValidateModelName(ref.label, "model.label"); !s.ok()) return s;
  }
  absl::MutexLock l(&mu_);
  auto n = names_.find(ref.name);
  if (n == names_.end() || n->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model name '", ref.name, "' not found"));
  }
  const NameEntry& e = n->second;
  uint64_t version = ref.version;
  if (!ref.label.empty()) {
    auto it = e.labels.find(ref.label);
    if (it == e.labels.end()) {
      return absl::NotFoundError(
          absl::StrCat("model '", ref.name, "' has no label '", ref.label, "'"));
    }
    version = it->second;
  } else if (version == 0) {
    if (auto it = e.labels.find("stable"); it != e.labels.end()) {
      version = it->second;
    } else {
      for (auto v = e.versions.rbegin(); v != e.versions.rend(); ++v) {
        if (v->second.servable) return v->second.id;
      }
      return absl::FailedPreconditionError(
          absl::StrCat("model '", ref.name, "' has no ready version yet"));
    }
  }
  auto v = e.versions.find(version);
  if (v == e.versions.end()) {
    return absl::NotFoundError(
        absl::StrCat("model '", ref.name, "' has no version ", version));
  }
  if (!v->second.servable) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model '", ref.name, "' version ", version, " (id ", v->second.id, ") is not servable (",
        v->second.state == store::ModelState::kReady
            ? std::string("warming up")
            : absl::StrCat("state ", std::string(store::ModelStateName(v->second.state))),
        ")"));
  }
  return v->second.id;
}

absl::StatusOr<NameLabels> ModelManager::SetLabel(const std::string& name,
                                                  const std::string& label, uint64_t version) {
  if (auto s = store::ValidateModelName(name, "name"); !s.ok()) return s;
  if (auto s = store::ValidateModelName(label, "label"); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n == names_.end() || n->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model name '", name, "' not found"));
  }
  NameEntry& e = n->second;
  std::map<std::string, uint64_t> labels = e.labels;
  if (version == 0) {
    labels.erase(label);
  } else {
    auto v = e.versions.find(version);
    if (v == e.versions.end()) {
      return absl::NotFoundError(absl::StrCat("model '", name, "' has no version ", version));
    }
    if (!v->second.servable) {
      return absl::FailedPreconditionError(absl::StrCat(
          "version=", version, ": model '", name, "' version ", version, " is not servable (state ",
          std::string(store::ModelStateName(v->second.state)), "); label '", label,
          "' stays where it was"));
    }
    labels[label] = version;
  }
  if (auto s = store_->PutModelLabels(name, labels); !s.ok()) return s;
  e.labels = std::move(labels);
  return LabelsLocked(name, e);
}

absl::StatusOr<NameLabels> ModelManager::Labels(const std::string& name) {
  if (auto s = store::ValidateModelName(name, "name"); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n == names_.end() || n->second.versions.empty()) {
    return absl::NotFoundError(absl::StrCat("model name '", name, "' not found"));
  }
  return LabelsLocked(name, n->second);
}

std::vector<std::string> ModelManager::LabelsOf(const std::string& name, uint64_t version) {
  std::vector<std::string> out;
  if (name.empty()) return out;
  absl::MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n == names_.end()) return out;
  for (const auto& [label, v] : n->second.labels) {
    if (v == version) out.push_back(label);
  }
  return out;
}

std::optional<uint64_t> ModelManager::FindVersion(const std::string& name, uint64_t version) {
  absl::MutexLock l(&mu_);
  auto n = names_.find(name);
  if (n == names_.end()) return std::nullopt;
  auto v = n->second.versions.find(version);
  if (v == n->second.versions.end()) return std::nullopt;
  return v->second.id;
}

absl::Status ModelManager::WarmUp(uint64_t id) {
  auto m = Get(id);
  if (!m.ok()) return m.status();
  const model::Model& model = *(*m)->model;
  std::vector<float> score(1, std::nanf(""));
  if (model.feature_dim() > 0) {
    std::vector<float> zeros(static_cast<size_t>(model.feature_dim()), 0.0f);
    if (auto s = model.ScoreFeatures(zeros, score); !s.ok()) return s;
  } else if (model.num_users() > 0 && model.num_items() > 0) {
    const uint32_t item = 0;
    model.ScoreItems(0, std::span<const uint32_t>(&item, 1), score);
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", id, ": no user, item or feature to warm up with"));
  }
  if (!std::isfinite(score[0])) {
    return absl::DataLossError(absl::StrCat("model ", id, ": warm-up score is not finite"));
  }
  return absl::OkStatus();
}

void ModelManager::MarkServable(uint64_t id) {
  absl::MutexLock l(&mu_);
  for (auto& [_, e] : names_) {
    for (auto& [__, v] : e.versions) {
      if (v.id == id && v.state == store::ModelState::kReady) v.servable = true;
    }
  }
}

ModelManager::~ModelManager() {
  std::vector<Job*> running;
  {
    absl::MutexLock l(&mu_);
    for (auto& [_, job] : jobs_) {
      job->cancel = true;
      running.push_back(job.get());
    }
  }
  for (Job* job : running) {
    if (job->thread.joinable()) job->thread.join();
  }
}

void ModelManager::ReapFinishedLocked() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    bool finished;
    {
      absl::MutexLock jl(&it->second->mu);
      finished = it->second->finished;
    }
    if (finished) {
      if (it->second->thread.joinable()) it->second->thread.join();
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

int ModelManager::running_jobs() {
  absl::MutexLock l(&mu_);
  ReapFinishedLocked();
  return static_cast<int>(jobs_.size());
}

bool ModelManager::OverCacheLimitsLocked() {
  if (cache_.size() > static_cast<size_t>(std::max(1, options_.max_loaded_models))) return true;
  if (options_.max_loaded_model_bytes <= 0) return false;
  size_t total = 0;
  for (const auto& [id, c] : cache_) total += c.model->bytes();
  return total > static_cast<size_t>(options_.max_loaded_model_bytes);
}

size_t ModelManager::loaded_model_bytes() {
  absl::MutexLock l(&mu_);
  size_t total = 0;
  for (const auto& [id, c] : cache_) total += c.model->bytes();
  return total;
}

size_t ModelManager::loaded_models() {
  absl::MutexLock l(&mu_);
  return cache_.size();
}

uint64_t ModelManager::evicted_models() {
  absl::MutexLock l(&mu_);
  return evictions_;
}

absl::StatusOr<uint64_t> ModelManager::StartTraining(TrainJobRequest request) {
  auto trainer = train::FindTrainer(request.spec.loss);
  if (!trainer.ok()) return absl::InvalidArgumentError(trainer.status().message());
  // Names are checked before a job or a record exists: a rejected request
  // leaves nothing behind.
  if (!request.spec.propensity.empty()) {
    const auto& rows = propensity::Estimators();
    if (std::none_of(rows.begin(), rows.end(), [&](const auto& row) {
          return row.name == request.spec.propensity;
        })) {
      std::string names;
      for (const auto& row : rows) absl::StrAppend(&names, names.empty() ? "" : ", ", std::string(row.name));
      return absl::InvalidArgumentError(absl::StrCat(
          "propensity='", request.spec.propensity.substr(0, 64),
          "': not a propensity estimator; known: ", names));
    }
  }
  if (request.holdout && !(*request.holdout > 0 && *request.holdout <= 0.5)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "holdout=", *request.holdout, ": holdout must be in (0, 0.5] (the share of events "
        "held out for evaluation)"));
  }
  auto info = store_->GetDataset(request.dataset);
  if (!info.ok()) return info.status();
  if (request.feedback.empty()) {
    auto view = store_->LoadView(request.dataset);  // cached; the job reuses it
    if (!view.ok()) return view.status();
    request.feedback = EffectiveFeedback(info->feedback, data::ComputeStats(**view));
  }
  {
    auto kind = train::ParseFeedbackKind(request.feedback);
    if (!kind.ok()) return kind.status();
    // The feedback kind and every hyperparameter, by the registry row: a bad
    // one is refused here, not by a job.
    train::TrainSpec dry = request.spec;
    dry.feedback = *kind;
    if (absl::Status s = train::CheckParams(dry); !s.ok()) return s;
  }
  if (!request.mar_dataset.empty()) {
    auto mar = store_->GetDataset(request.mar_dataset);
    if (!mar.ok()) return mar.status();
    // A MAR sample about other users and items says nothing about this log.
    auto mar_view = store_->LoadView(request.mar_dataset);
    auto log_view = store_->LoadView(request.dataset);
    if (!mar_view.ok()) return mar_view.status();
    if (!log_view.ok()) return log_view.status();
    absl::flat_hash_set<std::string_view> users((*log_view)->user_keys.begin(),
                                                (*log_view)->user_keys.end());
    absl::flat_hash_set<std::string_view> items((*log_view)->item_keys.begin(),
                                                (*log_view)->item_keys.end());
    const bool shares =
        std::any_of((*mar_view)->user_keys.begin(), (*mar_view)->user_keys.end(),
                    [&](const std::string& k) { return users.contains(k); }) ||
        std::any_of((*mar_view)->item_keys.begin(), (*mar_view)->item_keys.end(),
                    [&](const std::string& k) { return items.contains(k); });
    if (!shares) {
      return absl::FailedPreconditionError(absl::StrCat(
          "mar_dataset '", request.mar_dataset, "' shares no user and no item with dataset '",
          request.dataset, "': a missing-at-random sample must be about the same users or "
          "items as the log"));
    }
  }

  absl::MutexLock l(&mu_);
  ReapFinishedLocked();
  if (static_cast<int>(jobs_.size()) >= options_.max_jobs) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "max_training_jobs=", options_.max_jobs,
        " jobs are already running; wait for one to finish or cancel one"));
  }
  auto id = store_->NextModelId();
  if (!id.ok()) return id.status();
  uint64_t version = 0;
  if (!request.name.empty()) {
    auto v = store_->ReserveModelVersion(request.name, 0);
    if (!v.ok()) return v.status();
    version = *v;
  }
  auto job = std::make_shared<Job>();
  job->id = *id;
  store::ModelRecord rec;
  rec.id = *id;
  rec.name = request.name;
  rec.version = version;
  rec.dataset = request.dataset;
  rec.data_version = info->data_version;
  rec.state = store::ModelState::kTraining;
  rec.spec = SpecJson(request);
  rec.create_time_unix_ms = NowMs();
  if (auto s = store_->PutModel(rec, nullptr); !s.ok()) return s;
  {
    absl::MutexLock jl(&job->mu);
    job->record = rec;
  }
  spdlog::info("model {}: training {} on dataset {} started (request_id={})", *id,
               rec.spec["loss"].get<std::string>(), rec.dataset, request.request_id);
  IndexLocked(rec, false);
  Job* raw = job.get();
  jobs_[*id] = job;
  raw->thread = std::thread([this, raw, req = std::move(request)]() mutable {
    RunJob(raw, std::move(req));
  });
  return *id;
}

void ModelManager::RunJob(Job* job, TrainJobRequest request) {
  const auto t0 = std::chrono::steady_clock::now();
  store::ModelRecord rec;
  {
    absl::MutexLock l(&job->mu);
    rec = job->record;
  }
  std::string snapshot;
  absl::Status status = [&]() -> absl::Status {
    auto view = store_->LoadView(request.dataset);
    if (!view.ok()) return view.status();
    rec.data_version = (*view)->data_version;
    std::shared_ptr<const data::DatasetView> mar;
    if (!request.mar_dataset.empty()) {
      auto m = store_->LoadView(request.mar_dataset);
      if (!m.ok()) return m.status();
      mar = *m;
      request.spec.mar_sample = mar.get();
    }
    std::string feedback = request.feedback;
    if (feedback.empty()) {
      auto info = store_->GetDataset(request.dataset);
      feedback = EffectiveFeedback(info.ok() ? info->feedback : "",
                                   data::ComputeStats(**view));
    }
    auto kind = train::ParseFeedbackKind(feedback);
    if (!kind.ok()) return kind.status();
    request.spec.feedback = *kind;
    rec.spec["feedback"] = feedback;

    train::TrainContext ctx;
    ctx.cancelled = &job->cancel;
    ctx.on_progress = [job](const train::TrainProgress& p) {
      absl::MutexLock l(&job->mu);
      job->record.progress.push_back(ProgressJson(p));
      job->changed.SignalAll();
    };
    // With a holdout, the model never sees the held-out events; Evaluate
    // recomputes the same mask to estimate on them alone.
    std::optional<data::DatasetView> fit;
    if (request.holdout) {
      const std::vector<uint8_t> held =
          data::HoldoutMask(**view, *request.holdout, request.spec.seed);
      fit = data::SubsetView(**view, [&](size_t e) { return held[e] == 0; });
      rec.diagnostics["holdout_events"] = (*view)->num_events() - fit->num_events();
    }
    auto result = train::RunTraining(fit ? *fit : **view, request.spec, ctx);
    if (!result.ok()) return result.status();
    if (!result->model) return absl::InternalError("trainer returned no model");
    rec.metrics = result->metrics;
    const json holdout_events = rec.diagnostics.value("holdout_events", json());
    rec.diagnostics = result->diagnostics;
    if (!holdout_events.is_null()) rec.diagnostics["holdout_events"] = holdout_events;
    rec.spec["params"] = train::SpecParams(request.spec.loss, result->resolved_params);
    // What the data decided (labels, propensity and why), in the spec.
    if (auto it = rec.diagnostics.find("data_defaults");
        it != rec.diagnostics.end() && it->is_object()) {
      for (const auto& [k, v] : it->items()) rec.spec[k] = v;
    }
    rec.user_keys = (*view)->user_keys;
    rec.item_keys = (*view)->item_keys;
    snapshot = result->model->Serialize();
    return absl::OkStatus();
  }();

  {
    absl::MutexLock l(&job->mu);
    rec.progress = job->record.progress;
  }
  rec.finish_time_unix_ms = NowMs();
  if (status.ok()) {
    rec.state = store::ModelState::kReady;
  } else if (absl::IsCancelled(status) || job->cancel) {
    rec.state = store::ModelState::kCancelled;
    rec.error = std::string(status.message());
    rec.error_code = static_cast<int>(absl::StatusCode::kCancelled);
  } else {
    rec.state = store::ModelState::kFailed;
    rec.error = std::string(status.message());
    rec.error_code = static_cast<int>(status.code());
  }
  absl::Status put = store_->PutModel(rec, status.ok() ? &snapshot : nullptr);
  if (!put.ok()) {
    rec.state = store::ModelState::kFailed;
    rec.error = absl::StrCat("could not persist the model: ", put.ToString());
    rec.error_code = static_cast<int>(put.code());
  }
  std::string().swap(snapshot);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("model {}: {} after {:.2f}s{}{} (request_id={})", rec.id,
               store::ModelStateName(rec.state), secs, rec.error.empty() ? "" : ": ", rec.error,
               request.request_id);
  if (options_.on_job_end) options_.on_job_end(store::ModelStateName(rec.state), secs);
  {
    absl::MutexLock l(&mu_);
    IndexLocked(rec, rec.state == store::ModelState::kReady);
  }
  {
    absl::MutexLock l(&job->mu);
    rec.user_keys = {};  // the live record need not hold them
    rec.item_keys = {};
    job->record = std::move(rec);
    job->finished = true;
    job->changed.SignalAll();
  }
  // The job's temporaries (sample buffers, optimiser state, the snapshot,
  // the key tables) are freed; return them to the OS rather than leave them
  // resident. After the caller has been told, so it does not wait for this.
  util::ReleaseFreeMemory();
}

absl::StatusOr<store::ModelRecord> ModelManager::GetRecord(uint64_t id) {
  std::shared_ptr<const LoadedModel> loaded;
  {
    absl::MutexLock l(&mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      absl::MutexLock jl(&it->second->mu);
      if (!it->second->finished) return it->second->record;
    }
    if (auto c = cache_.find(id); c != cache_.end()) loaded = c->second.model;
  }
  auto rec = store_->GetModel(id);
  if (rec.ok()) AddRetrievalDiagnostics(loaded.get(), &*rec);
  return rec;
}

std::vector<store::ModelRecord> ModelManager::ListRecords() {
  std::vector<store::ModelRecord> out = store_->ListModels();
  absl::MutexLock l(&mu_);
  for (auto& r : out) {
    if (auto c = cache_.find(r.id); c != cache_.end()) {
      AddRetrievalDiagnostics(c->second.model.get(), &r);
    }
    auto it = jobs_.find(r.id);
    if (it == jobs_.end()) continue;
    absl::MutexLock jl(&it->second->mu);
    if (!it->second->finished) r = it->second->record;
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.id > b.id; });
  return out;
}

absl::StatusOr<ModelManager::Update> ModelManager::WaitForUpdate(uint64_t id,
                                                                 size_t seen_progress,
                                                                 absl::Duration timeout) {
  std::shared_ptr<Job> job;  // shared: a reap may drop the map's reference
  {
    absl::MutexLock l(&mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end()) job = it->second;
  }
  if (job == nullptr) {
    // Not running (any more): the stored record is final.
    auto rec = store_->GetModel(id);
    if (!rec.ok()) return rec.status();
    return Update{std::move(*rec), rec->state != store::ModelState::kTraining};
  }
  absl::MutexLock jl(&job->mu);
  const absl::Time deadline = absl::Now() + timeout;
  while (!job->finished && job->record.progress.size() <= seen_progress) {
    if (job->changed.WaitWithDeadline(&job->mu, deadline)) break;
  }
  return Update{job->record, job->finished};
}

absl::Status ModelManager::Cancel(uint64_t id) {
  absl::MutexLock l(&mu_);
  auto it = jobs_.find(id);
  if (it != jobs_.end()) {
    absl::MutexLock jl(&it->second->mu);
    if (!it->second->finished) {
      it->second->cancel = true;
      return absl::OkStatus();
    }
  }
  auto rec = store_->GetModel(id);
  if (!rec.ok()) return rec.status();
  return absl::FailedPreconditionError(absl::StrCat(
      "model ", id, " is not training (state ", std::string(store::ModelStateName(rec->state)), ")"));
}

absl::Status ModelManager::Delete(uint64_t id) {
  std::shared_ptr<Job> job;
  std::shared_ptr<const LoadedModel> loaded;
  {
    absl::MutexLock l(&mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      it->second->cancel = true;
      job = std::move(it->second);
      jobs_.erase(it);
    }
    if (auto c = cache_.find(id); c != cache_.end()) {
      loaded = std::move(c->second.model);
      cache_.erase(c);
    }
    ++deletes_;
  }
  if (job && job->thread.joinable()) job->thread.join();
  {
    // The version leaves the name; labels that pointed at it go with it.
    absl::MutexLock l(&mu_);
    for (auto& [name, e] : names_) {
      for (auto v = e.versions.begin(); v != e.versions.end(); ++v) {
        if (v->second.id != id) continue;
        const uint64_t version = v->first;
        e.versions.erase(v);
        std::map<std::string, uint64_t> labels = e.labels;
        std::erase_if(labels, [&](const auto& kv) { return kv.second == version; });
        if (labels != e.labels) {
          if (auto s = store_->PutModelLabels(name, labels); !s.ok()) {
            spdlog::warn("model '{}': cannot drop the labels of deleted version {}: {}", name,
                         version, s.ToString());
          }
          e.labels = std::move(labels);
        }
        break;
      }
    }
  }
  absl::Status deleted = store_->DeleteModel(id);
  {
    // A Get that began between the erase above and the store delete may have
    // read deletes_ after its first bump and cached the model from the
    // store: erase again, and bump again so a Get still loading does not
    // cache it either.
    absl::MutexLock l(&mu_);
    if (auto c = cache_.find(id); c != cache_.end()) {
      if (loaded == nullptr) loaded = std::move(c->second.model);
      cache_.erase(c);
    }
    ++deletes_;
  }
  // Freed here unless a request still holds it; then that request frees it.
  if (loaded.use_count() == 1) {
    loaded.reset();
    util::ReleaseFreeMemoryRateLimited();
  }
  RemoveIndexFiles(options_.retrieval.index_dir, id);
  return deleted;
}

absl::StatusOr<std::shared_ptr<const LoadedModel>> ModelManager::Get(uint64_t id) {
  uint64_t deletes_before = 0;
  {
    absl::MutexLock l(&mu_);
    auto it = cache_.find(id);
    if (it != cache_.end()) {
      it->second.last_use = ++use_clock_;
      return it->second.model;
    }
    deletes_before = deletes_;
  }
  auto rec = GetRecord(id);
  if (!rec.ok()) return rec.status();
  if (rec->state != store::ModelState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", id, " is not ready (state ", std::string(store::ModelStateName(rec->state)), ")"));
  }
  if (rec->user_keys.empty() && rec->item_keys.empty()) {
    // Records from a live job carry no key tables; read the stored one.
    auto stored = store_->GetModel(id);
    if (!stored.ok()) return stored.status();
    rec = std::move(stored);
  }
  auto snapshot = store_->GetModelSnapshot(id);
  if (!snapshot.ok()) return snapshot.status();
  auto model = models::DeserializeModel(*snapshot);
  if (!model.ok()) return model.status();
  auto loaded = std::make_shared<LoadedModel>();
  loaded->record = std::move(*rec);
  loaded->model = std::move(*model);
  for (uint32_t u = 0; u < loaded->record.user_keys.size(); ++u) {
    loaded->user_index.emplace(loaded->record.user_keys[u], u);
  }
  for (uint32_t i = 0; i < loaded->record.item_keys.size(); ++i) {
    loaded->item_index.emplace(loaded->record.item_keys[i], i);
  }
  loaded->base_bytes = snapshot->size() + KeyTableBytes(loaded->record.user_keys) +
                       KeyTableBytes(loaded->record.item_keys);
  loaded->retriever = MakeRetriever(id, *loaded->model, options_.retrieval);
  std::vector<std::shared_ptr<const LoadedModel>> evicted;  // freed after the lock
  std::shared_ptr<const LoadedModel> out;
  {
    absl::MutexLock l(&mu_);
    if (deletes_ != deletes_before) {
      // A model was deleted while this one loaded; it may be this one, so
      // serve this request but do not cache what may be gone from the store.
      return std::shared_ptr<const LoadedModel>(std::move(loaded));
    }
    auto [it, inserted] = cache_.try_emplace(id);
    if (inserted) {
      it->second.model = std::move(loaded);
      // Over a limit: drop the least recently used other models.
      while (OverCacheLimitsLocked()) {
        auto lru = cache_.end();
        for (auto c = cache_.begin(); c != cache_.end(); ++c) {
          if (c->first == id) continue;
          if (lru == cache_.end() || c->second.last_use < lru->second.last_use) lru = c;
        }
        if (lru == cache_.end()) break;
        evicted.push_back(std::move(lru->second.model));
        cache_.erase(lru);
        ++evictions_;
      }
    }
    it = cache_.find(id);
    it->second.last_use = ++use_clock_;
    out = it->second.model;
  }
  bool freed = false;
  for (auto& e : evicted) {
    spdlog::info(
        "model {}: dropped from the serving cache (max_loaded_models={}, "
        "max_loaded_model_bytes={}, {} bytes)",
        e->record.id, options_.max_loaded_models, options_.max_loaded_model_bytes, e->bytes());
    freed |= e.use_count() == 1;
    e.reset();
  }
  // On the request path: at most one trim per interval (memory.h).
  if (freed) util::ReleaseFreeMemoryRateLimited();
  return out;
}

absl::StatusOr<ModelManager::Exported> ModelManager::Export(uint64_t id) {
  auto rec = store_->GetModel(id);
  if (!rec.ok()) return rec.status();
  if (rec->state != store::ModelState::kReady) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", id, " is not ready (state ", std::string(store::ModelStateName(rec->state)),
        "); only ready models can be exported"));
  }
  auto snapshot = store_->GetModelSnapshot(id);
  if (!snapshot.ok()) return snapshot.status();
  return Exported{std::move(*rec), std::move(*snapshot)};
}

absl::StatusOr<uint64_t> ModelManager::Import(store::ModelRecord record,
                                              const std::string& parameters,
                                              const std::string& source_server_version,
                                              const ImportOptions& import) {
  if (!import.name.empty()) {
    if (auto s = store::ValidateModelName(import.name, "import_name"); !s.ok()) return s;
    record.name = import.name;
    record.version = import.version;
  } else if (!record.name.empty()) {
    if (auto s = store::ValidateModelName(record.name, "record.name"); !s.ok()) return s;
  }
  auto model = models::DeserializeModel(parameters);
  if (!model.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters: do not decode as a model: ", model.status().message()));
  }
  const uint32_t nu = (*model)->num_users(), ni = (*model)->num_items();
  if (nu > 0 && record.user_keys.size() != nu) {
    return absl::InvalidArgumentError(absl::StrCat("user_keys: ", record.user_keys.size(),
                                                   " keys for a model of ", nu, " users"));
  }
  if (ni > 0 && record.item_keys.size() != ni) {
    return absl::InvalidArgumentError(absl::StrCat("item_keys: ", record.item_keys.size(),
                                                   " keys for a model of ", ni, " items"));
  }
  const uint64_t source_id = record.id;
  const uint64_t source_version = record.version;
  absl::MutexLock import_lock(&import_mu_);
  if (!record.name.empty()) {
    // The exact version asked for, or the source's when free, else the next.
    uint64_t want = import.version;
    if (want != 0 && FindVersion(record.name, want)) {
      return absl::AlreadyExistsError(absl::StrCat("import_version=", want, ": model '",
                                                   record.name, "' already has version ", want));
    }
    if (want == 0 && record.version != 0 && !FindVersion(record.name, record.version)) {
      want = record.version;
    }
    auto v = store_->ReserveModelVersion(record.name, want);
    if (!v.ok()) return v.status();
    record.version = *v;
  }
  auto id = store_->NextModelId();
  if (!id.ok()) return id.status();
  if (!record.diagnostics.is_object()) record.diagnostics = nlohmann::json::object();
  record.diagnostics["imported_from"] = {{"model_id", source_id},
                                         {"version", source_version},
                                         {"server_version", source_server_version},
                                         {"create_time_unix_ms", record.create_time_unix_ms}};
  record.id = *id;
  record.state = store::ModelState::kReady;
  record.error.clear();
  record.create_time_unix_ms = NowMs();
  record.finish_time_unix_ms = record.create_time_unix_ms;
  if (auto s = store_->PutModel(record, &parameters); !s.ok()) return s;
  {
    absl::MutexLock l(&mu_);
    IndexLocked(record, import.servable);
  }
  spdlog::info("model {}: imported (source model {}, {} users, {} items)", *id,
               record.diagnostics["imported_from"]["model_id"].get<uint64_t>(),
               record.user_keys.size(), record.item_keys.size());
  return *id;
}

}  // namespace debias::server
