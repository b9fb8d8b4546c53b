// TrainSpec and the training-job contract shared by every loss.
//
// A trainer turns a DatasetView plus a TrainSpec into a Model and its
// diagnostics. Trainers are chosen by loss name from the registry in
// core/train/registry.h; the server, the CLI and the docs list that registry.
#ifndef DEBIAS_CORE_TRAIN_TRAIN_SPEC_H_
#define DEBIAS_CORE_TRAIN_TRAIN_SPEC_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/model/model.h"
#include "nlohmann/json.hpp"

namespace debias::train {

// Which feedback the dataset holds (see docs/METHODS.md):
//  kExplicit: the observed pairs carry labels (ratings binarised by a
//             threshold); propensity = P(pair observed).
//  kImplicit: every event is a click/positive, every other pair unlabeled;
//             propensity = P(pair exposed).
//  kClickLog: ranked lists with positions (position bias; DLA and friends).
enum class FeedbackKind { kExplicit, kImplicit, kClickLog };
inline std::string_view FeedbackKindName(FeedbackKind k) {
  switch (k) {
    case FeedbackKind::kExplicit: return "explicit";
    case FeedbackKind::kImplicit: return "implicit";
    case FeedbackKind::kClickLog: return "clicklog";
  }
  return "unknown";
}
absl::StatusOr<FeedbackKind> ParseFeedbackKind(std::string_view name);

struct TrainSpec {
  std::string loss;        // registry name, e.g. "relmf"
  std::string propensity;  // estimator name; "" = the loss's default
  FeedbackKind feedback = FeedbackKind::kImplicit;
  std::optional<double> clip;         // propensity clipping M, if any
  std::optional<double> threshold;    // rating >= threshold -> positive
  uint64_t seed = 0;
  // Optional MAR sample (e.g. Coat's random test ratings or a small
  // randomised slice), for estimators that need one (naive-bayes). Not
  // owned; valid for the duration of the training call. Its ids are its own:
  // map by user_keys/item_keys.
  const data::DatasetView* mar_sample = nullptr;
  // Hyperparameters as key=value strings; each trainer documents, parses and
  // validates its own keys and rejects unknown ones (INVALID_ARGUMENT).
  std::map<std::string, std::string> params;
};

struct TrainProgress {
  int epoch = 0;
  int total_epochs = 0;
  double loss = 0.0;
  double elapsed_seconds = 0.0;
  std::map<std::string, double> metrics;  // validation metrics, if any
};

struct TrainContext {
  // Called from the training thread after each epoch; may be empty.
  std::function<void(const TrainProgress&)> on_progress;
  // Checked between mini-batches; when set, training returns CANCELLED.
  const std::atomic<bool>* cancelled = nullptr;
  bool IsCancelled() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_relaxed);
  }
};

struct TrainResult {
  std::unique_ptr<model::Model> model;
  // Final metrics (e.g. validation) and diagnostics (propensity quantiles,
  // effective sample size, clipped share, flip probabilities, ...).
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json diagnostics = nlohmann::json::object();
  // Every hyperparameter actually used, defaults included, as strings.
  std::map<std::string, std::string> resolved_params;
};

using TrainerFn = std::function<absl::StatusOr<TrainResult>(
    const data::DatasetView& train, const TrainSpec& spec,
    const TrainContext& ctx)>;

}  // namespace debias::train

#endif  // DEBIAS_CORE_TRAIN_TRAIN_SPEC_H_
