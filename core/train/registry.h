// The registry of trainers, one row per loss name.
//
// Adding a method = one new file that defines its TrainerFn plus one row in
// registry.cc. Lookup is by exact, lower-case name ("relmf", "dr-jl", ...).
#ifndef DEBIAS_CORE_TRAIN_REGISTRY_H_
#define DEBIAS_CORE_TRAIN_REGISTRY_H_

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/models/trainer_params.h"
#include "core/train/train_spec.h"
#include "nlohmann/json.hpp"

namespace debias::train {

struct TrainerInfo {
  std::string_view name;
  std::string_view description;  // one line, with the paper
  std::vector<FeedbackKind> feedback;  // the kinds this loss applies to
  TrainerFn fn;
  // Whether the method weights by propensities (an estimator from
  // core/propensity): when the caller names none, RunTraining chooses one
  // from what the data has (ChoosePropensity in data_defaults.h).
  bool propensity = false;
};

// All registered trainers, in display order.
const std::vector<TrainerInfo>& Trainers();
// NOT_FOUND listing the known names when `name` is unknown.
absl::StatusOr<const TrainerInfo*> FindTrainer(std::string_view name);
// Runs the trainer for spec.loss after checking that it applies to
// spec.feedback (INVALID_ARGUMENT naming the kinds it needs otherwise).
// Before it: the labels are resolved from the data (ResolveLabels: explicit
// feedback always reaches the trainer with a threshold) and, for a method
// that weights by propensities, the estimator is chosen from the data when
// the spec names none (ChoosePropensity). After it: a model that cannot be
// right is refused (CheckNotDegenerate: FAILED_PRECONDITION "degenerate:
// ..."). diagnostics["data_defaults"] records {labels, propensity, reason}
// and a warning joins diagnostics["warnings"].
// INVALID_ARGUMENT unless `t` applies to `kind` feedback (the row's list is
// the only place that says which kinds a method accepts).
absl::Status CheckFeedback(const TrainerInfo& t, FeedbackKind kind);

// Checks a spec's feedback kind and hyperparameters (and loss/feedback pairing) without data,
// so a bad request is refused before a job or a model record exists: runs
// the trainer on an empty dataset, where each trainer parses and validates
// its parameters before it looks at the data. INVALID_ARGUMENT naming the
// key; OK when only data would be missing.
absl::Status CheckParams(const TrainSpec& spec);

// The parameters `t` reads on `kind` feedback (name, type, default, range,
// doc, aliases), in the order it reads them: recorded from the trainer's own
// parser on an empty request (trainer_params.h), so it is what the trainer
// accepts. ListMethods, `debiasctl methods` and docs/METHODS.md show it.
std::vector<models::ParamSpec> MethodParams(const TrainerInfo& t, FeedbackKind kind);

// The resolved hyperparameters of a model of method `loss` as the spec
// shows them: numbers as numbers and bools as bools by the method's
// parameter types (MethodParams); keys outside the schema (seed, clip,
// prop.<key>) are numbers or bools when they read as one, text otherwise.
nlohmann::json SpecParams(std::string_view loss,
                          const std::map<std::string, std::string>& resolved);

absl::StatusOr<TrainResult> RunTraining(const data::DatasetView& train,
                                        const TrainSpec& spec,
                                        const TrainContext& ctx);

}  // namespace debias::train

#endif  // DEBIAS_CORE_TRAIN_REGISTRY_H_
