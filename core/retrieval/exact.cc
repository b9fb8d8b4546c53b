#include "core/retrieval/exact.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace debias::retrieval {
namespace {

constexpr int kB = ItemBlocks::kBlock;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The AVX2+FMA kernels are compiled for that target alone and chosen at run
// time, so the binary still runs (with the portable kernels) on CPUs
// without them. Both accumulate from the bias over dimensions in order,
// so every kernel of one kind gives the same bits as ItemBlocks::Score.
const bool kHaveAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");

// The largest of 8 lanes.
__attribute__((target("avx2,fma"))) float MaxLane(__m256 m) {
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

// out[t] = bias[t] + sum_j q[j] * blk[j][t] for the kB items of a block;
// returns the largest of them (the heap skips a block below its threshold).
__attribute__((target("avx2,fma"))) float ScoreBlockAvx2(const float* blk, const float* bias,
                                                          int dim, const float* q, float* out) {
  __m256 a[kB / 8];
  for (int i = 0; i < kB / 8; ++i) a[i] = _mm256_loadu_ps(bias + 8 * i);
  for (int j = 0; j < dim; ++j) {
    const __m256 qj = _mm256_set1_ps(q[j]);
    const float* c = blk + j * kB;
    for (int i = 0; i < kB / 8; ++i) a[i] = _mm256_fmadd_ps(_mm256_loadu_ps(c + 8 * i), qj, a[i]);
  }
  __m256 m = a[0];
  for (int i = 0; i < kB / 8; ++i) {
    _mm256_storeu_ps(out + 8 * i, a[i]);
    m = _mm256_max_ps(m, a[i]);
  }
  return MaxLane(m);
}

float ScoreBlockPortable(const float* blk, const float* bias, int dim, const float* q,
                         float* out) {
  std::copy(bias, bias + kB, out);
  for (int j = 0; j < dim; ++j) {
    const float qj = q[j];
    const float* c = blk + j * kB;
    for (int t = 0; t < kB; ++t) out[t] += c[t] * qj;
  }
  return *std::max_element(out, out + kB);
}

// Four queries (rows of q, stride ldq) against one block: out is 4 x kB.
constexpr int kGroup = 4;
__attribute__((target("avx2,fma"))) void ScoreBlock4Avx2(const float* blk, const float* bias,
                                                          int dim, const float* q, int ldq,
                                                          float* out, float* max) {
  __m256 m[kGroup];
  for (int g = 0; g < kGroup; ++g) m[g] = _mm256_set1_ps(kNegInf);
  for (int s = 0; s < kB; s += 16) {
    __m256 a[kGroup][2];
    const __m256 b0 = _mm256_loadu_ps(bias + s), b1 = _mm256_loadu_ps(bias + s + 8);
    for (int g = 0; g < kGroup; ++g) a[g][0] = b0, a[g][1] = b1;
    for (int j = 0; j < dim; ++j) {
      const __m256 c0 = _mm256_loadu_ps(blk + j * kB + s);
      const __m256 c1 = _mm256_loadu_ps(blk + j * kB + s + 8);
      for (int g = 0; g < kGroup; ++g) {
        const __m256 qg = _mm256_set1_ps(q[g * ldq + j]);
        a[g][0] = _mm256_fmadd_ps(c0, qg, a[g][0]);
        a[g][1] = _mm256_fmadd_ps(c1, qg, a[g][1]);
      }
    }
    for (int g = 0; g < kGroup; ++g) {
      _mm256_storeu_ps(out + g * kB + s, a[g][0]);
      _mm256_storeu_ps(out + g * kB + s + 8, a[g][1]);
      m[g] = _mm256_max_ps(m[g], _mm256_max_ps(a[g][0], a[g][1]));
    }
  }
  for (int g = 0; g < kGroup; ++g) max[g] = MaxLane(m[g]);
}

float ScoreBlock(const float* blk, const float* bias, int dim, const float* q, float* out) {
  return kHaveAvx2 ? ScoreBlockAvx2(blk, bias, dim, q, out)
                   : ScoreBlockPortable(blk, bias, dim, q, out);
}

void ScoreBlock4(const float* blk, const float* bias, int dim, const float* q, int ldq,
                 float* out, float* max) {
  if (kHaveAvx2) {
    ScoreBlock4Avx2(blk, bias, dim, q, ldq, out, max);
  } else {
    for (int g = 0; g < kGroup; ++g) {
      max[g] = ScoreBlockPortable(blk, bias, dim, q + g * ldq, out + g * kB);
    }
  }
}

// The k best seen so far; front() of the heap is the worst of them.
class TopHeap {
 public:
  explicit TopHeap(uint32_t k) : k_(k) { heap_.reserve(k); }
  // Scores at or below this cannot enter (items arrive in ascending id order
  // within one heap, so a tie with the worst never ranks before it).
  float threshold() const { return heap_.size() < k_ ? kNegInf : heap_.front().score; }
  void Push(uint32_t item, float score) {
    const ScoredItem c{item, score};
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    } else if (RanksBefore(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), RanksBefore);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), RanksBefore);
    }
  }
  // Pushes a scored block of kB items starting at item `first`, whose
  // largest score is `max` (most blocks of a large scan end here).
  void PushBlock(uint32_t first, const float* scores, float max) {
    float thr = threshold();
    if (!(max > thr)) return;
    for (int t = 0; t < kB; ++t) {
      if (scores[t] > thr) {
        Push(first + t, scores[t]);
        thr = threshold();
      }
    }
  }
  std::vector<ScoredItem>& items() { return heap_; }

 private:
  uint32_t k_;
  std::vector<ScoredItem> heap_;
};

}  // namespace

std::vector<ScoredItem> SelectTopK(std::vector<ScoredItem> all, uint32_t k, float offset,
                                   std::span<const uint32_t> exclude) {
  const size_t keep = std::min<size_t>(all.size(), uint64_t{k} + exclude.size());
  std::partial_sort(all.begin(), all.begin() + keep, all.end(), RanksBefore);
  all.resize(keep);
  std::vector<ScoredItem> out;
  out.reserve(std::min<size_t>(k, all.size()));
  for (const ScoredItem& s : all) {
    if (out.size() == k) break;
    if (s.score == kNegInf) break;  // padding
    if (!exclude.empty() && std::binary_search(exclude.begin(), exclude.end(), s.item)) continue;
    out.push_back({s.item, s.score + offset});
  }
  // Adding the offset may round distinct scores to equal ones: restore the
  // tie order on the scores returned.
  if (offset != 0.0f) std::sort(out.begin(), out.end(), RanksBefore);
  return out;
}

namespace {

// Over-fetch: every excluded item could rank in the top k.
uint32_t FetchSize(const ItemBlocks& items, uint32_t k, size_t excluded) {
  return static_cast<uint32_t>(std::min<uint64_t>(uint64_t{k} + excluded, items.num_items()));
}

std::vector<ScoredItem> ScanBlocks(const ItemBlocks& items, const float* q, uint32_t fetch,
                                   uint32_t begin, uint32_t end) {
  TopHeap heap(fetch);
  alignas(32) float scores[kB];
  for (uint32_t b = begin; b < end; ++b) {
    const float max = ScoreBlock(items.block(b), items.block_bias(b), items.dim(), q, scores);
    heap.PushBlock(b * kB, scores, max);
  }
  return std::move(heap.items());
}

ThreadPool& PoolOf(const ExactOptions& o) {
  return o.pool != nullptr ? *o.pool : ThreadPool::Default();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ItemBlocks>> ItemBlocks::Create(const RowMatrix& item_factors,
                                                               std::span<const float> item_bias) {
  const int64_t n = item_factors.rows();
  const int dim = static_cast<int>(item_factors.cols());
  if (dim < 1) return absl::InvalidArgumentError("item factors: dim must be >= 1");
  if (n > std::numeric_limits<uint32_t>::max() - kB) {
    return absl::InvalidArgumentError(absl::StrCat("item factors: ", n, " items; too many"));
  }
  if (!item_bias.empty() && static_cast<int64_t>(item_bias.size()) != n) {
    return absl::InvalidArgumentError(absl::StrCat("item bias: ", item_bias.size(),
                                                   " values for ", n, " items"));
  }
  if (!item_factors.allFinite() ||
      !std::all_of(item_bias.begin(), item_bias.end(), [](float b) { return std::isfinite(b); })) {
    return absl::InvalidArgumentError("item factors: must be finite");
  }
  auto out = std::unique_ptr<ItemBlocks>(new ItemBlocks());
  out->num_items_ = static_cast<uint32_t>(n);
  out->dim_ = dim;
  out->num_blocks_ = static_cast<uint32_t>((n + kB - 1) / kB);
  out->data_.assign(size_t{out->num_blocks_} * dim * kB, 0.0f);
  out->bias_.assign(size_t{out->num_blocks_} * kB, kNegInf);
  for (int64_t i = 0; i < n; ++i) {
    float* blk = out->data_.data() + (i / kB) * dim * kB + i % kB;
    for (int j = 0; j < dim; ++j) blk[j * kB] = item_factors(i, j);
    out->bias_[i] = item_bias.empty() ? 0.0f : item_bias[i];
  }
  return out;
}

float ItemBlocks::Score(std::span<const float> query, uint32_t item) const {
  const float* blk = block(item / kB) + item % kB;
  float acc = bias_[item];
  for (int j = 0; j < dim_; ++j) {
    acc = kHaveAvx2 ? std::fma(blk[j * kB], query[j], acc) : acc + blk[j * kB] * query[j];
  }
  return acc;
}

float ItemBlocks::Row(uint32_t item, float* out) const {
  const float* blk = block(item / kB) + item % kB;
  for (int j = 0; j < dim_; ++j) out[j] = blk[j * kB];
  return bias_[item];
}

std::vector<ScoredItem> ExactTopK(const ItemBlocks& items, std::span<const float> query,
                                  float offset, uint32_t k, std::span<const uint32_t> exclude,
                                  const ExactOptions& options) {
  const uint32_t fetch = FetchSize(items, k, exclude.size());
  if (fetch == 0) return {};
  ThreadPool& pool = PoolOf(options);
  const uint32_t nb = items.num_blocks();
  const int shards =
      items.num_items() >= options.parallel_min_items ? pool.num_threads() + 1 : 1;
  if (shards == 1) return SelectTopK(ScanBlocks(items, query.data(), fetch, 0, nb), k, offset, exclude);
  std::vector<std::vector<ScoredItem>> parts(shards);
  pool.ParallelFor(shards, [&](int s) {
    const uint32_t begin = static_cast<uint64_t>(nb) * s / shards;
    const uint32_t end = static_cast<uint64_t>(nb) * (s + 1) / shards;
    parts[s] = ScanBlocks(items, query.data(), fetch, begin, end);
  });
  std::vector<ScoredItem> all;
  for (auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return SelectTopK(std::move(all), k, offset, exclude);
}

std::vector<std::vector<ScoredItem>> BatchExactTopK(
    const ItemBlocks& items, const RowMatrix& queries, std::span<const float> offsets,
    uint32_t k, std::span<const std::vector<uint32_t>> excludes, const ExactOptions& options) {
  const int nq = static_cast<int>(queries.rows());
  std::vector<std::vector<ScoredItem>> out(nq);
  if (nq == 0) return out;
  // Queries padded to whole groups (padding rows are zero and ignored).
  const int padded = (nq + kGroup - 1) / kGroup * kGroup;
  RowMatrix q = RowMatrix::Zero(padded, items.dim());
  q.topRows(nq) = queries;
  // Each shard runs a chunk of query groups over every block, so a block is
  // read from memory once per chunk and then scored from cache.
  constexpr int kGroupsPerChunk = 16;
  const int groups = padded / kGroup;
  const int chunks = (groups + kGroupsPerChunk - 1) / kGroupsPerChunk;
  PoolOf(options).ParallelFor(chunks, [&](int c) {
    const int g0 = c * kGroupsPerChunk, g1 = std::min(groups, g0 + kGroupsPerChunk);
    std::vector<TopHeap> heaps;
    for (int r = g0 * kGroup; r < g1 * kGroup; ++r) {
      const size_t excluded = r < nq && !excludes.empty() ? excludes[r].size() : 0;
      heaps.emplace_back(std::max<uint32_t>(1, FetchSize(items, k, excluded)));
    }
    alignas(32) float scores[kGroup * kB];
    float max[kGroup];
    for (uint32_t b = 0; b < items.num_blocks(); ++b) {
      for (int g = g0; g < g1; ++g) {
        ScoreBlock4(items.block(b), items.block_bias(b), items.dim(), q.row(g * kGroup).data(),
                    items.dim(), scores, max);
        for (int r = 0; r < kGroup; ++r) {
          heaps[(g - g0) * kGroup + r].PushBlock(b * kB, scores + r * kB, max[r]);
        }
      }
    }
    for (int r = g0 * kGroup; r < std::min(nq, g1 * kGroup); ++r) {
      out[r] = SelectTopK(std::move(heaps[r - g0 * kGroup].items()), k,
                      offsets.empty() ? 0.0f : offsets[r],
                      excludes.empty() ? std::span<const uint32_t>() : excludes[r]);
    }
  });
  return out;
}

std::vector<ScoredItem> BaselineTopK(const RowMatrix& item_factors,
                                     std::span<const float> item_bias,
                                     std::span<const float> query, float offset, uint32_t k) {
  Eigen::VectorXf scores =
      item_factors * Eigen::Map<const Eigen::VectorXf>(query.data(), query.size());
  scores.array() += offset;
  if (!item_bias.empty()) scores += Eigen::Map<const Eigen::VectorXf>(item_bias.data(), item_bias.size());
  std::vector<uint32_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t kk = std::min<size_t>(k, idx.size());
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(), [&](uint32_t a, uint32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  std::vector<ScoredItem> out(kk);
  for (size_t r = 0; r < kk; ++r) out[r] = {idx[r], scores[idx[r]]};
  return out;
}

}  // namespace debias::retrieval
