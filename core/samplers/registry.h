// The registry of negative samplers, one row per name: "uniform",
// "popularity", "nbpo". The server's SampleNegatives and the CLI list it.
//
// Usage: CreateSampler(name, view, options) once per (dataset version, model),
// then Sample(user, n, rng) as often as needed (see negative_sampler.h).
#ifndef DEBIAS_CORE_SAMPLERS_REGISTRY_H_
#define DEBIAS_CORE_SAMPLERS_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/data/dataset_view.h"
#include "core/samplers/nbpo_sampler.h"
#include "core/samplers/negative_sampler.h"
#include "core/util/params.h"

namespace debias::samplers {

struct SamplerOptions {
  // Sampler parameters as key=value strings; unknown keys are rejected.
  //   popularity: power (default 1, in [0, 10]).
  std::map<std::string, std::string> params;
  // Required by "nbpo": the factors of a trained NBPO model (model kind
  // "nbpo-mf", see core/models/nbpo_mf_model.h). Not owned; copied.
  const NbpoFactors* nbpo = nullptr;
};

struct SamplerInfo {
  std::string_view name;
  std::string_view description;  // one line
  std::vector<std::string_view> param_keys;
  bool needs_nbpo_model = false;
  std::function<absl::StatusOr<std::unique_ptr<NegativeSampler>>(
      const data::DatasetView&, const SamplerOptions&)>
      create;
};

// All samplers, in display order.
const std::vector<SamplerInfo>& Samplers();

// INVALID_ARGUMENT listing the known names for an unknown name (as for an
// unknown loss), and for an unknown or malformed parameter (naming the key and the known keys);
// FAILED_PRECONDITION when "nbpo" gets no factors, and whatever the
// sampler's constructor returns.
absl::StatusOr<std::unique_ptr<NegativeSampler>> CreateSampler(
    std::string_view name, const data::DatasetView& view,
    const SamplerOptions& options = {});

// The parameters sampler `name` reads (name, type, default, range, doc),
// recorded from its own reader on an empty dataset, so it is what
// CreateSampler accepts. ListMethods shows it.
std::vector<util::ParamSpec> SamplerParams(std::string_view name);

}  // namespace debias::samplers

#endif  // DEBIAS_CORE_SAMPLERS_REGISTRY_H_
