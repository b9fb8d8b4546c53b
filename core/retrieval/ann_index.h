// AnnIndex: an approximate maximum-inner-product index over ItemBlocks,
// an HNSW graph from faiss (IndexHNSWFlat).
//
// The graph is built and searched by inner product itself: item i is
// [V_i, b_i] and a query [q, 1], so the inner product is the model's score.
// (The textbook reduction of inner products to Euclidean distances, an
// extra coordinate sqrt(R^2 - |x_i|^2), gave recall@100 of 0.39-0.76 where
// this gives 0.82-0.95 on the benchmark's clustered factors:
// docs/BENCHMARKS.md, Retrieval.)
//
// Memory: num_items x ((dim + 1) x 4 bytes + about 2 M x 4 bytes of links).
// Thread safety: immutable after Build; Search may be called from any
// number of threads at once.
#ifndef DEBIAS_CORE_RETRIEVAL_ANN_INDEX_H_
#define DEBIAS_CORE_RETRIEVAL_ANN_INDEX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/retrieval/exact.h"

namespace faiss {
struct IndexHNSWFlat;
}

namespace debias::retrieval {

struct AnnOptions {
  int m = 32;                // graph degree (links per node and level; 2 m on level 0)
  int ef_construction = 80;  // candidate list while building
  int ef_search = 256;       // candidate list while searching (at least the fetch size)
  int build_threads = 1;     // OpenMP threads of the build
  // Refuse (RESOURCE_EXHAUSTED) to build an index estimated above this; 0: no limit.
  size_t max_bytes = 0;
  // Polled between chunks of the build; true stops it (CANCELLED).
  std::function<bool()> cancelled;
};

class AnnIndex {
 public:
  // Builds the index over all items. INVALID_ARGUMENT for a bad option,
  // RESOURCE_EXHAUSTED past max_bytes, CANCELLED, INTERNAL when faiss fails.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Build(const ItemBlocks& items,
                                                         const AnnOptions& options);
  // Writes the index to `path` (through a temporary file renamed into
  // place, so a reader never sees a partial file). INTERNAL on I/O errors.
  absl::Status Save(const std::string& path) const;
  // Reads an index Save wrote for these items. NOT_FOUND for no file,
  // DATA_LOSS when it does not read or does not match the items (count,
  // dimension, metric); options.ef_search applies, m and ef_construction
  // are the file's.
  static absl::StatusOr<std::unique_ptr<AnnIndex>> Load(const std::string& path,
                                                        const ItemBlocks& items,
                                                        const AnnOptions& options);
  // Estimated bytes of an index over `num_items` items of `dim` dimensions.
  static size_t EstimateBytes(uint32_t num_items, int dim, int m);
  ~AnnIndex();

  // Ids of about the n best items for `query` (length dim), best first by
  // the index's approximate order (a candidate list of max(ef_search, n)).
  std::vector<uint32_t> Search(std::span<const float> query, uint32_t n) const;
  size_t bytes() const { return bytes_; }
  // Changes the search candidate list (benchmarks and tuning). Not
  // thread-safe: no Search may run meanwhile.
  void SetEfSearch(int ef);
  const AnnOptions& options() const { return options_; }

 private:
  AnnIndex() = default;
  void CountBytes();
  std::unique_ptr<faiss::IndexHNSWFlat> index_;
  AnnOptions options_;
  int dim_ = 0;
  size_t bytes_ = 0;
};

}  // namespace debias::retrieval

#endif  // DEBIAS_CORE_RETRIEVAL_ANN_INDEX_H_
