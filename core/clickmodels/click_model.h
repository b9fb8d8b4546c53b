// Click models: simulate clicks on a ranked list and score observed clicks.
//
// Every model factors a click at rank r (1-based) into examination E_r and
// attractiveness A_r: P(C_r = 1) = P(E_r = 1) * a_r, where a_r = P(A_r = 1)
// is the attractiveness of the document shown at rank r. For graded labels
// y in {0..ymax} the attractiveness is the ERR-style click noise of Ai et
// al. (SIGIR 2018, `click_models.py`):
//   click(y) = eps + (pos - eps) * (2^y - 1) / (2^ymax - 1),
// so eps = 0.1, pos = 1, ymax = 4 gives [0.1, 0.16, 0.28, 0.52, 1.0].
// Labels are truncated to integers (as Python's int()), negative labels count
// as 0 and labels above ymax as ymax.
//
// The three models (pbm.h, ubm.h, cascade.h) differ only in how E_r is
// drawn; this header holds their common interface and the factory.
//
// Thread safety: a ClickModel is immutable after Create(); share it freely.
// The random generator is the caller's and must not be shared across
// threads. Everything random is drawn from that generator only, so the same
// generator state gives the same clicks.
#ifndef DEBIAS_CORE_CLICKMODELS_CLICK_MODEL_H_
#define DEBIAS_CORE_CLICKMODELS_CLICK_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace debias::clickmodels {

// The generator every simulator takes.
using Rng = std::mt19937_64;

// Uniform double in [0, 1) from the top 53 bits of one draw. Used instead of
// std::uniform_real_distribution, whose output is implementation-defined, so
// simulated clicks are the same with any standard library.
inline double Uniform01(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Examination probabilities of the position-based model at eta = 1 for ranks
// 1..10 (Joachims et al. 2005 eye-tracking, as used by Ai et al. 2018 and
// ULTRA `click_models.py`); ranks > 10 use the last value.
inline constexpr std::array<double, 10> kPbmBaseExamination = {
    0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06};

// Longest list any function here accepts or returns.
inline constexpr int kMaxRanks = 100000;

enum class ClickModelKind { kPbm, kUbm, kCascade };

// "pbm", "ubm", "cascade" (also "position_biased_model",
// "user_browsing_model", "cascade_model", ULTRA's JSON names) -> kind;
// otherwise INVALID_ARGUMENT listing the known names.
absl::StatusOr<ClickModelKind> ParseClickModelKind(std::string_view name);
// The short name: "pbm", "ubm" or "cascade".
std::string ClickModelKindName(ClickModelKind kind);

struct ClickModelOptions {
  ClickModelKind kind = ClickModelKind::kPbm;
  // Severity of position bias; the examination tables are raised to eta.
  // In [0, 10]; 0 removes position bias (every rank examined). The cascade
  // model ignores it (its examination is the scan itself).
  double eta = 1.0;
  // Click probability of an examined label-0 document, in [0, 1].
  double eps = 0.1;
  // Click probability of an examined label-ymax document, in [eps, 1].
  double pos = 1.0;
  // Highest graded label, in [1, 30].
  int ymax = 4;
  // Cascade only: probability that the user goes on scanning after a click,
  // in [0, 1]; 0 is the classic cascade model (stop after the first click).
  double continuation = 0.0;
};

// INVALID_ARGUMENT naming the first field out of range, or OK.
absl::Status ValidateClickModelOptions(const ClickModelOptions& options);

// click(y) for y = 0..ymax (size ymax + 1). INVALID_ARGUMENT if eps, pos or
// ymax are out of range (see ClickModelOptions).
absl::StatusOr<std::vector<double>> ClickProbabilities(double eps, double pos,
                                                       int ymax);

// PBM examination e_r^eta for ranks 1..num_ranks (index 0 = rank 1).
// INVALID_ARGUMENT unless eta in [0, 10] and num_ranks in [0, 100000].
absl::StatusOr<std::vector<double>> PbmExamination(double eta, int num_ranks);

// Oracle inverse propensities relative to rank 1, exam(1) / exam(r), for
// ranks 1..num_ranks under the PBM: at eta = 1,
// [1, 1.115, 1.417, 2.0, 2.429, 3.4, 6.18, 6.8, 8.5, 11.33]. Same errors as
// PbmExamination.
absl::StatusOr<std::vector<double>> PbmOracleInversePropensities(double eta,
                                                                 int num_ranks);

class ClickModel {
 public:
  // Builds the model `options.kind` names. INVALID_ARGUMENT for options out
  // of range.
  static absl::StatusOr<std::unique_ptr<ClickModel>> Create(
      const ClickModelOptions& options);

  virtual ~ClickModel() = default;

  const ClickModelOptions& options() const { return options_; }
  ClickModelKind kind() const { return options_.kind; }
  std::string name() const { return ClickModelKindName(options_.kind); }

  // click(y) for y = 0..ymax.
  const std::vector<double>& click_probabilities() const { return click_prob_; }
  // Attractiveness of a graded label (truncated, clamped to [0, ymax]; a
  // non-finite label counts as 0).
  double Attractiveness(float label) const;

  // Simulates clicks on a list whose rank r document has graded label
  // labels[r - 1]; clicks is resized to labels.size() and holds 0/1.
  // INVALID_ARGUMENT (naming the index) for a non-finite label. Draws only
  // from `rng`.
  absl::Status Simulate(std::span<const float> labels, Rng& rng,
                        std::vector<uint8_t>* clicks) const;

  // As Simulate, from per-rank attractiveness probabilities in [0, 1].
  absl::Status SimulateFromAttractiveness(std::span<const double> attract,
                                          Rng& rng,
                                          std::vector<uint8_t>* clicks) const;

  // Natural log-likelihood of the observed click vector (0/1 per rank) for a
  // list with per-rank attractiveness `attract`. -infinity when the clicks
  // are impossible under the model (e.g. two clicks in a cascade without
  // continuation). INVALID_ARGUMENT if the sizes differ, a probability is
  // outside [0, 1] or not finite, or a click is not 0/1.
  absl::StatusOr<double> LogLikelihood(std::span<const double> attract,
                                       std::span<const uint8_t> clicks) const;

  // Marginal probabilities, per rank, that the document at that rank is
  // examined (*exam) and clicked (*click), given per-rank attractiveness.
  // Either output may be null. Same errors as LogLikelihood for `attract`.
  absl::Status Marginals(std::span<const double> attract,
                         std::vector<double>* exam,
                         std::vector<double>* click) const;

  // The model's examination curve: P(E_r = 1 | no click above rank r) for
  // ranks 1..num_ranks. PBM: e_r^eta (no dependence on clicks at all). UBM:
  // the table entry for "no earlier click". Cascade: 1 at every rank.
  // num_ranks is clamped to [0, 100000].
  virtual std::vector<double> ExaminationCurve(int num_ranks) const = 0;

  // ExaminationCurve(1) / ExaminationCurve(r) for r = 1..num_ranks: the
  // inverse propensities relative to rank 1 that an oracle would use.
  std::vector<double> OracleInversePropensities(int num_ranks) const;

 protected:
  ClickModel(const ClickModelOptions& options, std::vector<double> click_prob)
      : options_(options), click_prob_(std::move(click_prob)) {}

  // Inputs are validated by the public wrappers; n may be 0.
  virtual void DoSimulate(const double* attract, size_t n, Rng& rng,
                          uint8_t* clicks) const = 0;
  virtual double DoLogLikelihood(const double* attract, const uint8_t* clicks,
                                 size_t n) const = 0;
  virtual void DoMarginals(const double* attract, size_t n, double* exam,
                           double* click) const = 0;

 private:
  ClickModelOptions options_;
  std::vector<double> click_prob_;
};

}  // namespace debias::clickmodels

#endif  // DEBIAS_CORE_CLICKMODELS_CLICK_MODEL_H_
