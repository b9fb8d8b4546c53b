// ModelManager: training jobs and the cache of loaded models.
//
// Jobs run on their own threads, at most Options::max_jobs at once; each
// persists its record when it starts (state "training") and when it ends
// ("ready" with parameters, "failed" or "cancelled"). Loaded models are
// shared_ptr<const>: a request holding one keeps it alive even if the model
// is deleted or replaced meanwhile (hot-swap safe).
// Thread safety: every method may be called from any thread.
#ifndef DEBIAS_SERVER_MODEL_MANAGER_H_
#define DEBIAS_SERVER_MODEL_MANAGER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/models/model.h"
#include "core/propensity/estimator.h"
#include "core/retrieval/retriever.h"
#include "core/store/interaction_store.h"
#include "core/train/train_spec.h"

namespace debias::server {

struct TrainJobRequest {
  std::string name;             // "" = an unnamed model
  std::string dataset;
  std::string mar_dataset;      // optional
  std::string feedback;         // "" = the dataset's kind
  std::optional<double> holdout;  // share of events held out, (0, 0.5]
  train::TrainSpec spec;        // feedback/mar_sample are filled by the job
  std::string request_id;       // of the Train call, for the job's log lines
};

// A ready model with everything serving needs.
struct LoadedModel {
  store::ModelRecord record;
  std::unique_ptr<model::Model> model;
  absl::flat_hash_map<std::string, uint32_t> user_index;
  absl::flat_hash_map<std::string, uint32_t> item_index;
  // TopK / BatchTopK over the model's items (null for rankers over
  // features). Declared after `model`, which it reads, so it goes first.
  std::unique_ptr<retrieval::Retriever> retriever;
  // Bytes of the parameter snapshot and key tables (the retriever's are
  // added by bytes(), as its index appears once built).
  size_t base_bytes = 0;
  size_t bytes() const { return base_bytes + (retriever ? retriever->bytes() : 0); }

  // Items of each model user in the training dataset now (sorted model item
  // ids), built on first use. FAILED_PRECONDITION if the dataset is gone.
  absl::StatusOr<const std::vector<std::vector<uint32_t>>*> Seen(
      store::InteractionStore* store) const;
  // The training propensity estimator, refitted on first use (deterministic
  // for the model's spec and seed), and the view it was fitted on.
  struct FittedPropensity {
    std::shared_ptr<const data::DatasetView> view;
    std::unique_ptr<propensity::Estimator> estimator;
    // Keys of `view` -> its ids (the estimator's ids), built once.
    absl::flat_hash_map<std::string, uint32_t> users, items;
  };
  absl::StatusOr<const FittedPropensity*> Propensity(store::InteractionStore* store) const;

 private:
  mutable absl::Mutex mu_;
  mutable std::optional<absl::StatusOr<std::vector<std::vector<uint32_t>>>> seen_
      ABSL_GUARDED_BY(mu_);
  mutable std::optional<absl::StatusOr<std::unique_ptr<FittedPropensity>>> propensity_
      ABSL_GUARDED_BY(mu_);
};

// Which model a call wants (proto ModelRef): `id`, or `name` with at most
// one of `version` and `label`; `name` alone = its "stable" label, else its
// latest servable version.
struct ModelRef {
  uint64_t id = 0;
  std::string name;
  uint64_t version = 0;
  std::string label;
};

// The labels and versions of one model name.
struct NameLabels {
  std::string name;
  std::map<std::string, uint64_t> labels;
  std::vector<uint64_t> versions;  // ascending, any state
};

// How ModelManager::Import names the model it stores.
struct ImportOptions {
  // "" = the record's own name (an unnamed record stays unnamed).
  std::string name;
  // >= 1: exactly this version (ALREADY_EXISTS when another model holds
  // it); 0: the record's own version when free, else the name's next one.
  uint64_t version = 0;
  // False: the model is stored ready but not servable by name until
  // MarkServable (a repository version during its warm-up).
  bool servable = true;
};

class ModelManager {
 public:
  struct Options {
    int max_jobs = 2;
    // Ready models kept loaded for serving; past it the least recently used
    // is dropped (a request holding it keeps it until it ends) and reloaded
    // from the store on its next use.
    int max_loaded_models = 32;
    // Bytes the loaded models may hold in all (LoadedModel::bytes); past
    // it the least recently used others are dropped. 0: no limit.
    int64_t max_loaded_model_bytes = 0;
    // Retrieval settings of every loaded model (the index build's outcome
    // is logged by the manager). retrieval.index_dir, when set, keeps the
    // built indexes (named per model; Delete removes a model's).
    retrieval::RetrieverOptions retrieval;
    // Called once per job when it ends, with its final state name and wall
    // time (metrics); may be empty.
    std::function<void(std::string_view state, double seconds)> on_job_end;
  };
  // Marks records left in state "training" by a previous process as failed.
  ModelManager(store::InteractionStore* store, Options options);
  // Cancels running jobs and waits for them.
  ~ModelManager();

  // Validates the request, reserves a job slot, persists the new record and
  // starts the job. Returns the model id. RESOURCE_EXHAUSTED past max_jobs.
  absl::StatusOr<uint64_t> StartTraining(TrainJobRequest request);

  // The current record of a model (live progress for running jobs); a
  // loaded model's record carries diagnostics["retrieval"] (Retriever::
  // Diagnostics: the index state, its recall@k, bytes).
  absl::StatusOr<store::ModelRecord> GetRecord(uint64_t id);
  std::vector<store::ModelRecord> ListRecords();

  // Blocks until job `id` has more than `seen_progress` progress entries or
  // has finished, or `timeout` passes. Returns the record then and whether
  // the job is finished. NOT_FOUND if there is no such job or model.
  struct Update {
    store::ModelRecord record;
    bool finished = false;
  };
  absl::StatusOr<Update> WaitForUpdate(uint64_t id, size_t seen_progress,
                                       absl::Duration timeout);

  // FAILED_PRECONDITION if the model is not training.
  absl::Status Cancel(uint64_t id);
  // Cancels a running job first.
  absl::Status Delete(uint64_t id);

  // A ready model, loaded on first use. FAILED_PRECONDITION for a model
  // that is not ready, NOT_FOUND for none.
  absl::StatusOr<std::shared_ptr<const LoadedModel>> Get(uint64_t id);

  int running_jobs();
  // Models loaded in the serving cache now, and how many were dropped from
  // it to stay within Options::max_loaded_models since the start.
  size_t loaded_models();
  // Bytes held by the loaded models now (LoadedModel::bytes summed).
  size_t loaded_model_bytes();
  uint64_t evicted_models();

  // A ready model's full record (key tables included) and parameter
  // snapshot, for ExportModel. FAILED_PRECONDITION for a model not ready.
  struct Exported {
    store::ModelRecord record;
    std::string parameters;
  };
  absl::StatusOr<Exported> Export(uint64_t id);
  // Stores an exported model as a new ready model and returns its id. The
  // parameters are decoded first (INVALID_ARGUMENT when they do not decode,
  // or when the key tables do not match the model's user/item counts), so a
  // bad snapshot never becomes a model. The record's id, state and times are
  // replaced; diagnostics["imported_from"] keeps the source's id.
  absl::StatusOr<uint64_t> Import(store::ModelRecord record, const std::string& parameters,
                                  const std::string& source_server_version,
                                  const ImportOptions& import = {});

  // --- Names, versions, labels ---------------------------------------------
  // The id `ref` points at. INVALID_ARGUMENT for a malformed reference (a
  // bad name or label, id with a name, version with a label), NOT_FOUND
  // for an unknown name, version or label, FAILED_PRECONDITION for a
  // version that is not servable (training, failed, warming up) or a name
  // without a servable version. Does not load the model (Get does).
  absl::StatusOr<uint64_t> Resolve(const ModelRef& ref);
  // Moves `label` of `name` to `version` (0: removes it), persisted in one
  // write. NOT_FOUND for an unknown name or version, FAILED_PRECONDITION for
  // a version that is not servable (the label stays where it was).
  absl::StatusOr<NameLabels> SetLabel(const std::string& name, const std::string& label,
                                      uint64_t version);
  // NOT_FOUND for a name with no version on this server.
  absl::StatusOr<NameLabels> Labels(const std::string& name);
  // Labels of `name` that point at `version` (empty for unnamed models).
  std::vector<std::string> LabelsOf(const std::string& name, uint64_t version);
  // The model id of name/version, if this server holds it (any state).
  std::optional<uint64_t> FindVersion(const std::string& name, uint64_t version);
  // Loads model `id` and scores one (user, item) pair or one zero feature
  // vector with it; OK when the score is finite. The warm-up of a version.
  absl::Status WarmUp(uint64_t id);
  // Makes an imported, warmed-up version servable by name.
  void MarkServable(uint64_t id);

 private:
  struct Job;
  void RunJob(Job* job, TrainJobRequest request);
  void ReapFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Name index upkeep.
  struct VersionEntry {
    uint64_t id = 0;
    store::ModelState state = store::ModelState::kTraining;
    bool servable = false;
  };
  struct NameEntry {
    std::map<uint64_t, VersionEntry> versions;
    std::map<std::string, uint64_t> labels;
  };
  void IndexLocked(const store::ModelRecord& r, bool servable) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  NameLabels LabelsLocked(const std::string& name, const NameEntry& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // More models, or more bytes, loaded than the options allow.
  bool OverCacheLimitsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  store::InteractionStore* store_;
  Options options_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  struct Cached {
    std::shared_ptr<const LoadedModel> model;
    uint64_t last_use = 0;  // use_clock_ at the last Get
  };
  absl::flat_hash_map<uint64_t, Cached> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t use_clock_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by every Delete (before and after the store delete): a load that
  // raced with a delete is served but not cached.
  uint64_t deletes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  // Serialises the choice of an imported model's version (check, reserve,
  // index), so two imports cannot take the same name and version.
  absl::Mutex import_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // name -> versions and labels (mirrors the store, which persists them).
  std::map<std::string, NameEntry> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace debias::server

#endif  // DEBIAS_SERVER_MODEL_MANAGER_H_
