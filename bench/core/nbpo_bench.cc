// Speed of one training epoch of BPR / BPO / NBPO / NBPOo on the NBPO
// authors' Amazon split (1,435 users, 1,522 items, 31,887 positives; dim 50,
// flip_dim 50, the shipped defaults' sample_rate, batch 5,000).
//
// Baseline in the same run: BM_ScalarForwardPass evaluates the NBPO
// objective of the same epoch's terms with plain scalar double loops (no
// gradient, no update), i.e. the cheapest possible pass over the data that
// a non-vectorised implementation must make; the epochs are reported as
// ratios to it in docs/BENCHMARKS.md. The authors' numpy version takes
// 140-220 ms per NBPO epoch (notes); the target is < 20 ms.
#include <fstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/data/dataset_view.h"
#include "core/models/nbpo_trainer.h"
#include "core/samplers/negative_sampler.h"
#include "nlohmann/json.hpp"

namespace {

using debias::models::NbpoLoss;

const debias::data::DatasetView* AmazonView() {
  static const debias::data::DatasetView* view = [] {
    std::ifstream in(std::string(DEBIAS_SHARED_DATA_DIR) +
                     "/amazon-14core/train_data.json");
    if (!in) return static_cast<debias::data::DatasetView*>(nullptr);
    nlohmann::json j = nlohmann::json::parse(in);
    debias::data::DatasetViewBuilder b;
    std::vector<std::string> uk, ik;
    uint32_t n = 1522;
    for (size_t u = 0; u < j.size(); ++u) {
      uk.push_back(std::to_string(u));
      for (const auto& v : j[u]) {
        const uint32_t i = v.get<uint32_t>();
        n = std::max(n, i + 1);
        b.Add(u, i, 1.0f, std::nullopt, debias::data::kNoList, std::nullopt,
              std::nullopt, {});
      }
    }
    for (uint32_t i = 0; i < n; ++i) ik.push_back(std::to_string(i));
    auto v = b.Finish(uk, ik, {}, 1);
    return v.ok() ? new debias::data::DatasetView(std::move(*v)) : nullptr;
  }();
  return view;
}

void BM_Epoch(benchmark::State& state, NbpoLoss loss, bool objective) {
  const auto* view = AmazonView();
  if (view == nullptr) {
    state.SkipWithError("amazon-14core not found");
    return;
  }
  auto o = debias::models::DefaultNbpoOptions(loss);
  o.seed = 1;
  auto t = debias::models::NbpoTrainer::Create(*view, o);
  if (!t.ok()) {
    state.SkipWithError(std::string(t.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    auto r = (*t)->RunEpoch(nullptr, objective);
    benchmark::DoNotOptimize(r);
  }
  state.counters["positives"] = view->num_events();
  state.counters["sample_rate"] = o.sample_rate;
}
BENCHMARK_CAPTURE(BM_Epoch, bpr, NbpoLoss::kBpr, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Epoch, bpo, NbpoLoss::kBpo, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Epoch, nbpo, NbpoLoss::kNbpo, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Epoch, nbpoo, NbpoLoss::kNbpoo, false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Epoch, nbpo_with_objective, NbpoLoss::kNbpo, true)->Unit(benchmark::kMillisecond);

void BM_ScalarForwardPass(benchmark::State& state) {
  const auto* view = AmazonView();
  if (view == nullptr) {
    state.SkipWithError("amazon-14core not found");
    return;
  }
  auto o = debias::models::DefaultNbpoOptions(NbpoLoss::kNbpo);
  auto t = debias::models::NbpoTrainer::Create(*view, o);
  auto sampler = debias::samplers::MakeUniformSampler(*view);
  debias::samplers::Rng rng(1);
  std::vector<uint32_t> negs(view->num_events() * o.sample_rate);
  for (size_t e = 0; e < view->num_events(); ++e) {
    (void)sampler->Sample(view->user[e],
                          std::span<uint32_t>(negs.data() + e * o.sample_rate,
                                              o.sample_rate),
                          rng);
  }
  debias::models::NbpoBlock block{view->user, view->item, negs, o.sample_rate};
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        debias::models::NbpoObjective(NbpoLoss::kNbpo, (*t)->params(), block));
  }
}
BENCHMARK(BM_ScalarForwardPass)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
