// Row-sparse optimisers for factor matrices: Adam (lazy or dense) and SGD.
//
// A RowOptimizer owns the gradient accumulator and the optimiser state of
// one row-major parameter block (rows x dim floats, e.g. MfParams'
// user_factors, or a bias vector with dim 1). Per mini-batch:
//   float* g = opt.Grad(row);  // zeroed on first touch in this step
//   ... add dL/d(row) into g ...
//   opt.Step();                // update, then forget the gradients
// Lazy mode (default) updates only the rows touched in the step (TF's
// LazyAdam: the moments of untouched rows are not decayed; bias correction
// uses the global step count), so a step costs O(touched rows x dim), which
// is what makes one epoch over millions of events affordable. Dense mode
// updates every row every step (the Rel-MF reference's tf.train.AdamOptimizer
// with full-matrix L2), O(rows x dim) per step: only for small problems.
// L2: l2 * w is added to the gradient of every updated row (lazy: touched
// rows; dense: all rows), i.e. the penalty (l2/2)|W|^2 per step.
//
// Shards: with num_shards = S, row r belongs to shard r % S, and each shard
// has its own touched set and gradient buffer, so S threads may call
// Grad(row, s) and Step(s) concurrently as long as each passes only rows of
// its own shard s (the per-row state is disjoint). Step(s) updates only
// shard s's rows; every shard must Step once per mini-batch (each shard
// counts steps for Adam's bias correction). The update of a row does not
// depend on S, so results are identical for any S.
//
// Layout: the Adam moments of a row sit next to each other (m then v, 2 x dim
// floats), so an update touches two contiguous blocks (the row and its
// moments); Step prefetches the rows a few updates ahead, since touched rows
// are scattered over tables far larger than the caches.
// No heap allocation per sample; Grad() allocates only while the touched set
// grows past its high-water mark. Not thread-safe beyond the shard rule. The
// parameter memory is borrowed and must outlive the optimiser.
#ifndef DEBIAS_CORE_MODELS_OPTIM_H_
#define DEBIAS_CORE_MODELS_OPTIM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace debias::models {

enum class OptimizerKind { kAdam, kSgd };

// Asks the kernel to back [p, p + bytes) with transparent huge pages where
// 2 MiB-aligned (Linux; a no-op elsewhere or when THP is off). Call it
// before the memory is first written: factor tables and optimiser state are
// visited at random rows, and with 4 KiB pages nearly every visit of a large
// table is a TLB miss.
void AdviseHugePages(void* p, size_t bytes);

// A zero-initialised float array; large ones are anonymous memory with
// AdviseHugePages applied before any page is touched (no zeroing pass).
class HugeFloats {
 public:
  HugeFloats() = default;
  explicit HugeFloats(size_t n);
  HugeFloats(HugeFloats&& o) noexcept : p_(o.p_), n_(o.n_), mapped_(o.mapped_) {
    o.p_ = nullptr;
    o.n_ = 0;
    o.mapped_ = false;
  }
  HugeFloats& operator=(HugeFloats&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(mapped_, o.mapped_);
    return *this;
  }
  ~HugeFloats();
  float* data() { return p_; }
  const float* data() const { return p_; }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
  bool mapped_ = false;  // mmap'd (large, Linux) rather than aligned_alloc'd
};

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdam;
  float lr = 0.01f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float l2 = 0.0f;
  bool dense = false;  // Adam/SGD over every row every step
};

// "adam" | "sgd"; INVALID_ARGUMENT "optimizer=x: ..." otherwise.
absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view s);
std::string_view OptimizerKindName(OptimizerKind k);

class RowOptimizer {
 public:
  // params: rows x dim contiguous floats, row-major. num_shards >= 1.
  RowOptimizer(float* params, int64_t rows, int dim, const OptimizerOptions& opts,
               int num_shards = 1);

  // Gradient accumulator of `row` for the current step (dim floats).
  // Precondition: row < rows and row % num_shards == shard.
  float* Grad(uint32_t row, int shard = 0) {
    Shard& sh = shards_[shard];
    int32_t& s = slot_[row];
    if (s < 0) {
      s = static_cast<int32_t>(sh.touched.size());
      sh.touched.push_back(row);
      if (sh.grad.size() < sh.touched.size() * dim_) {
        sh.grad.resize(std::max(sh.touched.size() * dim_, 2 * sh.grad.size()));
      }
      std::fill_n(sh.grad.data() + size_t{static_cast<uint32_t>(s)} * dim_, dim_, 0.0f);
    }
    return sh.grad.data() + size_t{static_cast<uint32_t>(s)} * dim_;
  }

  // Applies one update to the shard's rows and clears its gradients.
  void Step(int shard = 0);

  // Applies the coming Step's update to `row` now, from its complete
  // gradient for this step (dim floats), exactly as Step would. For a row
  // that gets no other gradient in this step and whose parameters nothing
  // reads before Step: the caller saves the second visit of the row (the
  // trainers use it for rows that occur once in a mini-batch, while the row
  // is still in cache). Precondition: lazy mode (!options().dense), row not
  // touched through Grad() in this step, row % num_shards == shard.
  void UpdateNow(uint32_t row, const float* grad, int shard = 0) {
    const Shard& sh = shards_[shard];
    const size_t r = row, d = static_cast<size_t>(dim_);
    UpdateRow(params_ + r * d, grad, mv_.empty() ? nullptr : mv_.data() + r * 2 * d,
              sh.next_c1, sh.next_c2);
  }
  // Hints the cache about the row's parameters and optimiser state.
  void Prefetch(uint32_t row) const;
  // Every shard's Step, in order (single-threaded use).
  void StepAll() {
    for (int s = 0; s < num_shards(); ++s) Step(s);
  }
  // Drops the accumulated gradients of every shard without updating.
  void Discard();

  void set_lr(float lr) { opts_.lr = lr; }
  const OptimizerOptions& options() const { return opts_; }
  int64_t steps() const { return shards_[0].t; }
  size_t touched() const {
    size_t n = 0;
    for (const Shard& sh : shards_) n += sh.touched.size();
    return n;
  }
  int num_shards() const { return static_cast<int>(shards_.size()); }

 private:
  struct Shard {
    int64_t t = 0;                  // steps taken
    float next_c1 = 1, next_c2 = 1;  // Adam bias corrections of step t + 1
    std::vector<uint32_t> touched;  // rows touched this step, in touch order
    std::vector<float> grad;        // touched x dim
  };
  void UpdateRow(float* w, const float* g, float* mv, float c1, float c2) const;
  void DiscardShard(Shard& sh);
  void SetCorrections(Shard& sh) const;

  float* params_;
  int64_t rows_;
  int dim_;
  OptimizerOptions opts_;
  HugeFloats mv_;                  // Adam moments, rows x (m[dim], v[dim])
  std::vector<int32_t> slot_;      // row -> slot in its shard's grad, -1 untouched
  std::vector<float> zero_;        // dim zeros (dense mode's untouched rows)
  std::vector<Shard> shards_;
};

}  // namespace debias::models

#endif  // DEBIAS_CORE_MODELS_OPTIM_H_
