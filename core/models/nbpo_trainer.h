// BPR, BPO, NBPO and NBPOo on matrix factorisation (Yu & Qin, SIGIR 2020,
// "Sampler Design for Implicit Feedback Data by Noisy-label Robust
// Learning"; BPR: Rendle et al., UAI 2009), as in the authors' code.
//
// Implicit feedback (train::FeedbackKind::kImplicit): every event of `train`
// with label > 0 is a positive (u, i); every other pair is unvoted. Model:
// preference logit x = U_u . V_i (dim), r = sigma(x); for NBPO/NBPOo also a
// flip logit gamma = P_u . Q_i (flip_dim), g = sigma(gamma) = P(a true
// positive went unobserved). sigma is hard-saturated as in the reference
// (exactly 0 below -10 and 1 above 10).
//
// Training (gradient ascent, reference layout): every positive gets
// sample_rate negatives drawn uniformly from the user's non-positive items
// (core/samplers uniform sampler). Positives are taken in the view's
// user-major order, not shuffled, in consecutive blocks of batch_size; the
// gradients of a block are summed (each positive term counted once per
// negative), then every parameter matrix takes one step on the FULL matrix:
//   U <- U + lr (dU - lambda_r U), V likewise; P <- P + lr (dP - lambda_phi P),
//   Q likewise. lr <- lr * lr_decay at the start of every epoch.
// Per term on (u, k) with coefficients (Dx, Dg): dU_u += Dx V_k,
// dV_k += Dx U_u, dP_u += Dg Q_k, dQ_k += Dg P_u, where
//   loss   positive (Dx ; Dg)       negative (Dx ; Dg)
//   bpo    1-r ; -                  -r ; -
//   nbpoo  1-r ; -g                 (g-1)r(1-r)/Z ; g(1-g)r/Z,
//                                   Z = (1-r) + gr + 1e-10
//   nbpo   (1-g)(1-r) ; -gr         g(1-r) - r ; (1-g)r
// and bpr adds c(V_i - V_j) to dU_u, c U_u to dV_i, -c U_u to dV_j with
// c = sigma(x_uj - x_ui). BPR, BPO and NBPOo ascend
//   bpr   sum log sigma(x_ui - x_uj)
//   bpo   sum_pos log r + sum_neg log(1-r)
//   nbpoo sum_pos log[r(1-g)] + sum_neg log[(1-r) + rg]   (exact likelihood)
// NBPO is the paper's method and NOT the gradient of one objective: it is the
// gradient of sum_pos[(1-g) log r + r log(1-g)] + sum_neg[g log r + r log g +
// log(1-r)] with the coefficients (1-g), r, g held constant (reference
// fixed-coefficient update; pitfall 2 of the notes). The objective reported
// per epoch is that surrogate, evaluated.
// Init: U, V ~ U(0, 1/sqrt(dim)); P ~ 5 U(0, 1/sqrt(flip_dim));
// Q ~ -5 U(0, 1/sqrt(flip_dim)) (so g starts near 0.002).
//
// Observed on Amazon (docs/results/nbpo.md): with the reference's defaults
// (lambda_phi = 5, lr = 0.05) the flip factors decay to ~0, so g ~ 0.5 for
// every pair; NBPO then acts as a re-weighted BPO (negative push
// 0.5(1-r) - r) rather than through per-pair flip estimates. The flip
// diagnostics make this visible; lower lambda_phi to learn a non-trivial g.
//
// Output: bpr/bpo -> MfModel ("mf", no biases). nbpo/nbpoo -> NbpoMfModel
// ("nbpo-mf": scores U.V exactly like "mf", plus the flip factors the "nbpo"
// sampler needs). TrainResult.diagnostics["flip"] (nbpo, nbpoo) holds the
// distribution of g over the training pairs and over a fixed sample of
// unobserved pairs (mean, quantiles) and of P(true negative | unobserved);
// metrics holds the last epoch's objective.
//
// Hyperparameters (spec.params; defaults from the reference's Amazon settings
// with sample_rate and epochs chosen on validation, see docs/results/nbpo.md):
//   dim [1, 1024] 50; flip_dim [1, 1024] 50 (nbpo, nbpoo); lr (0, 10];
//   lambda_r [0, 1e4]; lambda_phi [0, 1e4] (nbpo, nbpoo); epochs [1, 100000];
//   batch_size [1, 1e8] 5000; sample_rate [1, 1000]; lr_decay (0, 1] 0.99;
//   seed from spec.seed.
// Errors: INVALID_ARGUMENT for an unknown key (listing the known ones) or an
// out-of-range / malformed value (naming the key and range);
// FAILED_PRECONDITION when no user has both a positive and a negative, or
// when training diverges (|sum U| >= 1e10 or non-finite; lower lr);
// CANCELLED when ctx.cancelled is set (checked between mini-batches).
// Thread safety: reentrant; each call owns its state.
#ifndef DEBIAS_CORE_MODELS_NBPO_TRAINER_H_
#define DEBIAS_CORE_MODELS_NBPO_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/models/mf_model.h"
#include "core/samplers/negative_sampler.h"
#include "core/samplers/random.h"
#include "core/train/train_spec.h"
#include "nlohmann/json.hpp"

namespace debias::models {

enum class NbpoLoss { kBpr, kBpo, kNbpo, kNbpoo };
std::string_view NbpoLossName(NbpoLoss loss);  // "bpr", "bpo", "nbpo", "nbpoo"
inline bool HasFlipModel(NbpoLoss l) {
  return l == NbpoLoss::kNbpo || l == NbpoLoss::kNbpoo;
}

struct NbpoOptions {
  NbpoLoss loss = NbpoLoss::kNbpo;
  int dim = 50;
  int flip_dim = 50;
  double lr = 0.05;
  double lambda_r = 1.0;
  double lambda_phi = 5.0;
  int epochs = 200;
  int batch_size = 5000;
  int sample_rate = 4;
  double lr_decay = 0.99;
  uint64_t seed = 0;
};

// The defaults debias ships for `loss`.
NbpoOptions DefaultNbpoOptions(NbpoLoss loss);
// Defaults overridden by `params`; INVALID_ARGUMENT naming the key on an
// unknown key, a malformed number or a value out of range.
absl::StatusOr<NbpoOptions> ParseNbpoOptions(
    NbpoLoss loss, const std::map<std::string, std::string>& params,
    uint64_t seed);
// Every hyperparameter in `o` as strings (the keys ParseNbpoOptions takes,
// plus "seed").
std::map<std::string, std::string> ResolvedNbpoParams(const NbpoOptions& o);

// The trainable parameters. P, Q are 0 x 0 for bpr and bpo.
struct NbpoParams {
  RowMatrix U, V, P, Q;
};

// A block of training terms: positive (users[p], pos_items[p]) with the
// negatives neg_items[p * sample_rate, (p + 1) * sample_rate).
struct NbpoBlock {
  std::span<const uint32_t> users;
  std::span<const uint32_t> pos_items;
  std::span<const uint32_t> neg_items;
  int sample_rate = 1;
};

// Adds the block's ascent direction (the table above) to *grad, whose
// matrices must have the shapes of `params`, and returns the block's
// objective (BPR/BPO/NBPOo: the exact objective; NBPO: the surrogate value).
// Precondition: ids in range, sizes consistent (checked by callers).
double AccumulateNbpoGradient(NbpoLoss loss, const NbpoParams& params,
                              const NbpoBlock& block, NbpoParams* grad);
// The objective alone, in double precision (finite-difference tests).
double NbpoObjective(NbpoLoss loss, const NbpoParams& params,
                     const NbpoBlock& block);

// The training loop, one epoch at a time, for callers that evaluate between
// epochs (the fidelity program picks the epoch on validation).
class NbpoTrainer {
 public:
  // INVALID_ARGUMENT for bad options; FAILED_PRECONDITION for a view with no
  // trainable positive (a user with positives and at least one negative).
  static absl::StatusOr<std::unique_ptr<NbpoTrainer>> Create(
      const data::DatasetView& train, const NbpoOptions& options);

  // Runs one epoch and returns the mean objective per term (higher is
  // better; 0 when compute_objective is false, which saves the logarithms).
  // FAILED_PRECONDITION on divergence, CANCELLED when `ctx` says so.
  absl::StatusOr<double> RunEpoch(const train::TrainContext* ctx = nullptr,
                                  bool compute_objective = true);

  int epoch() const { return epoch_; }
  const NbpoOptions& options() const { return o_; }
  const NbpoParams& params() const { return params_; }
  // Training positives that were skipped because their user has no
  // negative item to sample.
  uint64_t skipped_positives() const { return skipped_; }

  // "mf" for bpr/bpo, "nbpo-mf" for nbpo/nbpoo, from the current parameters.
  absl::StatusOr<std::unique_ptr<Model>> MakeModel() const;
  // Distribution of g (and P(true negative | unobserved)); {} for bpr/bpo.
  nlohmann::json FlipDiagnostics() const;

 private:
  NbpoTrainer(NbpoOptions o) : o_(o), rng_(o.seed) {}
  NbpoOptions o_;
  samplers::Rng rng_;
  std::unique_ptr<samplers::NegativeSampler> sampler_;
  std::vector<uint32_t> users_, items_, negs_;
  NbpoParams params_, grad_;
  double lr_ = 0.0;
  int epoch_ = 0;
  uint64_t skipped_ = 0;
};

// TrainerFn rows for core/train/registry.cc.
absl::StatusOr<train::TrainResult> TrainBpr(const data::DatasetView& train,
                                            const train::TrainSpec& spec,
                                            const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainBpo(const data::DatasetView& train,
                                            const train::TrainSpec& spec,
                                            const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainNbpo(const data::DatasetView& train,
                                             const train::TrainSpec& spec,
                                             const train::TrainContext& ctx);
absl::StatusOr<train::TrainResult> TrainNbpoo(const data::DatasetView& train,
                                              const train::TrainSpec& spec,
                                              const train::TrainContext& ctx);

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_NBPO_TRAINER_H_
