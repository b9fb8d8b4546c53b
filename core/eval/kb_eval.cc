#include "core/eval/kb_eval.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace debias::eval {

absl::StatusOr<KbEvalResult> EvaluateKbScores(std::span<const uint32_t> users,
                                              std::span<const uint32_t> items,
                                              std::span<const float> labels,
                                              std::span<const float> scores,
                                              const KbEvalOptions& options) {
  const size_t n = users.size();
  if (n == 0 || items.size() != n || labels.size() != n || scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "evaluation: users, items, labels, scores have lengths ", n, ", ",
        items.size(), ", ", labels.size(), ", ", scores.size(),
        ": must be equal and >= 1"));
  }
  for (int k : options.ks) {
    if (k < 1 || k > 1000) {
      return absl::InvalidArgumentError(
          absl::StrCat("k=", k, ": k must be in [1, 1000]"));
    }
  }
  for (size_t e = 0; e < n; ++e) {
    if (labels[e] != 0.0f && labels[e] != 1.0f) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", e, "]=", labels[e], ": must be 0 or 1"));
    }
    if (!std::isfinite(scores[e])) {
      return absl::InvalidArgumentError(
          absl::StrCat("scores[", e, "]: must be finite"));
    }
  }
  KbEvalResult r;
  // AUC by ranks with average ranks for ties (= sklearn roc_auc_score).
  {
    std::vector<size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(),
              [&](size_t a, size_t b) { return scores[a] < scores[b]; });
    double rank_sum_pos = 0.0, npos = 0.0;
    for (size_t s = 0; s < n;) {
      size_t t = s;
      while (t < n && scores[idx[t]] == scores[idx[s]]) ++t;
      const double avg_rank = 0.5 * (s + 1 + t);  // ranks s+1 .. t
      for (size_t k = s; k < t; ++k) {
        if (labels[idx[k]] > 0) {
          rank_sum_pos += avg_rank;
          npos += 1;
        }
      }
      s = t;
    }
    const double nneg = n - npos;
    r.auc = (npos > 0 && nneg > 0)
                ? (rank_sum_pos - npos * (npos + 1) / 2) / (npos * nneg)
                : 0.5;
  }
  // Group by user.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (users[a] != users[b]) return users[a] < users[b];
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    return items[a] < items[b];
  });
  std::map<int, double> ndcg_sum, p_sum, r_sum, f1_sum;
  std::map<int, size_t> ndcg_cnt;
  size_t nusers = 0;
  for (size_t s = 0; s < n;) {
    size_t t = s;
    while (t < n && users[order[t]] == users[order[s]]) ++t;
    ++nusers;
    double pos = 0;
    for (size_t k = s; k < t; ++k) pos += labels[order[k]];
    for (int k : options.ks) {
      double dcg = 0, idcg = 0, hits = 0;
      const size_t len = t - s;
      for (size_t q = 0; q < std::min<size_t>(k, len); ++q) {
        const double rel = labels[order[s + q]];
        dcg += rel / std::log2(q + 2.0);
        hits += rel;
        if (q < pos) idcg += 1.0 / std::log2(q + 2.0);
      }
      if (pos > 0) {
        ndcg_sum[k] += dcg / idcg;
        ++ndcg_cnt[k];
      } else if (options.ndcg_empty_is_one) {
        ndcg_sum[k] += 1.0;
        ++ndcg_cnt[k];
      }
      const double prec = hits / k;
      const double rec = hits / std::max(1.0, pos);
      p_sum[k] += prec;
      r_sum[k] += rec;
      f1_sum[k] += (prec + rec) > 0 ? 2 * prec * rec / (prec + rec) : 0.0;
    }
    s = t;
  }
  r.users = nusers;
  for (int k : options.ks) {
    r.ndcg[k] = ndcg_cnt[k] ? ndcg_sum[k] / ndcg_cnt[k] : 0.0;
    r.precision[k] = p_sum[k] / nusers;
    r.recall[k] = r_sum[k] / nusers;
    if (options.f1_from_means) {
      const double p = r.precision[k], q = r.recall[k];
      r.f1[k] = (p + q) > 0 ? 2 * p * q / (p + q) : 0.0;
    } else {
      r.f1[k] = f1_sum[k] / nusers;
    }
  }
  return r;
}

absl::StatusOr<KbEvalResult> EvaluateKb(const model::Model& model,
                                        std::span<const uint32_t> users,
                                        std::span<const uint32_t> items,
                                        std::span<const float> labels,
                                        const KbEvalOptions& options) {
  if (items.size() != users.size()) {
    return absl::InvalidArgumentError("evaluation: users and items differ in length");
  }
  std::vector<float> scores(users.size());
  for (size_t e = 0; e < users.size(); ++e) {
    if (users[e] >= model.num_users() || items[e] >= model.num_items()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pair ", e, ": user ", users[e], " / item ", items[e],
          " out of the model's range [0, ", model.num_users(), ") / [0, ",
          model.num_items(), ")"));
    }
    model.ScoreItems(users[e], items.subspan(e, 1), std::span<float>(&scores[e], 1));
  }
  return EvaluateKbScores(users, items, labels, scores, options);
}

}  // namespace debias::eval
