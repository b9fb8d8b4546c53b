// Retriever: top-k items for a user of a factor model, exact or approximate.
//
// Created for a loaded model, it copies the item factors into ItemBlocks
// (the exact path) and, for catalogues of at least ann_min_items, builds an
// AnnIndex in the background (the approximate path), measuring its recall@k
// against the exact answer on a sample of the model's users once built.
// Until the index is ready, and when it fails to build, every call is
// answered exactly. Models that are not factor models ("mf", "nbpo-mf") are
// scanned with Model::ScoreAll (exact only).
//
// Modes: kExact always scans; kApproximate needs a ready index
// (FAILED_PRECONDITION saying why there is none); kAuto uses the index when
// it is ready, else scans. Exclusions are honoured on both paths by fetching
// k + |exclude| candidates and dropping the excluded ones, so min(k, items
// left) come back.
//
// Ownership: the Retriever reads the model's user factors and must not
// outlive the model. Thread safety: every const method may be called from
// any number of threads; the destructor stops a running build and waits.
#ifndef DEBIAS_CORE_RETRIEVAL_RETRIEVER_H_
#define DEBIAS_CORE_RETRIEVAL_RETRIEVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/model/model.h"
#include "core/retrieval/ann_index.h"
#include "core/retrieval/exact.h"
#include "nlohmann/json.hpp"

namespace debias::retrieval {

enum class Mode { kAuto, kExact, kApproximate };
// "auto" (also ""), "exact", "approximate"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Mode> ParseMode(std::string_view name);
std::string_view ModeName(Mode mode);

struct RetrieverOptions {
  ExactOptions exact;
  // Build an approximate index for catalogues of at least this many items;
  // 0: never. Below it every call scans exactly.
  uint32_t ann_min_items = 250000;
  AnnOptions ann;
  // Recall@recall_k of the index against the exact answer, measured on this
  // many users drawn with `seed` when the index is built.
  int recall_users = 200;
  uint32_t recall_k = 100;
  uint64_t seed = 1;
  // Build the index on a background thread (else in Create).
  bool build_async = true;
  // Where built indexes are kept, so a reload (restart, eviction) reads the
  // file instead of rebuilding: "<index_dir>/<index_name>-<fingerprint>.faiss",
  // the fingerprint covering the item factors and the build settings. Empty
  // index_dir: not kept. A file that fails to read is rebuilt over.
  std::string index_dir;
  std::string index_name = "index";
  // Called once when a build ends (OK, or why it failed), from the building
  // thread; may be empty.
  std::function<void(const absl::Status&, const nlohmann::json& diagnostics)> on_index_done;
};

class Retriever {
 public:
  // FAILED_PRECONDITION for a model without items (a ranker over features).
  static absl::StatusOr<std::unique_ptr<Retriever>> Create(const model::Model& model,
                                                           RetrieverOptions options);
  ~Retriever();

  struct Result {
    std::vector<ScoredItem> items;  // best first; scores as Model scores them
    Mode used = Mode::kExact;       // kExact or kApproximate
  };
  // The k best items for `user`, leaving out `exclude` (sorted model item
  // ids). Preconditions (checked by callers): user < num_users, k >= 1.
  // FAILED_PRECONDITION for kApproximate without a ready index.
  absl::StatusOr<Result> TopK(uint32_t user, uint32_t k, std::span<const uint32_t> exclude,
                              Mode mode) const;
  // TopK for many users; excludes is empty or one list per user. Exact
  // batches share one pass over the items (BatchExactTopK).
  absl::StatusOr<std::vector<Result>> BatchTopK(std::span<const uint32_t> users, uint32_t k,
                                                std::span<const std::vector<uint32_t>> excludes,
                                                Mode mode) const;

  // Whether the approximate path can serve now.
  bool index_ready() const;
  // Blocks until no build is running (tests, benchmarks).
  void WaitForIndex() const;
  // {"exact": "blocked"|"score_all", "index": "none"|"building"|"ready"|
  // "failed", ...}: the index settings, build seconds, bytes and recall@k
  // once built, the reason when failed or not built.
  nlohmann::json Diagnostics() const;
  // Bytes held: the blocked item factors and the index.
  size_t bytes() const;

 private:
  Retriever() = default;
  void BuildIndex();
  // The index from its file or built (and then saved); notes in diag.
  absl::StatusOr<std::unique_ptr<AnnIndex>> LoadOrBuild(const AnnOptions& ao,
                                                        nlohmann::json* diag);
  std::string IndexPath(const AnnOptions& ao) const;
  float Offset(uint32_t user) const;
  std::span<const float> Query(uint32_t user) const;
  absl::Status CheckApproximate() const;
  std::vector<ScoredItem> Approximate(const AnnIndex& index, uint32_t user, uint32_t k,
                                      std::span<const uint32_t> exclude) const;
  std::vector<ScoredItem> ScanModel(uint32_t user, uint32_t k,
                                    std::span<const uint32_t> exclude) const;

  const model::Model* model_ = nullptr;
  RetrieverOptions options_;
  // Factor models: user factors (num_users x dim), user bias (or empty) and
  // global bias; items as ItemBlocks. Null blocks_: scan with ScoreAll.
  const RowMatrix* user_factors_ = nullptr;
  std::span<const float> user_bias_;
  float global_bias_ = 0.0f;
  std::unique_ptr<ItemBlocks> blocks_;

  std::atomic<bool> stop_{false};
  std::thread builder_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const AnnIndex> index_ ABSL_GUARDED_BY(mu_);
  bool building_ ABSL_GUARDED_BY(mu_) = false;
  nlohmann::json index_diag_ ABSL_GUARDED_BY(mu_);
};

}  // namespace debias::retrieval

#endif  // DEBIAS_CORE_RETRIEVAL_RETRIEVER_H_
