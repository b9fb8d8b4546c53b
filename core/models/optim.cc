#include "core/models/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "Eigen/Core"
#include "absl/strings/str_cat.h"

namespace debias::models {

absl::StatusOr<OptimizerKind> ParseOptimizerKind(std::string_view s) {
  if (s == "adam") return OptimizerKind::kAdam;
  if (s == "sgd") return OptimizerKind::kSgd;
  return absl::InvalidArgumentError(absl::StrCat(
      "optimizer=", std::string(s), ": optimizer must be one of adam, sgd"));
}

std::string_view OptimizerKindName(OptimizerKind k) {
  return k == OptimizerKind::kAdam ? "adam" : "sgd";
}

void AdviseHugePages(void* p, size_t bytes) {
#ifdef __linux__
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

HugeFloats::HugeFloats(size_t n) : n_(n) {
  if (n == 0) return;
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t bytes = n * sizeof(float);
#ifdef __linux__
  if (bytes >= kHuge) {
    // Anonymous pages come zeroed from the kernel, so there is no filling
    // pass; a page is faulted in (as a huge page) at its first use.
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    p_ = static_cast<float*>(p);
    mapped_ = true;
    AdviseHugePages(p_, bytes);
    return;
  }
#endif
  const size_t align = 64;
  p_ = static_cast<float*>(std::aligned_alloc(align, (bytes + align - 1) / align * align));
  if (p_ == nullptr) throw std::bad_alloc();
  std::fill_n(p_, n, 0.0f);
}

HugeFloats::~HugeFloats() {
#ifdef __linux__
  if (mapped_) {
    munmap(p_, n_ * sizeof(float));
    return;
  }
#endif
  std::free(p_);
}

RowOptimizer::RowOptimizer(float* params, int64_t rows, int dim,
                           const OptimizerOptions& opts, int num_shards)
    : params_(params), rows_(rows), dim_(dim), opts_(opts),
      slot_(rows, -1), zero_(dim, 0.0f),
      shards_(static_cast<size_t>(std::max(1, num_shards))) {
  if (opts_.kind == OptimizerKind::kAdam) {
    mv_ = HugeFloats(static_cast<size_t>(rows) * 2 * dim);
  }
  for (Shard& sh : shards_) {
    SetCorrections(sh);
    sh.touched.reserve(1024);
    sh.grad.reserve(1024 * static_cast<size_t>(dim));
  }
}

// The same operations, in the same order, as the scalar loop
//   gk = g + l2 w; m = b1 m + (1-b1) gk; v = b2 v + ((1-b2) gk) gk;
//   w -= (lr/c1) m / (sqrt(v / c2) + eps)
// evaluated by Eigen in SIMD packets (IEEE sqrt and division are exact in
// both), so results do not depend on vectorisation.
void RowOptimizer::UpdateRow(float* w, const float* g, float* mv, float c1,
                             float c2) const {
  using Arr = Eigen::Map<Eigen::ArrayXf>;
  using CArr = Eigen::Map<const Eigen::ArrayXf>;
  Arr W(w, dim_);
  CArr G(g, dim_);
  const float lr = opts_.lr, l2 = opts_.l2;
  if (opts_.kind == OptimizerKind::kSgd) {
    W -= lr * (G + l2 * W);
    return;
  }
  Arr M(mv, dim_), V(mv + dim_, dim_);
  const float b1 = opts_.beta1, b2 = opts_.beta2, eps = opts_.eps;
  const float a = lr / c1, inv_c2 = 1.0f / c2;
  M = b1 * M + (1 - b1) * (G + l2 * W);
  V = b2 * V + ((1 - b2) * (G + l2 * W)) * (G + l2 * W);
  W -= (a * M) / ((V * inv_c2).sqrt() + eps);
}

void RowOptimizer::Prefetch(uint32_t row) const {
  constexpr int kFloatsPerLine = 16;
  const float* w = params_ + static_cast<size_t>(row) * dim_;
  for (int k = 0; k < dim_; k += kFloatsPerLine) __builtin_prefetch(w + k, 1);
  if (!mv_.empty()) {
    const float* mv = mv_.data() + static_cast<size_t>(row) * 2 * dim_;
    for (int k = 0; k < 2 * dim_; k += kFloatsPerLine) __builtin_prefetch(mv + k, 1);
  }
}

void RowOptimizer::SetCorrections(Shard& sh) const {
  if (opts_.kind != OptimizerKind::kAdam) return;
  sh.next_c1 = 1.0f - std::pow(opts_.beta1, static_cast<float>(sh.t + 1));
  sh.next_c2 = 1.0f - std::pow(opts_.beta2, static_cast<float>(sh.t + 1));
}

void RowOptimizer::Step(int shard) {
  Shard& sh = shards_[shard];
  const float c1 = sh.next_c1, c2 = sh.next_c2;
  ++sh.t;
  SetCorrections(sh);
  const bool adam = opts_.kind == OptimizerKind::kAdam;
  const size_t d = static_cast<size_t>(dim_);
  if (opts_.dense) {
    const int64_t stride = num_shards();
    for (int64_t r = shard; r < rows_; r += stride) {
      const int32_t s = slot_[r];
      const float* g = s >= 0 ? sh.grad.data() + size_t{static_cast<uint32_t>(s)} * d
                              : zero_.data();
      UpdateRow(params_ + static_cast<size_t>(r) * d, g,
                adam ? mv_.data() + static_cast<size_t>(r) * 2 * d : nullptr, c1, c2);
    }
  } else {
    constexpr size_t kAhead = 8;
    const size_t n = sh.touched.size();
    for (size_t s = 0; s < std::min(n, kAhead); ++s) Prefetch(sh.touched[s]);
    for (size_t s = 0; s < n; ++s) {
      if (s + kAhead < n) Prefetch(sh.touched[s + kAhead]);
      const size_t r = sh.touched[s];
      UpdateRow(params_ + r * d, sh.grad.data() + s * d,
                adam ? mv_.data() + r * 2 * d : nullptr, c1, c2);
    }
  }
  DiscardShard(sh);
}

void RowOptimizer::DiscardShard(Shard& sh) {
  for (uint32_t r : sh.touched) slot_[r] = -1;
  sh.touched.clear();
}

void RowOptimizer::Discard() {
  for (Shard& sh : shards_) DiscardShard(sh);
}

}  // namespace debias::models
