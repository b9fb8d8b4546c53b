// Negative samplers built once per (dataset version, sampler, options,
// model) and reused across calls: what SampleNegatives serves from. Bounded
// (at most `capacity` samplers; a full cache is emptied and rebuilt on
// demand). Users and items are keys; ids stay inside.
// Thread safety: thread-safe; entries are immutable once built.
#ifndef DEBIAS_CORE_SAMPLERS_SAMPLER_CACHE_H_
#define DEBIAS_CORE_SAMPLERS_SAMPLER_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/data/dataset_view.h"
#include "core/samplers/nbpo_sampler.h"
#include "core/samplers/negative_sampler.h"

namespace debias::samplers {

struct SampleRequest {
  std::shared_ptr<const data::DatasetView> view;  // the dataset now
  std::string dataset;                            // its name, for messages
  std::string sampler = "uniform";                // registry name
  std::optional<double> power;                    // popularity exponent
  // "nbpo" only: the trained model's id, factors and key tables (those of
  // the dataset when it trained); `keep_alive` owns them.
  uint64_t model_id = 0;
  const NbpoFactors* nbpo = nullptr;
  const std::vector<std::string>* model_user_keys = nullptr;
  const std::vector<std::string>* model_item_keys = nullptr;
  std::shared_ptr<const void> keep_alive;
};

class SamplerCache {
 public:
  explicit SamplerCache(size_t capacity = 32) : capacity_(capacity) {}

  // `n` items for `user` (a key), drawn with `seed` (0: a random seed).
  // INVALID_ARGUMENT for an unknown sampler or "nbpo" without a model,
  // FAILED_PRECONDITION when the dataset changed since the NBPO model
  // trained, NOT_FOUND for a user not in the dataset.
  absl::StatusOr<std::vector<std::string>> Sample(const SampleRequest& req,
                                                  const std::string& user, uint32_t n,
                                                  uint64_t seed);

 private:
  struct Entry {
    std::shared_ptr<const data::DatasetView> view;
    std::shared_ptr<const void> keep_alive;  // the NBPO factors' owner
    std::unique_ptr<NegativeSampler> sampler;
    absl::flat_hash_map<std::string, uint32_t> users;
  };
  absl::StatusOr<std::shared_ptr<const Entry>> Get(const SampleRequest& req);
  static absl::StatusOr<std::shared_ptr<const Entry>> Build(const SampleRequest& req);

  const size_t capacity_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_SAMPLER_CACHE_H_
