// Exact top-k retrieval over a factor model's items: score(q, i) =
// q . V_i + b_i for every item i, the k best kept.
//
// ItemBlocks holds the item factors transposed in blocks of kBlock items
// (within a block, dimension-major: the kBlock values of dimension j are
// contiguous), so one query scores a block with SIMD multiply-adds over
// items and no horizontal sums, and a batch of queries scores it with one
// small matrix product while the block sits in cache. The scan keeps a
// bounded heap of the k best; a large catalogue is split over a ThreadPool.
//
// Order: best first; equal scores by ascending item id. Scores are float
// sums in this kernel's order, so they may differ from Model::ScoreItems in
// the last bits.
// Thread safety: ItemBlocks is immutable after Create; every function here
// may be called from any number of threads at once.
#ifndef DEBIAS_CORE_RETRIEVAL_EXACT_H_
#define DEBIAS_CORE_RETRIEVAL_EXACT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "Eigen/Core"
#include "absl/status/statusor.h"
#include "core/retrieval/thread_pool.h"

namespace debias::retrieval {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct ScoredItem {
  uint32_t item = 0;
  float score = 0.0f;
};

// True when a ranks before b (higher score; on a tie the lower id).
inline bool RanksBefore(const ScoredItem& a, const ScoredItem& b) {
  return a.score > b.score || (a.score == b.score && a.item < b.item);
}

class ItemBlocks {
 public:
  static constexpr int kBlock = 64;

  // Copies item_factors (num_items x dim, row-major) and item_bias (empty or
  // num_items long) into the blocked layout. INVALID_ARGUMENT for dim < 1,
  // a bias of the wrong length or non-finite values.
  static absl::StatusOr<std::unique_ptr<ItemBlocks>> Create(const RowMatrix& item_factors,
                                                            std::span<const float> item_bias);

  uint32_t num_items() const { return num_items_; }
  int dim() const { return dim_; }
  uint32_t num_blocks() const { return num_blocks_; }
  // Bytes held (factors and biases, padding included).
  size_t bytes() const { return (data_.size() + bias_.size()) * sizeof(float); }

  // Block b: dim() rows of kBlock floats (row j: dimension j of the block's
  // items); the padding after the last item is zero with bias -inf.
  const float* block(uint32_t b) const { return data_.data() + size_t{b} * dim_ * kBlock; }
  const float* block_bias(uint32_t b) const { return bias_.data() + size_t{b} * kBlock; }
  // Score of one item (same arithmetic as the scan). Precondition: item in range.
  float Score(std::span<const float> query, uint32_t item) const;
  // Copies item's factors into out[0, dim) and returns its bias.
  float Row(uint32_t item, float* out) const;

 private:
  ItemBlocks() = default;
  uint32_t num_items_ = 0;
  int dim_ = 0;
  uint32_t num_blocks_ = 0;
  std::vector<float> data_;
  std::vector<float> bias_;
};

struct ExactOptions {
  // Catalogues at least this large are split over the pool (when it has
  // workers); smaller ones are scanned on the calling thread.
  uint32_t parallel_min_items = 1 << 16;
  // Pool for large scans; null: ThreadPool::Default().
  ThreadPool* pool = nullptr;
};

// The min(k, num_items) best items for `query` (length dim()), best first,
// with `offset` added to every score. exclude: sorted item ids left out (the
// answer then has min(k, num_items - excluded) items).
// Preconditions (checked by callers): query.size() == dim(), k >= 1.
std::vector<ScoredItem> ExactTopK(const ItemBlocks& items, std::span<const float> query,
                                  float offset, uint32_t k,
                                  std::span<const uint32_t> exclude = {},
                                  const ExactOptions& options = {});

// ExactTopK for many queries at once: queries is num_queries x dim
// (row-major); offsets and excludes are empty or one per query. The item
// blocks are read once per group of queries (a matrix product per block), so
// this is far cheaper per query than separate calls. Result q answers query q.
std::vector<std::vector<ScoredItem>> BatchExactTopK(
    const ItemBlocks& items, const RowMatrix& queries, std::span<const float> offsets,
    uint32_t k, std::span<const std::vector<uint32_t>> excludes = {},
    const ExactOptions& options = {});

// The best min(k, candidates left) of `candidates` once the sorted ids in
// `exclude` are dropped, best first, with `offset` added to each score.
std::vector<ScoredItem> SelectTopK(std::vector<ScoredItem> candidates, uint32_t k, float offset,
                                   std::span<const uint32_t> exclude);

// The scan as it was before ItemBlocks (kept as the benchmark's baseline and
// the tests' reference): every score into a vector by a row-major
// matrix-vector product, then partial_sort of all ids.
std::vector<ScoredItem> BaselineTopK(const RowMatrix& item_factors,
                                     std::span<const float> item_bias,
                                     std::span<const float> query, float offset, uint32_t k);

}  // namespace debias::retrieval

#endif  // DEBIAS_CORE_RETRIEVAL_EXACT_H_
