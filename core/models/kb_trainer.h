// Kernel-balancing trainers (Li et al., "Debiased Collaborative Filtering with
// Kernel-Based Causal Balancing", ICLR 2024): KBIPS, AKBIPS, WKBIPS, KBDR,
// AKBDR, WKBDR, each with a Gaussian or exponential kernel.
//
// Explicit feedback (train::FeedbackKind::kExplicit): every event of `train`
// is an observed (user, item) pair whose label is a rating; label >=
// spec.threshold (default 3) is a positive. Unobserved pairs are drawn on the
// fly, uniformly from the whole users x items grid (with replacement; the
// grid is never materialised; the reference permutes all pairs once per
// epoch instead).
//
// Model. Three MF sub-models of dimension `dim` (sigmoid of a dot product,
// no biases, factors initialised U(0, 1) as in the reference): the prediction
// model f, the weight model a in (0, 1), and (DR variants) the imputation
// model m. The learned inverse-propensity weight of an observed pair is
// w_o = a(o) * rho(y_o), rho the naive-Bayes base inverse propensity
// (spec.propensity "" or "naive-bayes"; P(y=1) from the param mcar_pos_rate,
// else from spec.mar_sample's labels, else the observed rate; "logged" uses
// 1 / the events' logged propensity). Each mini-batch (B observed pairs O, G*B sampled pairs D):
//  1. centres: J points of D, chosen at random (KB*), by the largest |eps|
//     of a kernel projection of the per-sample prediction loss (AKB*), or by
//     the worst-case kernel function (WKB*);
//  2. one Adam step on a for (1/B) sum w log w + penalty * hinge(sum_j gap_j)
//     (core/propensity/kernel_balance.h);
//  3. one Adam step on f for the IPS loss (1/B) sum w BCE(f, y) or the DR loss;
//  4. (DR) one Adam step on m for sum_O w (e - e_hat)^2 (DR-JL with learned w).
// Kernel features of a pair are the concatenated user and item rows of a
// feature table: embeddings from a short, seeded MF-IPS pre-training run
// (features=pretrain, the default; the reference loads frozen 4-d MF-IPS
// embeddings), caller-supplied side features (features=side) or both.
// Features are normalised once over the whole dataset (norm=global); the
// reference's per-batch shift bug is available as norm=reference.
// weight_model=frozen (an ablation) skips steps 1-2 and keeps a at its U(0, 1)
// initialisation; an earlier revision of the reference code (2b67229) does
// this by accident (its weight step reads w through a detached predict()).
// Frozen runs still list the weight, centre and eps settings in
// resolved_params, inert, and report the initial factors as learned_factor.
//
// Stopping as in the reference: at most max_epochs; a relative decrease of
// the epoch loss below tol counts a strike (never reset); stop after more
// than `patience` strikes.
//
// Output: an MfModel ("mf", score = logit of f). TrainResult.diagnostics
// holds the base and learned weight summaries (quantiles, ESS), the balance
// gap per centre on a fixed evaluation sample before (w = rho) and after
// (w = a rho) training, and the stopping trace. resolved_params lists every
// hyperparameter used.
//
// Errors: INVALID_ARGUMENT for unknown or out-of-range params (the message
// names the key and the allowed range or the known keys), bad thresholds,
// ids or labels; FAILED_PRECONDITION for an empty dataset, features=side
// without side features, propensity=logged without logged propensities;
// CANCELLED when ctx.cancelled is set (checked between mini-batches).
// Thread safety: reentrant; each call owns its state.
#ifndef DEBIAS_CORE_MODELS_KB_TRAINER_H_
#define DEBIAS_CORE_MODELS_KB_TRAINER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/models/mf_model.h"
#include "core/train/train_spec.h"

namespace debias::models {

// The six kernel-balancing losses plus three baselines run by the same
// engine with fixed weights (naive: w = 1; ips / dr-jl: w = rho). The
// baselines let the fidelity program and tests compare like with like; they
// are not registry rows (the MF family owns "naive", "ips", "dr-jl").
enum class KbMethod {
  kNaive, kIps, kDrJl,
  kKbIps, kAkbIps, kWkbIps, kKbDr, kAkbDr, kWkbDr,
};
// "kbips", "akbips", "wkbips", "kbdr", "akbdr", "wkbdr"; baselines
// "kb-naive", "kb-ips", "kb-drjl".
std::string_view KbMethodName(KbMethod m);
absl::StatusOr<KbMethod> ParseKbMethod(std::string_view name);

// Optional side features for features=side|both: one row per user / item of
// the dataset (num_users x du, num_items x di), finite.
struct KbSideFeatures {
  RowMatrix user;
  RowMatrix item;
};

// Trains `method` on `train`. See the file comment for the contract.
// `side` may be null (then features=side|both is FAILED_PRECONDITION).
absl::StatusOr<train::TrainResult> TrainKernelBalancing(
    KbMethod method, const data::DatasetView& train,
    const train::TrainSpec& spec, const train::TrainContext& ctx,
    const KbSideFeatures* side = nullptr);


// Registry entry points (train::TrainerFn signature).
absl::StatusOr<train::TrainResult> TrainKbIps(const data::DatasetView& train,
                                              const train::TrainSpec& spec,
                                              const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainAkbIps(const data::DatasetView& train,
                                               const train::TrainSpec& spec,
                                               const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainWkbIps(const data::DatasetView& train,
                                               const train::TrainSpec& spec,
                                               const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainKbDr(const data::DatasetView& train,
                                             const train::TrainSpec& spec,
                                             const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainAkbDr(const data::DatasetView& train,
                                              const train::TrainSpec& spec,
                                              const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainWkbDr(const data::DatasetView& train,
                                              const train::TrainSpec& spec,
                                              const train::TrainContext& ctx);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_KB_TRAINER_H_
