#include "core/samplers/sampler_cache.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "core/samplers/registry.h"

namespace debias::samplers {

absl::StatusOr<std::shared_ptr<const SamplerCache::Entry>> SamplerCache::Build(
    const SampleRequest& req) {
  auto built = std::make_shared<Entry>();
  built->view = req.view;
  built->keep_alive = req.keep_alive;
  const data::DatasetView& v = *req.view;
  SamplerOptions so;
  if (req.power) so.params["power"] = absl::StrCat(*req.power);
  if (req.sampler == "nbpo") {
    if (req.nbpo == nullptr) {
      return absl::InvalidArgumentError(
          "sampler=nbpo: needs model_id of a model trained with loss nbpo or nbpoo");
    }
    // The model's ids are those of the dataset at training time; the view
    // may have grown since, so only the same key tables are accepted.
    if (v.user_keys != *req.model_user_keys || v.item_keys != *req.model_item_keys) {
      return absl::FailedPreconditionError(
          absl::StrCat("sampler=nbpo: dataset '", req.dataset, "' changed since model ",
                       req.model_id, " was trained; retrain it"));
    }
    so.nbpo = req.nbpo;
  }
  auto sampler = CreateSampler(req.sampler, v, so);
  if (!sampler.ok()) return sampler.status();
  built->sampler = std::move(*sampler);
  for (uint32_t u = 0; u < v.num_users(); ++u) built->users.emplace(v.user_keys[u], u);
  return std::shared_ptr<const Entry>(std::move(built));
}

absl::StatusOr<std::shared_ptr<const SamplerCache::Entry>> SamplerCache::Get(
    const SampleRequest& req) {
  const std::string key = absl::StrCat(req.dataset, "|", req.view->data_version, "|",
                                       req.sampler, "|", req.power ? *req.power : -1.0, "|",
                                       req.model_id);
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) return it->second;
  }
  auto built = Build(req);
  if (!built.ok()) return built.status();
  absl::MutexLock l(&mu_);
  if (entries_.size() >= capacity_) entries_.clear();  // bounded; rebuilt on demand
  entries_[key] = *built;
  return *built;
}

absl::StatusOr<std::vector<std::string>> SamplerCache::Sample(const SampleRequest& req,
                                                              const std::string& user,
                                                              uint32_t n, uint64_t seed) {
  auto entry = Get(req);
  if (!entry.ok()) return entry.status();
  const Entry& e = **entry;
  auto u = e.users.find(user);
  if (u == e.users.end()) {
    return absl::NotFoundError(absl::StrCat("user '", user.substr(0, 200),
                                            "' is not in dataset '", req.dataset, "'"));
  }
  Rng rng(seed != 0 ? seed : std::random_device{}());
  auto drawn = e.sampler->Sample(u->second, n, rng);
  if (!drawn.ok()) return drawn.status();
  std::vector<std::string> items;
  items.reserve(drawn->size());
  for (uint32_t i : *drawn) items.push_back(e.view->item_keys[i]);
  return items;
}

}  // namespace debias::samplers
