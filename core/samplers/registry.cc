#include "core/samplers/registry.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/params.h"

namespace debias::samplers {
namespace {

// A sampler's parameters through the one parameter reader: unknown keys
// are refused with the known ones.
absl::Status NoParams(const SamplerOptions& o, const std::string& name) {
  util::ParamReader p(o.params, name, "sampler");
  return p.Finish();
}

}  // namespace

const std::vector<SamplerInfo>& Samplers() {
  static const auto* samplers = new std::vector<SamplerInfo>{
      {"uniform", "uniform over the user's non-positive items", {}, false,
       [](const data::DatasetView& v, const SamplerOptions& o)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         if (absl::Status st = NoParams(o, "uniform"); !st.ok()) return st;
         return MakeUniformSampler(v);
       }},
      {"popularity",
       "proportional to item popularity^power (positive events per item)",
       {"power"}, false,
       [](const data::DatasetView& v, const SamplerOptions& o)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         util::ParamReader p(o.params, "popularity", "sampler");
         auto power = p.Double("power", 1.0, {0, 10}, "exponent of item popularity");
         if (!power.ok()) return power.status();
         if (absl::Status st = p.Finish(); !st.ok()) return st;
         return MakePopularitySampler(v, *power);
       }},
      {"nbpo",
       "by P(true negative | unobserved) of a trained NBPO model (Yu & Qin, "
       "SIGIR 2020)",
       {}, true,
       [](const data::DatasetView& v, const SamplerOptions& o)
           -> absl::StatusOr<std::unique_ptr<NegativeSampler>> {
         if (absl::Status st = NoParams(o, "nbpo"); !st.ok()) return st;
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
    return s.create(view, options);
  }
  std::vector<std::string> names;
  for (const SamplerInfo& s : Samplers()) names.emplace_back(s.name);
  return absl::InvalidArgumentError(absl::StrCat("sampler='", std::string(name),
                                                 "': not known; known samplers: ",
                                                 absl::StrJoin(names, ", ")));
}

std::vector<util::ParamSpec> SamplerParams(std::string_view name) {
  static const data::DatasetView* const kEmpty = [] {
    auto v = data::DatasetViewBuilder().Finish({}, {}, {}, 0);
    return new data::DatasetView(std::move(*v));
  }();
  std::vector<util::ParamSpec> out;
  {
    util::ParamSchemaCapture capture(&out);
    // Each row reads its keys before it looks at the data; the error of
    // building on an empty view is ignored.
    CreateSampler(name, *kEmpty, {}).IgnoreError();
  }
  return out;
}

}  // namespace debias::samplers
