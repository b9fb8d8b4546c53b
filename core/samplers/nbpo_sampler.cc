#include "core/samplers/nbpo_sampler.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace debias::samplers {
namespace {

double Sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}
double Softplus(double z) {
  return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
}

// Quantisation levels of the table: an entry q in [0, kLevels] says w is in
// [q / kLevels, (q + 1) / kLevels).
constexpr double kLevels = 254.0;

class NbpoSampler final : public NegativeSampler {
 public:
  NbpoSampler(std::shared_ptr<const PositiveIndex> pos, NbpoFactors f,
              uint64_t max_table_entries)
      : NegativeSampler(std::move(pos)), f_(std::move(f)) {
    const uint64_t entries = uint64_t{num_users()} * num_items();
    if (entries == 0 || entries > max_table_entries) return;
    // One byte per pair: q = floor(w * kLevels), the user's positives 0.
    // Weights come from one matrix-vector product per user instead of two
    // dot products per pair. The row mean of w (positives 0) is the user's
    // exact acceptance rate.
    table_.resize(entries);
    acceptance_.resize(num_users());
    Eigen::VectorXf x(num_items()), gamma(num_items());
    std::vector<double> w(num_items());
    for (uint32_t u = 0; u < num_users(); ++u) {
      x.noalias() = f_.item_factors * f_.user_factors.row(u).transpose();
      gamma.noalias() = f_.item_flip * f_.user_flip.row(u).transpose();
      for (uint32_t i = 0; i < num_items(); ++i) {
        w[i] = Sigmoid(Softplus(-gamma[i]) - x[i]);
      }
      for (uint32_t i : positives().Of(u)) w[i] = 0.0;
      uint8_t* row = table_.data() + uint64_t{u} * num_items();
      double sum = 0.0;
      for (uint32_t i = 0; i < num_items(); ++i) {
        row[i] = static_cast<uint8_t>(std::clamp(std::floor(w[i] * kLevels), 0.0, kLevels));
        sum += w[i];
      }
      acceptance_[u] = static_cast<float>(sum / num_items());
    }
  }
  std::string_view name() const override { return "nbpo"; }
  double Weight(uint32_t user, uint32_t item) const override {
    return NbpoTrueNegativeProbability(f_, user, item);
  }

 protected:
  uint32_t Propose(uint32_t, Rng& rng) const override {
    return static_cast<uint32_t>(UniformBelow(rng, num_items()));
  }
  bool Accept(uint32_t user, uint32_t item, Rng& rng) const override {
    return UniformUnit(rng) < Weight(user, item);
  }
  double AcceptanceHint(uint32_t user) const override {
    if (!acceptance_.empty()) return acceptance_[user];
    return 1.0 - static_cast<double>(positives().Of(user).size()) / num_items();
  }
  absl::Status Draw(uint32_t user, std::span<uint32_t> out,
                    Rng& rng) const override {
    if (table_.empty()) return NegativeSampler::Draw(user, out, rng);
    return DrawFromTable(user, out, rng);
  }

 private:
  // Thinning of a uniform proposal: item i is kept iff coin c < w(u, i).
  // The table decides from its byte q alone unless c falls in w's band
  // [q, q + 1) / kLevels (probability 1 / kLevels per proposal), where the
  // exact w is computed from the factors (and a positive is rejected). So
  // acceptance is exactly w while a row of the table is num_items bytes,
  // small enough to stay in cache. One engine draw per proposal: its high
  // 32 bits pick the item (Lemire's bounded integer, unbiased), its low 32
  // bits are the coin (c = bits / 2^32, so acceptance is w to within 2^-32).
  // Proposals are made in chunks and their table loads issued together: a
  // random user's row is cold, and independent loads overlap where a
  // propose-load-branch loop waits for each miss in turn. Accepted proposals
  // are taken in order and a chunk's unused tail is dropped, which keeps the
  // draws i.i.d. (proposals are independent of each other).
  absl::Status DrawFromTable(uint32_t user, std::span<uint32_t> out,
                             Rng& rng) const {
    const uint8_t* row = table_.data() + uint64_t{user} * num_items();
    const uint64_t n = num_items();
    const uint32_t threshold = static_cast<uint32_t>((uint64_t{1} << 32) % n);
    const double inv_acc = 1.0 / std::max<double>(acceptance_[user], kMinAcceptance);
    constexpr size_t kChunk = 32;
    uint32_t items[kChunk];
    uint64_t coins[kChunk];  // coin * kLevels in 32.32 fixed point
    uint8_t q[kChunk];
    uint32_t kept[kChunk];
    size_t k = 0;
    int tries = 0;
    while (k < out.size()) {
      // About the proposals the remaining draws need on average: engine
      // draws for unused proposals are wasted, a short extra chunk is cheap.
      const size_t m = std::min<size_t>(
          kChunk, static_cast<size_t>((out.size() - k) * inv_acc) + 1);
      for (size_t b = 0; b < m; ++b) {
        uint64_t r = rng();
        uint64_t prod = (r >> 32) * n;
        while (static_cast<uint32_t>(prod) < threshold) {  // rare redraw
          r = (r & 0xFFFFFFFFu) | (rng() & ~uint64_t{0xFFFFFFFFu});
          prod = (r >> 32) * n;
        }
        items[b] = static_cast<uint32_t>(prod >> 32);
        coins[b] = (r & 0xFFFFFFFFu) * static_cast<uint64_t>(kLevels);
        // Start the load now, so it overlaps the engine draws that follow.
        __builtin_prefetch(row + items[b]);
      }
      for (size_t b = 0; b < m; ++b) q[b] = row[items[b]];
      // Branch-free compaction of the kept proposals (a kept/rejected branch
      // mispredicts on about every third proposal); only a coin inside its
      // weight's band takes the exact path.
      size_t j = 0, last = m;
      for (size_t b = 0; b < m; ++b) {
        const uint32_t band = static_cast<uint32_t>(coins[b] >> 32);
        bool keep = band < q[b];
        if (band == q[b]) [[unlikely]] {
          keep = ExactAccept(user, items[b], static_cast<double>(coins[b]) * 0x1.0p-32, q[b]);
        }
        kept[j] = items[b];
        j += keep;
        last = keep ? b : last;
      }
      const size_t take = std::min(j, out.size() - k);
      std::copy_n(kept, take, out.begin() + k);
      k += take;
      // Consecutive rejections since the last kept proposal.
      tries = last == m ? tries + static_cast<int>(m) : static_cast<int>(m - 1 - last);
      if (k < out.size() && tries >= kMaxTriesPerDraw) {
        return SampleFromComplement(user, out.subspan(k), rng);
      }
    }
    return absl::OkStatus();
  }

  // c_scaled = coin * kLevels, in [q, q + 1). The exact weight is clamped to
  // the band its byte was built from, so float rounding between the table's
  // matrix-vector product and this dot product cannot move mass across bands.
  bool ExactAccept(uint32_t user, uint32_t item, double c_scaled, uint8_t q) const {
    if (positives().Contains(user, item)) return false;
    const double w = std::clamp(NbpoTrueNegativeProbability(f_, user, item) * kLevels,
                                static_cast<double>(q), q + 1.0);
    return c_scaled < w;
  }

  NbpoFactors f_;
  std::vector<uint8_t> table_;  // users x items, row-major; empty = on the fly
  std::vector<float> acceptance_;  // per user: mean w over non-positives / items
};

bool AllFinite(const FactorMatrix& m) { return m.array().isFinite().all(); }

}  // namespace

double NbpoTrueNegativeProbability(const NbpoFactors& f, uint32_t user,
                                   uint32_t item) {
  const double x = f.user_factors.row(user).dot(f.item_factors.row(item));
  const double gamma = f.user_flip.row(user).dot(f.item_flip.row(item));
  // (1-r)/((1-r)+rg) = 1/(1 + e^x g) = sigma(-x - log g), log g = -softplus(-gamma)
  return Sigmoid(Softplus(-gamma) - x);
}

absl::Status ValidateNbpoFactorShapes(const NbpoFactors& f, const std::string& who) {
  if (f.user_factors.cols() != f.item_factors.cols() ||
      f.user_flip.cols() != f.item_flip.cols() ||
      f.user_factors.rows() != f.user_flip.rows() ||
      f.item_factors.rows() != f.item_flip.rows() ||
      f.user_factors.cols() == 0 || f.user_flip.cols() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        who, ": factor shapes disagree: U ", f.user_factors.rows(), "x",
        f.user_factors.cols(), ", V ", f.item_factors.rows(), "x",
        f.item_factors.cols(), ", P ", f.user_flip.rows(), "x",
        f.user_flip.cols(), ", Q ", f.item_flip.rows(), "x",
        f.item_flip.cols()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NegativeSampler>> MakeNbpoSampler(
    const data::DatasetView& view, NbpoFactors f, uint64_t max_table_entries) {
  if (absl::Status s = ValidateNbpoFactorShapes(f, "nbpo sampler"); !s.ok()) return s;
  if (!AllFinite(f.user_factors) || !AllFinite(f.item_factors) ||
      !AllFinite(f.user_flip) || !AllFinite(f.item_flip)) {
    return absl::InvalidArgumentError("nbpo sampler: factors hold NaN or inf");
  }
  if (static_cast<size_t>(f.user_factors.rows()) != view.num_users() ||
      static_cast<size_t>(f.item_factors.rows()) != view.num_items()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nbpo sampler: the model has ", f.user_factors.rows(), " users and ",
        f.item_factors.rows(), " items but the dataset view has ",
        view.num_users(), " users and ", view.num_items(),
        " items; train the model on this dataset version"));
  }
  if (view.num_items() == 0) {
    return absl::FailedPreconditionError("nbpo sampler: no items");
  }
  return std::make_unique<NbpoSampler>(BuildPositiveIndex(view), std::move(f),
                                       max_table_entries);
}

}  // namespace debias::samplers
