// The Dual Learning Algorithm's two losses (Ai et al., "Unbiased Learning to
// Rank with Unbiased Propensity Estimation", SIGIR 2018; ULTRA `dla.py`),
// their gradients, and the held-out click likelihood used to stop training.
//
// A batch is n lists x K slots, row-major (see position_lists.h): ranker
// scores s, clicks c in {0, 1}, and a mask (1 = a document is shown in that
// slot). The propensity model is one free logit g_i per position i = 1..K.
//
//  - Ranker loss, with w_i = softmax(g)_1 / softmax(g)_i = exp(g_1 - g_i):
//      L_rank = sum_q sum_i c'_qi (-log softmax(s_q)_i) / sum_q sum_i c'_qi,
//      c'_qi = (c_qi + delta) w_i.
//  - Dual propensity loss, with r_qi = softmax(s_q)_1 / softmax(s_q)_i =
//    exp(s_q1 - s_qi) from the current ranker (treated as constants):
//      L_exam = sum_q sum_i a_qi (-log softmax(g)_i) / sum_q sum_i a_qi,
//      a_qi = (c_qi + delta) r_qi.
// Softmaxes run over the list's shown slots only. The ranker is updated only
// by dL_rank/ds and the propensity model only by dL_exam/dg. With g uniform,
// L_rank is the click softmax cross-entropy.
//
// Position propensities (examination relative to position 1) are
// exp(g_i - g_1) = 1 / w_i.
// Thread safety: pure functions.
#ifndef DEBIAS_CORE_PROPENSITY_POSITION_DLA_H_
#define DEBIAS_CORE_PROPENSITY_POSITION_DLA_H_

#include <cstdint>
#include <span>
#include <vector>

namespace debias::propensity {

// One mini-batch in slot layout; every span has num_lists * num_positions
// entries (checked by the callers that build it).
struct SlotBatch {
  int num_lists = 0;
  int num_positions = 0;
  std::span<const float> scores;
  std::span<const float> clicks;
  std::span<const uint8_t> mask;
};

// ULTRA's smoothing: keeps both losses finite for lists without clicks.
inline constexpr double kDlaDelta = 1e-7;

// w_i = exp(g_1 - g_i), i = 1..K.
std::vector<double> DlaWeights(std::span<const double> g);
// exp(g_i - g_1), i = 1..K: examination relative to position 1.
std::vector<double> DlaPropensities(std::span<const double> g);
// Logits whose propensities are `propensities` (each > 0): g_i = log p_i.
std::vector<double> LogitsFromPropensities(std::span<const double> propensities);

// L_rank for per-position weights `w` (size K, >= 0). When grad_scores is
// non-empty (size n * K) it receives dL_rank/ds (0 on masked-out slots).
// Returns 0 (and zero gradients) when the batch has no weight at all.
double DlaRankerLoss(const SlotBatch& batch, std::span<const double> w,
                     double delta, std::span<float> grad_scores);

// L_exam for logits `g` (size K); grad_g (size K, or empty) receives
// dL_exam/dg. r_qi uses the list's first shown slot as the reference when
// position 1 is not shown; exponents are clamped to [-50, 50] so a
// diverging ranker cannot produce infinities. `max_ratio` > 0 caps r_qi.
double DlaPropensityLoss(const SlotBatch& batch, std::span<const double> g,
                         double delta, double max_ratio,
                         std::span<double> grad_g);

// Held-out criterion: sum over clicks of log P(click falls at slot i | the
// list's clicks), P proportional to exp(g_i + s_qi) over shown slots (the
// PBM with examination softmax(g) and attractiveness softmax(s), conditioned
// on where the clicks fall). *num_clicks receives the number of clicks.
double DlaClickLogLikelihood(const SlotBatch& batch, std::span<const double> g,
                             double* num_clicks);

}  // namespace debias::propensity

#endif  // DEBIAS_CORE_PROPENSITY_POSITION_DLA_H_
