#include "core/samplers/registry.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace debias::samplers {
namespace {

absl::StatusOr<double> ParseDouble(const std::string& key,
                                   const std::string& value) {
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(v)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, "='", value, "': must be a finite number"));
  }
  return v;
}

absl::Status CheckKeys(const SamplerInfo& info, const SamplerOptions& o) {
  for (const auto& [key, value] : o.params) {
    bool known = false;
    for (std::string_view k : info.param_keys) known |= (k == key);
    if (!known) {
      std::vector<std::string> keys(info.param_keys.begin(),
                                    info.param_keys.end());
      return absl::InvalidArgumentError(absl::StrCat(
          "sampler '", std::string(info.name), "': unknown parameter '", key,
          "'; known parameters: ",
          keys.empty() ? std::string("(none)") : absl::StrJoin(keys, ", ")));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<SamplerInfo>& Samplers() {
  static const auto* samplers = new std::vector<SamplerInfo>{
      {"uniform", "uniform over the user's non-positive items", {}, false,
       [](const data::DatasetView& v, const SamplerOptions&)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         return MakeUniformSampler(v);
       }},
      {"popularity",
       "proportional to item popularity^power (positive events per item)",
       {"power"}, false,
       [](const data::DatasetView& v, const SamplerOptions& o)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         double power = 1.0;
         if (auto it = o.params.find("power"); it != o.params.end()) {
           auto p = ParseDouble("power", it->second);
           if (!p.ok()) return p.status();
           power = *p;
         }
         return MakePopularitySampler(v, power);
       }},
      {"nbpo",
       "by P(true negative | unobserved) of a trained NBPO model (Yu & Qin, "
       "SIGIR 2020)",
       {}, true,
       [](const data::DatasetView& v, const SamplerOptions& o)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         if (o.nbpo == nullptr) {
           return absl::FailedPreconditionError(
               "sampler 'nbpo' needs a model trained with loss nbpo or nbpoo "
               "(model kind nbpo-mf)");
         }
         return MakeNbpoSampler(v, *o.nbpo);
       }},
  };
  return *samplers;
}

absl::StatusOr<std::unique_ptr<NegativeSampler>> CreateSampler(
    std::string_view name, const data::DatasetView& view,
    const SamplerOptions& options) {
  for (const SamplerInfo& s : Samplers()) {
    if (s.name != name) continue;
    if (absl::Status st = CheckKeys(s, options); !st.ok()) return st;
    return s.create(view, options);
  }
  std::vector<std::string> names;
  for (const SamplerInfo& s : Samplers()) names.emplace_back(s.name);
  return absl::InvalidArgumentError(absl::StrCat("sampler='", std::string(name),
                                                 "': not known; known samplers: ",
                                                 absl::StrJoin(names, ", ")));
}

}  // namespace debias::samplers
